//! Per-service traffic forecasts, a capacity planner, and the `backtest` /
//! `simulate` / `forecaster` commands of Prescient.
//!
//! * [`models`]: seasonal naive (daily, weekly), damped-trend Holt-Winters
//!   ([`models::Ets`]) and an LSTM trained with candle ([`models::Lstm`]),
//!   all behind [`models::PointModel`].
//! * [`select`]: an [`select::Ensemble`] fits every model, scores it by
//!   rolling-origin forecasts over the last day, derives p10/p90 from those
//!   out-of-sample errors, and forecasts `auto` as an inverse-error weighted
//!   ensemble per horizon.
//! * [`backtest`] and [`simulate`] (with the Kubernetes HPA in [`hpa`]) are
//!   the offline commands; [`planner`] turns a forecast and a
//!   [`config::ServicePolicy`] into a [`prescient_contracts::decision::ScalingDecision`];
//!   [`worker`] runs it all against PostgreSQL and Kafka (planning from the
//!   sizes the scaler reports, recorded by [`actions`]) and raises
//!   [`alerts`] with hysteresis; [`metrics`] lists the Prometheus series.
//!
//! Forecasting a series:
//!
//! ```
//! use prescient_forecaster::select::{Ensemble, ModelKind, ModelsConfig};
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
//! # async fn demo(database_url: String, brokers: String) -> Result<(), prescient_forecaster::worker::WorkerError> {
//! use prescient_forecaster::worker::{WorkerConfig, run_worker};
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

pub mod actions;
pub mod alerts;
pub mod backtest;
pub mod cli;
pub mod config;
pub mod hpa;
pub mod metrics;
pub mod models;
pub mod planner;
pub mod select;
pub mod series;
pub mod simulate;
pub mod worker;
