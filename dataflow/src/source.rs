//! The Kafka source: each worker reads its share of the topic's partitions
//! (partition `p` goes to worker `p % peers`), validates every record,
//! applies the per-partition watermark and lateness rules, pre-aggregates
//! per tick, and emits:
//!
//! * contributions to differential dataflow (and their retractions when a
//!   window closes, which releases its state); the row's names travel in
//!   the key,
//! * a progress report per partition per tick,
//! * Kafka timestamps of accepted events and dead-letter counts for the sink.
//!
//! On start each partition is read from its stored replay offset: records
//! below the stored next offset only rebuild open windows (no dead letters,
//! no counting twice), then the worker moves on from the first tick.
//! Partitions added to the topic while running are found by a periodic
//! metadata refresh and read from their earliest offset.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::{ClientConfig, ClientContext};
use rustc_hash::FxHashMap;
use timely::dataflow::operators::generic::operator::source;
use timely::dataflow::operators::probe::Handle as ProbeHandle;
use timely::dataflow::{Scope, StreamVec};

use prescient_contracts::event::{Event, Reason, Rejection, parse_event};

use crate::aggregate::{Contribution, MetricKey, RowNames, ServiceKey, WindowAcc, hash_strs};
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
    /// The Kafka security settings cannot be used.
    #[error(transparent)]
    Connect(#[from] prescient_connect::ConnectError),
}

/// What the source emits.
#[derive(Debug, Clone)]
pub(crate) enum SourceMsg {
    /// A change to differential's input collection of `metrics_minute` rows.
    Data(((MetricKey, Contribution), u64, isize)),
    /// A change to the input collection of `service_minute` rows: the same
    /// events, folded per service and tick in the source (a service row
    /// gathers many metric rows, so far fewer updates reach differential
    /// than if every metric contribution were mapped to its service).
    ServiceData(((ServiceKey, Contribution), u64, isize)),
    /// Something for the commit operator.
    Sink(SinkMsg),
}

/// Source settings.
#[derive(Debug, Clone)]
pub(crate) struct SourceSettings {
    /// Bootstrap servers.
    pub brokers: String,
    /// TLS/SASL settings.
    pub security: prescient_connect::KafkaSecurity,
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
    /// Largest allowed lead of event time over Kafka time and wall clock (ms).
    pub max_future_ms: i64,
    /// Pause reading when commits lag by this many ticks.
    pub max_uncommitted_ticks: u64,
    /// Finish once every partition is read to its end.
    pub until_caught_up: bool,
    /// How often to look for partitions added to the topic.
    pub partition_refresh: Duration,
    /// Set to stop: sources finish their tick and stop.
    pub shutdown: Arc<AtomicBool>,
}

/// Everything [`kafka_source`] needs for one worker.
pub(crate) struct SourceContext {
    /// Settings shared by every worker.
    pub settings: SourceSettings,
    /// This worker's index.
    pub index: usize,
    /// Number of workers in the cluster.
    pub peers: usize,
    /// Partitions of the topic at start.
    pub partitions: i32,
    /// Stored progress to resume from.
    pub resume: Arc<ResumeState>,
    /// The event-time frontier, published by the commit operator.
    pub frontier: Rc<Cell<Option<i64>>>,
    /// Which ticks are committed (for backpressure).
    pub committed: ProbeHandle<u64>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Consumer group id (only used for client identity: no group commits).
    pub group_id: String,
}

/// The partitions worker `index` of `peers` reads out of `count`.
pub(crate) fn assignment(count: i32, index: usize, peers: usize) -> impl Iterator<Item = i32> {
    (0..count).filter(move |p| *p as usize % peers == index)
}

/// Partition ends (high watermarks) from librdkafka's statistics.
type Ends = Arc<Mutex<FxHashMap<i32, i64>>>;

/// Keeps librdkafka's view of partition ends and logs client errors.
pub(crate) struct SourceContextClient {
    topic: String,
    ends: Ends,
    oauth: prescient_connect::OAuth,
}

impl ClientContext for SourceContextClient {
    prescient_connect::oauth_token_hook!(oauth);

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
            let mut ends = self.ends.lock().expect("ends lock");
            for (p, part) in &topic.partitions {
                if *p >= 0 && part.hi_offset >= 0 {
                    ends.insert(*p, part.hi_offset);
                }
            }
        }
    }
}
impl ConsumerContext for SourceContextClient {}

struct PartState {
    next_offset: i64,
    /// Records below this were processed before the restart.
    resume_offset: i64,
    watermark: Option<i64>,
    eof_since: Option<Instant>,
    /// When the last valid (accepted) event was read, or the partition assigned.
    last_valid: Instant,
    /// Records were read since the last valid event (all rejected).
    invalid_since_valid: bool,
    /// The partition's end as last seen.
    end_offset: Option<i64>,
    /// Open buckets read from this partition: first offset and the watermark before it.
    tracked: BTreeMap<i64, (i64, Option<i64>)>,
}

impl PartState {
    fn new(stored: Option<&PartitionProgress>) -> PartState {
        let (start, resume_offset, watermark) = match stored {
            Some(s) => (s.replay_offset, s.next_offset, s.replay_watermark_ms),
            None => (0, 0, None),
        };
        PartState {
            next_offset: start,
            resume_offset,
            watermark,
            eof_since: None,
            last_valid: Instant::now(),
            invalid_since_valid: false,
            end_offset: None,
            tracked: BTreeMap::new(),
        }
    }

    fn replaying(&self) -> bool {
        self.next_offset < self.resume_offset
    }

    /// Idle: no valid event for the idle timeout, and either at the end of
    /// the partition or reading only records that are rejected. Garbage
    /// cannot keep a partition from being idle (and so hold the frontier).
    fn idle(&self, idle_timeout: Duration) -> bool {
        self.last_valid.elapsed() >= idle_timeout
            && (self.eof_since.is_some() || self.invalid_since_valid)
    }

    fn progress(&self, partition: i32, idle_timeout: Duration) -> PartitionProgress {
        let replay = self.tracked.values().min_by_key(|(offset, _)| *offset);
        PartitionProgress {
            partition,
            next_offset: self.next_offset,
            watermark_ms: self.watermark,
            idle: self.idle(idle_timeout),
            replay_offset: replay.map_or(self.next_offset, |(o, _)| *o),
            replay_watermark_ms: replay.map_or(self.watermark, |(_, w)| *w),
            end_offset: self.end_offset,
        }
    }
}

struct KafkaSource {
    consumer: BaseConsumer<SourceContextClient>,
    p: Processor,
    broker_warned: Option<Instant>,
    ends: Ends,
    index: usize,
    peers: usize,
    resume: Arc<ResumeState>,
    last_refresh: Instant,
}

/// Everything but the consumer, so a borrowed message can be processed in place.
struct Processor {
    settings: SourceSettings,
    dlq: DeadLetters,
    parts: FxHashMap<i32, PartState>,
    /// This tick's additions per (bucket, key hash): row key and accumulation.
    delta: FxHashMap<(i64, u64), (MetricKey, WindowAcc)>,
    /// Everything this worker added to open windows, to retract on close.
    /// Its keys are reused for the row's later contributions (see
    /// [`MetricKey`]'s `Ord`).
    totals: BTreeMap<i64, FxHashMap<u64, (MetricKey, WindowAcc)>>,
    /// This tick's additions per (bucket, service hash).
    service_delta: FxHashMap<(i64, u64), (ServiceKey, WindowAcc)>,
    /// Everything this worker added to open service windows.
    service_totals: BTreeMap<i64, FxHashMap<u64, (ServiceKey, WindowAcc)>>,
    /// One shared name per service (by hash), so every key of a service
    /// shares it; entries no key uses any more go when windows close.
    services: FxHashMap<u64, Arc<String>>,
    created: FxHashMap<i64, u64>,
    /// Dead letters this tick per (reason, Kafka-timestamp minute).
    rejected: FxHashMap<(Reason, i64), u64>,
    frontier: Rc<Cell<Option<i64>>>,
    metrics: Arc<Metrics>,
    /// Wall clock (ms) as of the current poll.
    now_ms: i64,
    /// When the current poll began (a valid event's arrival, to the poll's
    /// precision: one clock read per poll instead of per event).
    now: Instant,
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
    fn new(ctx: &SourceContext) -> Result<Self, SourceError> {
        let settings = ctx.settings.clone();
        let ends = Ends::default();
        let context = SourceContextClient {
            topic: settings.topic.clone(),
            ends: ends.clone(),
            oauth: settings.security.oauth()?,
        };
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &settings.brokers)
            .set("group.id", &ctx.group_id)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "true")
            .set("auto.offset.reset", "earliest")
            .set("fetch.wait.max.ms", "20")
            .set("statistics.interval.ms", "1000");
        for (k, v) in CONSUMER_READ_AHEAD {
            config.set(k, v);
        }
        let consumer: BaseConsumer<SourceContextClient> = settings
            .security
            .apply(&mut config)
            .create_with_context(context)?;
        let dlq = DeadLetters::new(
            &settings.brokers,
            &settings.security,
            &settings.dlq_topic,
            &settings.topic,
            ctx.metrics.clone(),
        )?;
        let mut src = KafkaSource {
            consumer,
            broker_warned: None,
            ends,
            index: ctx.index,
            peers: ctx.peers,
            resume: ctx.resume.clone(),
            last_refresh: Instant::now(),
            p: Processor {
                settings,
                dlq,
                parts: FxHashMap::default(),
                delta: FxHashMap::default(),
                totals: BTreeMap::new(),
                services: FxHashMap::default(),
                service_delta: FxHashMap::default(),
                service_totals: BTreeMap::new(),
                created: FxHashMap::default(),
                rejected: FxHashMap::default(),
                frontier: ctx.frontier.clone(),
                metrics: ctx.metrics.clone(),
                now_ms: chrono::Utc::now().timestamp_millis(),
                now: Instant::now(),
                counts: Counts::default(),
            },
        };
        let mine: Vec<i32> = assignment(ctx.partitions, ctx.index, ctx.peers).collect();
        src.add_partitions(&mine)?;
        Ok(src)
    }

    /// Starts reading `partitions` from their stored replay offsets (or the
    /// beginning), each with its own watermark.
    fn add_partitions(&mut self, partitions: &[i32]) -> Result<(), SourceError> {
        if partitions.is_empty() {
            return Ok(());
        }
        let mut tpl = TopicPartitionList::new();
        for &p in partitions {
            let st = PartState::new(self.resume.partitions.get(&p));
            tpl.add_partition_offset(&self.p.settings.topic, p, Offset::Offset(st.next_offset))?;
            self.p.parts.insert(p, st);
        }
        self.consumer.incremental_assign(&tpl)?;
        let to_replay: i64 = partitions
            .iter()
            .map(|p| {
                let st = &self.p.parts[p];
                (st.resume_offset - st.next_offset).max(0)
            })
            .sum();
        if to_replay > 0 {
            tracing::info!(records = to_replay, partitions = ?partitions, "re-reading records of still-open windows to rebuild their state");
        }
        Ok(())
    }

    /// Looks for partitions added to the topic (every `partition_refresh`).
    fn discover(&mut self) {
        if self.last_refresh.elapsed() < self.p.settings.partition_refresh {
            return;
        }
        self.last_refresh = Instant::now();
        let topic = self.p.settings.topic.clone();
        let count = match self
            .consumer
            .fetch_metadata(Some(&topic), Duration::from_secs(2))
        {
            Ok(md) => match md.topics().first() {
                Some(t) if t.error().is_none() => t.partitions().len() as i32,
                _ => return,
            },
            Err(e) => {
                tracing::debug!(error = %e, "partition refresh failed; trying again later");
                return;
            }
        };
        let new: Vec<i32> = assignment(count, self.index, self.peers)
            .filter(|p| !self.p.parts.contains_key(p))
            .collect();
        if new.is_empty() {
            return;
        }
        tracing::info!(topic = %topic, partitions = ?new, "new partitions found; reading them from their earliest offset");
        if let Err(e) = self.add_partitions(&new) {
            tracing::warn!(error = %e, "could not assign new partitions; trying again later");
            for p in new {
                self.p.parts.remove(&p);
            }
        }
    }

    fn replaying(&self) -> bool {
        self.p.parts.values().any(PartState::replaying)
    }

    /// Records between this worker's read positions and the partitions'
    /// ends as last seen (a lower bound: the ends are refreshed once a
    /// second and at every tick).
    fn backlog(&self) -> i64 {
        self.p
            .parts
            .values()
            .map(|st| st.end_offset.map_or(0, |end| (end - st.next_offset).max(0)))
            .sum()
    }

    fn caught_up(&self) -> bool {
        self.p
            .parts
            .values()
            .all(|p| p.eof_since.is_some() && !p.replaying())
    }

    /// Copies the partitions' ends (from librdkafka's statistics) into
    /// their state, and sets the lag gauges.
    fn update_ends(&mut self) {
        let ends = self.ends.lock().expect("ends lock");
        for (p, st) in &mut self.p.parts {
            if let Some(end) = ends.get(p) {
                // The statistics may lag what was read: never below it.
                let end = (*end).max(st.next_offset);
                st.end_offset = Some(end);
                self.p
                    .metrics
                    .consumer_lag
                    .with_label_values(&[&p.to_string()])
                    .set(end - st.next_offset);
            }
        }
    }

    /// Reads up to `max` records or for about `budget`; returns how many.
    fn poll(&mut self, max: usize, budget: Duration) -> usize {
        let started = Instant::now();
        self.p.now = started;
        self.p.now_ms = chrono::Utc::now().timestamp_millis();
        let mut n = 0;
        while n < max {
            match self.consumer.poll(Duration::ZERO) {
                None => break,
                Some(Err(KafkaError::PartitionEOF(p))) => {
                    if let Some(st) = self.p.parts.get_mut(&p) {
                        st.eof_since.get_or_insert_with(Instant::now);
                        // At the end: the partition's end is where we are.
                        st.end_offset = st.end_offset.max(Some(st.next_offset));
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

/// Minute (epoch ms) of a record's Kafka timestamp, or of the wall clock
/// when it has none.
fn kafka_minute(ts: Option<i64>, now_ms: i64) -> i64 {
    let ms = ts.unwrap_or(now_ms);
    ms - ms.rem_euclid(60_000)
}

impl Processor {
    fn reject(&mut self, replaying: bool, r: &BorrowedMessage<'_>, why: Rejection) {
        if let Some(st) = self.parts.get_mut(&r.partition()) {
            st.invalid_since_valid = true;
        }
        if replaying {
            return; // handled before the restart
        }
        self.metrics.reject(why.reason);
        *self
            .rejected
            .entry((
                why.reason,
                kafka_minute(r.timestamp().to_millis(), self.now_ms),
            ))
            .or_default() += 1;
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
        // A Kafka timestamp from the future must not carry event time past
        // the wall clock: the limit is the earlier of the two.
        let reference = timestamp_ms.map_or(self.now_ms, |k| k.min(self.now_ms));
        if event.ts_ms > reference.saturating_add(self.settings.max_future_ms) {
            let why = Rejection::new(
                Reason::TsInFuture,
                format!(
                    "ts {} is more than {} ms after the earlier of the record's Kafka timestamp ({timestamp_ms:?}) and the wall clock ({})",
                    event.ts_ms, self.settings.max_future_ms, self.now_ms
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
        st.last_valid = self.now;
        st.invalid_since_valid = false;
        st.tracked.entry(start).or_insert((offset, before));
        if !replaying && let Some(ts) = timestamp_ms {
            *self.created.entry(ts - ts.rem_euclid(10)).or_default() += 1;
        }
        self.accumulate(start, &event);
    }

    fn accumulate(&mut self, start: i64, e: &Event<'_>) {
        let hash = hash_strs(&[&e.tenant, &e.service, &e.endpoint]);
        let user = e.user.as_deref().map(|u| hash_strs(&[&e.tenant, u]));
        let latency = e.latency_ms.map(latency_bucket);
        let (totals, services) = (&self.totals, &mut self.services);
        let (key, acc) = self.delta.entry((start, hash)).or_insert_with(|| {
            // The row's key as this worker first made it, when it has
            // one: every copy then shares the same names.
            if let Some((key, _)) = totals.get(&start).and_then(|w| w.get(&hash)) {
                return (key.clone(), WindowAcc::default());
            }
            let service_hash = hash_strs(&[&e.service]);
            let service = match services.get(&service_hash) {
                Some(s) if **s == *e.service => s.clone(),
                Some(_) => Arc::new(e.service.to_string()),
                None => services
                    .entry(service_hash)
                    .or_insert_with(|| Arc::new(e.service.to_string()))
                    .clone(),
            };
            let key = MetricKey {
                hash,
                minute: start,
                service_hash,
                service,
                names: Arc::new(RowNames {
                    tenant: e.tenant.to_string(),
                    endpoint: e.endpoint.to_string(),
                }),
            };
            (key, WindowAcc::default())
        });
        acc.add_event(e.is_error(), latency, user);
        let service_totals = &self.service_totals;
        self.service_delta
            .entry((start, key.service_hash))
            .or_insert_with(|| {
                let kept = service_totals
                    .get(&start)
                    .and_then(|w| w.get(&key.service_hash));
                let key = kept.map_or_else(|| key.service_key(), |(k, _)| k.clone());
                (key, WindowAcc::default())
            })
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
        let new_keys = emit_delta(
            &mut self.delta,
            &mut self.totals,
            time,
            out,
            SourceMsg::Data,
        );
        self.metrics.keys_held.add(new_keys as i64);
        emit_delta(
            &mut self.service_delta,
            &mut self.service_totals,
            time,
            out,
            SourceMsg::ServiceData,
        );
        if let Some(f) = self.frontier.get() {
            let w = self.settings.windows;
            retract_closed(
                &mut self.service_totals,
                w,
                f,
                time,
                out,
                SourceMsg::ServiceData,
            );
            // Released with their windows: the accumulations and the names.
            let released = retract_closed(&mut self.totals, w, f, time, out, SourceMsg::Data);
            self.metrics.keys_held.sub(released as i64);
            if released > 0 {
                // Service names no open window of this worker uses (copies
                // still in flight keep their own reference).
                self.services.retain(|_, s| Arc::strong_count(s) > 1);
            }
            for st in self.parts.values_mut() {
                st.tracked.retain(|start, _| w.closes_at(*start) > f);
            }
        }
        if !self.created.is_empty() {
            let now = chrono::Utc::now().timestamp_millis();
            let mut read = self.metrics.read_delay_ms.lock().expect("read delay lock");
            for (ms, n) in &self.created {
                read.observe(now - ms, *n);
            }
        }
        out.extend(
            self.created
                .drain()
                .map(|(ms, n)| SourceMsg::Sink(SinkMsg::Created(ms, n))),
        );
        out.extend(self.rejected.drain().map(|((reason, minute), n)| {
            SourceMsg::Sink(SinkMsg::Rejected(reason.as_str().to_string(), minute, n))
        }));
        // Dead letters must be safe before the offsets past them are
        // committed: this waits (pausing the worker) until every one is
        // acknowledged, re-sending any the broker refused.
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

/// How far the source's consumer reads ahead (librdkafka settings):
/// 10,000 records per partition and 16 MiB at most, where librdkafka's
/// defaults (100,000 and 64 MiB) fetched a whole many-partition backlog
/// into memory at once; a partition whose read-ahead is full is fetched
/// again 5 ms later (librdkafka waits a whole second by default, which
/// cut a backlog's read rate tenfold). The bench's raw-ceiling consumer
/// uses them too.
pub const CONSUMER_READ_AHEAD: [(&str, &str); 3] = [
    ("queued.min.messages", "10000"),
    ("queued.max.messages.kbytes", "16384"),
    ("fetch.queue.backoff.ms", "5"),
];

/// Behind by more than this many records (per worker), a worker ends its
/// ticks only every [`BEHIND_TICKS`] ticks: it catches up in fewer, larger
/// steps (more events folded per row and tick before differential sees
/// them, fewer reductions, fewer and larger commits, each changed row
/// written once per commit). Not behind, it ends every tick, which keeps
/// freshness low.
pub(crate) const BEHIND_RECORDS: i64 = 50_000;
/// Ticks (of `--tick`) a worker's tick lasts while it is behind.
pub(crate) const BEHIND_TICKS: u32 = 10;

/// The source operator's own state between activations.
struct OperatorState {
    paused_since: Option<Instant>,
    warned: bool,
    replay_started: Option<Instant>,
    /// When the current tick began.
    tick_started: Instant,
}

/// Builds the source operator for this worker.
pub(crate) fn kafka_source<'scope>(
    scope: Scope<'scope, u64>,
    ctx: SourceContext,
) -> Result<StreamVec<'scope, u64, SourceMsg>, SourceError> {
    let mut state = Some(KafkaSource::new(&ctx)?);
    let settings = ctx.settings;
    let committed = ctx.committed;
    let stream = source(scope, "KafkaSource", move |capability, info| {
        let activator = scope.activator_for(info.address);
        let mut cap = Some(capability);
        let mut op = OperatorState {
            paused_since: None,
            warned: false,
            replay_started: None,
            tick_started: Instant::now(),
        };
        let behind_tick = Duration::from_millis(settings.tick_ms) * BEHIND_TICKS;
        move |output| {
            let Some(src) = state.as_mut() else { return };
            let Some(c) = cap.as_mut() else { return };
            let time = *c.time();
            let stopping = settings.shutdown.load(Ordering::Relaxed);
            // Backpressure: wait while commits lag too far behind.
            if time > settings.max_uncommitted_ticks
                && !stopping
                && committed.less_than(&(time - settings.max_uncommitted_ticks))
            {
                let since = *op.paused_since.get_or_insert_with(Instant::now);
                if !op.warned && since.elapsed() > Duration::from_secs(1) {
                    tracing::warn!(
                        "commits are behind; pausing reads until the database catches up"
                    );
                    op.warned = true;
                }
                activator.activate_after(Duration::from_millis(10));
                return;
            }
            if let Some(since) = op.paused_since.take()
                && std::mem::take(&mut op.warned)
            {
                tracing::info!(
                    paused_ms = since.elapsed().as_millis() as u64,
                    "commits caught up; reading again"
                );
            }
            if !stopping {
                src.discover();
            }
            let n = if stopping {
                0
            } else {
                src.poll(20_000, Duration::from_millis(20))
            };
            let mut buf = Vec::new();
            if src.replaying() && !stopping {
                // Stay at the first tick until every partition is replayed.
                op.replay_started.get_or_insert_with(Instant::now);
                activator.activate();
                return;
            }
            if let Some(started) = op.replay_started.take() {
                tracing::info!(
                    seconds = started.elapsed().as_secs_f64(),
                    "open windows rebuilt; resuming"
                );
            }
            let now = now_tick(settings.tick_ms).max(time + 1);
            let finished = stopping || (settings.until_caught_up && src.caught_up());
            let due = now_tick(settings.tick_ms) > time
                && (src.backlog() <= BEHIND_RECORDS || op.tick_started.elapsed() >= behind_tick);
            if time == 0 || due || finished {
                src.update_ends();
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
                op.tick_started = Instant::now();
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

/// One differential update of a row keyed by `K`: (data, time, diff).
type Update<K> = ((K, Contribution), u64, isize);

/// Emits one tick's per-row changes (`delta`) as differential updates at
/// `time` (wrapped by `msg`) and folds them into the windows' running
/// totals; returns how many rows were new to their window.
fn emit_delta<K: Clone>(
    delta: &mut FxHashMap<(i64, u64), (K, WindowAcc)>,
    totals: &mut BTreeMap<i64, FxHashMap<u64, (K, WindowAcc)>>,
    time: u64,
    out: &mut Vec<SourceMsg>,
    msg: fn(Update<K>) -> SourceMsg,
) -> usize {
    let mut new_keys = 0;
    for ((start, hash), (key, acc)) in delta.drain() {
        out.extend(
            acc.contributions(1)
                .map(|(c, n)| msg(((key.clone(), c), time, n))),
        );
        let window = totals.entry(start).or_default();
        match window.get_mut(&hash) {
            Some((_, total)) => total.merge(&acc),
            None => {
                window.insert(hash, (key, acc));
                new_keys += 1;
            }
        }
    }
    new_keys
}

/// Retracts (at `time`, wrapped by `msg`) every row of the windows that
/// close at or before the frontier `f`, and drops their running totals
/// with their keys; returns how many rows were released.
fn retract_closed<K: Clone>(
    totals: &mut BTreeMap<i64, FxHashMap<u64, (K, WindowAcc)>>,
    windows: Windows,
    f: i64,
    time: u64,
    out: &mut Vec<SourceMsg>,
    msg: fn(Update<K>) -> SourceMsg,
) -> usize {
    let mut released = 0;
    while let Some(entry) = totals.first_entry() {
        if windows.closes_at(*entry.key()) > f {
            break;
        }
        for (_, (key, total)) in entry.remove() {
            out.extend(
                total
                    .contributions(-1)
                    .map(|(c, n)| msg(((key.clone(), c), time, n))),
            );
            released += 1;
        }
    }
    released
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignment_covers_every_partition_once_and_grows_stably() {
        let peers = 3;
        for count in [1, 4, 7, 64] {
            let mut all: Vec<i32> = (0..peers)
                .flat_map(|w| assignment(count, w, peers))
                .collect();
            all.sort();
            assert_eq!(all, (0..count).collect::<Vec<_>>());
        }
        // Growing a topic never moves a partition to another worker: a
        // worker's new partitions are exactly the added ones it owns.
        for w in 0..peers {
            let before: Vec<i32> = assignment(4, w, peers).collect();
            let after: Vec<i32> = assignment(7, w, peers).collect();
            assert!(after.starts_with(&before));
            assert!(after[before.len()..].iter().all(|p| *p >= 4));
        }
    }

    #[test]
    fn garbage_does_not_keep_a_partition_busy() {
        let timeout = Duration::from_millis(20);
        let mut st = PartState::new(None);
        assert!(!st.idle(timeout), "fresh partitions are not idle at once");
        std::thread::sleep(Duration::from_millis(30));
        assert!(!st.idle(timeout), "neither at the end nor reading garbage");
        st.invalid_since_valid = true;
        assert!(st.idle(timeout), "only garbage for the timeout: idle");
        st.invalid_since_valid = false;
        st.last_valid = Instant::now();
        st.eof_since = Some(Instant::now());
        assert!(!st.idle(timeout), "a valid event just now");
        std::thread::sleep(Duration::from_millis(30));
        assert!(st.idle(timeout), "caught up and quiet");
    }
}
