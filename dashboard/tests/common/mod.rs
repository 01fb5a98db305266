//! Shared set-up of the dashboard's integration tests: a private PostgreSQL
//! with every migration, seeded rows, and a dashboard server on a free port.

#![allow(dead_code)]

use std::time::Duration;

use chrono::{DateTime, Utc};
use prescient_dashboard::auth::{self, Role};
use prescient_dashboard::{Dashboard, DashboardConfig};
use prescient_infra::postgres::PgInstance;
use sqlx::PgPool;

pub(crate) struct Env {
    pub(crate) dash: Dashboard,
    pub(crate) pool: PgPool,
    pub(crate) base: String,
    pub(crate) http: reqwest::Client,
    /// The seeded data's newest minute is `t0 - 1 min`; the frontier is `t0`.
    pub t0: DateTime<Utc>,
    pub(crate) _pg: PgInstance,
}

pub(crate) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

impl Env {
    pub(crate) async fn start(tweak: impl FnOnce(&mut DashboardConfig)) -> Env {
        let pg = PgInstance::start()
            .await
            .expect("private PostgreSQL (apt-get install -y postgresql)");
        let pool = PgPool::connect(&pg.url()).await.unwrap();
        prescient_infra::migrate::run(&pool).await.unwrap();
        let mut config = DashboardConfig::new("127.0.0.1:0".parse().unwrap());
        config.web_dir = std::env::temp_dir().join("prescient-dashboard-test-no-web");
        tweak(&mut config);
        let dash = Dashboard::start(config, pool.clone(), prometheus::Registry::new())
            .await
            .unwrap();
        let base = format!("http://{}", dash.addr());
        let now = Utc::now();
        let t0 = DateTime::from_timestamp(now.timestamp() / 60 * 60, 0).unwrap();
        Env {
            dash,
            pool,
            base,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            t0,
            _pg: pg,
        }
    }

    pub(crate) async fn token(
        &self,
        name: &str,
        role: Role,
        tenant: Option<&str>,
    ) -> (i64, String) {
        let (info, token) = auth::create_token(&self.pool, name, role, tenant, None)
            .await
            .unwrap();
        (info.id, token)
    }

    /// POSTs `/api/v1/login` with `body` as `content_type`; the raw response
    /// (status, cookie, redirect).
    pub(crate) async fn login(&self, content_type: &str, body: String) -> reqwest::Response {
        self.http
            .post(format!("{}/api/v1/login", self.base))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap()
    }

    /// GET with a bearer token; (status, body as JSON or as a string).
    pub(crate) async fn get(&self, path: &str, token: Option<&str>) -> (u16, serde_json::Value) {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
        (status, body)
    }

    /// `method` on `path` with a bearer token and an optional JSON body;
    /// (status, body as JSON or as a string).
    pub(crate) async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        json: Option<&str>,
    ) -> (u16, serde_json::Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(body) = json {
            req = req
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
        (status, body)
    }

    /// Eight days of per-minute rows ending at `t0 - 1 min`:
    /// - service_minute `checkout` (100 req/min, 2 errors, p50 10, p95 20+minute%5, p99 50, 30 users)
    ///   and `search` (10 req/min), all tenants together;
    /// - metrics_minute for the last 2 hours: tenant `acme` has `checkout` on endpoints /a and /b
    ///   with 7 requests each; tenant `globex` has `checkout` /a with 1000 and `globex-only` /x with 500.
    pub(crate) async fn seed(&self) {
        let t0 = self.t0;
        // Every statement takes t0 as $1.
        for sql in [
            "INSERT INTO service_minute (service, minute, requests, errors, latency_p50_ms, latency_p95_ms, latency_p99_ms, active_users)
                 SELECT 'checkout', m, 100, 2, 10, 20 + extract(minute FROM m)::int % 5, 50, 30
                 FROM generate_series($1 - interval '8 days', $1 - interval '1 minute', interval '1 minute') AS m",
            "INSERT INTO service_minute (service, minute, requests, errors, latency_p50_ms, latency_p95_ms, latency_p99_ms, active_users)
                 SELECT 'search', m, 10, 0, 5, 6, 7, 3
                 FROM generate_series($1 - interval '2 hours', $1 - interval '1 minute', interval '1 minute') AS m",
            "INSERT INTO metrics_minute (tenant, service, endpoint, minute, requests, errors, latency_p50_ms, latency_p95_ms, latency_p99_ms, active_users)
                 SELECT tenant, service, endpoint, m, requests, 0, 10, 20, 30, 1
                 FROM generate_series($1 - interval '2 hours', $1 - interval '1 minute', interval '1 minute') AS m,
                      (VALUES ('acme', 'checkout', '/a', 7), ('acme', 'checkout', '/b', 7),
                              ('globex', 'checkout', '/a', 1000), ('globex', 'globex-only', '/x', 500))
                        AS v(tenant, service, endpoint, requests)",
            // The frontier is t0: the minute t0 - 1 min is closed.
            "INSERT INTO ingest_frontier (topic, frontier_ms, bucket_ms, lateness_ms) VALUES ('user-events', (extract(epoch FROM $1::timestamptz) * 1000)::int8, 60000, 600000)",
            "INSERT INTO ingest_offsets (topic, partition, next_offset, watermark_ms, replay_offset, end_offset)
                 VALUES ('user-events', 0, 90, (extract(epoch FROM $1::timestamptz) * 1000)::int8, 80, 100), ('user-events', 1, 50, (extract(epoch FROM $1::timestamptz) * 1000)::int8, 40, NULL)",
            "INSERT INTO dead_letters_minute (topic, reason, minute, count)
                 VALUES ('user-events', 'invalid_json', $1 - interval '10 minutes', 3),
                        ('user-events', 'too_late', $1 - interval '10 minutes', 1),
                        ('user-events', 'invalid_json', $1 - interval '5 minutes', 2)",
            "INSERT INTO ingest_stats_minute (topic, minute, events, rejected, commits, rows_written, freshness_p50_ms, freshness_p99_ms, keys_held)
                 SELECT 'user-events', m, 6000, 1, 60, 120, 800, 1900, 42
                 FROM generate_series($1 - interval '30 minutes', $1 - interval '1 minute', interval '1 minute') AS m",
            // Forecasts for checkout: issued every minute of the last 2 hours, 60 horizons each.
            "INSERT INTO forecasts (service, issued_at, target_minute, horizon_min, p10, p50, p90, model)
                 SELECT 'checkout', i, i + (h - 1) * interval '1 minute', h, 90, 100 + h, 120, 'auto'
                 FROM generate_series($1 - interval '2 hours', $1, interval '1 minute') AS i, generate_series(1, 60) AS h",
            "INSERT INTO forecast_accuracy (service, minute, window_min, samples, mae, mase, coverage, model)
                 VALUES ('checkout', $1 - interval '2 minutes', 60, 60, 4.0, 0.7, 0.8, 'auto'),
                        ('checkout', $1 - interval '1 minute', 60, 60, 5.0, 0.8, 0.82, 'auto')",
            // Two decisions 30 minutes apart; the first has a clamped outcome.
            "INSERT INTO scaling_decisions (id, service, issued_at, expires_at, target, current_size, desired, min_size, max_size,
                                                policy, reason, fallback, forecast, mode, decision)
                 VALUES ('00000000-0000-0000-0000-000000000001', 'checkout', $1 - interval '40 minutes', $1 - interval '35 minutes',
                         '{}', 2, 6, 1, 5, 'predictive', 'p90 of the next 5 min needs 6', false,
                         '{\"horizon\": 5, \"p50\": 500.0, \"p90\": 600.0}', 'dry-run', '{}'),
                        ('00000000-0000-0000-0000-000000000002', 'checkout', $1 - interval '10 minutes', $1 - interval '5 minutes',
                         '{}', 5, 3, 1, 5, 'predictive', 'scale in', false, NULL, 'dry-run', '{}')",
            "INSERT INTO scaling_actions (decision_id, service, target, outcome, previous, requested, applied, reason, mode, at, action)
                 VALUES ('00000000-0000-0000-0000-000000000001', 'checkout', '{}', 'clamped', 2, 6, 5, 'max is 5', 'dry-run',
                         $1 - interval '39 minutes', '{}')",
        ] {
            sqlx::query(sql)
                .bind(t0)
                .execute(&self.pool)
                .await
                .unwrap_or_else(|e| panic!("seeding failed: {e}\n{sql}"));
        }
    }
}
