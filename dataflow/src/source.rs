//! The Kafka source: each worker reads its share of the topic's partitions
//! (partition `p` goes to worker `p % peers`), validates every record,
//! applies the per-partition watermark and lateness rules, pre-aggregates
//! per tick, and emits:
//!
//! * contributions to differential dataflow (and their retractions when a
//!   window closes, which releases its state),
//! * a progress report per partition per tick,
//! * key names and event timestamps for the sink.
//!
//! On start each partition is read from its stored replay offset: records
//! below the stored next offset only rebuild open windows (no dead letters,
//! no counting twice), then the worker moves on from the first tick.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::{ClientConfig, ClientContext};
use rustc_hash::{FxHashMap, FxHashSet};
use timely::dataflow::operators::generic::operator::source;
use timely::dataflow::operators::probe::Handle as ProbeHandle;
use timely::dataflow::{Scope, StreamVec};

use prescient_contracts::event::{Event, Reason, Rejection, parse_event};

use crate::aggregate::{Contribution, MetricKey, WindowAcc, hash_strs};
use crate::dlq::{DeadLetters, DlqError};
use crate::metrics::Metrics;
use crate::offsets::ResumeState;
use crate::progress::PartitionProgress;
use crate::sink::SinkMsg;
use crate::window::{Windows, latency_bucket};

/// Source failures (at start-up; once running, broker trouble only pauses).
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The consumer could not be created or assigned.
    #[error("kafka consumer: {0}")]
    Kafka(#[from] KafkaError),
    /// The dead-letter producer could not be created.
    #[error(transparent)]
    Dlq(#[from] DlqError),
}

/// What the source emits.
#[derive(Debug, Clone)]
pub enum SourceMsg {
    /// A change to differential's input collection.
    Data(((MetricKey, Contribution), u64, isize)),
    /// Something for the commit operator.
    Sink(SinkMsg),
}

/// Source settings.
#[derive(Debug, Clone)]
pub struct SourceSettings {
    /// Bootstrap servers.
    pub brokers: String,
    /// Topic to read.
    pub topic: String,
    /// Dead-letter topic.
    pub dlq_topic: String,
    /// Window rules.
    pub windows: Windows,
    /// Tick length (ms).
    pub tick_ms: u64,
    /// Idle timeout.
    pub idle_timeout: Duration,
    /// Largest allowed lead of event time over Kafka time (ms).
    pub max_future_ms: i64,
    /// Pause reading when commits lag by this many ticks.
    pub max_uncommitted_ticks: u64,
    /// Finish once every partition is read to its end.
    pub until_caught_up: bool,
}

/// Reports consumer lag from librdkafka's statistics.
pub struct LagContext {
    metrics: Arc<Metrics>,
    topic: String,
}

impl ClientContext for LagContext {
    fn error(&self, error: KafkaError, reason: &str) {
        // Reaching a partition's end is how idleness is detected, not an error.
        let eof = matches!(error, KafkaError::PartitionEOF(_))
            || error.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::PartitionEOF);
        if !eof {
            tracing::warn!(error = %error, reason, "kafka client");
        }
    }

    fn stats(&self, statistics: Statistics) {
        if let Some(topic) = statistics.topics.get(&self.topic) {
            for (p, part) in &topic.partitions {
                if *p >= 0 && part.consumer_lag >= 0 {
                    self.metrics
                        .consumer_lag
                        .with_label_values(&[&p.to_string()])
                        .set(part.consumer_lag);
                }
            }
        }
    }
}
impl ConsumerContext for LagContext {}

struct PartState {
    next_offset: i64,
    /// Records below this were processed before the restart.
    resume_offset: i64,
    watermark: Option<i64>,
    eof_since: Option<Instant>,
    /// Open buckets read from this partition: first offset and the watermark before it.
    tracked: BTreeMap<i64, (i64, Option<i64>)>,
}

impl PartState {
    fn replaying(&self) -> bool {
        self.next_offset < self.resume_offset
    }

    fn progress(&self, partition: i32, idle_timeout: Duration) -> PartitionProgress {
        let replay = self.tracked.values().min_by_key(|(offset, _)| *offset);
        PartitionProgress {
            partition,
            next_offset: self.next_offset,
            watermark_ms: self.watermark,
            idle: self.eof_since.is_some_and(|t| t.elapsed() >= idle_timeout),
            replay_offset: replay.map_or(self.next_offset, |(o, _)| *o),
            replay_watermark_ms: replay.map_or(self.watermark, |(_, w)| *w),
        }
    }
}

/// Global stop flag: sources finish their tick and stop when it is set.
pub static SHUTDOWN: AtomicBool = AtomicBool::new(false);

struct KafkaSource {
    consumer: BaseConsumer<LagContext>,
    p: Processor,
    broker_warned: Option<Instant>,
}

/// Everything but the consumer, so a borrowed message can be processed in place.
struct Processor {
    settings: SourceSettings,
    dlq: DeadLetters,
    parts: FxHashMap<i32, PartState>,
    /// This tick's additions per (bucket, key): service key and accumulation.
    delta: FxHashMap<(i64, u64), (u64, WindowAcc)>,
    /// Everything this worker added to open windows, to retract on close.
    totals: BTreeMap<i64, FxHashMap<u64, (u64, WindowAcc)>>,
    announced: FxHashSet<u64>,
    names: Vec<SinkMsg>,
    created: FxHashMap<i64, u64>,
    frontier: Rc<Cell<Option<i64>>>,
    metrics: Arc<Metrics>,
    keys_held: i64,
    /// Counts kept locally and added to the shared counters once per tick.
    counts: Counts,
}

#[derive(Default)]
struct Counts {
    events_in: u64,
    replayed: u64,
    late: u64,
}

impl KafkaSource {
    fn new(
        settings: SourceSettings,
        partitions: &[i32],
        resume: &ResumeState,
        frontier: Rc<Cell<Option<i64>>>,
        metrics: Arc<Metrics>,
        group_id: &str,
    ) -> Result<Self, SourceError> {
        let context = LagContext {
            metrics: metrics.clone(),
            topic: settings.topic.clone(),
        };
        let consumer: BaseConsumer<LagContext> = ClientConfig::new()
            .set("bootstrap.servers", &settings.brokers)
            .set("group.id", group_id)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "true")
            .set("auto.offset.reset", "earliest")
            .set("fetch.wait.max.ms", "20")
            .set("statistics.interval.ms", "1000")
            .create_with_context(context)?;
        let mut tpl = TopicPartitionList::new();
        let mut parts = FxHashMap::default();
        for &p in partitions {
            let stored = resume.partitions.get(&p);
            let (start, resume_offset, watermark) = match stored {
                Some(s) => (s.replay_offset, s.next_offset, s.replay_watermark_ms),
                None => (0, 0, None),
            };
            tpl.add_partition_offset(&settings.topic, p, Offset::Offset(start))?;
            parts.insert(
                p,
                PartState {
                    next_offset: start,
                    resume_offset,
                    watermark,
                    eof_since: None,
                    tracked: BTreeMap::new(),
                },
            );
        }
        if !partitions.is_empty() {
            consumer.assign(&tpl)?;
        }
        let to_replay: i64 = parts
            .values()
            .map(|p| (p.resume_offset - p.next_offset).max(0))
            .sum();
        if to_replay > 0 {
            tracing::info!(records = to_replay, partitions = ?partitions, "re-reading records of still-open windows to rebuild their state");
        }
        let dlq = DeadLetters::new(&settings.brokers, &settings.dlq_topic, &settings.topic)?;
        Ok(KafkaSource {
            consumer,
            broker_warned: None,
            p: Processor {
                settings,
                dlq,
                parts,
                delta: FxHashMap::default(),
                totals: BTreeMap::new(),
                announced: FxHashSet::default(),
                names: Vec::new(),
                created: FxHashMap::default(),
                frontier,
                metrics,
                keys_held: 0,
                counts: Counts::default(),
            },
        })
    }

    fn replaying(&self) -> bool {
        self.p.parts.values().any(PartState::replaying)
    }

    fn caught_up(&self) -> bool {
        self.p
            .parts
            .values()
            .all(|p| p.eof_since.is_some() && !p.replaying())
    }

    /// Reads up to `max` records or for about `budget`; returns how many.
    fn poll(&mut self, max: usize, budget: Duration) -> usize {
        let started = Instant::now();
        let mut n = 0;
        while n < max {
            match self.consumer.poll(Duration::ZERO) {
                None => break,
                Some(Err(KafkaError::PartitionEOF(p))) => {
                    if let Some(st) = self.p.parts.get_mut(&p) {
                        st.eof_since.get_or_insert_with(Instant::now);
                        if st.replaying() {
                            tracing::warn!(
                                partition = p,
                                at = st.next_offset,
                                stored = st.resume_offset,
                                "partition ends before its stored offset (topic recreated or truncated?); resuming from its end"
                            );
                            st.resume_offset = st.next_offset;
                        }
                    }
                }
                Some(Err(e)) => {
                    if self
                        .broker_warned
                        .is_none_or(|t| t.elapsed() > Duration::from_secs(10))
                    {
                        tracing::warn!(error = %e, "kafka consumer error; retrying");
                        self.broker_warned = Some(Instant::now());
                    }
                    break;
                }
                Some(Ok(msg)) => {
                    self.p.on_record(&msg);
                    n += 1;
                }
            }
            if n % 512 == 511 && started.elapsed() >= budget {
                break;
            }
        }
        n
    }
}

impl Processor {
    fn reject(&mut self, replaying: bool, r: &BorrowedMessage<'_>, why: Rejection) {
        if replaying {
            return; // handled before the restart
        }
        self.metrics.reject(why.reason);
        self.dlq.send(
            r.key(),
            r.payload().unwrap_or_default(),
            r.partition(),
            r.offset(),
            &why,
        );
    }

    fn on_record(&mut self, r: &BorrowedMessage<'_>) {
        let (partition, offset) = (r.partition(), r.offset());
        let Some(st) = self.parts.get_mut(&partition) else {
            return;
        };
        if offset < st.next_offset {
            return;
        }
        st.next_offset = offset + 1;
        st.eof_since = None;
        let replaying = offset < st.resume_offset;
        if replaying {
            self.counts.replayed += 1;
        } else {
            self.counts.events_in += 1;
        }
        let event = match parse_event(r.payload().unwrap_or_default()) {
            Ok(e) => e,
            Err(why) => return self.reject(replaying, r, why),
        };
        let timestamp_ms = r.timestamp().to_millis();
        if let Some(kafka_ts) = timestamp_ms
            && event.ts_ms > kafka_ts.saturating_add(self.settings.max_future_ms)
        {
            let why = Rejection::new(
                Reason::TsInFuture,
                format!(
                    "ts {} is more than {} ms after the record's Kafka timestamp {kafka_ts}",
                    event.ts_ms, self.settings.max_future_ms
                ),
            );
            return self.reject(replaying, r, why);
        }
        let w = self.settings.windows;
        let start = w.bucket_start(event.ts_ms);
        let st = self.parts.get_mut(&partition).expect("checked above");
        let wm = st.watermark.max(self.frontier.get());
        if w.too_late(start, wm) {
            let why = Rejection::new(
                Reason::TooLate,
                format!(
                    "ts {} falls in the bucket starting {start}, closed at watermark {}",
                    event.ts_ms,
                    w.closes_at(start)
                ),
            );
            return self.reject(replaying, r, why);
        }
        if !replaying && w.late(start, wm) {
            self.counts.late += 1;
        }
        let before = st.watermark;
        st.watermark = st.watermark.max(Some(event.ts_ms));
        st.tracked.entry(start).or_insert((offset, before));
        if !replaying && let Some(ts) = timestamp_ms {
            *self.created.entry(ts - ts.rem_euclid(10)).or_default() += 1;
        }
        self.accumulate(start, &event);
    }

    fn accumulate(&mut self, start: i64, e: &Event<'_>) {
        let key = hash_strs(&[&e.tenant, &e.service, &e.endpoint]);
        let service_key = hash_strs(&[&e.service]);
        if self.announced.insert(key) {
            self.names.push(SinkMsg::KeyName {
                key,
                service_key,
                tenant: e.tenant.to_string(),
                service: e.service.to_string(),
                endpoint: e.endpoint.to_string(),
            });
        }
        let user = e.user.as_deref().map(|u| hash_strs(&[&e.tenant, u]));
        let latency = e.latency_ms.map(latency_bucket);
        self.delta
            .entry((start, key))
            .or_insert_with(|| (service_key, WindowAcc::default()))
            .1
            .add_event(e.is_error(), latency, user);
    }

    /// Ends tick `time`: emits this tick's changes, releases closed
    /// windows, and reports progress.
    fn flush(&mut self, time: u64, out: &mut Vec<SourceMsg>) {
        let counts = std::mem::take(&mut self.counts);
        self.metrics.events_in.inc_by(counts.events_in);
        self.metrics.replayed.inc_by(counts.replayed);
        self.metrics.late.inc_by(counts.late);
        for ((start, key), (svc, acc)) in self.delta.drain() {
            out.extend(
                acc.contributions(1)
                    .map(|(c, n)| SourceMsg::Data((((key, svc, start), c), time, n))),
            );
            let window = self.totals.entry(start).or_default();
            match window.get_mut(&key) {
                Some((_, total)) => total.merge(&acc),
                None => {
                    window.insert(key, (svc, acc));
                    self.keys_held += 1;
                    self.metrics.keys_held.inc();
                }
            }
        }
        if let Some(f) = self.frontier.get() {
            let w = self.settings.windows;
            while let Some(entry) = self.totals.first_entry() {
                if w.closes_at(*entry.key()) > f {
                    break;
                }
                let start = *entry.key();
                for (key, (svc, total)) in entry.remove() {
                    out.extend(
                        total
                            .contributions(-1)
                            .map(|(c, n)| SourceMsg::Data((((key, svc, start), c), time, n))),
                    );
                    self.keys_held -= 1;
                    self.metrics.keys_held.dec();
                }
            }
            for st in self.parts.values_mut() {
                st.tracked.retain(|start, _| w.closes_at(*start) > f);
            }
        }
        out.extend(self.names.drain(..).map(SourceMsg::Sink));
        out.extend(
            self.created
                .drain()
                .map(|(ms, n)| SourceMsg::Sink(SinkMsg::Created(ms, n))),
        );
        // Dead letters must be safe before the offsets past them are committed.
        self.dlq.flush();
        let idle = self.settings.idle_timeout;
        out.extend(
            self.parts
                .iter()
                .map(|(p, st)| SourceMsg::Sink(SinkMsg::Progress(st.progress(*p, idle)))),
        );
    }
}

fn now_tick(tick_ms: u64) -> u64 {
    (chrono::Utc::now().timestamp_millis().max(0) as u64) / tick_ms
}

/// Builds the source operator for this worker's `partitions`.
#[allow(clippy::too_many_arguments)]
pub fn kafka_source<'scope>(
    scope: Scope<'scope, u64>,
    settings: SourceSettings,
    partitions: Vec<i32>,
    resume: Arc<ResumeState>,
    frontier: Rc<Cell<Option<i64>>>,
    committed: ProbeHandle<u64>,
    metrics: Arc<Metrics>,
    group_id: String,
) -> Result<StreamVec<'scope, u64, SourceMsg>, SourceError> {
    let mut state = Some(KafkaSource::new(
        settings.clone(),
        &partitions,
        &resume,
        frontier,
        metrics.clone(),
        &group_id,
    )?);
    let stream = source(scope, "KafkaSource", move |capability, info| {
        let activator = scope.activator_for(info.address);
        let mut cap = Some(capability);
        let mut paused_since: Option<Instant> = None;
        let mut warned = false;
        let mut replay_started: Option<Instant> = None;
        move |output| {
            let Some(src) = state.as_mut() else { return };
            let Some(c) = cap.as_mut() else { return };
            let time = *c.time();
            let stopping = SHUTDOWN.load(Ordering::Relaxed);
            // Backpressure: wait while commits lag too far behind.
            if time > settings.max_uncommitted_ticks
                && !stopping
                && committed.less_than(&(time - settings.max_uncommitted_ticks))
            {
                let since = *paused_since.get_or_insert_with(Instant::now);
                if !warned && since.elapsed() > Duration::from_secs(1) {
                    tracing::warn!(
                        "commits are behind; pausing reads until the database catches up"
                    );
                    warned = true;
                }
                activator.activate_after(Duration::from_millis(10));
                return;
            }
            if let Some(since) = paused_since.take()
                && std::mem::take(&mut warned)
            {
                tracing::info!(
                    paused_ms = since.elapsed().as_millis() as u64,
                    "commits caught up; reading again"
                );
            }
            let n = if stopping {
                0
            } else {
                src.poll(20_000, Duration::from_millis(20))
            };
            let mut buf = Vec::new();
            if src.replaying() && !stopping {
                // Stay at the first tick until every partition is replayed.
                replay_started.get_or_insert_with(Instant::now);
                activator.activate();
                return;
            }
            if let Some(started) = replay_started.take() {
                tracing::info!(
                    seconds = started.elapsed().as_secs_f64(),
                    "open windows rebuilt; resuming"
                );
            }
            let now = now_tick(settings.tick_ms).max(time + 1);
            let finished = stopping || (settings.until_caught_up && src.caught_up());
            if time == 0 || now_tick(settings.tick_ms) > time || finished {
                src.p.flush(time, &mut buf);
                if !buf.is_empty() {
                    output.session(&*c).give_iterator(buf.drain(..));
                }
                if finished {
                    cap = None;
                    state = None;
                    return;
                }
                c.downgrade(&now);
            }
            if n > 0 {
                activator.activate();
            } else {
                activator.activate_after(Duration::from_millis(2));
            }
        }
    });
    Ok(stream)
}
