//! Set-up shared by the worker's integration tests (`worker_e2e`,
//! `worker_plans`): a private PostgreSQL with the migrations applied, the
//! embedded Kafka-protocol broker with its topics, and a deterministic
//! daily demand written into `service_minute`.

use chrono::{DateTime, TimeDelta, Utc};
use prescient_infra::broker::EmbeddedBroker;
use prescient_infra::postgres::PgInstance;

/// A private PostgreSQL with every migration applied, and a pool on it.
pub(crate) async fn postgres() -> (PgInstance, sqlx::PgPool) {
    let pg = PgInstance::start().await.expect("private PostgreSQL");
    let pool = sqlx::PgPool::connect(&pg.url()).await.unwrap();
    prescient_infra::migrate::run(&pool).await.unwrap();
    (pg, pool)
}

/// The embedded broker with `topics` (one partition each).
pub(crate) fn broker(topics: &[&str]) -> EmbeddedBroker {
    let broker = EmbeddedBroker::start(1).unwrap();
    for t in topics {
        broker.create_topic(t, 1).unwrap();
    }
    broker
}

/// Requests in minute `t`: a daily cycle of ±50% around `base` plus a
/// deterministic ripple.
pub(crate) fn demand(base: f64, t: i64) -> i64 {
    let day = (t % 1440) as f64 / 1440.0 * std::f64::consts::TAU;
    (base * (1.0 + 0.5 * day.sin()) + ((t * 7919) % 13) as f64 * 5.0) as i64
}

/// `service`'s rows for buckets `from..to` of `step_min` minutes from
/// `start`; bucket `i` holds `step_min × demand(base, i × step_min)`.
pub(crate) async fn insert_buckets(
    pool: &sqlx::PgPool,
    service: &str,
    base: f64,
    start: DateTime<Utc>,
    step_min: i64,
    from: i64,
    to: i64,
) {
    let minutes: Vec<DateTime<Utc>> = (from..to)
        .map(|i| start + TimeDelta::minutes(i * step_min))
        .collect();
    let req: Vec<i64> = (from..to)
        .map(|i| demand(base, i * step_min) * step_min)
        .collect();
    sqlx::query(
        "INSERT INTO service_minute (service, minute, requests, errors, active_users)
         SELECT $1, m, r, 0, 1 FROM UNNEST($2::timestamptz[], $3::int8[]) AS u(m, r)",
    )
    .bind(service)
    .bind(&minutes)
    .bind(&req)
    .execute(pool)
    .await
    .unwrap();
}
