//! Kafka `user-events` → incremental per-minute metrics in PostgreSQL,
//! exactly once, on timely dataflow and differential dataflow.
//!
//! Shape of the computation (every worker runs all of it):
//!
//! ```text
//! KafkaSource (this worker's partitions: parse, validate, watermark, pre-aggregate per tick)
//!   ├─ contributions ──▶ row totals by (tenant, service, endpoint, bucket) ┐ (names in the key)
//!   ├─ service contributions ─▶ row totals by (service, bucket) ─────────┤ changed rows → worker 0
//!   ├─ progress per partition ─────────────────────── broadcast ────────┤
//!   └─ event timestamps, dead-letter counts ────────────────────────────┴▶ Commit (frontier; on
//!      worker 0: one transaction per commit: rows + dead letters + ingest_offsets + frontier + stats)
//! ```
//!
//! Exactly once: the offsets a batch of row changes covers are written in
//! the same transaction as those changes, and a restart seeks to them; the
//! state of windows still open is rebuilt by re-reading from the stored
//! replay offsets, so rows are recomputed, not added to (see `source.rs`
//! and `sink.rs`, and `docs/dataflow.md`).
//!
//! ```no_run
//! use prescient_dataflow::{DataflowConfig, run};
//!
//! let mut config = DataflowConfig::new("127.0.0.1:9092", "postgres://prescient@127.0.0.1/prescient");
//! config.workers = 2;
//! // Set `config.shutdown` (from another thread) to stop gracefully.
//! run(config, prometheus::Registry::new()).expect("dataflow failed");
//! ```

mod aggregate;
mod config;
mod dlq;
mod metrics;
mod offsets;
mod progress;
mod rows;
mod sink;
mod source;
mod window;

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use differential_dataflow::AsCollection;
use rdkafka::consumer::{BaseConsumer, Consumer};
use sqlx::postgres::PgPoolOptions;
use timely::dataflow::operators::probe::Handle as ProbeHandle;
use timely::dataflow::operators::vec::{Broadcast, Map, Partition};
use timely::dataflow::operators::{Concat, Exchange, Probe};
use timely::{CommunicationConfig, WorkerConfig};

pub use config::{DataflowConfig, default_workers, parse_duration};
pub use metrics::Metrics;
pub use source::CONSUMER_READ_AHEAD;

use crate::rows::row_totals;
use crate::sink::{SinkMsg, Writer};
use crate::source::{SourceContext, SourceMsg, SourceSettings, kafka_source};

/// Failures that stop the dataflow.
#[derive(Debug, thiserror::Error)]
pub enum DataflowError {
    /// Bad settings.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// PostgreSQL unreachable at start, or refused.
    #[error("PostgreSQL: {0}")]
    Database(#[from] sqlx::Error),
    /// Migrations failed.
    #[error(transparent)]
    Migrate(#[from] prescient_infra::migrate::MigrateError),
    /// Stored progress unusable.
    #[error(transparent)]
    Offsets(#[from] offsets::OffsetsError),
    /// The broker could not be reached, or the topic is missing.
    #[error("kafka: {0}")]
    Kafka(String),
    /// Source set-up failed.
    #[error(transparent)]
    Source(#[from] source::SourceError),
    /// Metrics could not be registered or served.
    #[error("metrics: {0}")]
    Metrics(String),
    /// Timely could not start or a worker failed.
    #[error("timely: {0}")]
    Timely(String),
}

/// Retries `f` until it succeeds or `timeout` passes, logging while it waits.
async fn retry<T, E: std::fmt::Display, F: AsyncFnMut() -> Result<T, E>>(
    what: &str,
    timeout: Duration,
    mut f: F,
) -> Result<T, E> {
    let started = Instant::now();
    let mut warned = false;
    let mut delays =
        prescient_connect::backoff::exponential(Duration::from_millis(100), Duration::from_secs(1));
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if started.elapsed() < timeout => {
                if !warned {
                    tracing::warn!(error = %e, "waiting for {what}");
                    warned = true;
                }
                tokio::time::sleep(delays.next().unwrap_or_default()).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Number of partitions of `topic`, waiting for the broker and the topic.
fn partition_count(config: &DataflowConfig) -> Result<i32, DataflowError> {
    let mut client = config.kafka_security.client_config(&config.brokers);
    client.set("allow.auto.create.topics", "false");
    let context = config
        .kafka_security
        .context()
        .map_err(|e| DataflowError::Kafka(e.to_string()))?;
    let consumer: BaseConsumer<prescient_connect::KafkaContext> = client
        .create_with_context(context)
        .map_err(|e| DataflowError::Kafka(e.to_string()))?;
    let started = Instant::now();
    let mut warned = false;
    loop {
        let result = consumer.fetch_metadata(Some(&config.topic), Duration::from_secs(5));
        let err = match result {
            Ok(md) => match md.topics().first() {
                Some(t) if t.error().is_none() && !t.partitions().is_empty() => {
                    return Ok(t.partitions().len() as i32);
                }
                Some(t) => format!("topic {:?} not available: {:?}", config.topic, t.error()),
                None => format!("topic {:?} not found", config.topic),
            },
            Err(e) => e.to_string(),
        };
        if started.elapsed() > config.connect_timeout {
            return Err(DataflowError::Kafka(format!(
                "{err} on brokers {} (create the topic first, e.g. with `prescient produce`)",
                config.brokers
            )));
        }
        if !warned {
            tracing::warn!(brokers = %config.brokers, topic = %config.topic, "waiting for the topic: {err}");
            warned = true;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Runs the dataflow until it is interrupted (or, with
/// `--until-caught-up`, until every partition is read and committed).
/// Metrics are registered in `registry`.
pub fn run(config: DataflowConfig, registry: prometheus::Registry) -> Result<(), DataflowError> {
    let metrics =
        Arc::new(Metrics::new(&registry).map_err(|e| DataflowError::Metrics(e.to_string()))?);
    run_with(config, registry, metrics)
}

/// As [`run`], with metrics the caller made (and can read, e.g. the
/// fine-grained freshness histogram) registered in `registry`.
pub fn run_with(
    config: DataflowConfig,
    registry: prometheus::Registry,
    metrics: Arc<Metrics>,
) -> Result<(), DataflowError> {
    config.validate()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .thread_name("prescient-io")
        .build()
        .map_err(|e| DataflowError::Timely(format!("tokio runtime: {e}")))?;
    let windows = config.windows();
    let (pool, resume) = runtime.block_on(async {
        let url = config.database_url.clone();
        let pool = retry("PostgreSQL", config.connect_timeout, async || {
            PgPoolOptions::new().max_connections(4).connect(&url).await
        })
        .await?;
        prescient_infra::migrate::run(&pool).await?;
        let resume = offsets::load(&pool, &config.topic, windows).await?;
        Ok::<_, DataflowError>((pool, resume))
    })?;
    if let Some(addr) = config.metrics_addr {
        runtime
            .block_on(prescient_infra::metrics::serve(addr, registry.clone()))
            .map_err(|e| DataflowError::Metrics(e.to_string()))?;
    }
    let partitions = partition_count(&config)?;
    tracing::info!(
        topic = %config.topic,
        partitions,
        stored_partitions = resume.partitions.len(),
        frontier_ms = ?resume.frontier,
        workers = config.workers,
        processes = config.processes,
        process = config.process,
        "dataflow starting"
    );
    let writer = (config.process == 0).then(|| {
        Writer::start(
            runtime.handle(),
            pool.clone(),
            config.topic.clone(),
            metrics.clone(),
        )
    });
    let communication = if config.processes > 1 {
        CommunicationConfig::Cluster {
            threads: config.workers,
            process: config.process,
            addresses: config.addresses()?,
            report: false,
            zerocopy: false,
        }
    } else {
        CommunicationConfig::Process(config.workers)
    };
    let timely_config = timely::Config {
        communication,
        worker: WorkerConfig::default(),
    };
    let settings = SourceSettings {
        brokers: config.brokers.clone(),
        security: config.kafka_security.clone(),
        topic: config.topic.clone(),
        dlq_topic: config.dlq_topic.clone(),
        windows,
        tick_ms: config.tick.as_millis() as u64,
        idle_timeout: config.idle_timeout,
        max_future_ms: config.max_future.as_millis() as i64,
        max_uncommitted_ticks: (config.max_uncommitted.as_millis() / config.tick.as_millis()).max(1)
            as u64,
        until_caught_up: config.until_caught_up,
        partition_refresh: config.partition_refresh,
        shutdown: config.shutdown.clone(),
    };
    let resume = Arc::new(resume);
    let writer_for_workers = writer.clone();
    let worker_metrics = metrics.clone();
    let guards = timely::execute(timely_config, move |worker| {
        let index = worker.index();
        let peers = worker.peers();
        let frontier = Rc::new(Cell::new(resume.frontier));
        let committed = ProbeHandle::new();
        let writer = if index == 0 {
            writer_for_workers.clone()
        } else {
            None
        };
        let built = worker.dataflow::<u64, _, _>(|scope| {
            let out = kafka_source(
                scope,
                SourceContext {
                    settings: settings.clone(),
                    index,
                    peers,
                    partitions,
                    resume: resume.clone(),
                    frontier: frontier.clone(),
                    committed: committed.clone(),
                    metrics: worker_metrics.clone(),
                    group_id: "prescient-dataflow".to_string(),
                },
            )?;
            // Split without copying: a stream read by several operators
            // clones every container for each of them.
            let [data, service_data, sink_msgs]: [_; 3] = out
                .partition(3, |m| {
                    let part = match &m {
                        SourceMsg::Data(_) => 0,
                        SourceMsg::ServiceData(_) => 1,
                        SourceMsg::Sink(_) => 2,
                    };
                    (part, m)
                })
                .try_into()
                .expect("three parts");
            let contributions = data
                .flat_map(|m| match m {
                    SourceMsg::Data(d) => Some(d),
                    SourceMsg::ServiceData(_) | SourceMsg::Sink(_) => None,
                })
                .as_collection();
            let service_contributions = service_data
                .flat_map(|m| match m {
                    SourceMsg::ServiceData(d) => Some(d),
                    SourceMsg::Data(_) | SourceMsg::Sink(_) => None,
                })
                .as_collection();
            let held = worker_metrics.rows_held.clone();
            let metric_rows = row_totals(contributions, "MetricsMinute", held.clone());
            let service_rows = row_totals(service_contributions, "ServiceMinute", held);
            let rows = metric_rows
                .inner
                .map(|((k, agg), _t, diff)| SinkMsg::Metric(k, agg, diff))
                .concat(
                    service_rows
                        .inner
                        .map(|((k, agg), _t, diff)| SinkMsg::Service(k, agg, diff)),
                );
            let sink_msgs = sink_msgs.flat_map(|m| match m {
                SourceMsg::Sink(s) => Some(s),
                SourceMsg::Data(_) | SourceMsg::ServiceData(_) => None,
            });
            let progress = sink_msgs
                .clone()
                .flat_map(|m| matches!(m, SinkMsg::Progress(_)).then_some(m))
                .broadcast();
            let to_zero = sink_msgs
                .flat_map(|m| (!matches!(m, SinkMsg::Progress(_))).then_some(m))
                .concat(rows)
                .exchange(|_| 0);
            sink::commit(
                to_zero.concat(progress),
                writer,
                frontier.clone(),
                worker_metrics.clone(),
            )
            .probe_with(&committed);
            Ok::<_, DataflowError>(())
        });
        if let Err(e) = built {
            tracing::error!(error = %e, worker = index, "worker could not start");
            return Err(e.to_string());
        }
        while worker.step_or_park(Some(Duration::from_millis(5))) {}
        Ok(())
    })
    .map_err(DataflowError::Timely)?;
    for result in guards.join() {
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) | Err(e) => return Err(DataflowError::Timely(e)),
        }
    }
    if let Some(w) = &writer {
        w.close();
        while !w.is_done() {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    tracing::info!("dataflow stopped");
    Ok(())
}
