//! The hourly rollup of `metrics_minute` per (tenant, service)
//! (`tenant_service_hour`, migration `0030_dashboard_rollup`).
//!
//! A tenant's view of a service sums the service's endpoints per minute
//! from `metrics_minute`; over 7 days that is ~100,000 rows scattered over
//! the whole table. The dashboard rolls every *final* hour (its end plus the
//! dataflow's lateness at or before the frontier in `ingest_frontier`: the
//! dataflow never changes those rows again) into one row of partial sums per
//! (tenant, service, hour), and a series with whole-hour buckets reads those
//! rows for the hours before `rolled_until` and the raw minutes after it.
//! Both paths produce the same partials ([`minute_sums!`], [`bucket_partials!`]),
//! combined by the same final aggregation, so the answer does not depend on
//! how far the rollup has got.
//!
//! The rollup runs in the background of every dashboard replica (at most
//! one at a time: the state row is locked with `SKIP LOCKED`); a replica
//! that finds hours to catch up on rolls them one transaction per hour.

use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use sqlx::PgPool;

use crate::metrics::Metrics;

/// The state row's name in `dashboard_rollup_state`.
pub(crate) const STATE: &str = "tenant_service_hour";

/// Per-minute sums over a tenant's endpoints of a service, from
/// `metrics_minute` (a select list; group by minute).
macro_rules! minute_sums {
    () => {
        "sum(requests)::float8 AS requests, sum(errors)::float8 AS errors,
         sum(latency_p50_ms * requests)::float8 AS p50_num,
         sum(requests) FILTER (WHERE latency_p50_ms IS NOT NULL)::float8 AS p50_den,
         max(latency_p95_ms) AS p95, max(latency_p99_ms) AS p99,
         sum(active_users)::float8 AS users"
    };
}
pub(crate) use minute_sums;

/// The endpoints a tenant (`$5`) has for a service (`$1`), one index probe
/// each (a loose index scan over `metrics_minute`'s primary key), as the
/// body of a recursive CTE with one column, `endpoint`. Reading a range of
/// minutes endpoint by endpoint (a `LATERAL` range scan each, fenced with
/// `OFFSET 0` so the planner keeps it) touches only the rows asked for; a
/// plain `WHERE tenant AND service AND minute` walks the key's entries of
/// every minute there is, because `minute` comes after `endpoint` in the key
/// (measured on a week of 50 M rows, cold: 200 ms against 5 ms).
macro_rules! endpoints_of {
    () => {
        "SELECT min(endpoint) AS endpoint FROM metrics_minute WHERE tenant = $5 AND service = $1
         UNION ALL
         SELECT (SELECT min(endpoint) FROM metrics_minute
                 WHERE tenant = $5 AND service = $1 AND endpoint > e.endpoint)
         FROM e WHERE e.endpoint IS NOT NULL"
    };
}
pub(crate) use endpoints_of;

/// Partial sums of a group of [`minute_sums!`] rows: what
/// `tenant_service_hour` stores per hour, and what a bucket combines.
macro_rules! bucket_partials {
    () => {
        "count(*) AS minutes, sum(requests) AS requests, sum(errors) AS errors,
         sum(p50_num) AS p50_num, sum(p50_den) AS p50_den,
         max(p95) AS p95, max(p99) AS p99, max(users) AS users"
    };
}
pub(crate) use bucket_partials;

/// What one pass of [`roll_up`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rolled {
    /// Hours rolled up in this pass.
    pub hours: u32,
    /// Every final hour before this is in `tenant_service_hour` (`None`:
    /// nothing is final yet, e.g. no frontier).
    pub until: Option<DateTime<Utc>>,
}

/// The start of the first hour that is not final: the hour of the lowest
/// `frontier - lateness` over the topics that have a frontier.
async fn final_until(pool: &PgPool) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    let ms: Option<i64> = sqlx::query_scalar(
        "SELECT min(frontier_ms - lateness_ms) FROM ingest_frontier WHERE frontier_ms IS NOT NULL",
    )
    .fetch_one(pool)
    .await?;
    Ok(ms
        .map(|ms| ms.div_euclid(3_600_000) * 3_600_000)
        .and_then(DateTime::from_timestamp_millis))
}

/// Rolls every final hour not yet rolled up, one transaction per hour, and
/// returns how far it got. Safe to run from several replicas at once: the
/// others skip while one holds the state row.
pub async fn roll_up(pool: &PgPool, metrics: Option<&Metrics>) -> Result<Rolled, sqlx::Error> {
    let Some(until) = final_until(pool).await? else {
        return Ok(Rolled {
            hours: 0,
            until: None,
        });
    };
    // The first run starts at the oldest minute there is (read after the
    // frontier, so every row of a final hour is already committed).
    sqlx::query(
        "INSERT INTO dashboard_rollup_state (name, rolled_until)
         SELECT $1, coalesce(date_trunc('hour', min(minute)), $2) FROM metrics_minute
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(STATE)
    .bind(until)
    .execute(pool)
    .await?;
    let started = Instant::now();
    let mut hours = 0u32;
    let mut reached = None;
    loop {
        let mut tx = pool.begin().await?;
        let Some(from): Option<DateTime<Utc>> = sqlx::query_scalar(
            "SELECT rolled_until FROM dashboard_rollup_state WHERE name = $1 FOR UPDATE SKIP LOCKED",
        )
        .bind(STATE)
        .fetch_optional(&mut *tx)
        .await?
        else {
            // Another replica is rolling up.
            break;
        };
        reached = Some(from);
        if from >= until {
            break;
        }
        let to = from + TimeDelta::hours(1);
        sqlx::query(concat!(
            "INSERT INTO tenant_service_hour (tenant, service, hour, minutes, requests, errors,
                                              p50_num, p50_den, latency_p95_ms, latency_p99_ms, active_users)
             SELECT tenant, service, $1, ",
            bucket_partials!(),
            " FROM (SELECT tenant, service, minute, ",
            minute_sums!(),
            "       FROM metrics_minute WHERE minute >= $1 AND minute < $2
                    GROUP BY tenant, service, minute) m
             GROUP BY tenant, service
             ON CONFLICT (tenant, service, hour) DO UPDATE SET
               minutes = EXCLUDED.minutes, requests = EXCLUDED.requests, errors = EXCLUDED.errors,
               p50_num = EXCLUDED.p50_num, p50_den = EXCLUDED.p50_den,
               latency_p95_ms = EXCLUDED.latency_p95_ms, latency_p99_ms = EXCLUDED.latency_p99_ms,
               active_users = EXCLUDED.active_users"
        ))
        .bind(from)
        .bind(to)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE dashboard_rollup_state SET rolled_until = $2, updated_at = now() WHERE name = $1",
        )
        .bind(STATE)
        .bind(to)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        hours += 1;
        reached = Some(to);
        if let Some(m) = metrics {
            // Per hour, so a long catch-up shows its progress.
            m.rollup_hours.inc();
            m.rollup_until.set(to.timestamp());
        }
        if hours.is_multiple_of(24) {
            let left = (until - to).num_hours();
            tracing::info!(
                rolled = hours,
                left,
                elapsed_s = started.elapsed().as_secs(),
                "catching up the hourly rollup of metrics_minute"
            );
        }
    }
    if hours > 0 {
        tracing::debug!(hours, "rolled up final hours of metrics_minute");
    }
    // Also when there was nothing to roll (e.g. just after a restart).
    if let (Some(m), Some(reached)) = (metrics, reached) {
        m.rollup_until.set(reached.timestamp());
    }
    Ok(Rolled {
        hours,
        until: reached,
    })
}

/// Runs [`roll_up`] every `interval` until aborted; failures are logged and
/// retried on the next pass (the views fall back to the raw minutes).
pub(crate) async fn run(pool: PgPool, metrics: Metrics, interval: Duration) {
    loop {
        if let Err(e) = roll_up(&pool, Some(&metrics)).await {
            tracing::warn!(error = %e, "hourly rollup failed; tenant views read raw minutes until it works");
        }
        tokio::time::sleep(interval).await;
    }
}
