//! `prescient produce`: a load generator for the `user-events` contract,
//! and a replayer of `timestamp,value` series as request volume.
//!
//! Generated traffic has a base rate, daily seasonality, noise and flash
//! crowds; tenants, services, endpoints and users are drawn with skew
//! (a few are hot). Everything is drawn from one seeded RNG: the same seed
//! gives the same events, in the same order, with the same timestamps
//! relative to `--start`.

use std::f64::consts::PI;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rdkafka::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use prescient_contracts::event::Event;

/// Failures of the generator.
#[derive(Debug, thiserror::Error)]
pub enum ProduceError {
    /// The producer failed.
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    /// The replay file could not be read.
    #[error("replay file {path}: {why}")]
    Replay {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// Bad flags.
    #[error("{0}")]
    Invalid(String),
}

/// Flags of `prescient produce`.
#[derive(Debug, Clone, clap::Args)]
pub struct ProduceArgs {
    /// Kafka bootstrap servers.
    #[arg(long, env = "KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    pub brokers: String,
    /// Topic to write to.
    #[arg(long, env = "PRESCIENT_TOPIC", default_value = prescient_contracts::USER_EVENTS_TOPIC)]
    pub topic: String,
    /// Base rate, events per second (before seasonality, noise and flash crowds).
    #[arg(long, default_value_t = 1000.0)]
    pub rate: f64,
    /// How long to produce (e.g. 30s, 10m); unbounded when neither this nor --events is given.
    #[arg(long, value_parser = prescient_dataflow::parse_duration)]
    pub duration: Option<Duration>,
    /// Stop after this many events.
    #[arg(long)]
    pub events: Option<u64>,
    /// Produce as fast as possible instead of pacing to the rate (event times still follow the rate).
    #[arg(long)]
    pub no_pace: bool,
    /// Number of tenants.
    #[arg(long, default_value_t = 5)]
    pub tenants: usize,
    /// Number of services.
    #[arg(long, default_value_t = 4)]
    pub services: usize,
    /// Endpoints per service.
    #[arg(long, default_value_t = 5)]
    pub endpoints: usize,
    /// Distinct users.
    #[arg(long, default_value_t = 10_000)]
    pub users: usize,
    /// Make endpoints embed ids, as REST paths with object ids do: event
    /// `k` (counting from 0) gets `/items/{k mod N}` appended to its
    /// endpoint, so a run of at least N events sends N distinct ids
    /// (0: off, the endpoints are the fixed `--endpoints` names).
    #[arg(long, default_value_t = 0)]
    pub endpoint_ids: u64,
    /// Share of requests that fail with a 5xx status.
    #[arg(long, default_value_t = 0.01)]
    pub error_ratio: f64,
    /// Median latency in ms (log-normal).
    #[arg(long, default_value_t = 40.0)]
    pub latency_median_ms: f64,
    /// Log-normal sigma of latency.
    #[arg(long, default_value_t = 0.6)]
    pub latency_sigma: f64,
    /// Daily seasonality amplitude, 0 (flat) to 1 (peak at 12:00 UTC, trough at midnight).
    #[arg(long, default_value_t = 0.5)]
    pub seasonality: f64,
    /// Relative noise of the per-minute rate.
    #[arg(long, default_value_t = 0.1)]
    pub noise: f64,
    /// Chance per minute that a flash crowd starts.
    #[arg(long, default_value_t = 0.01)]
    pub flash_chance: f64,
    /// Rate multiplier during a flash crowd (lasts 5 minutes).
    #[arg(long, default_value_t = 4.0)]
    pub flash_multiplier: f64,
    /// Event time of the first event (RFC 3339); default now.
    #[arg(long)]
    pub start: Option<DateTime<Utc>>,
    /// Share of records that are deliberately malformed (to exercise the dead-letter topic).
    #[arg(long, default_value_t = 0.0)]
    pub bad_ratio: f64,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// How long the producer gathers records into a batch per partition
    /// (librdkafka `linger.ms`): longer makes fewer, larger batches.
    #[arg(long, default_value_t = LINGER_MS)]
    pub linger_ms: u64,
    /// Replay a `timestamp,value` CSV as per-interval request volume of one service.
    #[arg(long)]
    pub replay: Option<PathBuf>,
    /// With --replay: the service the volume belongs to.
    #[arg(long, default_value = "replayed")]
    pub replay_service: String,
    /// With --replay: play this many seconds of the series per wall-clock second.
    #[arg(long, default_value_t = 60.0)]
    pub compress: f64,
    /// With --replay: multiply each value by this to get events.
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
    /// With --replay: move the series so it starts now (else its own timestamps are used).
    #[arg(long)]
    pub shift_to_now: bool,
    /// Serve Prometheus metrics (`prescient_produced_total`) on this address.
    #[arg(long, env = "PRESCIENT_METRICS_ADDR")]
    pub metrics_addr: Option<std::net::SocketAddr>,
}

/// `prescient_produced_total`, registered in `registry`.
pub fn produced_counter(
    registry: &prometheus::Registry,
) -> Result<prometheus::IntCounter, prometheus::Error> {
    let c = prometheus::IntCounter::new(
        "prescient_produced_total",
        "Records sent by prescient produce",
    )?;
    registry.register(Box::new(c.clone()))?;
    Ok(c)
}

/// The daily seasonality at event time `ms` (epoch ms): `1 + amplitude ×
/// sin`, peaking at 12:00 UTC and lowest at midnight.
pub fn seasonal_factor(amplitude: f64, ms: f64) -> f64 {
    let day = 86_400_000.0;
    1.0 + amplitude * (2.0 * PI * (ms % day) / day - PI / 2.0).sin()
}

impl ProduceArgs {
    /// Expected records per second at event time `ms` (epoch ms): the base
    /// rate with the daily seasonality, the mean uplift of flash crowds (one
    /// starts with `flash_chance` per quiet minute and lasts six minutes);
    /// the per-minute noise averages out. Malformed records take the place
    /// of events, so they are included.
    pub fn expected_rate_at(&self, ms: f64) -> f64 {
        let p = self.flash_chance.clamp(0.0, 1.0);
        let crowded = 6.0 * p / (1.0 + 5.0 * p);
        let flash = 1.0 + crowded * (self.flash_multiplier - 1.0);
        (self.rate * seasonal_factor(self.seasonality, ms) * flash).max(self.rate * 0.01)
    }

    /// Defaults for `brokers`, as `prescient produce --brokers B` would have them.
    pub fn defaults(brokers: impl Into<String>) -> ProduceArgs {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Wrap {
            #[command(flatten)]
            args: ProduceArgs,
        }
        let mut args = Wrap::parse_from(["produce"]).args;
        args.brokers = brokers.into();
        args
    }
}

/// Names used by the generator.
pub fn names(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

/// Draws the generated stream. Time is virtual: each event advances event
/// time by 1 / current rate.
pub struct Generator {
    args: ProduceArgs,
    rng: StdRng,
    tenants: Vec<String>,
    services: Vec<String>,
    endpoints: Vec<String>,
    /// Current event time, ms (fractional).
    now_ms: f64,
    start_ms: f64,
    minute: i64,
    minute_factor: f64,
    flash_until: i64,
    /// Events drawn so far (the id of `--endpoint-ids`).
    drawn: u64,
}

const SERVICE_NAMES: [&str; 8] = [
    "checkout", "search", "catalog", "payments", "auth", "cart", "reviews", "shipping",
];

impl Generator {
    /// A generator with `args`' shape and seed.
    pub fn new(args: &ProduceArgs) -> Generator {
        let start = args.start.unwrap_or_else(Utc::now).timestamp_millis() as f64;
        let services = (0..args.services.max(1))
            .map(|i| match SERVICE_NAMES.get(i) {
                Some(n) => n.to_string(),
                None => format!("service{i}"),
            })
            .collect();
        Generator {
            rng: StdRng::seed_from_u64(args.seed),
            tenants: names("tenant", args.tenants.max(1)),
            services,
            endpoints: (0..args.endpoints.max(1))
                .map(|i| format!("/api/v1/e{i}"))
                .collect(),
            now_ms: start,
            start_ms: start,
            minute: i64::MIN,
            minute_factor: 1.0,
            flash_until: i64::MIN,
            drawn: 0,
            args: args.clone(),
        }
    }

    /// Skewed index in `0..n` (about half the draws hit the first fifth).
    fn skewed(&mut self, n: usize) -> usize {
        let u: f64 = self.rng.random();
        ((u * u * u) * n as f64) as usize % n
    }

    /// Events per second at event time `ms`.
    pub fn rate_at(&mut self, ms: f64) -> f64 {
        let minute = (ms / 60_000.0).floor() as i64;
        if minute != self.minute {
            self.minute = minute;
            let noise = 1.0 + self.args.noise * (self.rng.random::<f64>() * 2.0 - 1.0);
            if self.flash_until < minute && self.rng.random::<f64>() < self.args.flash_chance {
                self.flash_until = minute + 5;
            }
            let flash = if minute <= self.flash_until {
                self.args.flash_multiplier
            } else {
                1.0
            };
            self.minute_factor = noise.max(0.0) * flash;
        }
        let season = seasonal_factor(self.args.seasonality, ms);
        (self.args.rate * season * self.minute_factor).max(self.args.rate * 0.01)
    }

    /// Event-time offset from the start, ms.
    pub fn elapsed_ms(&self) -> f64 {
        self.now_ms - self.start_ms
    }

    /// The next record: key and JSON bytes.
    pub fn next_record(&mut self) -> (String, Vec<u8>) {
        let rate = self.rate_at(self.now_ms);
        self.now_ms += 1000.0 / rate;
        let ts = self.now_ms as i64;
        let user_i = self.skewed(self.args.users.max(1));
        let tenant_i = user_i % self.tenants.len();
        let service_i = self.skewed(self.services.len());
        let endpoint_i = self.skewed(self.endpoints.len());
        let id = self.drawn;
        self.drawn += 1;
        let user = format!("user{user_i}");
        if self.args.bad_ratio > 0.0 && self.rng.random::<f64>() < self.args.bad_ratio {
            return (user, self.bad_record(ts));
        }
        let error = self.rng.random::<f64>() < self.args.error_ratio;
        let status = if error {
            500 + self.rng.random_range(0..4)
        } else {
            200
        };
        // Log-normal latency via Box-Muller.
        let (u1, u2): (f64, f64) = (self.rng.random::<f64>().max(1e-12), self.rng.random());
        let z = (-2.0 * u1.ln()).sqrt() * (2.0 * PI * u2).cos();
        let latency = (self.args.latency_median_ms * (self.args.latency_sigma * z).exp() * 1000.0)
            .round()
            / 1000.0;
        let endpoint = &self.endpoints[endpoint_i];
        let event = Event {
            ts_ms: ts,
            tenant: self.tenants[tenant_i].as_str().into(),
            service: self.services[service_i].as_str().into(),
            endpoint: match self.args.endpoint_ids {
                0 => endpoint.as_str().into(),
                n => format!("{endpoint}/items/{}", id % n).into(),
            },
            user: Some(user.as_str().into()),
            status,
            latency_ms: Some(latency),
        };
        let json = event.to_json();
        (user, json)
    }

    fn bad_record(&mut self, ts: i64) -> Vec<u8> {
        match self.rng.random_range(0..5) {
            0 => b"{\"ts\": not json".to_vec(),
            1 => format!(r#"{{"ts":{ts},"service":"checkout"}}"#).into_bytes(),
            2 => {
                format!(r#"{{"ts":{ts},"tenant":"bad tenant!","service":"checkout"}}"#).into_bytes()
            }
            3 => format!(r#"{{"ts":"{ts}","tenant":"t","service":"checkout","status":"ok"}}"#)
                .into_bytes(),
            _ => vec![0xff, 0xfe, 0x00],
        }
    }
}

/// `prescient produce`'s default `--linger-ms`.
pub const LINGER_MS: u64 = 5;

/// A producer tuned for throughput, batching for `linger_ms`.
pub fn producer(brokers: &str, linger_ms: u64) -> Result<BaseProducer, KafkaError> {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", linger_ms.to_string())
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "1000000")
        .set("queue.buffering.max.kbytes", "1048576")
        .set("compression.type", "lz4")
        .create()
}

/// Sends one record, waiting while librdkafka's queue is full.
pub fn send(
    producer: &BaseProducer,
    topic: &str,
    key: &[u8],
    payload: &[u8],
) -> Result<(), KafkaError> {
    let mut record = BaseRecord::<[u8], [u8]>::to(topic)
        .key(key)
        .payload(payload);
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                record = r;
                producer.poll(Duration::from_millis(5));
            }
            Err((e, _)) => return Err(e),
        }
    }
}

/// Summary of a run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Produced {
    /// Records sent.
    pub records: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// Runs the generator (or the replay) as `args` say, until done or `stop`
/// returns true, counting records in `produced`.
pub fn run(
    args: &ProduceArgs,
    stop: &dyn Fn() -> bool,
    produced: &prometheus::IntCounter,
) -> Result<Produced, ProduceError> {
    if args.rate.is_nan() || args.rate <= 0.0 {
        return Err(ProduceError::Invalid("--rate must be positive".into()));
    }
    let producer = producer(&args.brokers, args.linger_ms)?;
    let started = Instant::now();
    let mut sent = 0u64;
    let mut last_report = Instant::now();
    if let Some(path) = &args.replay {
        let series = read_series(path)?;
        sent = replay(&producer, args, &series, stop, produced)?;
    } else {
        let mut generator = Generator::new(args);
        loop {
            if args.events.is_some_and(|n| sent >= n)
                || args.duration.is_some_and(|d| started.elapsed() >= d)
                || (sent.is_multiple_of(1024) && stop())
            {
                break;
            }
            let (key, payload) = generator.next_record();
            send(&producer, &args.topic, key.as_bytes(), &payload)?;
            sent += 1;
            produced.inc();
            if !args.no_pace && sent.is_multiple_of(64) {
                let due = Duration::from_secs_f64(generator.elapsed_ms().max(0.0) / 1000.0);
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    producer.poll(wait.min(Duration::from_millis(100)));
                }
            }
            if last_report.elapsed() >= Duration::from_secs(5) {
                tracing::info!(
                    sent,
                    rate = sent as f64 / started.elapsed().as_secs_f64(),
                    "producing"
                );
                last_report = Instant::now();
            }
        }
    }
    while let Err(e) = producer.flush(Duration::from_secs(10)) {
        tracing::warn!(error = %e, "waiting for the broker to acknowledge");
        if stop() {
            break;
        }
    }
    Ok(Produced {
        records: sent,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Reads a `timestamp,value` CSV with the forecaster's reader
/// ([`prescient_forecaster::read_points`]: header optional,
/// timestamps `YYYY-MM-DD HH:MM:SS`, RFC 3339, or epoch seconds/milliseconds),
/// in file order.
pub fn read_series(path: &PathBuf) -> Result<Vec<(i64, f64)>, ProduceError> {
    let err = |why: String| ProduceError::Replay {
        path: path.clone(),
        why,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let out = prescient_forecaster::read_points(&text).map_err(|e| err(e.to_string()))?;
    if out.len() < 2 {
        return Err(err("needs at least two rows".into()));
    }
    Ok(out)
}

fn replay(
    producer: &BaseProducer,
    args: &ProduceArgs,
    series: &[(i64, f64)],
    stop: &dyn Fn() -> bool,
    produced: &prometheus::IntCounter,
) -> Result<u64, ProduceError> {
    let mut rng = StdRng::seed_from_u64(args.seed);
    let shift = if args.shift_to_now {
        Utc::now().timestamp_millis() - series[0].0
    } else {
        0
    };
    let started = Instant::now();
    let mut sent = 0u64;
    let tenants = names("tenant", args.tenants.max(1));
    for (i, w) in series.windows(2).enumerate() {
        if stop() || args.events.is_some_and(|n| sent >= n) {
            break;
        }
        let ((t0, v), (t1, _)) = (w[0], w[1]);
        let n = (v * args.scale).round().max(0.0) as u64;
        for j in 0..n {
            let ts = t0 + shift + ((t1 - t0) as f64 * (j as f64 + 0.5) / n as f64) as i64;
            let user = format!("user{}", rng.random_range(0..args.users.max(1)));
            let event = Event {
                ts_ms: ts,
                tenant: tenants[j as usize % tenants.len()].as_str().into(),
                service: args.replay_service.as_str().into(),
                endpoint: "".into(),
                user: Some(user.as_str().into()),
                status: if rng.random::<f64>() < args.error_ratio {
                    503
                } else {
                    200
                },
                latency_ms: Some(args.latency_median_ms),
            };
            send(producer, &args.topic, user.as_bytes(), &event.to_json())?;
            sent += 1;
            produced.inc();
        }
        if !args.no_pace {
            let due = Duration::from_secs_f64(
                (t1 - series[0].0) as f64 / 1000.0 / args.compress.max(1e-9),
            );
            while started.elapsed() < due && !stop() {
                producer.poll((due - started.elapsed()).min(Duration::from_millis(100)));
            }
        }
        if i % 100 == 0 {
            tracing::info!(interval = i, of = series.len() - 1, sent, "replaying");
        }
    }
    Ok(sent)
}

/// Produces the generated stream's recent past: event times from `history`
/// ago up to the present, as fast as `max_per_s` records per second allows
/// and `may_send(records sent so far)` allow (the demo pauses while the
/// dataflow is too far behind, so the embedded broker's per-partition
/// retention never evicts unread records), and returns once the generator's
/// event time has caught up with the wall clock. A live generator started right after continues without a gap.
/// Records of one partition keep event-time order, so none is too late.
pub fn backfill(
    args: &ProduceArgs,
    history: Duration,
    max_per_s: f64,
    may_send: &dyn Fn(u64) -> bool,
    stop: &dyn Fn() -> bool,
    produced: &prometheus::IntCounter,
) -> Result<Produced, ProduceError> {
    if max_per_s.is_nan() || max_per_s <= 0.0 {
        return Err(ProduceError::Invalid(
            "the backfill rate must be positive".into(),
        ));
    }
    let mut args = args.clone();
    let start = Utc::now()
        - chrono::Duration::from_std(history)
            .map_err(|_| ProduceError::Invalid("backfill history too long".into()))?;
    args.start = Some(start);
    // Another stream than the live one's (same shape, other draws).
    args.seed = args.seed.wrapping_add(0x5eed);
    let producer = producer(&args.brokers, args.linger_ms)?;
    let mut generator = Generator::new(&args);
    let started = Instant::now();
    let mut sent = 0u64;
    let start_ms = start.timestamp_millis() as f64;
    loop {
        if sent.is_multiple_of(1024) {
            if stop() {
                break;
            }
            let now_ms = Utc::now().timestamp_millis() as f64;
            if start_ms + generator.elapsed_ms() >= now_ms {
                break;
            }
            let due = Duration::from_secs_f64(sent as f64 / max_per_s);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                producer.poll(wait);
            }
            while !may_send(sent) && !stop() {
                producer.poll(Duration::from_millis(20));
            }
        }
        let (key, payload) = generator.next_record();
        send(&producer, &args.topic, key.as_bytes(), &payload)?;
        sent += 1;
        produced.inc();
    }
    while let Err(e) = producer.flush(Duration::from_secs(10)) {
        tracing::warn!(error = %e, "waiting for the broker to acknowledge the backfill");
        if stop() {
            break;
        }
    }
    Ok(Produced {
        records: sent,
        seconds: started.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use prescient_contracts::event::parse_event;

    fn args() -> ProduceArgs {
        let mut a = ProduceArgs::defaults("127.0.0.1:1");
        a.start = Some("2026-01-01T00:00:00Z".parse().unwrap());
        a.rate = 100.0;
        a
    }

    #[test]
    fn same_seed_same_events() {
        let mut a = Generator::new(&args());
        let mut b = Generator::new(&args());
        for _ in 0..1000 {
            assert_eq!(a.next_record(), b.next_record());
        }
        let mut other = args();
        other.seed = 2;
        let mut c = Generator::new(&other);
        let same = (0..100)
            .filter(|_| a.next_record() == c.next_record())
            .count();
        assert!(same < 10);
    }

    #[test]
    fn generated_events_are_valid_and_bad_ones_are_not() {
        let mut a = args();
        a.bad_ratio = 0.2;
        let mut g = Generator::new(&a);
        let (mut good, mut bad) = (0, 0);
        for _ in 0..2000 {
            match parse_event(&g.next_record().1) {
                Ok(e) => {
                    good += 1;
                    assert!(e.latency_ms.unwrap() >= 0.0);
                }
                Err(_) => bad += 1,
            }
        }
        assert!((300..500).contains(&bad), "{bad} bad of 2000");
        assert_eq!(good + bad, 2000);
    }

    #[test]
    fn endpoint_ids_give_one_new_id_per_event_up_to_n() {
        let endpoints = |ids: u64, events: usize| {
            let mut a = args();
            a.endpoint_ids = ids;
            let mut g = Generator::new(&a);
            (0..events)
                .map(|_| {
                    parse_event(&g.next_record().1)
                        .unwrap()
                        .endpoint
                        .into_owned()
                })
                .collect::<Vec<_>>()
        };
        let fixed: std::collections::HashSet<_> = endpoints(0, 1000).into_iter().collect();
        assert!(fixed.len() <= 5, "fixed names without ids: {fixed:?}");
        let with_ids = endpoints(300, 1000);
        for (k, e) in with_ids.iter().enumerate() {
            let (base, id) = e.split_once("/items/").expect("an id");
            assert!(fixed.contains(base), "{e}");
            assert_eq!(id, (k % 300).to_string(), "event k gets id k mod N");
        }
    }

    #[test]
    fn rate_follows_the_day() {
        let mut a = args();
        a.noise = 0.0;
        a.flash_chance = 0.0;
        let mut g = Generator::new(&a);
        let night = g.rate_at(0.0);
        let noon = g.rate_at(12.0 * 3_600_000.0);
        assert!(
            noon > night * 2.5,
            "{night} vs {noon}: peak at 12:00 UTC, trough at midnight"
        );
    }

    #[test]
    fn reads_nab_series() {
        let path = PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/data/nab/data/realAWSCloudwatch/elb_request_count_8c0756.csv"
        ));
        let s = read_series(&path).unwrap();
        assert!(s.len() > 1000);
        assert_eq!(s[1].0 - s[0].0, 300_000, "5-minute interval");
        assert!(read_series(&PathBuf::from("/nonexistent")).is_err());
    }
}
