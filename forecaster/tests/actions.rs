//! The scaling-actions consumer against a real PostgreSQL and the embedded
//! Kafka-protocol broker: outcomes land in `scaling_actions` once each, with
//! a `NOTIFY prescient_actions`, and a restart resumes from the offsets
//! stored with them.

use std::time::{Duration, Instant};

use chrono::Utc;
use prescient_contracts::action::{Outcome, ScalingAction};
use prescient_contracts::decision::{Mode, Target};
use prescient_forecaster::ActionsConsumer;
use prescient_infra::broker::EmbeddedBroker;
use prescient_infra::postgres::PgInstance;
use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use uuid::Uuid;

fn action(service: &str, outcome: Outcome, applied: Option<u32>) -> ScalingAction {
    ScalingAction {
        decision_id: Uuid::new_v4(),
        service: service.into(),
        target: Target::Deployment {
            cluster: "prod".into(),
            namespace: "shop".into(),
            name: service.into(),
        },
        outcome,
        previous: Some(2),
        requested: 5,
        applied,
        reason: "set replicas 2 → 5".into(),
        mode: Mode::Apply,
        retryable: false,
        at: Utc::now(),
    }
}

async fn send(producer: &FutureProducer, payload: &[u8]) {
    producer
        .send(
            FutureRecord::<(), [u8]>::to(prescient_contracts::SCALING_ACTIONS_TOPIC)
                .payload(payload),
            Duration::from_secs(5),
        )
        .await
        .expect("produce");
}

fn start_consumer(pool: &sqlx::PgPool, broker: &EmbeddedBroker) -> ActionsConsumer {
    ActionsConsumer::start(
        tokio::runtime::Handle::current(),
        pool.clone(),
        &broker.bootstrap_servers(),
        &Default::default(),
        prescient_contracts::SCALING_ACTIONS_TOPIC,
    )
    .unwrap()
}

/// Waits until `consumer` has stored `n` actions.
async fn wait_stored(consumer: &ActionsConsumer, n: u64) {
    let started = Instant::now();
    while consumer.stored() < n && started.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(consumer.stored(), n);
}

async fn wait_for(pool: &sqlx::PgPool, rows: i64) {
    let started = Instant::now();
    loop {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM scaling_actions")
            .fetch_one(pool)
            .await
            .unwrap();
        if n >= rows {
            assert_eq!(n, rows, "no more rows than actions");
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "only {n} of {rows} actions stored"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outcomes_are_recorded_once_with_a_notification_and_resume_after_restart() {
    let pg = PgInstance::start().await.expect("private PostgreSQL");
    let broker = EmbeddedBroker::start(1).unwrap();
    broker
        .create_topic(prescient_contracts::SCALING_ACTIONS_TOPIC, 2)
        .unwrap();
    let pool = sqlx::PgPool::connect(&pg.url()).await.unwrap();
    prescient_infra::migrate::run(&pool).await.unwrap();
    let mut listener = sqlx::postgres::PgListener::connect(&pg.url())
        .await
        .unwrap();
    listener.listen("prescient_actions").await.unwrap();
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap_servers())
        .create()
        .unwrap();

    let applied = action("checkout", Outcome::Applied, Some(5));
    let failed = action("search", Outcome::Failed, None);
    send(&producer, &serde_json::to_vec(&applied).unwrap()).await;
    send(&producer, b"{not an action").await;
    // The worker's alerts share the topic: skipped, not undecodable.
    let alert = prescient_contracts::action::Alert {
        alert: prescient_contracts::action::AlertKind::FallbackReactive,
        service: "checkout".into(),
        message: "reactive fallback".into(),
        at: Utc::now(),
    };
    send(&producer, &serde_json::to_vec(&alert).unwrap()).await;
    send(&producer, &serde_json::to_vec(&failed).unwrap()).await;

    let consumer = start_consumer(&pool, &broker);
    wait_for(&pool, 2).await;
    let note = tokio::time::timeout(Duration::from_secs(10), listener.recv())
        .await
        .expect("a notification")
        .unwrap();
    let payload: serde_json::Value = serde_json::from_str(note.payload()).unwrap();
    assert!(
        [applied.decision_id, failed.decision_id]
            .map(|id| id.to_string())
            .contains(&payload["decision_id"].as_str().unwrap().to_string()),
        "{payload}"
    );
    let row: (String, Option<i32>, String) = sqlx::query_as(
        "SELECT outcome, applied, target->>'kind' FROM scaling_actions WHERE decision_id = $1",
    )
    .bind(applied.decision_id)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(row, ("applied".into(), Some(5), "deployment".into()));
    wait_stored(&consumer, 2).await;
    assert_eq!(consumer.undecodable(), 1);
    consumer.stop().unwrap();

    // A retried decision keeps its latest outcome; a restart reads only
    // what came after the stored offsets.
    let mut retried = failed.clone();
    retried.outcome = Outcome::Applied;
    retried.applied = Some(5);
    retried.at = failed.at + chrono::TimeDelta::seconds(30);
    let third = action("catalog", Outcome::Unchanged, Some(3));
    send(&producer, &serde_json::to_vec(&retried).unwrap()).await;
    send(&producer, &serde_json::to_vec(&third).unwrap()).await;
    let consumer = start_consumer(&pool, &broker);
    wait_for(&pool, 3).await;
    // After the restart only the two new messages are read.
    wait_stored(&consumer, 2).await;
    let outcome: String =
        sqlx::query_scalar("SELECT outcome FROM scaling_actions WHERE decision_id = $1")
            .bind(failed.decision_id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(outcome, "applied", "the later outcome wins");
    let next: i64 = sqlx::query_scalar(
        "SELECT sum(next_offset)::int8 FROM consumer_offsets WHERE consumer = 'scaling-actions'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(next, 6, "offsets stored past all six messages");
    consumer.stop().unwrap();
}
