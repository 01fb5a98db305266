//! Per-service traffic forecasts, a capacity planner, and the `backtest` /
//! `simulate` / `forecaster` commands of Prescient.
//!
//! * Models: last value and seasonal naive ([`Naive`], [`SeasonalNaive`]),
//!   damped-trend Holt-Winters ([`Ets`]), a smoothed daily profile × level
//!   for spiky minute traffic ([`Profile`]) and an LSTM trained with candle
//!   ([`Lstm`]), all behind [`PointModel`].
//! * [`Ensemble`] fits every model, scores it by rolling-origin forecasts
//!   over the last days, derives p10/p90 from those out-of-sample errors,
//!   and forecasts `auto` per horizon as the best model blended with at
//!   most one other, times a median bias factor ([`ModelsConfig`]).
//! * [`run_backtest`] and [`run_simulation`] (replaying the Kubernetes HPA,
//!   a forecast plan with a reactive floor, or an oracle) are the offline
//!   commands, behind [`backtest_command`] and [`simulate_command`];
//!   [`run_worker`] runs the forecaster against PostgreSQL and Kafka: it
//!   plans each service's capacity from its [`ServicePolicy`] (read from
//!   [`Policies`]) into a [`prescient_contracts::decision::ScalingDecision`],
//!   from the sizes the scaler reports ([`ActionsConsumer`]), and raises
//!   alerts with hysteresis ([`AlertConfig`]).
//!
//! Forecasting a series:
//!
//! ```
//! use prescient_forecaster::{Ensemble, ModelKind, ModelsConfig};
//!
//! // Two weeks of hourly data with a daily cycle.
//! let y: Vec<f64> = (0..24 * 14)
//!     .map(|t| 100.0 + 50.0 * ((t % 24) as f64 / 24.0 * std::f64::consts::TAU).sin())
//!     .collect();
//! let config = ModelsConfig {
//!     models: vec![ModelKind::Naive, ModelKind::SnaiveDaily, ModelKind::Ets],
//!     ..Default::default()
//! };
//! let mut ens = Ensemble::new(&config, 24, 6); // 24 points a day, 6 steps ahead
//! ens.fit(&y).unwrap();
//! let next = ens.forecast();
//! assert_eq!(next.len(), 6);
//! assert!(next.iter().all(|q| q.p10 <= q.p50 && q.p50 <= q.p90));
//! ens.observe(y[0]); // a new value arrives: state advances without refitting
//! ```
//!
//! Running the worker inside another process (what `prescient demo` does),
//! in dry-run, until a shutdown future completes:
//!
//! ```no_run
//! # async fn demo(database_url: String, brokers: String) -> Result<(), prescient_forecaster::WorkerError> {
//! use prescient_forecaster::{WorkerConfig, run_worker};
//!
//! let mut config = WorkerConfig::new(database_url);
//! config.brokers = Some(brokers);       // also publish on `scaling-decisions`
//! config.force_dry_run = true;          // record decisions, apply nothing
//! config.registry = Some(prometheus::Registry::new()); // share the demo's registry
//! run_worker(config, async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(()) }
//! ```
//!
//! See `docs/forecaster.md` for the commands, the policy file, the tables
//! and the metrics.

mod actions;
mod alerts;
mod backtest;
mod cli;
mod config;
mod hpa;
mod metrics;
mod models;
mod planner;
mod select;
mod series;
mod simulate;
mod worker;

pub use actions::{ActionsConsumer, ActionsError};
pub use alerts::AlertConfig;
pub use backtest::{BacktestError, BacktestOptions, BacktestReport, Score, run as run_backtest};
pub use cli::{
    BacktestCommand, CliError, ModelSelection, SimulateCommand, backtest as backtest_command,
    simulate as simulate_command,
};
pub use config::{ConfigError, Policies, PolicyFile, ServicePolicy};
pub use models::{
    Ets, Lstm, LstmConfig, ModelError, Naive, PointModel, Profile, ProfileConfig, Quantiles,
    SeasonalNaive,
};
pub use select::{Ensemble, FitReport, ModelKind, ModelsConfig};
pub use series::{Series, SeriesError, read_points};
pub use simulate::{
    ForecastSource, PlanWindow, Policy, SimOptions, SimRow, SimSummary, SimulateError,
    run as run_simulation, run_with_forecasts as run_simulation_with_forecasts,
};
pub use worker::{
    Bucket, FRONTIER_CHANNEL, LiveAccuracy, TickReport, Worker, WorkerConfig, WorkerError,
    run_worker,
};
