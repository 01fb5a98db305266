//! The forecaster worker against a real PostgreSQL (private instance) and
//! the embedded Kafka-protocol broker: minutes in `service_minute` become
//! forecasts, accuracy rows, scaling decisions and `scaling-decisions`
//! messages.

use chrono::{DateTime, TimeDelta, Utc};
use prescient_contracts::decision::{Mode, ScalingDecision, Target};
use prescient_forecaster::ModelKind;
use prescient_forecaster::Policies;
use prescient_forecaster::{Worker, WorkerConfig, run_worker};
use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use std::time::Duration;

mod common;

/// Base demand of `checkout` and `search`.
const SERVICES: [(&str, f64); 2] = [("checkout", 2000.0), ("search", 300.0)];

fn demand(service: usize, t: i64) -> i64 {
    common::demand(SERVICES[service].1, t)
}

async fn insert_minutes(pool: &sqlx::PgPool, start: DateTime<Utc>, from: i64, to: i64) {
    for (name, base) in SERVICES {
        common::insert_buckets(pool, name, base, start, 1, from, to).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_forecasts_plans_and_publishes() {
    let (mut pg, pool) = common::postgres().await;
    let broker = common::broker(&[prescient_contracts::SCALING_DECISIONS_TOPIC]);

    let start: DateTime<Utc> = "2026-11-01T00:00:00Z".parse().unwrap();
    let days = 2 * 1440;
    insert_minutes(&pool, start, 0, days + 1).await;

    let mut config = WorkerConfig::new(pg.url());
    config.brokers = Some(broker.bootstrap_servers());
    config.models.models = vec![ModelKind::Naive, ModelKind::SnaiveDaily, ModelKind::Ets];
    config.models.calibration_days = 0.25;
    config.policies = Policies::from_toml(
        r#"
        [services.checkout]
        capacity_per_replica = 250.0
        min_replicas = 2
        max_replicas = 30
        pods_per_node = 2
        lead_time_min = 5
        mode = "apply"
        target = { kind = "nodegroup", cluster = "prod", nodegroup = "checkout" }
        "#,
    )
    .unwrap();
    config.policies.only_listed = true;

    let mut worker = Worker::connect(config.clone()).await.unwrap();
    let closed = worker.latest_closed_minute().await.unwrap().unwrap();
    assert_eq!(
        closed,
        start + TimeDelta::minutes(days - 1),
        "newest minute is still open"
    );
    let r1 = worker.tick(closed).await.unwrap();
    assert_eq!(
        (r1.services, r1.forecasts, r1.fits, r1.decisions),
        (2, 120, 2, 1),
        "{r1:?}"
    );

    // Next minute closes: models absorb it without refitting; accuracy appears.
    insert_minutes(&pool, start, days + 1, days + 2).await;
    let closed2 = worker.latest_closed_minute().await.unwrap().unwrap();
    assert_eq!(closed2, closed + TimeDelta::minutes(1));
    let r2 = worker.tick(closed2).await.unwrap();
    assert_eq!(
        (r2.services, r2.fits, r2.decisions, r2.published),
        (2, 0, 1, 1),
        "{r2:?}"
    );

    let (n, min_h, max_h, bad): (i64, i32, i32, i64) = sqlx::query_as(
        "SELECT count(*), min(horizon_min), max(horizon_min),
                count(*) FILTER (WHERE NOT (p10 <= p50 AND p50 <= p90)
                                  OR target_minute <> issued_at + (horizon_min - 1) * interval '1 minute')
         FROM forecasts WHERE service = 'checkout'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((n, min_h, max_h, bad), (120, 1, 60, 0));

    // The forecast of the seasonal series is close to the truth.
    let (p50,): (f64,) = sqlx::query_as(
        "SELECT p50 FROM forecasts WHERE service = 'checkout' AND issued_at = $1 AND horizon_min = 30",
    )
    .bind(closed2 + TimeDelta::minutes(1))
    .fetch_one(&pool)
    .await
    .unwrap();
    let truth = demand(0, days + 1 + 29) as f64;
    assert!((p50 - truth).abs() / truth < 0.1, "p50 {p50} vs {truth}");

    let (samples, mase): (i32, f64) = sqlx::query_as(
        "SELECT samples, mase FROM forecast_accuracy WHERE service = 'checkout' AND minute = $1",
    )
    .bind(closed2)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(samples, 1);
    assert!(mase < 2.0, "live MASE {mase}");

    type Row = (
        String,
        i32,
        i32,
        bool,
        bool,
        String,
        sqlx::types::Json<ScalingDecision>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT service, desired, max_size, fallback, published, mode, decision FROM scaling_decisions ORDER BY issued_at",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 2);
    let (svc, desired, max, fallback, published, mode, json) = &rows[1];
    assert_eq!(
        (svc.as_str(), *max, *fallback, *published, mode.as_str()),
        ("checkout", 15, false, true, "apply")
    );
    let d = &json.0;
    assert!(d.reason.starts_with("predictive"), "{}", d.reason);
    let p90 = d.forecast.as_ref().unwrap().p90;
    let expected = ((p90 / 250.0).ceil() as u32).div_ceil(2).clamp(1, 15);
    let desired = *desired as u32;
    assert!(
        desired == expected || (desired > expected && d.reason.contains("scale-in")),
        "{desired} vs {expected}: {}",
        d.reason
    );
    assert!(matches!(&d.target, Target::Nodegroup { nodegroup, .. } if nodegroup == "checkout"));

    // The same decisions arrived on Kafka.
    let consumer: StreamConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap_servers())
        .set("group.id", "test")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer
        .subscribe(&[prescient_contracts::SCALING_DECISIONS_TOPIC])
        .unwrap();
    let mut got = vec![];
    while got.len() < 2 {
        let msg = tokio::time::timeout(Duration::from_secs(20), consumer.recv())
            .await
            .expect("message")
            .unwrap();
        assert_eq!(msg.key(), Some(&b"checkout"[..]));
        got.push(serde_json::from_slice::<ScalingDecision>(msg.payload().unwrap()).unwrap());
    }
    assert_eq!(&got[1], d);

    // A repeated tick for the same minute writes nothing new.
    let again = worker.tick(closed2).await.unwrap();
    assert_eq!(again.decisions, 0);

    // A PostgreSQL outage fails the tick; once it is back the same minute
    // goes through, nothing skipped or doubled.
    pool.close().await;
    pg.stop().unwrap();
    let closed3 = closed2 + TimeDelta::minutes(1);
    assert!(worker.tick(closed3).await.is_err());
    pg.restart().unwrap();
    let pool = sqlx::PgPool::connect(&pg.url()).await.unwrap();
    insert_minutes(&pool, start, days + 2, days + 3).await;
    let r3 = worker.tick(closed3).await.unwrap();
    assert_eq!((r3.services, r3.decisions), (2, 1), "{r3:?}");
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM scaling_decisions")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, 3);
    drop(worker);

    // run_worker: polls, ticks on a new minute in dry-run, and stops on shutdown.
    insert_minutes(&pool, start, days + 3, days + 4).await;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let mut cfg = config;
    cfg.poll_interval = Duration::from_millis(100);
    cfg.brokers = None;
    cfg.force_dry_run = true;
    cfg.registry = Some(prometheus::Registry::new());
    let handle = tokio::spawn(run_worker(cfg, async {
        let _ = rx.await;
    }));
    let want = closed3 + TimeDelta::minutes(2);
    let mut mode = None;
    for _ in 0..600 {
        mode = sqlx::query_scalar::<_, String>(
            "SELECT mode FROM scaling_decisions WHERE issued_at = $1",
        )
        .bind(want)
        .fetch_optional(&pool)
        .await
        .unwrap();
        if mode.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(mode.as_deref(), Some(Mode::DryRun.as_str()));
    tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(30), handle)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
