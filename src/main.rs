//! `prescient`: the command-line interface. Thin: flags here, work in the
//! library crates.

use anyhow::Context;
use clap::{Parser, Subcommand};

use prescient::{bench, dashboard, dataflow_cli, demo, forecaster_cli, forecaster_flags, produce};

/// Prescient: stream analytics that scales services before the traffic arrives.
#[derive(Parser)]
#[command(name = "prescient", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run everything on embedded defaults: broker, PostgreSQL, generator, dataflow.
    Demo(demo::DemoArgs),
    /// Aggregate Kafka user-events into per-minute metrics in PostgreSQL, exactly once.
    Dataflow(dataflow_cli::DataflowArgs),
    /// Generate user-events (or replay a timestamp,value series) into Kafka.
    Produce(produce::ProduceArgs),
    /// Apply the database migrations.
    Migrate(MigrateArgs),
    /// Run an embedded Kafka-protocol broker (librdkafka's mock cluster) until interrupted.
    Broker(BrokerArgs),
    /// Benchmarks.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Rolling-origin backtest of the forecasting models on a timestamp,value CSV.
    Backtest(forecaster_flags::BacktestArgs),
    /// Replay a series through a capacity model under a scaling policy.
    Simulate(forecaster_flags::SimulateArgs),
    /// Forecast every service each minute and plan capacity.
    Forecaster(forecaster_cli::WorkerArgs),
    /// Serve the dashboard: web app, JSON API and live updates.
    Dashboard(dashboard::DashboardArgs),
    /// Create, list and revoke the dashboard's API tokens.
    #[command(subcommand)]
    Token(dashboard::TokenCommand),
}

#[derive(clap::Args)]
struct MigrateArgs {
    /// PostgreSQL URL.
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
}

/// `prescient broker`: prints `bootstrap=HOST:PORT,...` on its first line,
/// then takes commands on stdin (one per line, each answered `ok` or
/// `error: ...` on stdout), to inject failures in tests:
/// `down BROKER_ID`, `up BROKER_ID`, `fail-produce COUNT ERROR_NAME`.
#[derive(clap::Args)]
struct BrokerArgs {
    /// Topics to create, as NAME:PARTITIONS, or NAME:PARTITIONS@BROKER_ID to
    /// make one broker lead all its partitions.
    #[arg(long = "topic", default_values = ["user-events:8", "user-events-dlq:1", "scaling-decisions:1", "scaling-actions:1"])]
    topics: Vec<String>,
    /// Brokers in the cluster (ids 1..=N).
    #[arg(long, default_value_t = 1)]
    brokers: i32,
}

/// Applies one `prescient broker` stdin command.
fn broker_command(
    broker: &prescient_infra::broker::EmbeddedBroker,
    line: &str,
) -> anyhow::Result<()> {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        ["down", id] => broker.broker_down(id.parse()?)?,
        ["up", id] => broker.broker_up(id.parse()?)?,
        ["fail-produce", count, name] => broker.fail_produce_requests(
            count.parse()?,
            prescient_infra::broker::produce_error(name)
                .with_context(|| format!("unknown error name {name:?}"))?,
        ),
        _ => anyhow::bail!("unknown command {line:?}"),
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    prescient::init_tracing();
    let cli = Cli::parse();
    match cli.command {
        Command::Demo(args) => demo::run(args)?,
        Command::Dataflow(args) => {
            let stop = prescient::stop_on_ctrl_c()?;
            prescient::connect_args::check_database_url(&args.database_url)?;
            let config = args.into_config(stop.clone());
            prescient_dataflow::run(config, prometheus::Registry::new())?
        }
        Command::Produce(args) => {
            let stop = prescient::stop_on_ctrl_c()?;
            let registry = prometheus::Registry::new();
            let produced = produce::produced_counter(&registry)?;
            let _runtime = match args.metrics_addr {
                Some(addr) => {
                    let rt = tokio::runtime::Runtime::new()?;
                    rt.block_on(prescient_infra::metrics::serve(addr, registry))?;
                    Some(rt)
                }
                None => None,
            };
            let done = produce::run(
                &args,
                &|| stop.load(std::sync::atomic::Ordering::Relaxed),
                &produced,
            )?;
            eprintln!(
                "produced {} records in {:.1}s ({:.0}/s)",
                done.records,
                done.seconds,
                done.records as f64 / done.seconds
            );
        }
        Command::Migrate(args) => {
            prescient::connect_args::check_database_url(&args.database_url)?;
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(async {
                let pool = sqlx::PgPool::connect(&args.database_url)
                    .await
                    .context("connecting to PostgreSQL")?;
                prescient_infra::migrate::run(&pool).await?;
                anyhow::Ok(())
            })?;
            eprintln!("migrations applied");
        }
        Command::Broker(args) => {
            let stop = prescient::stop_on_ctrl_c()?;
            let broker = prescient_infra::broker::EmbeddedBroker::start(args.brokers)?;
            for t in &args.topics {
                let (name, spec) = t.split_once(':').unwrap_or((t.as_str(), "1"));
                let (parts, leader) = match spec.split_once('@') {
                    Some((p, l)) => (
                        p,
                        Some(l.parse::<i32>().context("leader must be a broker id")?),
                    ),
                    None => (spec, None),
                };
                let parts: i32 = parts.parse().context("partitions must be a number")?;
                broker.create_topic(name, parts)?;
                if let Some(leader) = leader {
                    for p in 0..parts {
                        broker.partition_leader(name, p, leader)?;
                    }
                }
            }
            // The one line scripts read: where to connect.
            println!("bootstrap={}", broker.bootstrap_servers());
            use std::io::Write;
            std::io::stdout().flush()?;
            let (tx, rx) = std::sync::mpsc::channel::<String>();
            std::thread::spawn(move || {
                for line in std::io::stdin().lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                match rx.recv_timeout(std::time::Duration::from_millis(100)) {
                    Ok(line) => {
                        match broker_command(&broker, &line) {
                            Ok(()) => println!("ok"),
                            Err(e) => println!("error: {e:#}"),
                        }
                        std::io::stdout().flush()?;
                    }
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                    // stdin closed: keep serving until interrupted.
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                        std::thread::sleep(std::time::Duration::from_millis(100))
                    }
                }
            }
        }
        Command::Bench(cmd) => bench::run(cmd)?,
        Command::Backtest(args) => {
            prescient_forecaster::backtest_command(args.resolve().map_err(anyhow::Error::msg)?)?
        }
        Command::Simulate(args) => {
            prescient_forecaster::simulate_command(args.resolve().map_err(anyhow::Error::msg)?)?
        }
        Command::Forecaster(args) => {
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(forecaster_cli::run(args))?
        }
        Command::Dashboard(args) => {
            prescient::connect_args::check_database_url(&args.database_url)?;
            tokio::runtime::Runtime::new()?.block_on(dashboard::run(args))?
        }
        Command::Token(cmd) => tokio::runtime::Runtime::new()?.block_on(dashboard::token(cmd))?,
    }
    Ok(())
}
