//! Shared helpers of the integration tests: real components on loopback
//! (a broker in its own process, a private PostgreSQL), a seeded event
//! stream with every kind of trouble, and a plain reference computation of
//! the rows the dataflow must produce.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use prescient_contracts::event::{Reason, parse_event};
use prescient_dataflow::window::{Windows, latency_bucket, latency_value, quantile_bucket};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

pub use prescient_infra::postgres::PgInstance;

/// The `prescient` binary under test.
pub fn prescient() -> Command {
    Command::new(env!("CARGO_BIN_EXE_prescient"))
}

/// Window rules every test uses: 1-minute buckets, 2 minutes of lateness.
pub const WINDOWS: Windows = Windows {
    bucket_ms: 60_000,
    lateness_ms: 120_000,
};
/// Default `--max-future`.
pub const MAX_FUTURE_MS: i64 = 3_600_000;

/// A broker in its own process (`prescient broker`), killed on drop.
pub struct Broker {
    child: Child,
    /// bootstrap.servers
    pub bootstrap: String,
}

impl Broker {
    /// Starts a broker with `topics` (name, partitions) created up front.
    pub fn start(topics: &[(&str, i32)]) -> Broker {
        let mut cmd = prescient();
        cmd.arg("broker");
        for (t, p) in topics {
            cmd.arg("--topic").arg(format!("{t}:{p}"));
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prescient broker");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("broker prints its address");
        let bootstrap = line
            .trim()
            .strip_prefix("bootstrap=")
            .expect("bootstrap= line")
            .to_string();
        Broker { child, bootstrap }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A private PostgreSQL for one test.
pub async fn postgres() -> PgInstance {
    PgInstance::start()
        .await
        .expect("private PostgreSQL: install it with `apt-get install -y postgresql`")
}

/// One record to produce, with its partition and Kafka timestamp.
#[derive(Debug, Clone)]
pub struct TestRecord {
    /// Partition.
    pub partition: i32,
    /// Key.
    pub key: Vec<u8>,
    /// Value (None: a record without payload).
    pub payload: Option<Vec<u8>>,
    /// Kafka timestamp, ms.
    pub kafka_ts: i64,
}

/// Produces `records` in order (order within a partition is kept).
pub fn produce(bootstrap: &str, topic: &str, records: &[TestRecord]) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("max.in.flight.requests.per.connection", "1")
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "1000000")
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
pub const T0: i64 = 1_767_225_600_000;

/// A seeded stream over `partitions` partitions spanning 20 minutes of
/// event time: mostly in order with jitter, plus late-within-allowance,
/// too-late, malformed, future and absurd records.
pub fn seeded_stream(seed: u64, n: usize, partitions: i32) -> Vec<TestRecord> {
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
pub struct Row {
    /// requests
    pub requests: i64,
    /// errors
    pub errors: i64,
    /// latency_p50_ms, p95, p99
    pub latency: [Option<f64>; 3],
    /// active_users
    pub active_users: i64,
}

/// Rows keyed by (tenant, service, endpoint, minute ms) and (service, minute ms).
#[derive(Debug, Default, PartialEq)]
pub struct Rows {
    /// metrics_minute
    pub metrics: BTreeMap<(String, String, String, i64), Row>,
    /// service_minute
    pub services: BTreeMap<(String, i64), Row>,
}

#[derive(Default)]
struct Acc {
    requests: i64,
    errors: i64,
    hist: BTreeMap<u16, i64>,
    users: HashSet<(String, String)>,
}

impl Acc {
    fn row(&self) -> Row {
        let q = |q| quantile_bucket(self.hist.iter().map(|(b, n)| (b, *n)), q).map(latency_value);
        Row {
            requests: self.requests,
            errors: self.errors,
            latency: [q(0.5), q(0.95), q(0.99)],
            active_users: self.users.len() as i64,
        }
    }
}

/// What the dataflow must produce for `records` (produced in this order to
/// a fresh topic): the rows, and the rejected records by (partition, offset).
pub fn reference(records: &[TestRecord]) -> (Rows, BTreeMap<(i32, i64), Reason>) {
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
        if e.ts_ms > r.kafka_ts + MAX_FUTURE_MS {
            rejected.insert((r.partition, offset), Reason::TsInFuture);
            continue;
        }
        let start = WINDOWS.bucket_start(e.ts_ms);
        let wm = watermark.get(&r.partition).copied();
        if WINDOWS.too_late(start, wm) {
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
            acc.errors += i64::from(e.is_error());
            if let Some(l) = e.latency_ms {
                *acc.hist.entry(latency_bucket(l)).or_default() += 1;
            }
            if let Some(u) = &e.user {
                acc.users.insert((e.tenant.to_string(), u.to_string()));
            }
        }
    }
    let rows = Rows {
        metrics: metrics.into_iter().map(|(k, a)| (k, a.row())).collect(),
        services: services.into_iter().map(|(k, a)| (k, a.row())).collect(),
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
pub async fn actual_rows(url: &str) -> Rows {
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

/// Differences between two keyed row maps, in words.
fn differences<K: Ord + std::fmt::Debug>(
    table: &str,
    actual: &BTreeMap<K, Row>,
    expected: &BTreeMap<K, Row>,
) -> Vec<String> {
    let wrong = expected
        .iter()
        .filter(|(k, v)| actual.get(*k) != Some(*v))
        .map(|(k, v)| format!("{table} {k:?}: expected {v:?}, got {:?}", actual.get(k)));
    let extra = actual
        .keys()
        .filter(|k| !expected.contains_key(*k))
        .map(|k| format!("{table} {k:?}: unexpected row"));
    wrong.chain(extra).collect()
}

/// Asserts two row sets are equal, printing the first differences.
pub fn assert_rows_eq(actual: &Rows, expected: &Rows) {
    let mut problems = differences("metrics", &actual.metrics, &expected.metrics);
    problems.extend(differences("service", &actual.services, &expected.services));
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
pub struct DeadLetter {
    /// Source partition.
    pub partition: i32,
    /// Source offset.
    pub offset: i64,
    /// Reason header.
    pub reason: String,
    /// Original bytes.
    pub payload: Vec<u8>,
}

/// Reads every record of the dead-letter topic.
pub fn dead_letters(bootstrap: &str) -> Vec<DeadLetter> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "test-dlq-reader")
        .set("enable.partition.eof", "true")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(prescient_contracts::DEAD_LETTER_TOPIC, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
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
                });
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => break,
            _ => {}
        }
    }
    out
}

/// `prescient dataflow` against `bootstrap` and `url` with the tests' window rules.
pub fn dataflow(bootstrap: &str, url: &str) -> Command {
    let mut cmd = prescient();
    cmd.args(["dataflow", "--brokers", bootstrap, "--database-url", url])
        .args([
            "--bucket",
            "1m",
            "--lateness",
            "2m",
            "--idle-timeout",
            "1h",
            "--tick",
            "50ms",
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null());
    cmd
}

/// Runs a command to completion within `limit`, asserting success.
pub fn run_to_end(cmd: &mut Command, limit: Duration) {
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
pub fn dead_letter_set(letters: &[DeadLetter]) -> BTreeMap<(i32, i64), String> {
    letters
        .iter()
        .map(|d| ((d.partition, d.offset), d.reason.clone()))
        .collect()
}

/// Expected dead letters as (partition, offset) → reason label.
pub fn labels(rejected: &BTreeMap<(i32, i64), Reason>) -> BTreeMap<(i32, i64), String> {
    rejected
        .iter()
        .map(|(k, r)| (*k, r.as_str().to_string()))
        .collect()
}

/// Reasons present.
pub fn reasons(rejected: &BTreeMap<(i32, i64), Reason>) -> BTreeSet<Reason> {
    rejected.values().copied().collect()
}
