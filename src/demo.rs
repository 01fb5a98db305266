//! `prescient demo`: the whole system on embedded defaults.
//!
//! Starts an embedded Kafka-protocol broker on a loopback port, a private
//! PostgreSQL (unless `--database-url` / `DATABASE_URL` is given), the load
//! generator, the dataflow, and the forecaster with its capacity planner in
//! dry-run (decisions recorded in `scaling_decisions` and published on
//! `scaling-decisions`, nothing applied), the scaler's logic in dry-run
//! against those decisions (outcomes published on `scaling-actions`), and
//! the dashboard with an admin token and a one-time login link; prints where
//! to connect; reports progress every few seconds until Ctrl-C (or
//! `--duration`).
//!
//! So the dashboard has something to show at once, the generator first
//! backfills `--backfill` of history (event times in the past, in order,
//! paced under the embedded broker's retention) and then runs live. The
//! backfill is trimmed (oldest part first) to what the pipeline reads within
//! `--backfill-within`: the forecaster plans at event time, so its decisions
//! are for live minutes, and reach the scaler before they expire, only once
//! the backfill has been read.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;

use prescient_dataflow::DataflowConfig;
use prescient_infra::broker::EmbeddedBroker;
use prescient_infra::postgres::PgInstance;

use crate::produce::{self, ProduceArgs};

/// Flags of `prescient demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Use this PostgreSQL instead of starting a private one.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,
    /// Events per second of the built-in generator; 0 turns it off.
    #[arg(long, default_value_t = 2000.0)]
    pub rate: f64,
    /// Partitions of the user-events topic.
    #[arg(long, default_value_t = 8)]
    pub partitions: i32,
    /// Dataflow worker threads (default: the machine's cores).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Share of deliberately malformed records (shows the dead-letter topic at work).
    #[arg(long, default_value_t = 0.001)]
    pub bad_ratio: f64,
    /// Where to serve Prometheus metrics.
    #[arg(long, default_value = "127.0.0.1:9184")]
    pub metrics_addr: SocketAddr,
    /// Stop after this long (default: run until Ctrl-C).
    #[arg(long, value_parser = prescient_dataflow::parse_duration)]
    pub duration: Option<Duration>,
    /// Seconds between status lines.
    #[arg(long, default_value_t = 5)]
    pub status_every: u64,
    /// Minutes of history a service needs before it is forecast (planning is
    /// reactive until then).
    #[arg(long, default_value_t = 5)]
    pub forecast_after_min: usize,
    /// Where to serve the dashboard.
    #[arg(
        long,
        env = "PRESCIENT_DASHBOARD_LISTEN",
        default_value = "127.0.0.1:8080"
    )]
    pub dashboard_listen: SocketAddr,
    /// The built web app (default: dashboard/web/dist).
    #[arg(long, env = "PRESCIENT_DASHBOARD_WEB_DIR")]
    pub web_dir: Option<std::path::PathBuf>,
    /// Don't start the dashboard.
    #[arg(long)]
    pub no_dashboard: bool,
    /// History produced before the live stream (event times from this long
    /// ago up to now), so forecasts and predictive decisions show at once; 0s
    /// turns it off. Trimmed to `--backfill-within`.
    #[arg(long, default_value = "2h", value_parser = prescient_dataflow::parse_duration)]
    pub backfill: Duration,
    /// Most records per second while backfilling; the backfill also never
    /// runs more than 100,000 records ahead of what the dataflow has read (the
    /// embedded broker keeps at most 100,000 message batches or 5 MiB per partition).
    #[arg(long, default_value_t = 120_000.0)]
    pub backfill_rate: f64,
    /// Trim `--backfill` (oldest part first) to the history expected to be
    /// read within this long at `--backfill-rate`, so traffic, forecasts and
    /// scaling decisions are live soon after the start; 0s keeps it whole.
    #[arg(long, default_value = "60s", value_parser = prescient_dataflow::parse_duration)]
    pub backfill_within: Duration,
}

/// The history the backfill produces: `requested`, trimmed in whole minutes
/// (the oldest first) so that the records expected at `p`'s rate (see
/// [`ProduceArgs::expected_rate_at`]) are read within `within` at
/// `read_rate` records/s. `within` of zero keeps `requested`.
pub fn backfill_span(
    p: &ProduceArgs,
    requested: Duration,
    read_rate: f64,
    within: Duration,
    now: chrono::DateTime<chrono::Utc>,
) -> Duration {
    if within.is_zero() {
        return requested;
    }
    let budget = read_rate.max(0.0) * within.as_secs_f64();
    let now_ms = now.timestamp_millis() as f64;
    let (mut span, mut expected) = (Duration::ZERO, 0.0);
    while span < requested {
        let step = (requested - span).min(Duration::from_secs(60));
        let mid_ms = now_ms - (span + step / 2).as_secs_f64() * 1000.0;
        let records = p.expected_rate_at(mid_ms) * step.as_secs_f64();
        if expected + records > budget {
            break;
        }
        expected += records;
        span += step;
    }
    span
}

/// Runs the demo until Ctrl-C or `--duration`.
pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    let stop = crate::stop_on_ctrl_c()?;
    let runtime = tokio::runtime::Runtime::new()?;
    let broker = EmbeddedBroker::start(1).context("starting the embedded broker")?;
    broker.create_topic(prescient_contracts::USER_EVENTS_TOPIC, args.partitions)?;
    for topic in [
        prescient_contracts::DEAD_LETTER_TOPIC,
        prescient_contracts::SCALING_DECISIONS_TOPIC,
        prescient_contracts::SCALING_ACTIONS_TOPIC,
    ] {
        broker.create_topic(topic, 1)?;
    }
    let bootstrap = broker.bootstrap_servers();
    let (pg, url) = match &args.database_url {
        Some(url) => (None, url.clone()),
        None => {
            let pg = runtime
                .block_on(PgInstance::start())
                .context("starting a private PostgreSQL")?;
            let url = pg.url();
            (Some(pg), url)
        }
    };
    println!("Prescient demo");
    println!(
        "  Kafka bootstrap servers : {bootstrap}   (topics user-events, user-events-dlq, scaling-decisions, scaling-actions)"
    );
    println!(
        "  PostgreSQL              : {url}{}",
        if pg.is_some() {
            "   (private, deleted on exit)"
        } else {
            ""
        }
    );
    println!(
        "  Prometheus metrics      : http://{}/metrics",
        args.metrics_addr
    );
    println!("  Try: psql '{url}' -c 'SELECT * FROM service_minute ORDER BY minute DESC LIMIT 10'");
    println!("       prescient produce --brokers {bootstrap} --rate 500");
    println!("  Ctrl-C to stop.");

    let mut config = DataflowConfig::new(bootstrap.clone(), url.clone());
    if let Some(w) = args.workers {
        config.workers = w;
    }
    config.metrics_addr = Some(args.metrics_addr);
    config.idle_timeout = Duration::from_secs(5);
    config.shutdown = stop.clone();
    let registry = prometheus::Registry::new();
    let dataflow_registry = registry.clone();
    let dataflow = std::thread::Builder::new()
        .name("dataflow".into())
        .spawn(move || prescient_dataflow::run(config, dataflow_registry))?;

    let produced = produce::produced_counter(&registry)?;
    let generator = (args.rate > 0.0).then(|| {
        let mut p = ProduceArgs::defaults(bootstrap.clone());
        p.rate = args.rate;
        p.bad_ratio = args.bad_ratio;
        let backfill_rate = args.backfill_rate;
        let history = backfill_span(
            &p,
            args.backfill,
            backfill_rate,
            args.backfill_within,
            chrono::Utc::now(),
        );
        if history < args.backfill {
            println!(
                "  Backfill                : the last {} (--backfill {} trimmed to be read within ~{}s at {backfill_rate} records/s; --backfill-within 0s keeps it all)",
                humanize(history),
                humanize(args.backfill),
                args.backfill_within.as_secs()
            );
        }
        let progress = registry.clone();
        std::thread::spawn(move || {
            let stopped = || stop.load(Ordering::Relaxed);
            if !history.is_zero() {
                // Stay at most BACKFILL_AHEAD records ahead of what the dataflow has read.
                let may_send = |sent: u64| {
                    let read = counter(&progress, "prescient_events_in_total") as u64;
                    sent.saturating_sub(read) < BACKFILL_AHEAD
                };
                let b =
                    produce::backfill(&p, history, backfill_rate, &may_send, &stopped, &produced)?;
                println!(
                    "backfill: {} events of the last {} in {:.0}s; now live at {} events/s",
                    b.records,
                    humanize(history),
                    b.seconds,
                    p.rate
                );
            }
            produce::run(&p, &stopped, &produced)
        })
    });

    let mut forecaster_config = prescient_forecaster::WorkerConfig::new(url.clone());
    forecaster_config.brokers = Some(bootstrap.clone());
    forecaster_config.force_dry_run = true;
    forecaster_config.registry = Some(registry.clone());
    forecaster_config.min_history_min = args.forecast_after_min;
    let forecaster = runtime.spawn(prescient_forecaster::run_worker(
        forecaster_config,
        async move {
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        },
    ));

    let scaler_stats = Arc::new(Mutex::new(ScalerStats::default()));
    let scaler = {
        let (bootstrap, stats) = (bootstrap.clone(), scaler_stats.clone());
        std::thread::Builder::new()
            .name("scaler-dry-run".into())
            .spawn(move || scaler_dry_run(&bootstrap, &|| stop.load(Ordering::Relaxed), &stats))?
    };

    let started = Instant::now();
    let pool = runtime.block_on(sqlx::PgPool::connect(&url))?;
    let dashboard = if args.no_dashboard {
        None
    } else {
        Some(runtime.block_on(start_dashboard(&args, &url, &registry))?)
    };
    let mut last_status = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let timed_out = args.duration.is_some_and(|d| started.elapsed() >= d);
        if timed_out || stop.load(Ordering::Relaxed) || dataflow.is_finished() {
            break;
        }
        if last_status.elapsed() >= Duration::from_secs(args.status_every) {
            last_status = Instant::now();
            match runtime.block_on(status(&pool, &registry)) {
                Ok(line) => println!(
                    "[{:>4}s] {line} | {}",
                    started.elapsed().as_secs(),
                    scaler_stats.lock().expect("lock")
                ),
                Err(e) => println!(
                    "[{:>4}s] status unavailable: {e}",
                    started.elapsed().as_secs()
                ),
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    if let Some(g) = generator {
        match g.join() {
            Ok(Ok(p)) => println!("generator: {} events in {:.0}s", p.records, p.seconds),
            Ok(Err(e)) => println!("generator failed: {e}"),
            Err(_) => println!("generator panicked"),
        }
    }
    let result = dataflow
        .join()
        .map_err(|_| anyhow::anyhow!("dataflow thread panicked"))?;
    if let Ok(Err(e)) = scaler.join() {
        println!("scaler dry run failed: {e}");
    }
    match runtime.block_on(forecaster) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => println!("forecaster failed: {e}"),
        Err(e) => println!("forecaster task failed: {e}"),
    }
    if let Ok(line) = runtime.block_on(status(&pool, &registry)) {
        println!("final: {line} | {}", scaler_stats.lock().expect("lock"));
    }
    runtime.block_on(pool.close());
    drop(dashboard);
    drop(pg);
    drop(broker);
    result.context("dataflow")?;
    Ok(())
}

/// How far the backfill may run ahead of the dataflow: well below what the
/// embedded broker keeps (per partition: 100,000 message batches or 5 MiB,
/// the oldest evicted first; 100,000 lz4-compressed records over the
/// partitions stay well under that).
const BACKFILL_AHEAD: u64 = 100_000;

fn humanize(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, s % 3600 / 60) {
        (0, m) => format!("{m} min"),
        (h, 0) => format!("{h} h"),
        (h, m) => format!("{h} h {m} min"),
    }
}

/// Starts the dashboard, creates an admin token and prints the URL and a
/// one-time login link.
async fn start_dashboard(
    args: &DemoArgs,
    url: &str,
    registry: &prometheus::Registry,
) -> anyhow::Result<prescient_dashboard::Dashboard> {
    use prescient_dashboard::auth::{self, Role};
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(16)
        .connect(url)
        .await
        .context("connecting the dashboard to PostgreSQL")?;
    prescient_infra::migrate::run(&pool).await?;
    let mut config = prescient_dashboard::DashboardConfig::new(args.dashboard_listen);
    if let Some(dir) = &args.web_dir {
        config.web_dir = dir.clone();
    }
    let web_built = config.web_dir.join("index.html").exists();
    let (info, token) = auth::create_token(&pool, "demo-admin", Role::Admin, None, None).await?;
    let dashboard = prescient_dashboard::Dashboard::start(config, pool.clone(), registry.clone())
        .await
        .with_context(|| {
            format!(
                "starting the dashboard on {} (change it with --dashboard-listen, or --no-dashboard)",
                args.dashboard_listen
            )
        })?;
    let base = format!("http://{}", dashboard.addr());
    let link = crate::dashboard::login_link(&pool, info.id, &base).await?;
    println!(
        "  Dashboard               : {base}/{}",
        if web_built {
            ""
        } else {
            "   (web app not built: cd dashboard/web && npm ci && npx vite build; the API works)"
        }
    );
    println!("  Log in (one-time link)  : {link}");
    println!(
        "  Admin API token         : {token}   (curl -H 'Authorization: Bearer …' {base}/api/v1/overview)"
    );
    Ok(dashboard)
}

/// What the scaler's dry run has done so far.
#[derive(Debug, Default)]
pub struct ScalerStats {
    /// Decisions handled.
    pub actions: u64,
    /// Decisions handled, by outcome (`dry-run`, `unchanged`, `skipped-stale`, ...).
    pub outcomes: std::collections::BTreeMap<&'static str, u64>,
    /// The latest outcome, in words.
    pub latest: Option<String>,
}

impl std::fmt::Display for ScalerStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "scaler (dry-run): {} actions", self.actions)?;
        if !self.outcomes.is_empty() {
            let by: Vec<String> = self
                .outcomes
                .iter()
                .map(|(o, n)| format!("{o} {n}"))
                .collect();
            write!(f, " ({})", by.join(", "))?;
        }
        if let Some(l) = &self.latest {
            write!(f, ", latest: {l}")?;
        }
        Ok(())
    }
}

/// Reads `scaling-decisions`, runs the Lambda scaler's planning logic on each
/// decision (dry-run: nothing is applied) and publishes the outcome on
/// `scaling-actions`, as the deployed scaler would.
pub fn scaler_dry_run(
    bootstrap: &str,
    stop: &dyn Fn() -> bool,
    stats: &Mutex<ScalerStats>,
) -> anyhow::Result<()> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Message;
    use rdkafka::producer::Producer;

    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "prescient-demo-scaler")
        .set("auto.offset.reset", "earliest")
        .create()?;
    consumer.subscribe(&[prescient_contracts::SCALING_DECISIONS_TOPIC])?;
    let producer = produce::producer(bootstrap, produce::LINGER_MS)?;
    while !stop() {
        let Some(msg) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let msg = match msg {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "scaler dry run: reading scaling-decisions");
                continue;
            }
        };
        let decision: prescient_contracts::decision::ScalingDecision =
            match serde_json::from_slice(msg.payload().unwrap_or_default()) {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(error = %e, "scaler dry run: undecodable decision");
                    continue;
                }
            };
        let mut decision = decision;
        decision.mode = prescient_contracts::decision::Mode::DryRun;
        let action = prescient_functions_common::plan::plan(
            &decision,
            prescient_functions_common::plan::Observed::from_decision(&decision),
            chrono::Utc::now(),
        );
        let json = serde_json::to_vec(&action)?;
        produce::send(
            &producer,
            prescient_contracts::SCALING_ACTIONS_TOPIC,
            action.service.as_bytes(),
            &json,
        )?;
        producer.poll(Duration::ZERO);
        let mut s = stats.lock().expect("lock");
        s.actions += 1;
        *s.outcomes.entry(action.outcome.as_str()).or_default() += 1;
        s.latest = Some(format!(
            "{} {} → {:?}",
            action.service,
            action.outcome.as_str(),
            action.applied
        ));
    }
    let _ = producer.flush(Duration::from_secs(5));
    Ok(())
}

fn counter(registry: &prometheus::Registry, name: &str) -> f64 {
    registry
        .gather()
        .iter()
        .filter(|f| f.name() == name)
        .flat_map(|f| {
            f.get_metric()
                .iter()
                .map(|m| m.get_counter().get_value())
                .collect::<Vec<_>>()
        })
        .sum()
}

async fn status(pool: &sqlx::PgPool, registry: &prometheus::Registry) -> anyhow::Result<String> {
    let (rows, services): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM metrics_minute), (SELECT count(*) FROM service_minute)",
    )
    .fetch_one(pool)
    .await?;
    let latest: Vec<(String, i64, i64, Option<f64>)> = sqlx::query_as(
        "SELECT service, requests, errors, latency_p99_ms FROM service_minute
         WHERE minute = (SELECT max(minute) FROM service_minute) ORDER BY requests DESC LIMIT 4",
    )
    .fetch_all(pool)
    .await?;
    let (forecasts, decisions, predictive): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM forecasts), (SELECT count(*) FROM scaling_decisions),
                (SELECT count(*) FROM scaling_decisions WHERE NOT fallback)",
    )
    .fetch_one(pool)
    .await?;
    let decision: Option<(String, i32, i32, String)> = sqlx::query_as(
        "SELECT service, current_size, desired, reason FROM scaling_decisions ORDER BY issued_at DESC, service LIMIT 1",
    )
    .fetch_optional(pool)
    .await?;
    let top: Vec<String> = latest
        .iter()
        .map(|(s, r, e, p99)| format!("{s} {r} req/{e} err p99 {:.0}ms", p99.unwrap_or(0.0)))
        .collect();
    let last_decision = match decision {
        Some((service, current, desired, reason)) => {
            format!("{service} {current}→{desired} ({reason})")
        }
        None => "-".into(),
    };
    Ok(format!(
        "events in {:.0}, dead-lettered {:.0} | rows: metrics_minute {rows}, service_minute {services} | this minute: {} | forecasts {forecasts}, decisions {decisions} (dry-run; predictive {predictive}), latest: {last_decision}",
        counter(registry, "prescient_events_in_total"),
        counter(registry, "prescient_events_rejected_total"),
        if top.is_empty() {
            "-".to_string()
        } else {
            top.join(", ")
        }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, TimeZone, Utc};
    use clap::Parser;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        demo: DemoArgs,
    }

    fn generator(a: &DemoArgs) -> ProduceArgs {
        let mut p = ProduceArgs::defaults("127.0.0.1:1");
        p.rate = a.rate;
        p.bad_ratio = a.bad_ratio;
        p
    }

    /// Records expected in the `span` before `now`, second by second.
    fn records(p: &ProduceArgs, span: Duration, now: DateTime<Utc>) -> f64 {
        let end = now.timestamp_millis() as f64;
        (0..span.as_secs())
            .map(|s| p.expected_rate_at(end - (s as f64 + 0.5) * 1000.0))
            .sum()
    }

    /// Records per second the release pipeline of `prescient demo` read while
    /// backfilling on the shared 2-core development machine with other builds
    /// running (about 155,000; taken lower here for margin).
    const READ_RATE: f64 = 100_000.0;

    #[test]
    fn the_default_backfill_is_read_soon_enough_to_go_live_within_two_minutes() {
        // The forecaster plans at event time: until the backfill is read, its
        // decisions are for minutes long gone and the scaler skips them as
        // stale. Two hours at the default rate (14 M+ records, four minutes at
        // 60,000/s) kept every demo decision stale for its first minutes.
        let a = Cli::parse_from(["demo"]).demo;
        let p = generator(&a);
        for hour in [0, 6, 12, 18] {
            let now = Utc.with_ymd_and_hms(2026, 11, 23, hour, 30, 0).unwrap();
            let span = backfill_span(&p, a.backfill, a.backfill_rate, a.backfill_within, now);
            let secs = records(&p, span, now) / READ_RATE;
            assert!(
                secs <= 100.0,
                "at {hour}:30 the default backfill of {span:?} takes ~{secs:.0}s to read"
            );
            assert!(
                span >= Duration::from_secs(20 * 60),
                "at {hour}:30 only {span:?} of history: too little to show a forecast"
            );
        }
    }

    #[test]
    fn the_backfill_keeps_the_newest_whole_minutes_that_fit() {
        let mut p = ProduceArgs::defaults("127.0.0.1:1");
        p.rate = 1000.0;
        let now = Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap();
        let (two_h, within) = (Duration::from_secs(7200), Duration::from_secs(10));
        let span = backfill_span(&p, two_h, 100_000.0, within, now);
        assert!(span < two_h && span > Duration::ZERO, "{span:?}");
        assert_eq!(span.as_secs() % 60, 0, "whole minutes: {span:?}");
        let budget = 100_000.0 * 10.0;
        assert!(records(&p, span, now) <= budget * 1.001);
        let more = span + Duration::from_secs(60);
        assert!(
            records(&p, more, now) > budget * 0.999,
            "one more minute would still fit"
        );
        // A short history, or no budget, is kept whole; a faster reader gets more.
        let short = Duration::from_secs(90);
        assert_eq!(backfill_span(&p, short, 100_000.0, within, now), short);
        assert_eq!(
            backfill_span(&p, two_h, 100_000.0, Duration::ZERO, now),
            two_h
        );
        assert!(backfill_span(&p, two_h, 200_000.0, within, now) > span);
        // Noon is the daily peak: the same budget covers more of the night.
        let night = Utc.with_ymd_and_hms(2026, 11, 23, 0, 0, 0).unwrap();
        assert!(backfill_span(&p, two_h, 100_000.0, within, night) > span);
    }

    #[test]
    fn scaler_stats_count_outcomes() {
        let mut s = ScalerStats::default();
        for o in ["dry-run", "skipped-stale", "dry-run"] {
            s.actions += 1;
            *s.outcomes.entry(o).or_default() += 1;
        }
        assert_eq!(
            s.to_string(),
            "scaler (dry-run): 3 actions (dry-run 2, skipped-stale 1)"
        );
    }
}
