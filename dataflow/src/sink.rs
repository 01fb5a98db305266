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

use prescient_connect::backoff;
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
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::generic::Operator;

use crate::aggregate::{Agg, MetricKey, ServiceKey};
use crate::metrics::{FineHistogram, Metrics};
use crate::progress::{FrontierTracker, PartitionProgress};

/// What reaches the commit operator.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum SinkMsg {
    /// A change of a `metrics_minute` row (+1 new value, -1 old value).
    Metric(MetricKey, Agg, isize),
    /// A change of a `service_minute` row.
    Service(ServiceKey, Agg, isize),
    /// A partition's progress at the end of a tick (broadcast).
    Progress(PartitionProgress),
    /// `count` events with this Kafka timestamp (ms, rounded to 10 ms) were read.
    Created(i64, u64),
    /// `count` records with this reason and Kafka-timestamp minute were dead-lettered.
    Rejected(String, i64, u64),
}

/// A `metrics_minute` row to upsert.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MetricRow {
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
pub(crate) struct ServiceRow {
    /// Service.
    pub service: String,
    /// Bucket start, epoch ms.
    pub minute_ms: i64,
    /// Measures.
    pub agg: Agg,
}

/// One transaction's worth of changes.
#[derive(Debug, Default)]
pub(crate) struct CommitBatch {
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
    /// Dead letters covered, per (reason, Kafka-timestamp minute).
    pub dead_letters: BTreeMap<(String, i64), u64>,
}

impl CommitBatch {
    /// Folds a later batch into this one (later values win).
    pub(crate) fn merge(&mut self, later: CommitBatch) {
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
        for (k, n) in later.dead_letters {
            *self.dead_letters.entry(k).or_default() += n;
        }
    }

    /// Rows it writes.
    pub(crate) fn rows(&self) -> usize {
        self.metrics.len() + self.services.len() + self.offsets.len() + self.dead_letters.len()
    }

    /// Accepted events it covers.
    pub(crate) fn events(&self) -> u64 {
        self.created.iter().map(|(_, n)| n).sum()
    }

    /// Dead letters it covers.
    pub(crate) fn rejected(&self) -> u64 {
        self.dead_letters.values().sum()
    }

    /// The newest bucket among its rows.
    pub(crate) fn newest_minute(&self) -> Option<i64> {
        let m = self.metrics.values().map(|r| r.minute_ms);
        m.chain(self.services.values().map(|r| r.minute_ms)).max()
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

/// True when `new` should replace `old` (see [`keep_larger`]).
fn larger(old: Option<&Agg>, new: &Agg) -> bool {
    old.is_none_or(|old| old.requests < new.requests)
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

/// True for errors retrying cannot fix because of the data itself:
/// SQLSTATE classes 22 (data exception, e.g. a character the encoding
/// refuses), 23 (integrity constraint) and 54 (program limit exceeded).
pub(crate) fn is_data_error(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("22") || c.starts_with("23") || c.starts_with("54")),
        _ => false,
    }
}

/// The rows of one table, for a multi-row upsert.
#[derive(Clone, Copy)]
enum TableRows<'a> {
    Metrics(&'a [&'a MetricRow]),
    Services(&'a [&'a ServiceRow]),
}

impl<'a> TableRows<'a> {
    fn len(&self) -> usize {
        match self {
            TableRows::Metrics(r) => r.len(),
            TableRows::Services(r) => r.len(),
        }
    }

    fn split(self, at: usize) -> (TableRows<'a>, TableRows<'a>) {
        match self {
            TableRows::Metrics(r) => {
                let (a, b) = r.split_at(at);
                (TableRows::Metrics(a), TableRows::Metrics(b))
            }
            TableRows::Services(r) => {
                let (a, b) = r.split_at(at);
                (TableRows::Services(a), TableRows::Services(b))
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            TableRows::Metrics(r) => r.first().map_or(String::new(), |r| {
                format!(
                    "metrics_minute ({:?}, {:?}, {:?}, {})",
                    r.tenant, r.service, r.endpoint, r.minute_ms
                )
            }),
            TableRows::Services(r) => r.first().map_or(String::new(), |r| {
                format!("service_minute ({:?}, {})", r.service, r.minute_ms)
            }),
        }
    }

    async fn upsert(&self, conn: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
        match self {
            TableRows::Metrics(rows) => {
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
                    .execute(&mut *conn)
                    .await?;
            }
            TableRows::Services(rows) => {
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
                    .execute(&mut *conn)
                    .await?;
            }
        }
        Ok(())
    }

    /// Upserts the rows inside `tx`, each half under its own savepoint,
    /// bisecting until the rows PostgreSQL refuses for a data reason are
    /// found; those are left out and described in `dropped`.
    async fn upsert_isolating(
        self,
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        dropped: &mut Vec<String>,
    ) -> Result<(), sqlx::Error> {
        let mut stack = vec![self];
        while let Some(part) = stack.pop() {
            if part.len() == 0 {
                continue;
            }
            let mut savepoint = sqlx::Acquire::begin(&mut *tx).await?;
            match part.upsert(&mut savepoint).await {
                Ok(()) => savepoint.commit().await?,
                Err(e) if is_data_error(&e) => {
                    savepoint.rollback().await?;
                    if part.len() == 1 {
                        dropped.push(format!("{}: {e}", part.describe()));
                    } else {
                        let (a, b) = part.split(part.len() / 2);
                        stack.push(b);
                        stack.push(a);
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// This wall-clock minute's pipeline figures (`ingest_stats_minute`).
#[derive(Debug, Clone, Default)]
pub(crate) struct MinuteStats {
    /// The minute, epoch ms.
    pub minute_ms: i64,
    /// Records read (accepted + rejected, replays excluded).
    pub events: u64,
    /// Records dead-lettered.
    pub rejected: u64,
    /// Transactions.
    pub commits: u64,
    /// metrics_minute + service_minute rows upserted.
    pub rows_written: u64,
    /// Freshness p50, ms.
    pub freshness_p50_ms: Option<f64>,
    /// Freshness p99, ms.
    pub freshness_p99_ms: Option<f64>,
    /// Open windows held in memory (this process) at the commit.
    pub keys_held: i64,
}

/// Writes one batch in one transaction: rows, dead-letter counts, offsets,
/// frontier and this minute's stats, then `NOTIFY`s. With `isolate`, rows
/// PostgreSQL refuses for a data reason are found by bisection and left
/// out (described in `dropped`) instead of failing the transaction.
pub(crate) async fn write_batch(
    pool: &PgPool,
    topic: &str,
    b: &CommitBatch,
    stats: &MinuteStats,
    isolate: bool,
    dropped: &mut Vec<String>,
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    let metric_rows: Vec<&MetricRow> = b.metrics.values().collect();
    let service_rows: Vec<&ServiceRow> = b.services.values().collect();
    for rows in [
        TableRows::Metrics(&metric_rows),
        TableRows::Services(&service_rows),
    ] {
        if rows.len() == 0 {
            continue;
        }
        if isolate {
            rows.upsert_isolating(&mut tx, dropped).await?;
        } else {
            rows.upsert(&mut tx).await?;
        }
    }
    if !b.dead_letters.is_empty() {
        let (keys, counts): (Vec<&(String, i64)>, Vec<i64>) =
            b.dead_letters.iter().map(|(k, n)| (k, *n as i64)).unzip();
        sqlx::query(
            "INSERT INTO dead_letters_minute (topic, reason, minute, count)
             SELECT $1, r, m, c FROM UNNEST($2::text[], $3::timestamptz[], $4::int8[]) AS x(r, m, c)
             ON CONFLICT (topic, minute, reason) DO UPDATE SET count = dead_letters_minute.count + EXCLUDED.count",
        )
        .bind(topic)
        .bind(keys.iter().map(|(r, _)| r.as_str()).collect::<Vec<_>>())
        .bind(keys.iter().map(|(_, m)| ts(*m)).collect::<Vec<_>>())
        .bind(counts)
        .execute(&mut *tx)
        .await?;
    }
    if !b.offsets.is_empty() {
        let ps: Vec<&PartitionProgress> = b.offsets.values().collect();
        sqlx::query(
            "INSERT INTO ingest_offsets (topic, partition, next_offset, watermark_ms, replay_offset,
                 replay_watermark_ms, end_offset, updated_at)
             SELECT $1, p, o, w, ro, rw, e, now()
             FROM UNNEST($2::int4[], $3::int8[], $4::int8[], $5::int8[], $6::int8[], $7::int8[])
                  AS x(p, o, w, ro, rw, e)
             ON CONFLICT (topic, partition) DO UPDATE SET
                 next_offset = EXCLUDED.next_offset, watermark_ms = EXCLUDED.watermark_ms,
                 replay_offset = EXCLUDED.replay_offset, replay_watermark_ms = EXCLUDED.replay_watermark_ms,
                 end_offset = COALESCE(EXCLUDED.end_offset, ingest_offsets.end_offset),
                 updated_at = now()",
        )
        .bind(topic)
        .bind(ps.iter().map(|p| p.partition).collect::<Vec<_>>())
        .bind(ps.iter().map(|p| p.next_offset).collect::<Vec<_>>())
        .bind(ps.iter().map(|p| p.watermark_ms).collect::<Vec<_>>())
        .bind(ps.iter().map(|p| p.replay_offset).collect::<Vec<_>>())
        .bind(ps.iter().map(|p| p.replay_watermark_ms).collect::<Vec<_>>())
        .bind(ps.iter().map(|p| p.end_offset).collect::<Vec<_>>())
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
    if let Some(minute) = b.newest_minute() {
        sqlx::query("SELECT pg_notify('prescient_rows', $1)")
            .bind(format!("{{\"topic\":{topic:?},\"minute_ms\":{minute}}}"))
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query(
        "INSERT INTO ingest_stats_minute (topic, minute, events, rejected, commits, rows_written,
             freshness_p50_ms, freshness_p99_ms, keys_held)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (topic, minute) DO UPDATE SET
             events = EXCLUDED.events, rejected = EXCLUDED.rejected, commits = EXCLUDED.commits,
             rows_written = EXCLUDED.rows_written, freshness_p50_ms = EXCLUDED.freshness_p50_ms,
             freshness_p99_ms = EXCLUDED.freshness_p99_ms, keys_held = EXCLUDED.keys_held",
    )
    .bind(topic)
    .bind(ts(stats.minute_ms))
    .bind(stats.events as i64)
    .bind(stats.rejected as i64)
    .bind(stats.commits as i64)
    .bind(stats.rows_written as i64)
    .bind(stats.freshness_p50_ms)
    .bind(stats.freshness_p99_ms)
    .bind(stats.keys_held)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

#[derive(Default)]
struct WriterState {
    queue: VecDeque<CommitBatch>,
    closed: bool,
}

/// Commits batches in order on a tokio runtime, retrying while PostgreSQL
/// is away. Batches queued while a commit is in flight are merged into the
/// next transaction, and under load the next commit waits a few times as
/// long as the last one took (at most [`MAX_COMMIT_SPACING`]), so a row
/// that keeps changing is written once per commit, not once per tick.
pub(crate) struct Writer {
    state: Mutex<WriterState>,
    wake: tokio::sync::Notify,
    committed: AtomicU64,
    done: AtomicBool,
}

/// Longest wait between the starts of two commits under load.
pub(crate) const MAX_COMMIT_SPACING: Duration = Duration::from_secs(1);
/// Under load, a commit starts no sooner than this many times the previous
/// commit's duration after the previous one started.
pub(crate) const COMMIT_SPACING_FACTOR: u32 = 4;

/// What the writer task keeps between commits.
struct WriterTask {
    pool: PgPool,
    topic: String,
    metrics: Arc<Metrics>,
    minute: MinuteStats,
    minute_freshness: FineHistogram,
}

impl WriterTask {
    /// Adds `batch` to this wall-clock minute's figures and returns them.
    fn count(&mut self, batch: &CommitBatch, now_ms: i64) -> MinuteStats {
        let minute_ms = now_ms - now_ms.rem_euclid(60_000);
        if minute_ms != self.minute.minute_ms {
            self.minute = MinuteStats {
                minute_ms,
                ..MinuteStats::default()
            };
            self.minute_freshness.reset();
        }
        for (created, n) in &batch.created {
            self.minute_freshness.observe(now_ms - created, *n);
        }
        let m = &mut self.minute;
        m.events += batch.events() + batch.rejected();
        m.rejected += batch.rejected();
        m.commits += 1;
        m.rows_written += (batch.metrics.len() + batch.services.len()) as u64;
        m.freshness_p50_ms = self.minute_freshness.quantile(0.5).map(|v| v as f64);
        m.freshness_p99_ms = self.minute_freshness.quantile(0.99).map(|v| v as f64);
        m.keys_held = self.metrics.keys_held.get();
        m.clone()
    }

    /// Commits `batch`, retrying until PostgreSQL takes it; rows it refuses
    /// for a data reason are dropped (logged and counted).
    async fn commit(&mut self, batch: &CommitBatch) {
        let started = Instant::now();
        let stats = self.count(batch, Utc::now().timestamp_millis());
        let mut delays = backoff::exponential(Duration::from_millis(100), Duration::from_secs(2));
        let mut failures = 0u32;
        let mut isolate = false;
        loop {
            let mut dropped = Vec::new();
            match write_batch(
                &self.pool,
                &self.topic,
                batch,
                &stats,
                isolate,
                &mut dropped,
            )
            .await
            {
                Ok(()) => {
                    if !dropped.is_empty() {
                        self.metrics.rows_rejected.inc_by(dropped.len() as u64);
                        for d in &dropped {
                            tracing::error!(row = %d, "PostgreSQL refused a row for a reason retrying cannot fix; dropped it and committed the rest");
                        }
                    }
                    break;
                }
                Err(e) if is_data_error(&e) && !isolate => {
                    tracing::warn!(error = %e, "PostgreSQL refused the batch's data; finding the rows responsible");
                    isolate = true;
                }
                Err(e) => {
                    self.metrics.commit_failures.inc();
                    failures += 1;
                    if failures == 1 {
                        tracing::warn!(error = %e, "commit failed: PostgreSQL unavailable? pausing and retrying until it is back");
                    } else if failures.is_multiple_of(20) {
                        tracing::warn!(error = %e, failures, "still cannot commit; retrying");
                    }
                    tokio::time::sleep(delays.next().unwrap_or_default()).await;
                }
            }
        }
        if failures > 0 {
            tracing::info!(
                failures,
                paused_ms = started.elapsed().as_millis() as u64,
                "PostgreSQL is back; commits resumed"
            );
        }
        let now = Utc::now().timestamp_millis();
        let m = &self.metrics;
        {
            let mut fine = m.freshness_ms.lock().expect("freshness lock");
            for (created, n) in &batch.created {
                let ms = now - created;
                fine.observe(ms, *n);
                for _ in 0..(*n).min(1000) {
                    m.freshness.observe(ms as f64 / 1000.0);
                }
            }
        }
        m.commits.inc();
        m.commit_rows.observe(batch.rows() as f64);
        m.commit_seconds.observe(started.elapsed().as_secs_f64());
        if let Some(f) = batch.frontier {
            m.frontier_ms.set(f);
        }
    }
}

impl Writer {
    /// Starts the writer task on `runtime`.
    pub(crate) fn start(
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
        let task = WriterTask {
            pool,
            topic,
            metrics,
            minute: MinuteStats::default(),
            minute_freshness: FineHistogram::default(),
        };
        runtime.spawn(async move { w.run(task).await });
        writer
    }

    /// Queues a batch.
    pub(crate) fn submit(&self, batch: CommitBatch) {
        self.state
            .lock()
            .expect("writer lock")
            .queue
            .push_back(batch);
        self.wake.notify_one();
    }

    /// Every tick below this is committed.
    pub(crate) fn committed_below(&self) -> u64 {
        self.committed.load(Ordering::Acquire)
    }

    /// No more batches will come; the task ends once the queue is empty.
    pub(crate) fn close(&self) {
        self.state.lock().expect("writer lock").closed = true;
        self.wake.notify_one();
    }

    /// True once closed and everything is committed.
    pub(crate) fn is_done(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }

    async fn run(&self, mut task: WriterTask) {
        let mut last: Option<(Instant, Duration)> = None;
        loop {
            // Under load (the last commit was slow), let changes gather:
            // every row changed meanwhile is written once, not per tick.
            if let Some((started, took)) = last {
                let spacing = (took * COMMIT_SPACING_FACTOR).min(MAX_COMMIT_SPACING);
                let closed = self.state.lock().expect("writer lock").closed;
                if !closed && took > Duration::from_millis(20) {
                    tokio::time::sleep_until((started + spacing).into()).await;
                }
            }
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
            task.commit(&batch).await;
            last = Some((started, started.elapsed()));
            self.committed.store(batch.time + 1, Ordering::Release);
        }
    }
}

/// The commit operator's state on one worker.
struct CommitState {
    /// Messages per tick not yet complete, with the tick's capability.
    pending: BTreeMap<u64, (Vec<SinkMsg>, Capability<u64>)>,
    /// Ticks submitted to the writer, held until committed.
    inflight: Vec<(u64, Capability<u64>)>,
    tracker: FrontierTracker,
    /// Progress as last submitted, per partition.
    stored: BTreeMap<i32, PartitionProgress>,
    writer: Option<Arc<Writer>>,
    frontier: Rc<Cell<Option<i64>>>,
    metrics: Arc<Metrics>,
}

impl CommitState {
    /// Turns a completed tick's messages into a batch, advances the
    /// frontier, and (on worker 0) submits the batch.
    fn complete(&mut self, t: u64, msgs: Vec<SinkMsg>, cap: Capability<u64>) {
        let mut batch = CommitBatch {
            time: t,
            ..CommitBatch::default()
        };
        let before = self.tracker.frontier();
        for msg in msgs {
            match msg {
                SinkMsg::Progress(p) => self.tracker.update(p),
                SinkMsg::Created(ms, n) => batch.created.push((ms, n)),
                SinkMsg::Rejected(reason, minute, n) => {
                    *batch.dead_letters.entry((reason, minute)).or_default() += n
                }
                // The names are copied only for the value that is kept.
                SinkMsg::Metric(key, agg, diff) if diff > 0 => {
                    let k = (key.hash, key.minute);
                    if larger(batch.metrics.get(&k).map(|r| &r.agg), &agg) {
                        batch.metrics.insert(
                            k,
                            MetricRow {
                                tenant: key.names.tenant.clone(),
                                service: key.service.to_string(),
                                endpoint: key.names.endpoint.clone(),
                                minute_ms: key.minute,
                                agg,
                            },
                        );
                    }
                }
                SinkMsg::Service(key, agg, diff) if diff > 0 => {
                    let k = (key.hash, key.minute);
                    if larger(batch.services.get(&k).map(|r| &r.agg), &agg) {
                        batch.services.insert(
                            k,
                            ServiceRow {
                                service: key.service.to_string(),
                                minute_ms: key.minute,
                                agg,
                            },
                        );
                    }
                }
                // A retraction without a new value: the window closed and its
                // state was released. The stored row stays as it is.
                SinkMsg::Metric(..) | SinkMsg::Service(..) => {}
            }
        }
        let now_frontier = self.tracker.advance();
        self.frontier.set(now_frontier);
        let Some(writer) = &self.writer else { return };
        if now_frontier != before {
            batch.frontier = now_frontier;
        }
        for (part, p) in self.tracker.partitions() {
            if self.stored.get(part).is_none_or(|s| !s.stored_eq(p)) {
                batch.offsets.insert(*part, *p);
                self.stored.insert(*part, *p);
            }
        }
        if let Some(f) = now_frontier {
            self.metrics
                .watermark_delay
                .set((Utc::now().timestamp_millis() - f) as f64 / 1000.0);
        }
        if batch.rows() > 0 || batch.frontier.is_some() || !batch.created.is_empty() {
            writer.submit(batch);
            self.inflight.push((t, cap));
        }
    }
}

/// Builds the commit operator over `input` (rows routed to worker 0,
/// progress broadcast). `writer` is `Some` on worker 0 only. Every worker
/// publishes the frontier into `frontier`. The returned stream carries no
/// data: probe it to see which ticks are committed.
pub(crate) fn commit<'scope>(
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
            let mut state = CommitState {
                pending: BTreeMap::new(),
                inflight: Vec::new(),
                tracker: FrontierTracker::new(frontier.get()),
                stored: BTreeMap::new(),
                writer,
                frontier,
                metrics,
            };
            move |(input, input_frontier), _output| {
                input.for_each_time(|time, data| {
                    let t = *time.time();
                    let entry = state
                        .pending
                        .entry(t)
                        .or_insert_with(|| (Vec::new(), time.retain(0)));
                    for batch in data {
                        entry.0.append(batch);
                    }
                });
                while let Some((&t, _)) = state.pending.first_key_value() {
                    if input_frontier.less_equal(&t) {
                        break;
                    }
                    let (_, (msgs, cap)) = state.pending.pop_first().expect("first exists");
                    state.complete(t, msgs, cap);
                }
                if let Some(writer) = &state.writer {
                    let below = writer.committed_below();
                    // Held capabilities keep the operator (and the dataflow)
                    // alive until their transactions commit; `run` closes the
                    // writer once every worker has finished.
                    state.inflight.retain(|(t, _)| *t >= below);
                    if !state.inflight.is_empty() {
                        activator.activate_after(Duration::from_millis(2));
                    }
                }
            }
        },
    )
}
