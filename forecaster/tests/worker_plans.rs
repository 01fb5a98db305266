//! The worker plans from what is really there, against a real PostgreSQL
//! (private instance) and the embedded Kafka-protocol broker:
//!
//! * `current` is the size the scaler reported on `scaling-actions` (stored
//!   in `scaling_actions` by the actions consumer), not the planner's own
//!   last wish;
//! * a bucket planned again (a restarted worker with other inputs) never
//!   sends a second payload under the same decision id;
//! * the bucket length comes from `--bucket` or the dataflow's
//!   `ingest_frontier`, and a disagreement is an error;
//! * the worker wakes on `NOTIFY prescient_frontier`, not on its poll.

use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use prescient_contracts::action::{Outcome, ScalingAction};
use prescient_contracts::decision::{Mode, ScalingDecision, Target};
use prescient_forecaster::ActionsConsumer;
use prescient_forecaster::ModelKind;
use prescient_forecaster::Policies;
use prescient_forecaster::{Bucket, Worker, WorkerConfig, run_worker};
use prescient_infra::broker::EmbeddedBroker;
use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};

mod common;

/// Rows of `checkout` for buckets `from..to` of `step_min` minutes each.
async fn insert(pool: &sqlx::PgPool, start: DateTime<Utc>, step_min: i64, from: i64, to: i64) {
    common::insert_buckets(pool, "checkout", 2000.0, start, step_min, from, to).await;
}

const POLICY: &str = r#"
[services.checkout]
capacity_per_replica = 100.0
min_replicas = 2
max_replicas = 60
max_step = 3
lead_time_min = 5
mode = "apply"
target = { kind = "deployment", cluster = "prod", namespace = "shop", name = "checkout" }
"#;

fn target() -> Target {
    Target::Deployment {
        cluster: "prod".into(),
        namespace: "shop".into(),
        name: "checkout".into(),
    }
}

fn config(url: String) -> WorkerConfig {
    let mut c = WorkerConfig::new(url);
    c.models.models = vec![ModelKind::Naive, ModelKind::SnaiveDaily];
    c.models.calibration_days = 0.25;
    c.policies = Policies::from_toml(POLICY).unwrap();
    c.policies.only_listed = true;
    c.registry = Some(prometheus::Registry::new());
    c
}

fn outcome(d: &ScalingDecision, outcome: Outcome, previous: u32, applied: u32) -> ScalingAction {
    ScalingAction {
        decision_id: d.id,
        service: d.service.clone(),
        target: d.target.clone(),
        outcome,
        previous: Some(previous),
        requested: d.desired,
        applied: Some(applied),
        reason: "test".into(),
        mode: Mode::Apply,
        retryable: false,
        at: Utc::now(),
    }
}

async fn send_action(broker: &EmbeddedBroker, a: &ScalingAction) {
    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap_servers())
        .create()
        .unwrap();
    let payload = serde_json::to_vec(a).unwrap();
    producer
        .send(
            FutureRecord::to(prescient_contracts::SCALING_ACTIONS_TOPIC)
                .key(&a.service)
                .payload(&payload),
            Duration::from_secs(10),
        )
        .await
        .expect("produce");
}

async fn wait_stored(c: &ActionsConsumer, n: u64) {
    let started = Instant::now();
    while c.stored() < n && started.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(c.stored(), n);
}

async fn decision_at(pool: &sqlx::PgPool, issued_at: DateTime<Utc>) -> ScalingDecision {
    let (d,): (sqlx::types::Json<ScalingDecision>,) =
        sqlx::query_as("SELECT decision FROM scaling_decisions WHERE issued_at = $1")
            .bind(issued_at)
            .fetch_one(pool)
            .await
            .unwrap();
    d.0
}

/// Every payload on `scaling-decisions`.
fn published(broker: &EmbeddedBroker) -> Vec<ScalingDecision> {
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap_servers())
        .set("group.id", format!("check-{}", uuid::Uuid::new_v4()))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition_offset(
        prescient_contracts::SCALING_DECISIONS_TOPIC,
        0,
        rdkafka::Offset::Beginning,
    )
    .unwrap();
    consumer.assign(&tpl).unwrap();
    let (_, high) = consumer
        .fetch_watermarks(
            prescient_contracts::SCALING_DECISIONS_TOPIC,
            0,
            Duration::from_secs(5),
        )
        .unwrap();
    let mut out = vec![];
    let started = Instant::now();
    while (out.len() as i64) < high && started.elapsed() < Duration::from_secs(20) {
        if let Some(m) = consumer.poll(Duration::from_millis(200)) {
            let m = m.unwrap();
            out.push(serde_json::from_slice(m.payload().unwrap()).unwrap());
        }
    }
    assert_eq!(out.len() as i64, high);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn current_is_the_size_the_scaler_reported_and_payloads_are_never_replanned() {
    let (pg, pool) = common::postgres().await;
    let broker = common::broker(&[
        prescient_contracts::SCALING_DECISIONS_TOPIC,
        prescient_contracts::SCALING_ACTIONS_TOPIC,
    ]);
    let start: DateTime<Utc> = "2026-11-01T00:00:00Z".parse().unwrap();
    let days = 2 * 1440;
    insert(&pool, start, 1, 0, days + 1).await;

    let mut cfg = config(pg.url());
    cfg.brokers = Some(broker.bootstrap_servers());
    let mut worker = Worker::connect(cfg.clone()).await.unwrap();
    let actions = ActionsConsumer::start(
        tokio::runtime::Handle::current(),
        pool.clone(),
        &broker.bootstrap_servers(),
        &Default::default(),
        prescient_contracts::SCALING_ACTIONS_TOPIC,
    )
    .unwrap();

    // No outcome yet: the size is unknown, so no step limit and `current` = min.
    let m1 = worker.latest_closed_minute().await.unwrap().unwrap();
    let r1 = worker.tick(m1).await.unwrap();
    assert_eq!((r1.decisions, r1.published), (1, 1), "{r1:?}");
    let d1 = decision_at(&pool, m1 + TimeDelta::minutes(1)).await;
    assert_eq!(d1.current, 2, "{d1:?}");
    assert!(d1.reason.contains("size unknown"), "{}", d1.reason);
    assert!(d1.desired > 2 + 3, "not step-limited from a guess: {d1:?}");

    // The scaler could only set 4 (the target's own bound): the next
    // decision plans from 4, stepping at most +3 from there.
    send_action(&broker, &outcome(&d1, Outcome::Clamped, 2, 4)).await;
    wait_stored(&actions, 1).await;
    insert(&pool, start, 1, days + 1, days + 2).await;
    let m2 = worker.latest_closed_minute().await.unwrap().unwrap();
    assert_eq!(m2, m1 + TimeDelta::minutes(1));
    worker.tick(m2).await.unwrap();
    let d2 = decision_at(&pool, m2 + TimeDelta::minutes(1)).await;
    assert_eq!(d2.current, 4, "planned from the reported size: {d2:?}");
    assert_eq!(d2.desired, 7, "4 + max_step: {d2:?}");
    assert!(d2.reason.contains("step limited to +3"), "{}", d2.reason);

    // An outcome for another target of the service does not count, nor
    // does the size of an older outcome.
    let mut other = outcome(&d2, Outcome::Applied, 4, 30);
    other.target = Target::Deployment {
        cluster: "prod".into(),
        namespace: "shop".into(),
        name: "checkout-canary".into(),
    };
    other.decision_id = uuid::Uuid::new_v4();
    send_action(&broker, &other).await;
    let mut old = outcome(&d2, Outcome::Applied, 4, 9);
    old.decision_id = uuid::Uuid::new_v4();
    old.at = Utc::now() - TimeDelta::hours(1);
    send_action(&broker, &old).await;
    wait_stored(&actions, 3).await;

    // A failed apply leaves what the scaler saw before.
    send_action(&broker, &outcome(&d2, Outcome::Failed, 5, 7)).await;
    wait_stored(&actions, 4).await;
    insert(&pool, start, 1, days + 2, days + 3).await;
    let m3 = worker.latest_closed_minute().await.unwrap().unwrap();
    worker.tick(m3).await.unwrap();
    let d3 = decision_at(&pool, m3 + TimeDelta::minutes(1)).await;
    assert_eq!((d3.current, d3.desired), (5, 8), "{d3:?}");
    drop(worker);

    // A restarted worker plans m3 again, now from another size: the stored
    // payload stands, nothing is published twice under its id.
    send_action(&broker, &outcome(&d3, Outcome::Applied, 5, 8)).await;
    wait_stored(&actions, 5).await;
    let mut again = Worker::connect({
        let mut c = cfg.clone();
        c.registry = Some(prometheus::Registry::new());
        c
    })
    .await
    .unwrap();
    let r = again.tick(m3).await.unwrap();
    assert_eq!((r.decisions, r.published), (1, 0), "{r:?}");
    assert_eq!(decision_at(&pool, m3 + TimeDelta::minutes(1)).await, d3);
    let sent = published(&broker);
    assert_eq!(sent.len(), 3, "one message per decision");
    for d in [&d1, &d2, &d3] {
        let same_id: Vec<_> = sent.iter().filter(|s| s.id == d.id).collect();
        assert_eq!(same_id, vec![d], "one payload per id");
    }
    actions.stop().unwrap();
    assert_eq!(target(), d1.target);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buckets_follow_the_flag_or_the_dataflow_and_notify_wakes_the_worker() {
    let (pg, pool) = common::postgres().await;
    let start: DateTime<Utc> = "2026-11-01T00:00:00Z".parse().unwrap();
    // Two days of 5-minute buckets.
    let n = 2 * 288;
    insert(&pool, start, 5, 0, n + 1).await;

    assert!(Bucket::from_ms(90_000).is_err(), "not whole minutes");
    assert!(
        Bucket::from_ms(7 * 60_000).is_err(),
        "does not divide a day"
    );

    // --bucket 5m: horizons in minutes, one row per 5-minute bucket.
    let mut cfg = config(pg.url());
    cfg.bucket = Some(Duration::from_secs(300));
    cfg.min_history_min = 60;
    let mut worker = Worker::connect(cfg.clone()).await.unwrap();
    let m = worker.latest_closed_minute().await.unwrap().unwrap();
    assert_eq!(m, start + TimeDelta::minutes(5 * (n - 1)));
    let r = worker.tick(m).await.unwrap();
    assert_eq!((r.forecasts, r.decisions), (12, 1), "{r:?}");
    let issued = m + TimeDelta::minutes(5);
    let rows: Vec<(i32, DateTime<Utc>)> = sqlx::query_as(
        "SELECT horizon_min, target_minute FROM forecasts WHERE issued_at = $1 ORDER BY horizon_min",
    )
    .bind(issued)
    .fetch_all(&pool)
    .await
    .unwrap();
    let want: Vec<(i32, DateTime<Utc>)> = (1..=12)
        .map(|k| (5 * k, issued + TimeDelta::minutes(5 * (k as i64 - 1))))
        .collect();
    assert_eq!(rows, want);
    let d = decision_at(&pool, issued).await;
    assert_eq!(d.forecast.as_ref().map(|f| f.horizon), Some(5), "{d:?}");

    // The dataflow says 1-minute buckets: a configured 5m is an error.
    sqlx::query(
        "INSERT INTO ingest_frontier (topic, frontier_ms, bucket_ms, lateness_ms) VALUES ('user-events', NULL, 60000, 0)",
    )
    .execute(&pool)
    .await
    .unwrap();
    let err = worker.latest_closed_minute().await.unwrap_err();
    assert!(err.to_string().contains("--bucket"), "{err}");
    drop(worker);

    // Unset, the worker adopts the dataflow's bucket.
    sqlx::query("UPDATE ingest_frontier SET bucket_ms = 300000, frontier_ms = $1")
        .bind((start + TimeDelta::minutes(5 * n)).timestamp_millis())
        .execute(&pool)
        .await
        .unwrap();
    let mut unset = cfg.clone();
    unset.bucket = None;
    unset.registry = Some(prometheus::Registry::new());
    let mut w = Worker::connect(unset.clone()).await.unwrap();
    assert_eq!(w.bucket(), Bucket::MINUTE);
    assert_eq!(w.latest_closed_minute().await.unwrap(), Some(m));
    assert_eq!(w.bucket().minutes(), 5);
    drop(w);

    // run_worker with a 10-minute poll: it ticks at start, then only a
    // NOTIFY prescient_frontier can wake it in time.
    unset.poll_interval = Duration::from_secs(600);
    let registry = prometheus::Registry::new();
    unset.registry = Some(registry.clone());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(run_worker(unset, async {
        let _ = rx.await;
    }));
    let wait_decision = |at: DateTime<Utc>| {
        let pool = pool.clone();
        async move {
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(60) {
                let n: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM scaling_decisions WHERE issued_at = $1",
                )
                .bind(at)
                .fetch_one(&pool)
                .await
                .unwrap();
                if n == 1 {
                    return started.elapsed();
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            panic!("no decision issued at {at}");
        }
    };
    wait_decision(issued).await;
    // Its first tick is done (it listens before it ticks).
    let ticks = || {
        registry
            .gather()
            .iter()
            .find(|f| f.name() == "prescient_forecaster_ticks_total")
            .map_or(0.0, |f| f.get_metric()[0].get_counter().get_value())
    };
    let started = Instant::now();
    while ticks() < 1.0 {
        assert!(started.elapsed() < Duration::from_secs(60), "no first tick");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    insert(&pool, start, 5, n + 1, n + 2).await;
    let frontier = (start + TimeDelta::minutes(5 * (n + 1))).timestamp_millis();
    let mut tx_pg = pool.begin().await.unwrap();
    sqlx::query("UPDATE ingest_frontier SET frontier_ms = $1")
        .bind(frontier)
        .execute(&mut *tx_pg)
        .await
        .unwrap();
    sqlx::query("SELECT pg_notify('prescient_frontier', $1)")
        .bind(format!(
            r#"{{"topic":"user-events","frontier_ms":{frontier}}}"#
        ))
        .execute(&mut *tx_pg)
        .await
        .unwrap();
    tx_pg.commit().await.unwrap();
    let took = wait_decision(issued + TimeDelta::minutes(5)).await;
    assert!(
        took < Duration::from_secs(60),
        "woken by NOTIFY, not the poll"
    );
    tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(30), handle)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_are_raised_once_with_hysteresis_on_the_notifier_topic() {
    use prescient_contracts::action::{Alert, AlertKind};
    let (pg, pool) = common::postgres().await;
    let broker = common::broker(&[
        prescient_contracts::SCALING_DECISIONS_TOPIC,
        prescient_contracts::SCALING_ACTIONS_TOPIC,
    ]);
    let start: DateTime<Utc> = "2026-11-01T00:00:00Z".parse().unwrap();
    let days = 2 * 1440;
    insert(&pool, start, 1, 0, days + 12).await;

    // Any live error is "poor": every decision after the first falls back.
    let mut cfg = config(pg.url());
    cfg.brokers = Some(broker.bootstrap_servers());
    cfg.policies = Policies::from_toml(
        &POLICY.replace("mode = \"apply\"", "mode = \"apply\"\nmax_live_mase = 0.0"),
    )
    .unwrap();
    cfg.policies.only_listed = true;
    cfg.alerts = prescient_forecaster::AlertConfig {
        fire_after: 3,
        clear_after: 2,
    };
    let mut worker = Worker::connect(cfg).await.unwrap();
    let mut raised: Vec<(usize, AlertKind)> = vec![];
    for k in 0..12 {
        let m = start + TimeDelta::minutes(days - 1 + k);
        let r = worker.tick(m).await.unwrap();
        raised.extend(r.alerts.iter().map(|a| (k as usize, a.alert)));
    }
    // Tick 0 has no live error yet; ticks 1, 2, 3 fall back → raised at 3,
    // once. The error alert needs 30 scored points (tick 8 on) → 10.
    assert_eq!(
        raised,
        vec![
            (3, AlertKind::FallbackReactive),
            (10, AlertKind::ForecastErrorHigh)
        ]
    );

    // On the topic the notifier consumes, as Alert JSON keyed by service.
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap_servers())
        .set("group.id", "alerts-check")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer
        .subscribe(&[prescient_contracts::SCALING_ACTIONS_TOPIC])
        .unwrap();
    let mut got: Vec<Alert> = vec![];
    let started = Instant::now();
    while got.len() < 2 && started.elapsed() < Duration::from_secs(30) {
        if let Some(m) = consumer.poll(Duration::from_millis(200)) {
            let m = m.unwrap();
            assert_eq!(m.key(), Some(&b"checkout"[..]));
            got.push(serde_json::from_slice(m.payload().unwrap()).unwrap());
        }
    }
    let kinds: Vec<AlertKind> = got.iter().map(|a| a.alert).collect();
    assert_eq!(
        kinds,
        vec![AlertKind::FallbackReactive, AlertKind::ForecastErrorHigh]
    );
    assert!(got[0].message.contains("reactive fallback"), "{:?}", got[0]);
    assert!(got[1].message.contains("live MASE"), "{:?}", got[1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buckets_changed_by_late_events_are_read_again_within_the_lateness() {
    let (pg, pool) = common::postgres().await;
    let start: DateTime<Utc> = "2026-11-01T00:00:00Z".parse().unwrap();
    insert(&pool, start, 1, 0, 200).await;
    // The dataflow: 1-minute buckets, 10 minutes of lateness, frontier at 180.
    sqlx::query(
        "INSERT INTO ingest_frontier (topic, frontier_ms, bucket_ms, lateness_ms) VALUES ('user-events', $1, 60000, 600000)",
    )
    .bind((start + TimeDelta::minutes(180)).timestamp_millis())
    .execute(&pool)
    .await
    .unwrap();
    let mut cfg = config(pg.url());
    cfg.models.models = vec![ModelKind::Naive];
    let mut worker = Worker::connect(cfg).await.unwrap();
    let m = worker.latest_closed_minute().await.unwrap().unwrap();
    assert_eq!(m, start + TimeDelta::minutes(179));
    assert_eq!(worker.tick(m).await.unwrap().corrected, 0);

    // Late events raise minute 175 (inside the lateness) and 150 (outside:
    // the dataflow would have refused them, so it is not read again).
    sqlx::query("UPDATE service_minute SET requests = requests + 500 WHERE minute = ANY($1)")
        .bind(vec![
            start + TimeDelta::minutes(175),
            start + TimeDelta::minutes(150),
        ])
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE ingest_frontier SET frontier_ms = $1")
        .bind((start + TimeDelta::minutes(181)).timestamp_millis())
        .execute(&pool)
        .await
        .unwrap();
    let m2 = worker.latest_closed_minute().await.unwrap().unwrap();
    assert_eq!(m2, m + TimeDelta::minutes(1));
    let r = worker.tick(m2).await.unwrap();
    assert_eq!(r.corrected, 1, "{r:?}");
    // Read again on the next tick, but unchanged: not counted twice.
    sqlx::query("UPDATE ingest_frontier SET frontier_ms = $1")
        .bind((start + TimeDelta::minutes(182)).timestamp_millis())
        .execute(&pool)
        .await
        .unwrap();
    let m3 = worker.latest_closed_minute().await.unwrap().unwrap();
    assert_eq!(worker.tick(m3).await.unwrap().corrected, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_fit_raises_forecasts_stale_once() {
    use prescient_contracts::action::AlertKind;
    let (pg, pool) = common::postgres().await;
    let start: DateTime<Utc> = "2026-11-01T00:00:00Z".parse().unwrap();
    insert(&pool, start, 1, 0, 200).await;
    // `profile` needs a day of history: with 3 hours every fit fails.
    let mut cfg = config(pg.url());
    cfg.models.models = vec![ModelKind::Profile];
    let mut worker = Worker::connect(cfg).await.unwrap();
    let mut raised = vec![];
    for k in 0..6 {
        let r = worker
            .tick(start + TimeDelta::minutes(190 + k))
            .await
            .unwrap();
        raised.extend(r.alerts.into_iter().map(|a| (k, a)));
    }
    assert_eq!(raised.len(), 1, "{raised:?}");
    let (k, a) = &raised[0];
    assert_eq!((*k, a.alert), (2, AlertKind::Other));
    assert!(
        a.message.starts_with("forecasts stale:") && a.message.contains("fitting failed"),
        "{}",
        a.message
    );
}
