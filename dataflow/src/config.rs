//! The dataflow's settings (the `prescient dataflow` flags map onto them).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use crate::window::Windows;

/// Invalid settings.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A setting is out of range.
    #[error("{0}")]
    Invalid(String),
    /// The hostfile could not be read.
    #[error("reading hostfile {path}: {source}")]
    Hostfile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Parses `100ms`, `10s`, `1m`, `2h`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s)
        .map_err(|e| format!("{s:?} is not a duration like 100ms, 10s or 1m: {e}"))
}

/// Settings of the dataflow: a plain struct; `prescient dataflow` maps its
/// flags (and their environment variables) onto it. Every default lives
/// in [`Default`].
#[derive(Debug, Clone)]
pub struct DataflowConfig {
    /// Kafka bootstrap servers (default `127.0.0.1:9092`).
    pub brokers: String,
    /// Kafka TLS/SASL settings for every client (default: plaintext).
    pub kafka_security: prescient_connect::KafkaSecurity,
    /// Topic of user events (default `user-events`).
    pub topic: String,
    /// Topic rejected records go to (default `user-events-dlq`).
    pub dlq_topic: String,
    /// PostgreSQL URL, e.g. postgres://user@host:5432/db (no default).
    pub database_url: String,
    /// Worker threads per process (timely's -w; default: the machine's cores).
    pub workers: usize,
    /// Number of processes in the cluster (timely's -n; default 1).
    pub processes: usize,
    /// Index of this process, 0-based (timely's -p; default 0).
    pub process: usize,
    /// File with one host:port per line, one per process (timely's -h);
    /// default 127.0.0.1:2101, 127.0.0.1:2102, ...
    pub hostfile: Option<PathBuf>,
    /// Event-time bucket length (default 1 minute).
    pub bucket: Duration,
    /// How late an event may arrive after its bucket ended and still count (default 10 minutes).
    pub lateness: Duration,
    /// How far ahead of its Kafka timestamp, and of the wall clock, an
    /// event's time may be (default 1 hour).
    pub max_future: Duration,
    /// Commit interval: changes are gathered per tick and committed together (default 100 ms).
    pub tick: Duration,
    /// A partition without a valid event for this long, caught up or
    /// reading only rejected records, stops holding back the event-time
    /// frontier (default 10 s).
    pub idle_timeout: Duration,
    /// Stop reading when commits fall this far behind (backpressure; default 5 s).
    pub max_uncommitted: Duration,
    /// How often to look for partitions added to the topic (default 10 s).
    pub partition_refresh: Duration,
    /// Serve Prometheus metrics on this address (e.g. 127.0.0.1:9100; default off).
    pub metrics_addr: Option<SocketAddr>,
    /// Exit once every partition is read to its end and committed (batch mode; default off).
    pub until_caught_up: bool,
    /// How long to keep retrying PostgreSQL and the broker on start (default 60 s).
    pub connect_timeout: Duration,
    /// Set it to stop gracefully: sources finish their tick, the last
    /// changes are committed, and [`crate::run`] returns.
    pub shutdown: Arc<AtomicBool>,
}

/// The machine's cores (the default worker count).
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl Default for DataflowConfig {
    fn default() -> Self {
        DataflowConfig {
            brokers: "127.0.0.1:9092".into(),
            kafka_security: Default::default(),
            topic: prescient_contracts::USER_EVENTS_TOPIC.into(),
            dlq_topic: prescient_contracts::DEAD_LETTER_TOPIC.into(),
            database_url: String::new(),
            workers: default_workers(),
            processes: 1,
            process: 0,
            hostfile: None,
            bucket: Duration::from_secs(60),
            lateness: Duration::from_secs(600),
            max_future: Duration::from_secs(3600),
            tick: Duration::from_millis(100),
            idle_timeout: Duration::from_secs(10),
            max_uncommitted: Duration::from_secs(5),
            partition_refresh: Duration::from_secs(10),
            metrics_addr: None,
            until_caught_up: false,
            connect_timeout: Duration::from_secs(60),
            shutdown: Arc::new(AtomicBool::new(false)),
        }
    }
}

impl DataflowConfig {
    /// A configuration with every default, for `brokers` and `database_url`.
    pub fn new(brokers: impl Into<String>, database_url: impl Into<String>) -> Self {
        DataflowConfig {
            brokers: brokers.into(),
            database_url: database_url.into(),
            ..DataflowConfig::default()
        }
    }

    /// The window geometry.
    pub fn windows(&self) -> Windows {
        Windows {
            bucket_ms: self.bucket.as_millis() as i64,
            lateness_ms: self.lateness.as_millis() as i64,
        }
    }

    /// Checks ranges.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError::Invalid(m.to_string()));
        if self.workers == 0 || self.processes == 0 {
            return bad("--workers and --processes must be at least 1");
        }
        if self.process >= self.processes {
            return bad("--process must be below --processes");
        }
        if self.bucket.as_millis() == 0 {
            return bad("--bucket must be positive");
        }
        if self.tick.as_millis() == 0 {
            return bad("--tick must be at least 1ms");
        }
        if self.database_url.is_empty() {
            return bad("--database-url (or DATABASE_URL) is required");
        }
        Ok(())
    }

    /// Addresses of the cluster's processes.
    pub fn addresses(&self) -> Result<Vec<String>, ConfigError> {
        match &self.hostfile {
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).map_err(|source| ConfigError::Hostfile {
                        path: path.clone(),
                        source,
                    })?;
                let hosts: Vec<String> = text
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(String::from)
                    .collect();
                if hosts.len() < self.processes {
                    return Err(ConfigError::Invalid(format!(
                        "hostfile {} lists {} hosts for {} processes",
                        path.display(),
                        hosts.len(),
                        self.processes
                    )));
                }
                Ok(hosts)
            }
            None => Ok((0..self.processes)
                .map(|i| format!("127.0.0.1:{}", 2101 + i))
                .collect()),
        }
    }
}
