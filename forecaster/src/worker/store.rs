//! Reading and writing PostgreSQL and Kafka: the sizes the scaler
//! reported, forecasts, live accuracy, decisions (first write wins) and
//! their publication on `scaling-decisions`.

use super::*;

impl Worker {
    /// The sizes the scaler last reported for the services with a policy
    /// (see the module docs for which outcome gives which size).
    pub(super) async fn target_sizes(&self) -> Result<Sizes, WorkerError> {
        let (mut names, mut targets) = (vec![], vec![]);
        for name in self.services.keys() {
            if let Some(p) = self.config.policies.for_service(name) {
                names.push(name.as_str());
                targets
                    .push(serde_json::to_string(&p.target_for(name)).expect("targets serialise"));
            }
        }
        if names.is_empty() {
            return Ok(Sizes::new());
        }
        // Per service, its target's newest outcome that tells a size: an
        // index scan of scaling_actions (service, at DESC), one row each.
        let rows: Vec<(String, i32)> = sqlx::query_as(
            "SELECT s.service, a.size
             FROM unnest($1::text[], $2::text[]) AS s(service, target)
             CROSS JOIN LATERAL (
                 SELECT CASE WHEN outcome IN ('applied', 'clamped', 'unchanged', 'dry-run')
                             THEN coalesce(applied, previous) ELSE previous END AS size
                 FROM scaling_actions
                 WHERE service = s.service AND target = s.target::jsonb
                   AND (CASE WHEN outcome IN ('applied', 'clamped', 'unchanged', 'dry-run')
                             THEN coalesce(applied, previous) ELSE previous END) IS NOT NULL
                 ORDER BY at DESC
                 LIMIT 1) AS a",
        )
        .bind(&names)
        .bind(&targets)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(service, size)| (service, size.max(0) as u32))
            .collect())
    }

    pub(super) async fn write_forecasts(
        &self,
        issued_at: DateTime<Utc>,
    ) -> Result<usize, WorkerError> {
        let mut svc = vec![];
        let mut target = vec![];
        let mut horizon = vec![];
        let (mut p10, mut p50, mut p90) = (vec![], vec![], vec![]);
        for (name, st) in &self.services {
            let Some(f) = st.latest.as_ref().filter(|f| f.issued_at == issued_at) else {
                continue;
            };
            let Some((_, qs)) = st.issued.back() else {
                continue;
            };
            for (i, q) in qs.iter().enumerate() {
                svc.push(name.clone());
                target.push(issued_at + self.bucket.delta() * i as i32);
                horizon.push(f.points[i].horizon_min as i32);
                p10.push(q.p10);
                p50.push(q.p50);
                p90.push(q.p90);
            }
        }
        if svc.is_empty() {
            return Ok(0);
        }
        let n = svc.len();
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO forecasts (service, issued_at, target_minute, horizon_min, p10, p50, p90, model)
             SELECT s, $2, t, h, a, b, c, 'auto'
             FROM UNNEST($1::text[], $3::timestamptz[], $4::int[], $5::float8[], $6::float8[], $7::float8[])
                  AS u(s, t, h, a, b, c)
             ON CONFLICT (service, issued_at, horizon_min) DO UPDATE
               SET p10 = EXCLUDED.p10, p50 = EXCLUDED.p50, p90 = EXCLUDED.p90, model = EXCLUDED.model",
        )
        .bind(&svc)
        .bind(issued_at)
        .bind(&target)
        .bind(&horizon)
        .bind(&p10)
        .bind(&p50)
        .bind(&p90)
        .execute(&mut *tx)
        .await?;
        // Delivered on commit: the dashboard redraws the services' forecasts.
        sqlx::query(
            "SELECT pg_notify('prescient_forecasts',
                     json_build_object('service', s, 'issued_at', $2::timestamptz)::text)
             FROM (SELECT DISTINCT unnest($1::text[]) AS s) AS u",
        )
        .bind(&svc)
        .bind(issued_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(n)
    }

    pub(super) async fn write_accuracy(&self, minute: DateTime<Utc>) -> Result<(), WorkerError> {
        let (mut svc, mut samples, mut mae, mut mase, mut cov, mut model) =
            (vec![], vec![], vec![], vec![], vec![], vec![]);
        for (name, st) in &self.services {
            let Some(LiveAccuracy {
                samples: n,
                mae: a,
                mase: m,
                coverage: c,
            }) = st.accuracy
            else {
                continue;
            };
            self.metrics
                .live_mase
                .with_label_values(&[name.as_str()])
                .set(m);
            self.metrics
                .coverage
                .with_label_values(&[name.as_str()])
                .set(c);
            svc.push(name.clone());
            samples.push(n as i32);
            mae.push(a);
            mase.push(m);
            cov.push(c);
            model.push(st.leading.to_string());
        }
        if svc.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO forecast_accuracy (service, minute, window_min, samples, mae, mase, coverage, model)
             SELECT s, $2, $3, n, a, m, c, l
             FROM UNNEST($1::text[], $4::int[], $5::float8[], $6::float8[], $7::float8[], $8::text[]) AS u(s, n, a, m, c, l)
             ON CONFLICT (service, minute) DO UPDATE SET samples = EXCLUDED.samples, mae = EXCLUDED.mae,
               mase = EXCLUDED.mase, coverage = EXCLUDED.coverage, model = EXCLUDED.model",
        )
        .bind(&svc)
        .bind(minute)
        .bind(self.config.horizon_min as i32)
        .bind(&samples)
        .bind(&mae)
        .bind(&mase)
        .bind(&cov)
        .bind(&model)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Stores new decisions (an id already stored keeps its payload) and
    /// returns the stored payloads of `decisions` not yet published.
    pub(super) async fn write_decisions(
        &self,
        decisions: &[ScalingDecision],
    ) -> Result<Vec<ScalingDecision>, WorkerError> {
        if decisions.is_empty() {
            return Ok(vec![]);
        }
        let mut tx = self.pool.begin().await?;
        for d in decisions {
            let inserted = sqlx::query(
                "INSERT INTO scaling_decisions (id, service, issued_at, expires_at, target, current_size, desired,
                   min_size, max_size, policy, reason, fallback, forecast, mode, decision)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(d.id)
            .bind(&d.service)
            .bind(d.issued_at)
            .bind(d.expires_at)
            .bind(sqlx::types::Json(&d.target))
            .bind(d.current as i32)
            .bind(d.desired as i32)
            .bind(d.min as i32)
            .bind(d.max as i32)
            .bind(&d.policy)
            .bind(&d.reason)
            .bind(d.forecast.is_none())
            .bind(d.forecast.as_ref().map(sqlx::types::Json))
            .bind(d.mode.as_str())
            .bind(sqlx::types::Json(d))
            .execute(&mut *tx)
            .await?;
            if inserted.rows_affected() > 0 {
                sqlx::query(
                    "SELECT pg_notify('prescient_decisions', json_build_object('id', $1::uuid, 'service', $2::text)::text)",
                )
                .bind(d.id)
                .bind(&d.service)
                .execute(&mut *tx)
                .await?;
            }
        }
        let ids: Vec<uuid::Uuid> = decisions.iter().map(|d| d.id).collect();
        let stored: Vec<(sqlx::types::Json<ScalingDecision>,)> = sqlx::query_as(
            "SELECT decision FROM scaling_decisions WHERE id = ANY($1) AND NOT published ORDER BY service",
        )
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(stored.into_iter().map(|(d,)| d.0).collect())
    }

    pub(super) async fn publish(
        &self,
        decisions: &[ScalingDecision],
    ) -> Result<usize, WorkerError> {
        let Some(producer) = &self.producer else {
            return Ok(0);
        };
        let mut sent = vec![];
        for d in decisions {
            let payload = serde_json::to_string(d).expect("decisions serialise");
            let record = FutureRecord::to(prescient_contracts::SCALING_DECISIONS_TOPIC)
                .key(&d.service)
                .payload(&payload);
            match producer.send(record, Duration::from_secs(10)).await {
                Ok(_) => sent.push(d.id),
                Err((e, _)) => {
                    self.metrics.publish_errors.inc();
                    tracing::warn!(service = %d.service, error = %e, "publishing a scaling decision failed");
                }
            }
        }
        if !sent.is_empty() {
            sqlx::query("UPDATE scaling_decisions SET published = true WHERE id = ANY($1)")
                .bind(&sent)
                .execute(&self.pool)
                .await?;
        }
        Ok(sent.len())
    }
}
