//! The `scaling-actions` consumer: records what the scaler did with each
//! decision in the `scaling_actions` table, so the dashboard can show
//! decision → outcome.
//!
//! Exactly once, the same way as the dataflow: the topic's offsets are kept
//! in `consumer_offsets` and written in the same transaction as the rows
//! they cover, and a restart seeks to them (consumer-group commits are not
//! used). Each stored action also sends `NOTIFY prescient_actions` inside
//! that transaction. A decision handled twice (Lambda retried it) keeps its
//! latest outcome. The worker's own alerts ([`prescient_contracts::action::Alert`],
//! published on this topic for the notifier) are skipped; any other message
//! that is not a `ScalingAction` is logged, counted in
//! [`ActionsConsumer::undecodable`] and skipped.
//!
//! The worker runs it beside its ticks when it has `--brokers`
//! ([`crate::worker::run_worker`]).

use prescient_connect::backoff;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use prescient_contracts::action::ScalingAction;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use sqlx::PgPool;

/// Name of this consumer in `consumer_offsets`.
pub(crate) const CONSUMER: &str = "scaling-actions";

/// Failures of the consumer.
#[derive(Debug, thiserror::Error)]
pub enum ActionsError {
    /// The broker refused, or the topic never appeared.
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    /// The topic has no partitions (it does not exist).
    #[error("topic {0:?} not found on the brokers")]
    NoTopic(String),
    /// PostgreSQL failed.
    #[error("postgres: {0}")]
    Db(#[from] sqlx::Error),
    /// The Kafka security settings cannot be used.
    #[error(transparent)]
    Connect(#[from] prescient_connect::ConnectError),
}

/// A running consumer; stops (after its current batch) when dropped or
/// when [`ActionsConsumer::stop`] is called.
pub struct ActionsConsumer {
    stop: Arc<AtomicBool>,
    stored: Arc<AtomicU64>,
    undecodable: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<Result<(), ActionsError>>>,
}

impl ActionsConsumer {
    /// Starts consuming `topic` on `brokers` into `pool`'s database, on a
    /// thread of its own; database writes run on `runtime`.
    pub fn start(
        runtime: tokio::runtime::Handle,
        pool: PgPool,
        brokers: &str,
        security: &prescient_connect::KafkaSecurity,
        topic: &str,
    ) -> Result<ActionsConsumer, ActionsError> {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", brokers)
            .set("group.id", "prescient-forecaster-actions")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest");
        let context = security.context()?;
        let consumer: BaseConsumer<prescient_connect::KafkaContext> =
            security.apply(&mut config).create_with_context(context)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stored = Arc::new(AtomicU64::new(0));
        let undecodable = Arc::new(AtomicU64::new(0));
        let (s, n, u, topic) = (
            stop.clone(),
            stored.clone(),
            undecodable.clone(),
            topic.to_string(),
        );
        let thread = std::thread::Builder::new()
            .name("scaling-actions".into())
            .spawn(move || run(&runtime, &pool, &consumer, &topic, &s, &n, &u))
            .expect("spawning the scaling-actions consumer thread");
        Ok(ActionsConsumer {
            stop,
            stored,
            undecodable,
            thread: Some(thread),
        })
    }

    /// Actions stored so far by this consumer.
    pub fn stored(&self) -> u64 {
        self.stored.load(Ordering::Relaxed)
    }

    /// Messages skipped because they were not a `ScalingAction`.
    pub fn undecodable(&self) -> u64 {
        self.undecodable.load(Ordering::Relaxed)
    }

    /// Stops after the current batch and returns how the consumer ended.
    pub fn stop(mut self) -> Result<(), ActionsError> {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Ok(()),
            None => Ok(()),
        }
    }
}

impl Drop for ActionsConsumer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn run(
    runtime: &tokio::runtime::Handle,
    pool: &PgPool,
    consumer: &BaseConsumer<prescient_connect::KafkaContext>,
    topic: &str,
    stop: &AtomicBool,
    stored: &AtomicU64,
    undecodable: &AtomicU64,
) -> Result<(), ActionsError> {
    // Where to resume: the offsets stored with the rows.
    let resume: Vec<(i32, i64)> = runtime.block_on(
        sqlx::query_as(
            "SELECT partition, next_offset FROM consumer_offsets WHERE consumer = $1 AND topic = $2",
        )
        .bind(CONSUMER)
        .bind(topic)
        .fetch_all(pool),
    )?;
    let resume: BTreeMap<i32, i64> = resume.into_iter().collect();
    let partitions = loop {
        let md = consumer.fetch_metadata(Some(topic), Duration::from_secs(5))?;
        let n = md.topics().first().map_or(0, |t| t.partitions().len());
        if n > 0 {
            break n as i32;
        }
        if stop.load(Ordering::Relaxed) {
            return Err(ActionsError::NoTopic(topic.into()));
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        let offset = resume
            .get(&p)
            .map_or(Offset::Beginning, |o| Offset::Offset(*o));
        tpl.add_partition_offset(topic, p, offset)?;
    }
    consumer.assign(&tpl)?;
    tracing::info!(topic, partitions, "recording scaling outcomes");
    let mut warned: Option<Instant> = None;
    while !stop.load(Ordering::Relaxed) {
        let mut batch: Vec<ScalingAction> = Vec::new();
        let mut next: BTreeMap<i32, i64> = BTreeMap::new();
        let started = Instant::now();
        while batch.len() < 500 && started.elapsed() < Duration::from_millis(200) {
            match consumer.poll(Duration::from_millis(50)) {
                None => {
                    if !next.is_empty() {
                        break;
                    }
                }
                Some(Err(e)) => {
                    if warned.is_none_or(|t| t.elapsed() > Duration::from_secs(30)) {
                        tracing::warn!(error = %e, topic, "reading scaling outcomes");
                        warned = Some(Instant::now());
                    }
                }
                Some(Ok(m)) => {
                    next.insert(m.partition(), m.offset() + 1);
                    let payload = m.payload().unwrap_or_default();
                    match serde_json::from_slice::<ScalingAction>(payload) {
                        Ok(a) => batch.push(a),
                        // The worker's own alerts share the topic (for the notifier).
                        Err(_) if is_alert(payload) => {}
                        Err(e) => {
                            undecodable.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!(error = %e, partition = m.partition(), offset = m.offset(),
                                "skipping a scaling-actions message that is not a ScalingAction");
                        }
                    }
                }
            }
        }
        if next.is_empty() {
            continue;
        }
        // Retry while PostgreSQL is away: the batch and its offsets commit together.
        let mut delays = backoff::exponential(Duration::from_millis(200), Duration::from_secs(5));
        loop {
            match runtime.block_on(store(pool, topic, &batch, &next)) {
                Ok(()) => break,
                Err(e) if !stop.load(Ordering::Relaxed) => {
                    tracing::warn!(error = %e, "storing scaling outcomes failed; retrying");
                    std::thread::sleep(delays.next().unwrap_or_default());
                }
                Err(e) => return Err(e.into()),
            }
        }
        stored.fetch_add(batch.len() as u64, Ordering::Relaxed);
    }
    Ok(())
}

/// Whether a message is an [`prescient_contracts::action::Alert`] (the
/// worker publishes them on the same topic for the notifier).
fn is_alert(payload: &[u8]) -> bool {
    serde_json::from_slice::<prescient_contracts::action::Alert>(payload).is_ok()
}

/// Stores `actions` and the offsets past them in one transaction, with a
/// `NOTIFY prescient_actions` per action.
async fn store(
    pool: &PgPool,
    topic: &str,
    actions: &[ScalingAction],
    next: &BTreeMap<i32, i64>,
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    for a in actions {
        sqlx::query(
            "INSERT INTO scaling_actions (decision_id, service, target, outcome, previous, requested,
                 applied, reason, mode, retryable, at, action)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
             ON CONFLICT (decision_id) DO UPDATE SET
                 service = EXCLUDED.service, target = EXCLUDED.target, outcome = EXCLUDED.outcome,
                 previous = EXCLUDED.previous, requested = EXCLUDED.requested, applied = EXCLUDED.applied,
                 reason = EXCLUDED.reason, mode = EXCLUDED.mode, retryable = EXCLUDED.retryable,
                 at = EXCLUDED.at, action = EXCLUDED.action
             WHERE scaling_actions.at <= EXCLUDED.at",
        )
        .bind(a.decision_id)
        .bind(&a.service)
        .bind(sqlx::types::Json(&a.target))
        .bind(a.outcome.as_str())
        .bind(a.previous.map(|v| v as i32))
        .bind(a.requested as i32)
        .bind(a.applied.map(|v| v as i32))
        .bind(&a.reason)
        .bind(a.mode.as_str())
        .bind(a.retryable)
        .bind(a.at)
        .bind(sqlx::types::Json(a))
        .execute(&mut *tx)
        .await?;
        let payload = serde_json::json!({
            "decision_id": a.decision_id,
            "service": a.service,
            "outcome": a.outcome.as_str(),
        });
        sqlx::query("SELECT pg_notify('prescient_actions', $1)")
            .bind(payload.to_string())
            .execute(&mut *tx)
            .await?;
    }
    let (parts, offsets): (Vec<i32>, Vec<i64>) = next.iter().map(|(p, o)| (*p, *o)).unzip();
    sqlx::query(
        "INSERT INTO consumer_offsets (consumer, topic, partition, next_offset)
         SELECT $1, $2, p, o FROM UNNEST($3::int4[], $4::int8[]) AS x(p, o)
         ON CONFLICT (consumer, topic, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset",
    )
    .bind(CONSUMER)
    .bind(topic)
    .bind(&parts)
    .bind(&offsets)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}
