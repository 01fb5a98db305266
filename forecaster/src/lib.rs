//! Per-service traffic forecasts, a capacity planner, and the `backtest` /
//! `simulate` / `forecaster` commands.
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
