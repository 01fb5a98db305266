//! Per-service traffic forecasts, a capacity planner, and the `backtest` /
//! `simulate` / `forecaster` commands. (Being written: see issue 3.)

pub mod cli;
