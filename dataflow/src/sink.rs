//! The exactly-once sink.
//!
//! Every worker runs the commit operator: it gathers, per tick, the
//! changed rows (routed to worker 0), the progress reports of every
//! partition (broadcast to all), and derives the event-time frontier. On
//! worker 0 each completed tick becomes one [`CommitBatch`] that the
//! [`Writer`] commits in one transaction: the changed `metrics_minute` and
//! `service_minute` rows, the `ingest_offsets` they cover and the frontier.
//! The operator holds the tick's capability until that transaction has
//! committed, so the sources can see how far commits lag and pause.
//!
//! Rows only grow: every accepted event adds a request to its rows, so a
//! correct new value always has more `requests` than the stored one. When
//! a window closes, each worker retracts its share of the window's state
//! at its own tick; in between, the reduction sees only part of the
//! window and emits a smaller value. Those values are not the row's: the
//! sink (in memory and in SQL) only ever replaces a row by one with more
//! requests, which keeps exactly the real updates.

use std::cell::Cell;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use timely::dataflow::StreamVec;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;

use crate::aggregate::{Agg, MetricKey, ServiceKey};
use crate::metrics::Metrics;
use crate::progress::{FrontierTracker, PartitionProgress};

/// What reaches the commit operator.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum SinkMsg {
    /// A change of a `metrics_minute` row (+1 new value, -1 old value).
    Metric(MetricKey, Agg, isize),
    /// A change of a `service_minute` row.
    Service(ServiceKey, Agg, isize),
    /// A partition's progress at the end of a tick (broadcast).
    Progress(PartitionProgress),
    /// The names behind a row key, sent once per key and worker.
    KeyName {
        /// Hash of (tenant, service, endpoint).
        key: u64,
        /// Hash of service.
        service_key: u64,
        /// Tenant.
        tenant: String,
        /// Service.
        service: String,
        /// Endpoint.
        endpoint: String,
    },
    /// `count` events with this Kafka timestamp (ms, rounded to 10 ms) were read.
    Created(i64, u64),
}

/// A `metrics_minute` row to upsert.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricRow {
    /// Tenant.
    pub tenant: String,
    /// Service.
    pub service: String,
    /// Endpoint.
    pub endpoint: String,
    /// Bucket start, epoch ms.
    pub minute_ms: i64,
    /// Measures.
    pub agg: Agg,
}

/// A `service_minute` row to upsert.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceRow {
    /// Service.
    pub service: String,
    /// Bucket start, epoch ms.
    pub minute_ms: i64,
    /// Measures.
    pub agg: Agg,
}

/// One transaction's worth of changes.
#[derive(Debug, Default)]
pub struct CommitBatch {
    /// Last tick covered.
    pub time: u64,
    /// Changed metric rows.
    pub metrics: FxHashMap<(u64, i64), MetricRow>,
    /// Changed service rows.
    pub services: FxHashMap<(u64, i64), ServiceRow>,
    /// Partitions whose stored progress changed.
    pub offsets: BTreeMap<i32, PartitionProgress>,
    /// The frontier, when it moved.
    pub frontier: Option<i64>,
    /// Kafka timestamps (ms) of the events covered, with counts.
    pub created: Vec<(i64, u64)>,
}

impl CommitBatch {
    /// Folds a later batch into this one (later values win).
    pub fn merge(&mut self, later: CommitBatch) {
        self.time = self.time.max(later.time);
        for (k, row) in later.metrics {
            keep_larger(&mut self.metrics, k, row, |r| r.agg.requests);
        }
        for (k, row) in later.services {
            keep_larger(&mut self.services, k, row, |r| r.agg.requests);
        }
        self.offsets.extend(later.offsets);
        self.frontier = later.frontier.or(self.frontier);
        self.created.extend(later.created);
    }

    /// Rows it writes.
    pub fn rows(&self) -> usize {
        self.metrics.len() + self.services.len() + self.offsets.len()
    }
}

/// Inserts `row` unless the map holds one with at least as many requests
/// (see the module docs: rows only grow).
fn keep_larger<R>(
    map: &mut FxHashMap<(u64, i64), R>,
    key: (u64, i64),
    row: R,
    requests: impl Fn(&R) -> i64,
) {
    match map.get(&key) {
        Some(old) if requests(old) >= requests(&row) => {}
        _ => {
            map.insert(key, row);
        }
    }
}

fn ts(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).expect("bucket starts are within chrono's range")
}

type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

/// Binds the array parameters every row table shares, after its key
/// columns: minute, requests, errors, latency p50/p95/p99, active users.
fn bind_measures<'q, 'a>(
    query: PgQuery<'q>,
    rows: impl Iterator<Item = (i64, &'a Agg)>,
) -> PgQuery<'q> {
    let rows: Vec<(i64, &Agg)> = rows.collect();
    let lat: Vec<[Option<f64>; 3]> = rows.iter().map(|(_, a)| a.latencies_ms()).collect();
    query
        .bind(rows.iter().map(|(m, _)| ts(*m)).collect::<Vec<_>>())
        .bind(rows.iter().map(|(_, a)| a.requests).collect::<Vec<_>>())
        .bind(rows.iter().map(|(_, a)| a.errors).collect::<Vec<_>>())
        .bind(lat.iter().map(|l| l[0]).collect::<Vec<_>>())
        .bind(lat.iter().map(|l| l[1]).collect::<Vec<_>>())
        .bind(lat.iter().map(|l| l[2]).collect::<Vec<_>>())
        .bind(rows.iter().map(|(_, a)| a.active_users).collect::<Vec<_>>())
}

/// Writes one batch in one transaction.
pub async fn write_batch(pool: &PgPool, topic: &str, b: &CommitBatch) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    if !b.metrics.is_empty() {
        let rows: Vec<&MetricRow> = b.metrics.values().collect();
        let query = sqlx::query(
            "INSERT INTO metrics_minute (tenant, service, endpoint, minute, requests, errors,
                 latency_p50_ms, latency_p95_ms, latency_p99_ms, active_users, updated_at)
             SELECT t, s, e, m, r, er, p50, p95, p99, u, now()
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::int8[], $6::int8[],
                         $7::float8[], $8::float8[], $9::float8[], $10::int8[])
                  AS x(t, s, e, m, r, er, p50, p95, p99, u)
             ON CONFLICT (tenant, service, endpoint, minute) DO UPDATE SET
                 requests = EXCLUDED.requests, errors = EXCLUDED.errors,
                 latency_p50_ms = EXCLUDED.latency_p50_ms, latency_p95_ms = EXCLUDED.latency_p95_ms,
                 latency_p99_ms = EXCLUDED.latency_p99_ms, active_users = EXCLUDED.active_users,
                 updated_at = now()
             WHERE metrics_minute.requests < EXCLUDED.requests",
        )
        .bind(rows.iter().map(|r| r.tenant.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.service.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.endpoint.as_str()).collect::<Vec<_>>());
        bind_measures(query, rows.iter().map(|r| (r.minute_ms, &r.agg)))
            .execute(&mut *tx)
            .await?;
    }
    if !b.services.is_empty() {
        let rows: Vec<&ServiceRow> = b.services.values().collect();
        let query = sqlx::query(
            "INSERT INTO service_minute (service, minute, requests, errors,
                 latency_p50_ms, latency_p95_ms, latency_p99_ms, active_users, updated_at)
             SELECT s, m, r, er, p50, p95, p99, u, now()
             FROM UNNEST($1::text[], $2::timestamptz[], $3::int8[], $4::int8[],
                         $5::float8[], $6::float8[], $7::float8[], $8::int8[])
                  AS x(s, m, r, er, p50, p95, p99, u)
             ON CONFLICT (service, minute) DO UPDATE SET
                 requests = EXCLUDED.requests, errors = EXCLUDED.errors,
                 latency_p50_ms = EXCLUDED.latency_p50_ms, latency_p95_ms = EXCLUDED.latency_p95_ms,
                 latency_p99_ms = EXCLUDED.latency_p99_ms, active_users = EXCLUDED.active_users,
                 updated_at = now()
             WHERE service_minute.requests < EXCLUDED.requests",
        )
        .bind(rows.iter().map(|r| r.service.as_str()).collect::<Vec<_>>());
        bind_measures(query, rows.iter().map(|r| (r.minute_ms, &r.agg)))
            .execute(&mut *tx)
            .await?;
    }
    if !b.offsets.is_empty() {
        let ps: Vec<&PartitionProgress> = b.offsets.values().collect();
        sqlx::query(
            "INSERT INTO ingest_offsets (topic, partition, next_offset, watermark_ms, replay_offset,
                 replay_watermark_ms, updated_at)
             SELECT $1, p, o, w, ro, rw, now()
             FROM UNNEST($2::int4[], $3::int8[], $4::int8[], $5::int8[], $6::int8[]) AS x(p, o, w, ro, rw)
             ON CONFLICT (topic, partition) DO UPDATE SET
                 next_offset = EXCLUDED.next_offset, watermark_ms = EXCLUDED.watermark_ms,
                 replay_offset = EXCLUDED.replay_offset, replay_watermark_ms = EXCLUDED.replay_watermark_ms,
                 updated_at = now()",
        )
        .bind(topic)
        .bind(ps.iter().map(|p| p.partition).collect::<Vec<_>>())
        .bind(ps.iter().map(|p| p.next_offset).collect::<Vec<_>>())
        .bind(ps.iter().map(|p| p.watermark_ms).collect::<Vec<_>>())
        .bind(ps.iter().map(|p| p.replay_offset).collect::<Vec<_>>())
        .bind(ps.iter().map(|p| p.replay_watermark_ms).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await?;
    }
    if let Some(f) = b.frontier {
        sqlx::query(
            "UPDATE ingest_frontier SET frontier_ms = $2, updated_at = now() WHERE topic = $1",
        )
        .bind(topic)
        .bind(f)
        .execute(&mut *tx)
        .await?;
        // Delivered on commit: the forecaster wakes when buckets close.
        sqlx::query("SELECT pg_notify('prescient_frontier', $1)")
            .bind(format!("{{\"topic\":{topic:?},\"frontier_ms\":{f}}}"))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await
}

#[derive(Default)]
struct WriterState {
    queue: VecDeque<CommitBatch>,
    closed: bool,
}

/// Commits batches in order on a tokio runtime, retrying while PostgreSQL
/// is away. Batches queued while a commit is in flight are merged into the
/// next transaction.
pub struct Writer {
    state: Mutex<WriterState>,
    wake: tokio::sync::Notify,
    committed: AtomicU64,
    done: AtomicBool,
}

impl Writer {
    /// Starts the writer task on `runtime`.
    pub fn start(
        runtime: &tokio::runtime::Handle,
        pool: PgPool,
        topic: String,
        metrics: Arc<Metrics>,
    ) -> Arc<Writer> {
        let writer = Arc::new(Writer {
            state: Mutex::new(WriterState::default()),
            wake: tokio::sync::Notify::new(),
            committed: AtomicU64::new(0),
            done: AtomicBool::new(false),
        });
        let w = writer.clone();
        runtime.spawn(async move { w.run(pool, topic, metrics).await });
        writer
    }

    /// Queues a batch.
    pub fn submit(&self, batch: CommitBatch) {
        self.state
            .lock()
            .expect("writer lock")
            .queue
            .push_back(batch);
        self.wake.notify_one();
    }

    /// Every tick below this is committed.
    pub fn committed_below(&self) -> u64 {
        self.committed.load(Ordering::Acquire)
    }

    /// No more batches will come; the task ends once the queue is empty.
    pub fn close(&self) {
        self.state.lock().expect("writer lock").closed = true;
        self.wake.notify_one();
    }

    /// True once closed and everything is committed.
    pub fn is_done(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }

    async fn run(&self, pool: PgPool, topic: String, metrics: Arc<Metrics>) {
        loop {
            let batch = {
                let mut st = self.state.lock().expect("writer lock");
                let mut batch: Option<CommitBatch> = None;
                while let Some(b) = st.queue.pop_front() {
                    match &mut batch {
                        Some(acc) => acc.merge(b),
                        None => batch = Some(b),
                    }
                }
                if batch.is_none() && st.closed {
                    self.done.store(true, Ordering::Release);
                    return;
                }
                batch
            };
            let Some(batch) = batch else {
                self.wake.notified().await;
                continue;
            };
            let started = Instant::now();
            let mut backoff = Duration::from_millis(100);
            let mut failures = 0u32;
            while let Err(e) = write_batch(&pool, &topic, &batch).await {
                metrics.commit_failures.inc();
                failures += 1;
                if failures == 1 {
                    tracing::warn!(error = %e, "commit failed: PostgreSQL unavailable? pausing and retrying until it is back");
                } else if failures.is_multiple_of(20) {
                    tracing::warn!(error = %e, failures, "still cannot commit; retrying");
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
            if failures > 0 {
                tracing::info!(
                    failures,
                    paused_ms = started.elapsed().as_millis() as u64,
                    "PostgreSQL is back; commits resumed"
                );
            }
            let now = Utc::now().timestamp_millis();
            {
                let mut fine = metrics.freshness_ms.lock().expect("freshness lock");
                for (created, n) in &batch.created {
                    let ms = now - created;
                    fine.observe(ms, *n);
                    for _ in 0..(*n).min(1000) {
                        metrics.freshness.observe(ms as f64 / 1000.0);
                    }
                }
            }
            metrics.commits.inc();
            metrics.commit_rows.observe(batch.rows() as f64);
            metrics
                .commit_seconds
                .observe(started.elapsed().as_secs_f64());
            if let Some(f) = batch.frontier {
                metrics.frontier_ms.set(f);
            }
            self.committed.store(batch.time + 1, Ordering::Release);
        }
    }
}

/// The names behind row keys, learnt from [`SinkMsg::KeyName`].
#[derive(Default)]
struct Names {
    keys: FxHashMap<u64, (String, String, String)>,
    services: FxHashMap<u64, String>,
}

/// Builds the commit operator over `input` (rows and names routed to
/// worker 0, progress broadcast). `writer` is `Some` on worker 0 only.
/// Every worker publishes the frontier into `frontier`. The returned
/// stream carries no data: probe it to see which ticks are committed.
pub fn commit<'scope>(
    input: StreamVec<'scope, u64, SinkMsg>,
    writer: Option<Arc<Writer>>,
    frontier: Rc<Cell<Option<i64>>>,
    metrics: Arc<Metrics>,
) -> StreamVec<'scope, u64, ()> {
    let scope = input.scope();
    input.unary_frontier::<timely::container::CapacityContainerBuilder<Vec<()>>, _, _, _>(
        Pipeline,
        "Commit",
        move |_cap, info| {
            let activator = scope.activator_for(info.address);
            let mut pending: BTreeMap<
                u64,
                (Vec<SinkMsg>, timely::dataflow::operators::Capability<u64>),
            > = BTreeMap::new();
            let mut inflight: Vec<(u64, timely::dataflow::operators::Capability<u64>)> = Vec::new();
            let mut tracker = FrontierTracker::new(frontier.get());
            let mut stored: BTreeMap<i32, PartitionProgress> = BTreeMap::new();
            let mut names = Names::default();
            move |(input, input_frontier), _output| {
                input.for_each_time(|time, data| {
                    let t = *time.time();
                    let entry = pending
                        .entry(t)
                        .or_insert_with(|| (Vec::new(), time.retain(0)));
                    for batch in data {
                        entry.0.append(batch);
                    }
                });
                while let Some((&t, _)) = pending.first_key_value() {
                    if input_frontier.less_equal(&t) {
                        break;
                    }
                    let (_, (msgs, cap)) = pending.pop_first().expect("first exists");
                    let mut batch = CommitBatch {
                        time: t,
                        ..CommitBatch::default()
                    };
                    let before = tracker.frontier();
                    for msg in msgs {
                        match msg {
                            SinkMsg::Progress(p) => tracker.update(p),
                            SinkMsg::KeyName {
                                key,
                                service_key,
                                tenant,
                                service,
                                endpoint,
                            } => {
                                names
                                    .services
                                    .entry(service_key)
                                    .or_insert_with(|| service.clone());
                                names.keys.entry(key).or_insert((tenant, service, endpoint));
                            }
                            SinkMsg::Created(ms, n) => batch.created.push((ms, n)),
                            SinkMsg::Metric((key, _svc, minute), agg, diff) if diff > 0 => {
                                match names.keys.get(&key) {
                                    Some((tenant, service, endpoint)) => keep_larger(
                                        &mut batch.metrics,
                                        (key, minute),
                                        MetricRow {
                                            tenant: tenant.clone(),
                                            service: service.clone(),
                                            endpoint: endpoint.clone(),
                                            minute_ms: minute,
                                            agg,
                                        },
                                        |r| r.agg.requests,
                                    ),
                                    None => tracing::error!(
                                        key,
                                        "row for a key whose name never arrived"
                                    ),
                                }
                            }
                            SinkMsg::Service((svc, minute), agg, diff) if diff > 0 => {
                                match names.services.get(&svc) {
                                    Some(service) => keep_larger(
                                        &mut batch.services,
                                        (svc, minute),
                                        ServiceRow {
                                            service: service.clone(),
                                            minute_ms: minute,
                                            agg,
                                        },
                                        |r| r.agg.requests,
                                    ),
                                    None => tracing::error!(
                                        svc,
                                        "row for a service whose name never arrived"
                                    ),
                                }
                            }
                            // A retraction without a new value: the window closed and its
                            // state was released. The stored row stays as it is.
                            SinkMsg::Metric(..) | SinkMsg::Service(..) => {}
                        }
                    }
                    let now_frontier = tracker.advance();
                    frontier.set(now_frontier);
                    if let Some(writer) = &writer {
                        if now_frontier != before {
                            batch.frontier = now_frontier;
                        }
                        for (part, p) in tracker.partitions() {
                            if stored.get(part).is_none_or(|s| !s.stored_eq(p)) {
                                batch.offsets.insert(*part, *p);
                                stored.insert(*part, *p);
                            }
                        }
                        if let Some(f) = now_frontier {
                            metrics
                                .watermark_delay
                                .set((Utc::now().timestamp_millis() - f) as f64 / 1000.0);
                        }
                        if batch.rows() > 0 || batch.frontier.is_some() || !batch.created.is_empty()
                        {
                            writer.submit(batch);
                            inflight.push((t, cap));
                        }
                    }
                }
                if let Some(writer) = &writer {
                    let below = writer.committed_below();
                    // Held capabilities keep the operator (and the dataflow)
                    // alive until their transactions commit; `run` closes the
                    // writer once every worker has finished.
                    inflight.retain(|(t, _)| *t >= below);
                    if !inflight.is_empty() {
                        activator.activate_after(Duration::from_millis(2));
                    }
                }
            }
        },
    )
}
