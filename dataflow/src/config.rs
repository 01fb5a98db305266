//! `prescient dataflow` flags (each also settable from the environment).

use std::net::SocketAddr;
use std::path::PathBuf;
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

/// Settings of the dataflow. Defaults are in each flag's help.
#[derive(Debug, Clone, clap::Args)]
#[command(disable_help_flag = true)]
pub struct DataflowConfig {
    /// Print help (`-h` is timely's hostfile flag).
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// Kafka bootstrap servers.
    #[arg(long, env = "KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    pub brokers: String,
    /// Topic of user events.
    #[arg(long, env = "PRESCIENT_TOPIC", default_value = prescient_contracts::USER_EVENTS_TOPIC)]
    pub topic: String,
    /// Topic rejected records go to.
    #[arg(long, env = "PRESCIENT_DLQ_TOPIC", default_value = prescient_contracts::DEAD_LETTER_TOPIC)]
    pub dlq_topic: String,
    /// PostgreSQL URL, e.g. postgres://user@host:5432/db.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: String,
    /// Worker threads per process (timely's -w).
    #[arg(short = 'w', long, env = "PRESCIENT_WORKERS", default_value_t = 1)]
    pub workers: usize,
    /// Number of processes in the cluster (timely's -n).
    #[arg(short = 'n', long, env = "PRESCIENT_PROCESSES", default_value_t = 1)]
    pub processes: usize,
    /// Index of this process, 0-based (timely's -p).
    #[arg(short = 'p', long, env = "PRESCIENT_PROCESS", default_value_t = 0)]
    pub process: usize,
    /// File with one host:port per line, one per process (timely's -h);
    /// default 127.0.0.1:2101, 127.0.0.1:2102, ...
    #[arg(short = 'h', long, env = "PRESCIENT_HOSTFILE")]
    pub hostfile: Option<PathBuf>,
    /// Event-time bucket length.
    #[arg(long, env = "PRESCIENT_BUCKET", default_value = "1m", value_parser = parse_duration)]
    pub bucket: Duration,
    /// How late an event may arrive after its bucket ended and still count.
    #[arg(long, env = "PRESCIENT_LATENESS", default_value = "10m", value_parser = parse_duration)]
    pub lateness: Duration,
    /// How far ahead of its Kafka timestamp an event's time may be.
    #[arg(long, env = "PRESCIENT_MAX_FUTURE", default_value = "1h", value_parser = parse_duration)]
    pub max_future: Duration,
    /// Commit interval: changes are gathered per tick and committed together.
    #[arg(long, env = "PRESCIENT_TICK", default_value = "100ms", value_parser = parse_duration)]
    pub tick: Duration,
    /// A caught-up partition without new records for this long stops
    /// holding back the event-time frontier.
    #[arg(long, env = "PRESCIENT_IDLE_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub idle_timeout: Duration,
    /// Stop reading when commits fall this far behind (backpressure).
    #[arg(long, env = "PRESCIENT_MAX_UNCOMMITTED", default_value = "5s", value_parser = parse_duration)]
    pub max_uncommitted: Duration,
    /// Serve Prometheus metrics on this address (e.g. 127.0.0.1:9100).
    #[arg(long, env = "PRESCIENT_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// Exit once every partition is read to its end and committed (batch mode).
    #[arg(long)]
    pub until_caught_up: bool,
    /// How long to keep retrying PostgreSQL and the broker on start.
    #[arg(long, env = "PRESCIENT_CONNECT_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub connect_timeout: Duration,
}

impl DataflowConfig {
    /// A configuration with every default, for `brokers` and `database_url`.
    pub fn new(brokers: impl Into<String>, database_url: impl Into<String>) -> Self {
        DataflowConfig {
            help: None,
            brokers: brokers.into(),
            topic: prescient_contracts::USER_EVENTS_TOPIC.into(),
            dlq_topic: prescient_contracts::DEAD_LETTER_TOPIC.into(),
            database_url: database_url.into(),
            workers: 1,
            processes: 1,
            process: 0,
            hostfile: None,
            bucket: Duration::from_secs(60),
            lateness: Duration::from_secs(600),
            max_future: Duration::from_secs(3600),
            tick: Duration::from_millis(100),
            idle_timeout: Duration::from_secs(10),
            max_uncommitted: Duration::from_secs(5),
            metrics_addr: None,
            until_caught_up: false,
            connect_timeout: Duration::from_secs(60),
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
