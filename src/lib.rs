//! The `prescient` command: one binary whose subcommands are Prescient's
//! user interface. `main.rs` parses flags; the commands live here so tests
//! and benchmarks can drive them.
//!
//! | subcommand | what it does | module |
//! | --- | --- | --- |
//! | `demo` | everything on embedded defaults | [`demo`] |
//! | `dataflow` | Kafka → per-minute metrics in PostgreSQL (flags: [`dataflow_cli`]) | `prescient_dataflow` |
//! | `produce` | load generator / series replay | [`produce`] |
//! | `migrate` | apply database migrations | `prescient_infra::migrate` |
//! | `broker` | an embedded Kafka-protocol broker | `prescient_infra::broker` |
//! | `dashboard`, `token` | the dashboard server and its API tokens | [`dashboard`] |
//! | `bench ingest`, `bench dashboard` | the ingest and dashboard benchmarks | [`mod@bench`], [`bench_dashboard`] |
//! | `backtest`, `simulate`, `forecaster` | forecasting and capacity planning (flags: [`forecaster_flags`], worker: [`forecaster_cli`]) | `prescient_forecaster` |
//!
//! ```no_run
//! // Produce 1,000 seeded events to a broker, then stop.
//! let mut args = prescient::produce::ProduceArgs::defaults("127.0.0.1:9092");
//! args.events = Some(1_000);
//! args.no_pace = true;
//! let counter = prometheus::IntCounter::new("produced", "records sent").unwrap();
//! let produced = prescient::produce::run(&args, &|| false, &counter).unwrap();
//! assert_eq!(produced.records, 1_000);
//! ```

pub mod bench;
pub mod bench_dashboard;
pub mod connect_args;
pub mod dashboard;
pub mod dataflow_cli;
pub mod demo;
pub mod forecaster_cli;
pub mod forecaster_flags;
pub mod produce;

/// Installs a tracing subscriber: `RUST_LOG` filters (default `info`),
/// `PRESCIENT_LOG_FORMAT=json` switches to JSON lines.
pub fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,rdkafka=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var("PRESCIENT_LOG_FORMAT").is_ok_and(|f| f == "json") {
        let _ = builder.json().try_init();
    } else {
        let _ = builder.try_init();
    }
}

/// Installs the Ctrl-C / SIGTERM handler: the first signal sets the
/// returned flag (a graceful stop: hand it to the dataflow as
/// `DataflowConfig::shutdown`), a second one exits at once. Safe to call
/// more than once; every call returns the same flag.
pub fn stop_on_ctrl_c()
-> Result<&'static std::sync::Arc<std::sync::atomic::AtomicBool>, ctrlc::Error> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    static STOP: std::sync::OnceLock<Arc<AtomicBool>> = std::sync::OnceLock::new();
    static INSTALLED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    let stop = STOP.get_or_init(|| Arc::new(AtomicBool::new(false)));
    let installed = INSTALLED.get_or_init(|| {
        ctrlc::set_handler(|| {
            let stop = STOP.get().expect("set before the handler");
            if stop.swap(true, Ordering::Relaxed) {
                std::process::exit(130);
            }
            eprintln!("stopping (Ctrl-C again to quit at once)");
        })
        .map_err(|e| e.to_string())
    });
    match installed {
        Ok(()) => Ok(stop),
        Err(e) => Err(ctrlc::Error::System(std::io::Error::other(e.clone()))),
    }
}
