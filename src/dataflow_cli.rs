//! `prescient dataflow` flags. Each flag has an environment variable; a
//! flag left out keeps the default of [`DataflowConfig`] (defaults live
//! there only).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use prescient_dataflow::DataflowConfig;
use prescient_dataflow::parse_duration;

/// Flags of `prescient dataflow`.
#[derive(Debug, Clone, clap::Args)]
#[command(disable_help_flag = true)]
pub struct DataflowArgs {
    /// Print help (`-h` is timely's hostfile flag).
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// Kafka bootstrap servers [default: 127.0.0.1:9092].
    #[arg(long, env = "KAFKA_BROKERS")]
    pub brokers: Option<String>,
    /// Kafka TLS/SASL.
    #[command(flatten)]
    pub kafka: crate::connect_args::KafkaSecurityArgs,
    /// Topic of user events [default: user-events].
    #[arg(long, env = "PRESCIENT_TOPIC")]
    pub topic: Option<String>,
    /// Topic rejected records go to [default: user-events-dlq].
    #[arg(long, env = "PRESCIENT_DLQ_TOPIC")]
    pub dlq_topic: Option<String>,
    /// PostgreSQL URL, e.g. postgres://user@host:5432/db.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: String,
    /// Worker threads per process (timely's -w) [default: the machine's cores].
    #[arg(short = 'w', long, env = "PRESCIENT_WORKERS")]
    pub workers: Option<usize>,
    /// Number of processes in the cluster (timely's -n) [default: 1].
    #[arg(short = 'n', long, env = "PRESCIENT_PROCESSES")]
    pub processes: Option<usize>,
    /// Index of this process, 0-based (timely's -p) [default: 0].
    #[arg(short = 'p', long, env = "PRESCIENT_PROCESS")]
    pub process: Option<usize>,
    /// File with one host:port per line, one per process (timely's -h)
    /// [default: 127.0.0.1:2101, 127.0.0.1:2102, ...].
    #[arg(short = 'h', long, env = "PRESCIENT_HOSTFILE")]
    pub hostfile: Option<PathBuf>,
    /// Event-time bucket length [default: 1m].
    #[arg(long, env = "PRESCIENT_BUCKET", value_parser = parse_duration)]
    pub bucket: Option<Duration>,
    /// How late an event may arrive after its bucket ended and still count [default: 10m].
    #[arg(long, env = "PRESCIENT_LATENESS", value_parser = parse_duration)]
    pub lateness: Option<Duration>,
    /// How far ahead of its Kafka timestamp and of the wall clock an event's time may be [default: 1h].
    #[arg(long, env = "PRESCIENT_MAX_FUTURE", value_parser = parse_duration)]
    pub max_future: Option<Duration>,
    /// Commit interval: changes are gathered per tick and committed together [default: 100ms].
    #[arg(long, env = "PRESCIENT_TICK", value_parser = parse_duration)]
    pub tick: Option<Duration>,
    /// A partition without a valid event for this long (caught up, or
    /// reading only rejected records) stops holding back the event-time
    /// frontier [default: 10s].
    #[arg(long, env = "PRESCIENT_IDLE_TIMEOUT", value_parser = parse_duration)]
    pub idle_timeout: Option<Duration>,
    /// Stop reading when commits fall this far behind (backpressure) [default: 5s].
    #[arg(long, env = "PRESCIENT_MAX_UNCOMMITTED", value_parser = parse_duration)]
    pub max_uncommitted: Option<Duration>,
    /// How often to look for partitions added to the topic [default: 10s].
    #[arg(long, env = "PRESCIENT_PARTITION_REFRESH", value_parser = parse_duration)]
    pub partition_refresh: Option<Duration>,
    /// Serve Prometheus metrics on this address (e.g. 127.0.0.1:9100).
    #[arg(long, env = "PRESCIENT_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// Exit once every partition is read to its end and committed (batch mode).
    #[arg(long)]
    pub until_caught_up: bool,
    /// How long to keep retrying PostgreSQL and the broker on start [default: 60s].
    #[arg(long, env = "PRESCIENT_CONNECT_TIMEOUT", value_parser = parse_duration)]
    pub connect_timeout: Option<Duration>,
}

impl DataflowArgs {
    /// The configuration: given flags over [`DataflowConfig::default`].
    pub fn into_config(self, shutdown: Arc<AtomicBool>) -> DataflowConfig {
        let d = DataflowConfig::default();
        DataflowConfig {
            brokers: self.brokers.unwrap_or(d.brokers),
            kafka_security: self.kafka.security(),
            topic: self.topic.unwrap_or(d.topic),
            dlq_topic: self.dlq_topic.unwrap_or(d.dlq_topic),
            database_url: self.database_url,
            workers: self.workers.unwrap_or(d.workers),
            processes: self.processes.unwrap_or(d.processes),
            process: self.process.unwrap_or(d.process),
            hostfile: self.hostfile.or(d.hostfile),
            bucket: self.bucket.unwrap_or(d.bucket),
            lateness: self.lateness.unwrap_or(d.lateness),
            max_future: self.max_future.unwrap_or(d.max_future),
            tick: self.tick.unwrap_or(d.tick),
            idle_timeout: self.idle_timeout.unwrap_or(d.idle_timeout),
            max_uncommitted: self.max_uncommitted.unwrap_or(d.max_uncommitted),
            partition_refresh: self.partition_refresh.unwrap_or(d.partition_refresh),
            metrics_addr: self.metrics_addr.or(d.metrics_addr),
            until_caught_up: self.until_caught_up,
            connect_timeout: self.connect_timeout.unwrap_or(d.connect_timeout),
            shutdown,
        }
    }
}
