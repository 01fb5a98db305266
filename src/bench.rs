//! `prescient bench ingest`: the ingest benchmark.
//!
//! In one run, on the embedded broker and a private PostgreSQL:
//! 1. preload N generated events across many partitions;
//! 2. **raw ceiling**: one rdkafka consumer thread reads and parses them all;
//! 3. **pipeline**: the dataflow reads them all and commits every offset with
//!    its aggregates (`--until-caught-up`), checked against N;
//! 4. **freshness**: events produced at a fixed rate while the dataflow runs;
//!    p50/p99 from each event's Kafka timestamp to the commit of its rows;
//! 5. optionally a **soak** at that rate, sampling RSS;
//! 6. peak RSS of the process.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use prescient_dataflow::{DataflowConfig, Metrics};
use prescient_infra::broker::EmbeddedBroker;
use prescient_infra::postgres::PgInstance;

use crate::produce::{self, Generator, ProduceArgs};

/// `prescient bench ...`
#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// Ingest throughput, freshness and memory of the dataflow.
    Ingest(IngestArgs),
    /// API latency of the dashboard under wrk (see `docs/dashboard.md`).
    Dashboard(crate::bench_dashboard::DashboardBenchArgs),
}

/// The workload shape of `prescient bench ingest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Profile {
    /// 5 tenants × 4 services × 5 endpoints, 10,000 users; the preload
    /// spans ~100 s of event time (20,000 events/s).
    Default,
    /// 20 tenants × 10 services × 10 endpoints, 100,000 users; the preload
    /// spans one hour of event time at a flat rate (no daily seasonality or
    /// flash crowds, so the span does not depend on the hour the bench
    /// runs): ≈ 120,000 `metrics_minute` rows for 2M events.
    HighCardinality,
    /// The default profile with ids in the endpoints (`prescient produce
    /// --endpoint-ids 1000000`): event `k` goes to endpoint
    /// `/api/v1/eN/items/{k mod 1,000,000}`, so every event makes a new
    /// `metrics_minute` row and a run of a million events or more sends a
    /// million distinct endpoints; with `--soak-secs` it shows whether memory
    /// stays flat at that key churn.
    IdEndpoints,
}

/// Distinct endpoint ids of the `id-endpoints` profile.
const ENDPOINT_IDS: u64 = 1_000_000;

impl Profile {
    /// Shapes the generator: key space, users, event-time density.
    pub fn shape(self, p: &mut ProduceArgs, events: u64) {
        match self {
            Profile::Default => p.rate = 20_000.0,
            Profile::HighCardinality => {
                p.tenants = 20;
                p.services = 10;
                p.endpoints = 10;
                p.users = 100_000;
                p.rate = events as f64 / 3600.0;
                p.seasonality = 0.0;
                p.flash_chance = 0.0;
            }
            Profile::IdEndpoints => {
                p.rate = 20_000.0;
                p.endpoint_ids = ENDPOINT_IDS;
            }
        }
    }

    /// `prescient produce` flags giving the same key space.
    pub fn produce_flags(self) -> Vec<String> {
        match self {
            Profile::Default => vec![],
            Profile::HighCardinality => [
                "--tenants",
                "20",
                "--services",
                "10",
                "--endpoints",
                "10",
                "--users",
                "100000",
            ]
            .map(String::from)
            .to_vec(),
            Profile::IdEndpoints => vec!["--endpoint-ids".into(), ENDPOINT_IDS.to_string()],
        }
    }
}

/// Flags of `prescient bench ingest`.
#[derive(Debug, Clone, clap::Args)]
pub struct IngestArgs {
    /// Workload shape.
    #[arg(long, value_enum, default_value_t = Profile::Default)]
    pub profile: Profile,
    /// Events to preload.
    #[arg(long, default_value_t = 2_000_000)]
    pub events: u64,
    /// Partitions to spread them over (the embedded broker keeps at most
    /// 100,000 messages or 5 MB per partition).
    #[arg(long, default_value_t = 64)]
    pub partitions: i32,
    /// `linger.ms` of the freshness phase's producer. Its batches are
    /// what the broker stores and serves: librdkafka's mock broker answers
    /// a fetch with one batch per partition and finds it by a linear scan
    /// of the partition's batches, so many tiny batches make the broker,
    /// not the dataflow, the bottleneck. The time a record waits in the
    /// producer counts in the measured freshness.
    #[arg(long, default_value_t = 20)]
    pub linger_ms: u64,
    /// Dataflow worker threads (default: the machine's cores).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Rate of the freshness phase, events per second.
    #[arg(long, default_value_t = 50_000.0)]
    pub rate: f64,
    /// Length of the freshness phase, seconds.
    #[arg(long, default_value_t = 30)]
    pub freshness_secs: u64,
    /// Keep producing at --rate this many more seconds, sampling RSS (0: skip).
    #[arg(long, default_value_t = 0)]
    pub soak_secs: u64,
    /// Allowed lateness of the freshness/soak phase: windows close (and their
    /// state is released) this long after they end, so a soak must outlast it
    /// to show memory staying flat.
    #[arg(long, default_value = "10m", value_parser = prescient_dataflow::parse_duration)]
    pub lateness: Duration,
    /// Use this broker (topics bench-ingest and bench-live with --partitions
    /// partitions, and user-events-dlq, must exist; `prescient broker` makes
    /// them) instead of an embedded one, so the broker's memory is not counted.
    #[arg(long)]
    pub brokers: Option<String>,
    /// Use this PostgreSQL instead of a private one.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,
}

/// Runs a benchmark.
pub fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Ingest(args) => ingest(args),
        BenchCommand::Dashboard(args) => crate::bench_dashboard::run(args),
    }
}

fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// Peak RSS (VmHWM) in MiB since the last call, then resets the peak to
/// the current RSS (`/proc/self/clear_refs`), so each phase reports its own.
fn phase_peak_mib() -> u64 {
    let peak = rss_kib("VmHWM:") / 1024;
    // Writing 5 resets the peak (Linux ≥ 4.0); if refused, peaks accumulate.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    peak
}

/// CPU seconds (user + system) this process has used: fields 14 and 15 of
/// `/proc/self/stat`, in USER_HZ ticks (100 per second on Linux).
fn cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // The command name (field 2) may hold spaces: count after its ')'.
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            let utime: f64 = f.get(11)?.parse().ok()?;
            let stime: f64 = f.get(12)?.parse().ok()?;
            Some((utime + stime) / 100.0)
        })
        .unwrap_or(0.0)
}

fn ingest(args: IngestArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    let (preload_topic, live_topic) = ("bench-ingest", "bench-live");
    let (_broker, brokers) = match &args.brokers {
        Some(b) => (None, b.clone()),
        None => {
            let broker = EmbeddedBroker::start(1)?;
            broker.create_topic(preload_topic, args.partitions)?;
            broker.create_topic(live_topic, args.partitions)?;
            broker.create_topic(prescient_contracts::DEAD_LETTER_TOPIC, 1)?;
            let brokers = broker.bootstrap_servers();
            (Some(broker), brokers)
        }
    };
    let (_pg, url) = match &args.database_url {
        Some(u) => (None, u.clone()),
        None => {
            let pg = runtime.block_on(PgInstance::start())?;
            let url = pg.url();
            (Some(pg), url)
        }
    };
    let machine = format!(
        "{} cores, {} MiB RAM",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| m.lines().next().and_then(|l| l
                .split_whitespace()
                .nth(1)?
                .parse::<u64>()
                .ok()))
            .unwrap_or(0)
            / 1024
    );
    let workers = args
        .workers
        .unwrap_or_else(prescient_dataflow::default_workers);
    eprintln!(
        "bench ingest ({:?}): {} events over {} partitions, {workers} workers, on {machine}",
        args.profile, args.events, args.partitions
    );

    // 1. Preload, into topics that must start empty (a broker reused from
    // an earlier run would add its records to this run's counts).
    for topic in [preload_topic, live_topic] {
        let held = records_held(&brokers, topic, args.partitions)?;
        if held > 0 {
            bail!(
                "topic {topic} already holds {held} records (a broker from an earlier run?): \
                 start a fresh `prescient broker` for every run"
            );
        }
    }
    let mut p = ProduceArgs::defaults(brokers.clone());
    p.topic = preload_topic.into();
    p.events = Some(args.events);
    p.no_pace = true;
    args.profile.shape(&mut p, args.events);
    p.start = Some(chrono::Utc::now() - chrono::Duration::days(1));
    let bar = indicatif::ProgressBar::new(args.events).with_message("preloading");
    let preload = {
        let producer = produce::producer(&brokers, p.linger_ms)?;
        let mut g = Generator::new(&p);
        let started = Instant::now();
        for i in 0..args.events {
            let (key, payload) = g.next_record();
            produce::send(&producer, preload_topic, key.as_bytes(), &payload)?;
            if i % 65_536 == 0 {
                bar.set_position(i);
            }
        }
        producer_flush(&producer)?;
        bar.finish_and_clear();
        started.elapsed().as_secs_f64()
    };
    eprintln!(
        "preloaded in {preload:.1}s ({:.0}/s)",
        args.events as f64 / preload
    );

    // 2. Raw ceiling: one consumer thread, read + parse; once with
    // librdkafka's default read-ahead (what a plain consumer gets), once
    // with the source's (`CONSUMER_READ_AHEAD`), the ceiling the ratio uses.
    phase_peak_mib();
    let raw_default = raw_ceiling(&brokers, preload_topic, args.partitions, args.events, false)?;
    let raw = raw_ceiling(&brokers, preload_topic, args.partitions, args.events, true)?;
    let raw_peak = phase_peak_mib();
    eprintln!(
        "raw ceiling: {:.0} events/s ({:.0} with librdkafka's default read-ahead; peak RSS {raw_peak} MiB)",
        args.events as f64 / raw,
        args.events as f64 / raw_default
    );

    // 3. Pipeline until every offset is committed.
    let mut config = DataflowConfig::new(brokers.clone(), url.clone());
    config.topic = preload_topic.into();
    config.workers = workers;
    config.until_caught_up = true;
    // Timed like the raw ceiling, from the first record read (a watcher
    // polls the events counter) to every offset committed; the start-up
    // before it (PostgreSQL pool, migrations, metadata, consumer set-up)
    // is reported on its own.
    let registry = prometheus::Registry::new();
    let metrics = Arc::new(Metrics::new(&registry)?);
    let started = Instant::now();
    let cpu_before_pipeline = cpu_seconds();
    let first_read = {
        let m = metrics.clone();
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let d = done.clone();
        let watcher = std::thread::spawn(move || {
            while m.events_in.get() == 0 && !d.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_micros(500));
            }
            Instant::now()
        });
        let result = prescient_dataflow::run_with(config, registry, metrics.clone());
        done.store(true, Ordering::Relaxed);
        let first = watcher
            .join()
            .map_err(|_| anyhow::anyhow!("watcher panicked"))?;
        result?;
        first
    };
    let pipeline = first_read.elapsed().as_secs_f64();
    let pipeline_peak = phase_peak_mib();
    let pipeline_cpu = cpu_seconds() - cpu_before_pipeline;
    let pipeline_commit = commit_figures(&metrics);
    let startup = (first_read - started).as_secs_f64();
    let pool = runtime.block_on(sqlx::PgPool::connect(&url))?;
    let (pipe_commits, pipe_rows, pipe_keys): (i64, i64, i64) = runtime.block_on(
        sqlx::query_as(
            "SELECT (SELECT coalesce(sum(commits), 0)::int8 FROM ingest_stats_minute WHERE topic = $1),
                    (SELECT coalesce(sum(rows_written), 0)::int8 FROM ingest_stats_minute WHERE topic = $1),
                    (SELECT count(*) FROM metrics_minute WHERE minute < now() - interval '12 hours')
                  + (SELECT count(*) FROM service_minute WHERE minute < now() - interval '12 hours')",
        )
        .bind(preload_topic)
        .fetch_one(&pool),
    )?;
    let (total, metric_total, dlq): (Option<i64>, Option<i64>, i64) = runtime.block_on(
        sqlx::query_as(
            "SELECT (SELECT sum(requests)::int8 FROM service_minute WHERE minute < now() - interval '12 hours'),
                    (SELECT sum(requests)::int8 FROM metrics_minute WHERE minute < now() - interval '12 hours'),
                    (SELECT count(*) FROM ingest_offsets WHERE topic = $1)",
        )
        .bind(preload_topic)
        .fetch_one(&pool),
    )?;
    if total != Some(args.events as i64) || metric_total != Some(args.events as i64) {
        bail!(
            "pipeline counted {total:?} requests in service_minute and {metric_total:?} in metrics_minute, expected {}",
            args.events
        );
    }
    eprintln!(
        "pipeline: {:.0} events/s ({dlq} partitions committed, {} requests in service_minute and in metrics_minute; {startup:.2} s of start-up before the first record)",
        args.events as f64 / pipeline,
        args.events
    );

    // 4. Freshness at a fixed rate, 5. soak.
    let registry = prometheus::Registry::new();
    let metrics = Arc::new(Metrics::new(&registry)?);
    let mut live = DataflowConfig::new(brokers.clone(), url.clone());
    live.topic = live_topic.into();
    live.workers = workers;
    live.lateness = args.lateness;
    let stop = live.shutdown.clone();
    let m = metrics.clone();
    let dataflow = std::thread::spawn(move || prescient_dataflow::run_with(live, registry, m));
    std::thread::sleep(Duration::from_secs(2));
    let total_secs = args.freshness_secs + args.soak_secs;
    // The producer runs as its own process (`prescient produce`), so this
    // process's memory is the dataflow's.
    let producer = std::process::Command::new(std::env::current_exe()?)
        .args([
            "produce",
            "--brokers",
            &brokers,
            "--topic",
            live_topic,
            "--rate",
            &args.rate.to_string(),
            "--linger-ms",
            &args.linger_ms.to_string(),
        ])
        .args([
            "--duration",
            &format!("{total_secs}s"),
            "--seasonality",
            "0",
            "--noise",
            "0",
            "--flash-chance",
            "0",
        ])
        .args(args.profile.produce_flags())
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("starting the live producer")?;
    let warmup = Duration::from_secs((args.freshness_secs / 5).max(2));
    std::thread::sleep(warmup);
    metrics.freshness_ms.lock().expect("lock").reset();
    metrics.read_delay_ms.lock().expect("lock").reset();
    let measure_started = Instant::now();
    let events_at_start = metrics.events_in.get();
    let commits_at_start = commit_figures(&metrics);
    let cpu_at_start = cpu_seconds();
    std::thread::sleep(Duration::from_secs(args.freshness_secs).saturating_sub(warmup));
    let fresh = metrics.freshness_ms.lock().expect("lock").clone();
    let read = metrics.read_delay_ms.lock().expect("lock").clone();
    let commits = commit_figures(&metrics).since(commits_at_start);
    // The producer is its own process: this process's CPU is the dataflow's.
    let live_cpu = cpu_seconds() - cpu_at_start;
    let live_events = metrics.events_in.get() - events_at_start;
    let measured_rate = live_events as f64 / measure_started.elapsed().as_secs_f64();
    let measure_started_secs = measure_started.elapsed().as_secs_f64();
    let mut rss_samples = vec![(0u64, rss_kib("VmRSS:"))];
    let soak_started = Instant::now();
    while soak_started.elapsed() < Duration::from_secs(args.soak_secs) {
        std::thread::sleep(Duration::from_secs(10));
        rss_samples.push((soak_started.elapsed().as_secs(), rss_kib("VmRSS:")));
        eprintln!(
            "soak {:>4}s: RSS {} MiB, keys held {}",
            soak_started.elapsed().as_secs(),
            rss_kib("VmRSS:") / 1024,
            metrics.keys_held.get()
        );
    }
    let produced = producer.wait_with_output()?;
    if !produced.status.success() {
        bail!(
            "live producer failed: {}",
            String::from_utf8_lossy(&produced.stderr)
        );
    }
    let produced_line = String::from_utf8_lossy(&produced.stderr)
        .lines()
        .last()
        .unwrap_or_default()
        .to_string();
    stop.store(true, Ordering::Relaxed);
    dataflow
        .join()
        .map_err(|_| anyhow::anyhow!("dataflow panicked"))??;

    let raw_rate = args.events as f64 / raw;
    let pipe_rate = args.events as f64 / pipeline;
    println!();
    println!("| measure | value |");
    println!("| --- | --- |");
    println!("| machine | {machine} |");
    println!("| profile | {:?} |", args.profile);
    println!(
        "| events preloaded | {} over {} partitions |",
        args.events, args.partitions
    );
    let raw_default_rate = args.events as f64 / raw_default;
    println!(
        "| raw ceiling (1 consumer thread: read + parse, the source's read-ahead) | {raw_rate:.0} events/s |"
    );
    println!(
        "| raw ceiling with librdkafka's default read-ahead (100,000 records per partition, 1 s refetch back-off) | {raw_default_rate:.0} events/s |"
    );
    println!(
        "| pipeline ({workers} workers, first record read → every offset committed) | {pipe_rate:.0} events/s ({:.0}% of raw; {:.0}% of raw with default read-ahead) |",
        100.0 * pipe_rate / raw_rate,
        100.0 * pipe_rate / raw_default_rate
    );
    println!(
        "| same, counting the dataflow's start-up ({startup:.2} s: pool, migrations, metadata, consumers) | {:.0} events/s ({:.0}% of raw) |",
        args.events as f64 / (pipeline + startup),
        100.0 * args.events as f64 / (pipeline + startup) / raw_rate
    );
    println!(
        "| dataflow CPU in the pipeline phase (user + system) | {pipeline_cpu:.1} s = {:.1} µs/event, {:.2} cores busy |",
        1e6 * pipeline_cpu / args.events as f64,
        pipeline_cpu / (pipeline + startup)
    );
    println!(
        "| pipeline commits | {pipe_commits} transactions, {pipe_rows} row writes for {pipe_keys} distinct rows ({:.2} writes per row); {:.1} s in transactions, mean {:.0} ms |",
        pipe_rows as f64 / pipe_keys.max(1) as f64,
        pipeline_commit.seconds,
        pipeline_commit.mean_ms()
    );
    println!(
        "| freshness at {:.0} events/s offered ({measured_rate:.0}/s read) | p50 {} ms, p99 {} ms ({} events) |",
        args.rate,
        fresh.quantile(0.5).map_or("-".into(), |v| v.to_string()),
        fresh.quantile(0.99).map_or("-".into(), |v| v.to_string()),
        fresh.count()
    );
    println!(
        "| of which before the dataflow: Kafka timestamp → end of the tick that read it | p50 {} ms, p99 {} ms |",
        read.quantile(0.5).map_or("-".into(), |v| v.to_string()),
        read.quantile(0.99).map_or("-".into(), |v| v.to_string()),
    );
    println!(
        "| commits while measuring freshness | {} ({:.1}/s), mean {:.0} ms, mean {:.0} rows |",
        commits.count,
        commits.count as f64 / measure_started_secs,
        commits.mean_ms(),
        commits.mean_rows()
    );
    println!(
        "| dataflow CPU while measuring freshness (user + system) | {live_cpu:.1} s = {:.1} µs/event |",
        1e6 * live_cpu / live_events.max(1) as f64
    );
    println!("| live producer (own process) | {produced_line} |");
    if args.soak_secs > 0 {
        let after_warmup: Vec<u64> = rss_samples.iter().skip(1).map(|(_, r)| *r).collect();
        println!(
            "| RSS over the {}s soak (every 10 s, MiB) | {} |",
            args.soak_secs,
            after_warmup
                .iter()
                .map(|r| (r / 1024).to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    println!(
        "| peak RSS (VmHWM) of this process per phase: raw ceiling / pipeline / freshness{} | {raw_peak} / {pipeline_peak} / {} MiB ({}) |",
        if args.soak_secs > 0 { " + soak" } else { "" },
        phase_peak_mib(),
        if args.brokers.is_some() {
            "broker in its own process"
        } else {
            "embedded broker included: it keeps every message in memory"
        }
    );
    Ok(())
}

/// Running totals of the writer's commits.
#[derive(Debug, Clone, Copy)]
struct CommitFigures {
    count: u64,
    seconds: f64,
    rows: f64,
}

impl CommitFigures {
    fn since(self, before: CommitFigures) -> CommitFigures {
        CommitFigures {
            count: self.count - before.count,
            seconds: self.seconds - before.seconds,
            rows: self.rows - before.rows,
        }
    }

    fn mean_ms(&self) -> f64 {
        1000.0 * self.seconds / self.count.max(1) as f64
    }

    fn mean_rows(&self) -> f64 {
        self.rows / self.count.max(1) as f64
    }
}

fn commit_figures(m: &Metrics) -> CommitFigures {
    CommitFigures {
        count: m.commit_seconds.get_sample_count(),
        seconds: m.commit_seconds.get_sample_sum(),
        rows: m.commit_rows.get_sample_sum(),
    }
}

fn producer_flush(producer: &rdkafka::producer::BaseProducer) -> anyhow::Result<()> {
    use rdkafka::producer::Producer;
    producer
        .flush(Duration::from_secs(60))
        .context("flushing the preload")?;
    Ok(())
}

/// Records `topic`'s first `partitions` partitions hold (high minus low
/// watermark).
fn records_held(brokers: &str, topic: &str, partitions: i32) -> anyhow::Result<i64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()?;
    let mut held = 0;
    for p in 0..partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, p, Duration::from_secs(10))
            .with_context(|| format!("topic {topic} partition {p} (are the bench topics created with --partitions {partitions}?)"))?;
        held += high - low;
    }
    Ok(held)
}

/// Seconds one consumer thread takes to read and parse `events` records
/// of `topic`, from its first record; with the source's read-ahead
/// settings if `read_ahead`, else librdkafka's defaults.
fn raw_ceiling(
    brokers: &str,
    topic: &str,
    partitions: i32,
    events: u64,
    read_ahead: bool,
) -> anyhow::Result<f64> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("group.id", "bench-raw")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false");
    if read_ahead {
        for (k, v) in prescient_dataflow::CONSUMER_READ_AHEAD {
            config.set(k, v);
        }
    }
    let consumer: BaseConsumer = config.create()?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)?;
    }
    consumer.assign(&tpl)?;
    let mut read = 0u64;
    let mut valid = 0u64;
    let mut started = None;
    let deadline = Instant::now() + Duration::from_secs(600);
    while read < events {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                started.get_or_insert_with(Instant::now);
                read += 1;
                valid += u64::from(
                    prescient_contracts::event::parse_event(m.payload().unwrap_or_default())
                        .is_ok(),
                );
            }
            Some(Err(KafkaError::PartitionEOF(_))) => {}
            Some(Err(e)) => bail!("raw consumer: {e}"),
            None if Instant::now() > deadline => bail!("raw consumer read only {read} of {events}"),
            None => {}
        }
    }
    if valid != events {
        bail!("raw consumer parsed {valid} valid of {events}");
    }
    Ok(started.map_or(0.0, |s| s.elapsed().as_secs_f64()))
}
