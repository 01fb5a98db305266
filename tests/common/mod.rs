//! Shared helpers of the integration tests: real components on loopback
//! (a broker in its own process, a private PostgreSQL), a seeded event
//! stream with every kind of trouble, and a plain reference computation of
//! the rows the dataflow must produce.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use prescient_contracts::event::{Reason, parse_event};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

pub(crate) use prescient_infra::postgres::PgInstance;

/// The `prescient` binary under test.
pub(crate) fn prescient() -> Command {
    Command::new(env!("CARGO_BIN_EXE_prescient"))
}

/// Bucket length every test uses (`--bucket 1m`).
pub(crate) const BUCKET_MS: i64 = 60_000;
/// Allowed lateness every test uses (`--lateness 2m`).
pub(crate) const LATENESS_MS: i64 = 120_000;
/// Largest latency the histogram keeps (docs/dataflow.md); above it, clamped.
pub(crate) const MAX_LATENCY_MS: f64 = 1e9;
/// Default `--max-future`.
pub(crate) const MAX_FUTURE_MS: i64 = 3_600_000;

/// Start of the bucket holding `ts`, as docs/dataflow.md defines buckets:
/// `[start, start + bucket)` with starts at multiples of the bucket length.
pub(crate) fn bucket_of(ts: i64) -> i64 {
    ts - ts.rem_euclid(BUCKET_MS)
}

/// The documented lateness rule: an event is too late when its bucket's
/// end plus the allowed lateness is at or before the watermark it is
/// judged against.
pub(crate) fn is_too_late(ts: i64, watermark: Option<i64>) -> bool {
    watermark.is_some_and(|wm| bucket_of(ts) + BUCKET_MS + LATENESS_MS <= wm)
}

/// A broker in its own process (`prescient broker`), killed on drop.
pub(crate) struct Broker {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    /// bootstrap.servers
    pub(crate) bootstrap: String,
}

impl Broker {
    /// Starts a one-broker cluster with `topics` (name, partitions) created up front.
    pub(crate) fn start(topics: &[(&str, i32)]) -> Broker {
        let specs: Vec<String> = topics.iter().map(|(t, p)| format!("{t}:{p}")).collect();
        let specs: Vec<&str> = specs.iter().map(String::as_str).collect();
        Broker::start_cluster(1, &specs)
    }

    /// Starts a cluster of `brokers` brokers with topics given as
    /// `NAME:PARTITIONS` or `NAME:PARTITIONS@LEADER`.
    pub(crate) fn start_cluster(brokers: i32, topics: &[&str]) -> Broker {
        let mut cmd = prescient();
        cmd.args(["broker", "--brokers", &brokers.to_string()]);
        for t in topics {
            cmd.arg("--topic").arg(t);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prescient broker");
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout
            .read_line(&mut line)
            .expect("broker prints its address");
        let bootstrap = line
            .trim()
            .strip_prefix("bootstrap=")
            .expect("bootstrap= line")
            .to_string();
        Broker {
            child,
            stdin,
            stdout,
            bootstrap,
        }
    }

    /// Sends a failure-injection command (`down 2`, `up 2`,
    /// `fail-produce 3 topic_authorization_failed`) and waits for its `ok`.
    pub(crate) fn command(&mut self, command: &str) {
        writeln!(self.stdin, "{command}").unwrap();
        self.stdin.flush().unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ok", "broker command {command:?}");
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A private PostgreSQL for one test.
pub(crate) async fn postgres() -> PgInstance {
    PgInstance::start()
        .await
        .expect("private PostgreSQL: install it with `apt-get install -y postgresql`")
}

/// One record to produce, with its partition and Kafka timestamp.
#[derive(Debug, Clone)]
pub(crate) struct TestRecord {
    /// Partition.
    pub(crate) partition: i32,
    /// Key.
    pub(crate) key: Vec<u8>,
    /// Value (None: a record without payload).
    pub(crate) payload: Option<Vec<u8>>,
    /// Kafka timestamp, ms.
    pub(crate) kafka_ts: i64,
}

/// Produces `records` in order (order within a partition is kept).
pub(crate) fn produce(bootstrap: &str, topic: &str, records: &[TestRecord]) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("max.in.flight.requests.per.connection", "1")
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "1000000")
        .set("message.max.bytes", "1048576")
        .create()
        .unwrap();
    for r in records {
        let mut rec = BaseRecord::<[u8], [u8]>::to(topic)
            .partition(r.partition)
            .key(&r.key)
            .timestamp(r.kafka_ts);
        if let Some(p) = &r.payload {
            rec = rec.payload(p);
        }
        let mut rec = rec;
        loop {
            match producer.send(rec) {
                Ok(()) => break,
                Err((_, back)) => {
                    rec = back;
                    producer.poll(Duration::from_millis(5));
                }
            }
        }
    }
    producer
        .flush(Duration::from_secs(60))
        .expect("flush test records");
}

/// Start of the test stream's virtual clock: 2026-01-01T00:00:00Z.
pub(crate) const T0: i64 = 1_767_225_600_000;

/// A seeded stream over `partitions` partitions spanning 20 minutes of
/// event time: mostly in order with jitter, plus late-within-allowance,
/// too-late, malformed, future and absurd records.
pub(crate) fn seeded_stream(seed: u64, n: usize, partitions: i32) -> Vec<TestRecord> {
    let mut rng = StdRng::seed_from_u64(seed);
    let span = 20 * 60_000;
    (0..n)
        .map(|i| {
            let clock = T0 + (span as f64 * i as f64 / n as f64) as i64;
            let partition = rng.random_range(0..partitions);
            let tenant = format!("t{}", rng.random_range(0..3));
            let service = ["api", "web", "jobs"][rng.random_range(0..3)];
            let endpoint = ["", "/a", "/b"][rng.random_range(0..3)];
            let kind = rng.random_range(0..100);
            let ts = match kind {
                0..80 => clock + rng.random_range(-5_000..1_000),
                80..88 => clock - rng.random_range(60_000..170_000),
                88..92 => clock - rng.random_range(200_000..900_000),
                92..94 => clock + 2 * MAX_FUTURE_MS,
                _ => clock,
            };
            let user = format!("u{}", rng.random_range(0..40));
            let status = if rng.random_range(0..10) == 0 { 503 } else { 200 };
            let latency = rng.random_range(0.5f64..400.0);
            let payload = match kind {
                94 => b"{\"ts\":".to_vec(),
                95 => format!(r#"{{"ts":{ts},"tenant":"{tenant}"}}"#).into_bytes(),
                96 => format!(r#"{{"ts":{ts},"tenant":"{tenant}","service":"{service}","status":"x"}}"#).into_bytes(),
                97 => format!(r#"{{"ts":12,"tenant":"{tenant}","service":"{service}"}}"#).into_bytes(),
                98 if i % 2 == 0 => format!(
                    r#"{{"ts":"{}","tenant":"{tenant}","service":"{service}","endpoint":"{endpoint}"}}"#,
                    chrono::DateTime::from_timestamp_millis(ts).unwrap().to_rfc3339()
                )
                .into_bytes(),
                98 => format!(r#"{{"ts":{ts},"tenant":"{tenant}","service":"{service}","user":"{user}"}}"#).into_bytes(),
                _ => format!(
                    r#"{{"ts":{ts},"tenant":"{tenant}","service":"{service}","endpoint":"{endpoint}","user":"{user}","status":{status},"latency_ms":{latency:.3}}}"#
                )
                .into_bytes(),
            };
            TestRecord { partition, key: user.into_bytes(), payload: Some(payload), kafka_ts: clock }
        })
        .collect()
}

/// The measures of a row, as stored.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Row {
    /// requests
    pub(crate) requests: i64,
    /// errors
    pub(crate) errors: i64,
    /// latency_p50_ms, p95, p99
    pub(crate) latency: [Option<f64>; 3],
    /// active_users
    pub(crate) active_users: i64,
}

/// Rows keyed by (tenant, service, endpoint, minute ms) and (service, minute ms).
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Rows {
    /// metrics_minute
    pub(crate) metrics: BTreeMap<(String, String, String, i64), Row>,
    /// service_minute
    pub(crate) services: BTreeMap<(String, i64), Row>,
}

#[derive(Default)]
struct Acc {
    requests: i64,
    errors: i64,
    latencies: Vec<f64>,
    users: HashSet<(String, String)>,
}

/// Exact nearest-rank quantile of `sorted` (the value of rank ⌈q·n⌉).
fn exact_quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

impl Acc {
    fn row(&mut self) -> Row {
        self.latencies.sort_by(f64::total_cmp);
        let q = |q| exact_quantile(&self.latencies, q);
        Row {
            requests: self.requests,
            errors: self.errors,
            latency: [q(0.5), q(0.95), q(0.99)],
            active_users: self.users.len() as i64,
        }
    }
}

/// What the dataflow must produce for `records` (produced in this order to
/// a fresh topic), computed from the documented rules alone: the rows
/// (latency quantiles exact, by sorting), and the rejected records by
/// (partition, offset). Validation is the contract's `parse_event`.
pub(crate) fn reference(records: &[TestRecord]) -> (Rows, BTreeMap<(i32, i64), Reason>) {
    let now = chrono::Utc::now().timestamp_millis();
    let mut next_offset: BTreeMap<i32, i64> = BTreeMap::new();
    let mut watermark: BTreeMap<i32, i64> = BTreeMap::new();
    let mut metrics: BTreeMap<(String, String, String, i64), Acc> = BTreeMap::new();
    let mut services: BTreeMap<(String, i64), Acc> = BTreeMap::new();
    let mut rejected = BTreeMap::new();
    for r in records {
        let offset = *next_offset
            .entry(r.partition)
            .and_modify(|o| *o += 1)
            .or_insert(0);
        let payload = r.payload.clone().unwrap_or_default();
        let e = match parse_event(&payload) {
            Ok(e) => e,
            Err(why) => {
                rejected.insert((r.partition, offset), why.reason);
                continue;
            }
        };
        if e.ts_ms > r.kafka_ts.min(now) + MAX_FUTURE_MS {
            rejected.insert((r.partition, offset), Reason::TsInFuture);
            continue;
        }
        let start = bucket_of(e.ts_ms);
        let wm = watermark.get(&r.partition).copied();
        if is_too_late(e.ts_ms, wm) {
            rejected.insert((r.partition, offset), Reason::TooLate);
            continue;
        }
        watermark.insert(r.partition, wm.unwrap_or(i64::MIN).max(e.ts_ms));
        for acc in [
            metrics
                .entry((
                    e.tenant.to_string(),
                    e.service.to_string(),
                    e.endpoint.to_string(),
                    start,
                ))
                .or_default(),
            services.entry((e.service.to_string(), start)).or_default(),
        ] {
            acc.requests += 1;
            acc.errors += i64::from(e.status >= 500);
            if let Some(l) = e.latency_ms {
                // Documented: latencies are clamped to 1e9 ms, and below
                // 0.001 ms read as 0.
                acc.latencies
                    .push(if l < 1e-3 { 0.0 } else { l.min(MAX_LATENCY_MS) });
            }
            if let Some(u) = &e.user {
                acc.users.insert((e.tenant.to_string(), u.to_string()));
            }
        }
    }
    let rows = Rows {
        metrics: metrics.into_iter().map(|(k, mut a)| (k, a.row())).collect(),
        services: services
            .into_iter()
            .map(|(k, mut a)| (k, a.row()))
            .collect(),
    };
    (rows, rejected)
}

fn row(requests: i64, errors: i64, latency: [Option<f64>; 3], active_users: i64) -> Row {
    Row {
        requests,
        errors,
        latency,
        active_users,
    }
}

/// The rows in the database.
pub(crate) async fn actual_rows(url: &str) -> Rows {
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    type M = (
        String,
        String,
        String,
        i64,
        i64,
        i64,
        Option<f64>,
        Option<f64>,
        Option<f64>,
        i64,
    );
    let m: Vec<M> = sqlx::query_as(
        "SELECT tenant, service, endpoint, (extract(epoch from minute) * 1000)::int8, requests, errors,
                latency_p50_ms, latency_p95_ms, latency_p99_ms, active_users FROM metrics_minute",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    type S = (
        String,
        i64,
        i64,
        i64,
        Option<f64>,
        Option<f64>,
        Option<f64>,
        i64,
    );
    let s: Vec<S> = sqlx::query_as(
        "SELECT service, (extract(epoch from minute) * 1000)::int8, requests, errors,
                latency_p50_ms, latency_p95_ms, latency_p99_ms, active_users FROM service_minute",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    Rows {
        metrics: m
            .into_iter()
            .map(|(t, s, e, m, r, er, a, b, c, u)| ((t, s, e, m), row(r, er, [a, b, c], u)))
            .collect(),
        services: s
            .into_iter()
            .map(|(s, m, r, er, a, b, c, u)| ((s, m), row(r, er, [a, b, c], u)))
            .collect(),
    }
}

/// The latency histogram's documented relative error (docs/dataflow.md: ≤ 1%).
pub(crate) const LATENCY_ERROR: f64 = 0.01;

/// True when `actual` matches `expected` exactly, or (with `tolerance`)
/// with each latency quantile within that relative error of the expected one.
fn row_matches(actual: &Row, expected: &Row, tolerance: f64) -> bool {
    let close = |a: &Option<f64>, e: &Option<f64>| match (a, e) {
        (Some(a), Some(e)) => (a - e).abs() <= tolerance * e.abs() + 1e-9,
        (None, None) => true,
        _ => false,
    };
    actual.requests == expected.requests
        && actual.errors == expected.errors
        && actual.active_users == expected.active_users
        && actual
            .latency
            .iter()
            .zip(&expected.latency)
            .all(|(a, e)| close(a, e))
}

/// Differences between two keyed row maps, in words.
fn differences<K: Ord + std::fmt::Debug>(
    table: &str,
    actual: &BTreeMap<K, Row>,
    expected: &BTreeMap<K, Row>,
    tolerance: f64,
) -> Vec<String> {
    let wrong = expected
        .iter()
        .filter(|(k, v)| actual.get(*k).is_none_or(|a| !row_matches(a, v, tolerance)))
        .map(|(k, v)| format!("{table} {k:?}: expected {v:?}, got {:?}", actual.get(k)));
    let extra = actual
        .keys()
        .filter(|k| !expected.contains_key(*k))
        .map(|k| format!("{table} {k:?}: unexpected row"));
    wrong.chain(extra).collect()
}

/// Asserts two row sets from the database are equal, printing the first differences.
pub(crate) fn assert_rows_eq(actual: &Rows, expected: &Rows) {
    assert_rows_within(actual, expected, 0.0)
}

/// Asserts the database's rows match the reference's: counts exact,
/// latency quantiles within the histogram's documented error of the exact ones.
pub(crate) fn assert_rows_match(actual: &Rows, reference: &Rows) {
    assert_rows_within(actual, reference, LATENCY_ERROR)
}

fn assert_rows_within(actual: &Rows, expected: &Rows, tolerance: f64) {
    let mut problems = differences("metrics", &actual.metrics, &expected.metrics, tolerance);
    problems.extend(differences(
        "service",
        &actual.services,
        &expected.services,
        tolerance,
    ));
    assert!(
        problems.is_empty(),
        "{} of {} metric + {} service rows differ; first: {:#?}",
        problems.len(),
        expected.metrics.len(),
        expected.services.len(),
        &problems[..problems.len().min(8)]
    );
}

/// A dead letter as read back.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct DeadLetter {
    /// Source partition.
    pub(crate) partition: i32,
    /// Source offset.
    pub(crate) offset: i64,
    /// Reason header.
    pub(crate) reason: String,
    /// Original bytes.
    pub(crate) payload: Vec<u8>,
    /// Every header.
    pub(crate) headers: BTreeMap<String, String>,
}

/// Reads every record of the dead-letter topic.
pub(crate) fn dead_letters(bootstrap: &str) -> Vec<DeadLetter> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "test-dlq-reader")
        .set("enable.partition.eof", "true")
        .create()
        .unwrap();
    let topic = prescient_contracts::DEAD_LETTER_TOPIC;
    let partitions = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap()
        .topics()[0]
        .partitions()
        .len() as i32;
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut out = Vec::new();
    let mut at_end = 0;
    let deadline = Instant::now() + Duration::from_secs(600);
    while Instant::now() < deadline && at_end < partitions {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                let headers = m.headers().expect("dead letters carry headers");
                let get = |name: &str| {
                    headers
                        .iter()
                        .find(|h| h.key == name)
                        .and_then(|h| h.value)
                        .map(|v| String::from_utf8_lossy(v).to_string())
                        .unwrap_or_default()
                };
                out.push(DeadLetter {
                    partition: get("prescient-source-partition").parse().unwrap(),
                    offset: get("prescient-source-offset").parse().unwrap(),
                    reason: get("prescient-reason"),
                    payload: m.payload().unwrap_or_default().to_vec(),
                    headers: headers
                        .iter()
                        .map(|h| {
                            let v = h.value.map(|v| String::from_utf8_lossy(v).to_string());
                            (h.key.to_string(), v.unwrap_or_default())
                        })
                        .collect(),
                });
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => at_end += 1,
            _ => {}
        }
    }
    out
}

/// `prescient dataflow` against `bootstrap` and `url` with the tests' window rules.
pub(crate) fn dataflow(bootstrap: &str, url: &str) -> Command {
    dataflow_idle(bootstrap, url, "1h")
}

/// As [`dataflow`], with `--idle-timeout idle`.
pub(crate) fn dataflow_idle(bootstrap: &str, url: &str, idle: &str) -> Command {
    let mut cmd = prescient();
    cmd.args(["dataflow", "--brokers", bootstrap, "--database-url", url])
        .args([
            "--bucket",
            "1m",
            "--lateness",
            "2m",
            "--idle-timeout",
            idle,
            "--tick",
            "50ms",
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null());
    cmd
}

/// Runs a command to completion within `limit`, asserting success.
pub(crate) fn run_to_end(cmd: &mut Command, limit: Duration) {
    let mut child = cmd.spawn().expect("spawn");
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{cmd:?} failed: {status}");
            return;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("{cmd:?} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Distinct (partition, offset) → reason of dead letters.
pub(crate) fn dead_letter_set(letters: &[DeadLetter]) -> BTreeMap<(i32, i64), String> {
    letters
        .iter()
        .map(|d| ((d.partition, d.offset), d.reason.clone()))
        .collect()
}

/// Expected dead letters as (partition, offset) → reason label.
pub(crate) fn labels(rejected: &BTreeMap<(i32, i64), Reason>) -> BTreeMap<(i32, i64), String> {
    rejected
        .iter()
        .map(|(k, r)| (*k, r.as_str().to_string()))
        .collect()
}

/// Reasons present.
pub(crate) fn reasons(rejected: &BTreeMap<(i32, i64), Reason>) -> BTreeSet<Reason> {
    rejected.values().copied().collect()
}

/// (partition, offset) of each record, as produced in order to a fresh topic.
pub(crate) fn offsets(records: &[TestRecord]) -> Vec<(i32, i64)> {
    let mut next: BTreeMap<i32, i64> = BTreeMap::new();
    records
        .iter()
        .map(|r| {
            let o = next.entry(r.partition).or_insert(0);
            *o += 1;
            (r.partition, *o - 1)
        })
        .collect()
}

/// Expected `dead_letters_minute`: (reason, minute of the Kafka timestamp) → count.
pub(crate) fn expected_dead_letter_minutes(
    records: &[TestRecord],
    rejected: &BTreeMap<(i32, i64), Reason>,
) -> BTreeMap<(String, i64), i64> {
    let mut out = BTreeMap::new();
    for (r, at) in records.iter().zip(offsets(records)) {
        if let Some(reason) = rejected.get(&at) {
            let minute = r.kafka_ts - r.kafka_ts.rem_euclid(60_000);
            *out.entry((reason.as_str().to_string(), minute))
                .or_default() += 1;
        }
    }
    out
}

/// `dead_letters_minute` as stored: (reason, minute ms) → count.
pub(crate) async fn actual_dead_letter_minutes(url: &str) -> BTreeMap<(String, i64), i64> {
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT reason, (extract(epoch from minute) * 1000)::int8, count FROM dead_letters_minute",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    rows.into_iter().map(|(r, m, c)| ((r, m), c)).collect()
}

/// Sum of the stored `next_offset`s (-1 while PostgreSQL is unreachable).
pub(crate) async fn committed_offsets(url: &str) -> i64 {
    match sqlx::PgPool::connect(url).await {
        Ok(pool) => {
            let v: Option<i64> =
                sqlx::query_scalar("SELECT sum(next_offset)::int8 FROM ingest_offsets")
                    .fetch_one(&pool)
                    .await
                    .unwrap_or(None);
            pool.close().await;
            v.unwrap_or(0)
        }
        Err(_) => -1,
    }
}

/// A valid event record.
pub(crate) fn event(
    partition: i32,
    ts: i64,
    kafka_ts: i64,
    endpoint: &str,
    user: &str,
) -> TestRecord {
    TestRecord {
        partition,
        key: user.as_bytes().to_vec(),
        payload: Some(
            serde_json::json!({
                "ts": ts, "tenant": "acme", "service": "api", "endpoint": endpoint,
                "user": user, "latency_ms": 12.5,
            })
            .to_string()
            .into_bytes(),
        ),
        kafka_ts,
    }
}
