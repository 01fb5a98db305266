//! Flags of `prescient backtest` and `prescient simulate`, resolved into
//! the forecaster library's plain [`BacktestCommand`] and
//! [`SimulateCommand`] (the library has no flag types).
//!
//! This file depends only on `clap` and `prescient_forecaster`: the
//! forecaster's `forecaster_cli` example includes it by path, so the
//! benchmark binary and `prescient` share one definition of the flags.

use std::path::PathBuf;

use prescient_forecaster::ModelKind;
use prescient_forecaster::{BacktestCommand, ModelSelection, SimulateCommand};
use prescient_forecaster::{PlanWindow, Policy};

/// Model selection flags shared by `backtest` and `simulate`.
#[derive(Debug, Clone, clap::Args)]
pub struct ModelArgs {
    /// Comma-separated models: naive, snaive_daily, snaive_weekly, ets, profile, lstm.
    #[arg(
        long,
        default_value = "naive,snaive_daily,snaive_weekly,ets,profile,lstm"
    )]
    pub models: String,
    /// Seed of the LSTM's initialisation and batch order.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Warm-up in points before the first forecast (default: 8 days or half the series).
    #[arg(long)]
    pub warmup: Option<usize>,
    /// Use only the first DAYS days of the series (default: all of it).
    #[arg(long)]
    pub days: Option<f64>,
    /// Days of rolling-origin evaluation per fit (model choice and intervals).
    #[arg(long, default_value_t = 3.0)]
    pub calibration_days: f64,
    /// Show no progress bar.
    #[arg(long)]
    pub quiet: bool,
}

impl ModelArgs {
    fn resolve(self) -> Result<ModelSelection, String> {
        Ok(ModelSelection {
            models: ModelKind::parse_list(&self.models)?,
            seed: self.seed,
            warmup: self.warmup,
            days: self.days,
            calibration_days: self.calibration_days,
            quiet: self.quiet,
        })
    }
}

/// `--policy` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PolicyArg {
    /// Kubernetes HPA with its defaults.
    Reactive,
    /// Prescient's forecast-driven plan with a reactive floor.
    Predictive,
    /// Perfect foresight.
    Oracle,
}

impl From<PolicyArg> for Policy {
    fn from(p: PolicyArg) -> Policy {
        match p {
            PolicyArg::Reactive => Policy::Reactive,
            PolicyArg::Predictive => Policy::Predictive,
            PolicyArg::Oracle => Policy::Oracle,
        }
    }
}

/// `--plan-window` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PlanWindowArg {
    /// The highest forecast over the next lead + 1 intervals.
    Now,
    /// New replicas for the interval they arrive in; existing ones kept
    /// while needed before it.
    Arrival,
}

impl From<PlanWindowArg> for PlanWindow {
    fn from(p: PlanWindowArg) -> PlanWindow {
        match p {
            PlanWindowArg::Now => PlanWindow::Now,
            PlanWindowArg::Arrival => PlanWindow::Arrival,
        }
    }
}

/// `prescient backtest`: rolling-origin forecasts of a `timestamp,value` CSV.
#[derive(Debug, clap::Args)]
pub struct BacktestArgs {
    /// Input series (`timestamp,value`, fixed interval, e.g. 1 or 5 minutes).
    #[arg(long)]
    pub csv: PathBuf,
    /// Forecast horizon in steps of the series' interval.
    #[arg(long, default_value_t = 12)]
    pub horizon: usize,
    /// Output CSV: `origin,target,horizon,model,p10,p50,p90`.
    #[arg(long)]
    pub output: PathBuf,
    /// Refit every this many points (default: one day).
    #[arg(long)]
    pub refit_every: Option<usize>,
    /// Write rows only for every this many origins (scores cover all).
    #[arg(long, default_value_t = 1)]
    pub output_every: usize,
    #[command(flatten)]
    /// Model selection.
    pub models: ModelArgs,
}

/// `prescient simulate`: replay a series as demand through a scaling policy.
#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// Input series (`timestamp,value`): requests per interval.
    #[arg(long)]
    pub csv: PathBuf,
    /// Scaling policy.
    #[arg(long, value_enum)]
    pub policy: PolicyArg,
    /// Requests per interval one replica serves at 100%.
    #[arg(long)]
    pub capacity: f64,
    /// Minutes from requesting a replica until it is ready.
    #[arg(long)]
    pub lead: f64,
    /// Minimum replicas.
    #[arg(long, default_value_t = 1)]
    pub min: u32,
    /// Maximum replicas.
    #[arg(long, default_value_t = 100)]
    pub max: u32,
    /// Target utilisation of `reactive` (and of `predictive` during its warm-up).
    #[arg(long, default_value_t = 0.7)]
    pub target_utilization: f64,
    /// Utilisation `predictive` sizes its p90 forecast at (1.0: the p90 is the headroom).
    #[arg(long, default_value_t = 1.0)]
    pub predictive_utilization: f64,
    /// The plan's headroom: it sizes for p50 + HEADROOM × (p90 − p50)
    /// (1.0: the p90; lower is cheaper and leaves more to the floor).
    #[arg(long, default_value_t = 1.0)]
    pub headroom: f64,
    /// Which forecast intervals the plan sizes for: `arrival` sizes new
    /// replicas for the interval they can be ready in (lead + 1) and keeps
    /// existing ones while the forecast needs them before that; `now` sizes
    /// for the highest forecast over the next lead + 1 intervals.
    #[arg(long, value_enum, default_value = "arrival")]
    pub plan_window: PlanWindowArg,
    /// Headroom (same unit as --headroom) for keeping replicas that the
    /// forecast needs before new ones could arrive; default: --headroom.
    #[arg(long)]
    pub hold_headroom: Option<f64>,
    /// Minutes the plan waits, wanting fewer replicas, before it gives them
    /// back (its scale-down window; the HPA's is 5).
    #[arg(long, default_value_t = 5)]
    pub release_after: u32,
    /// Target utilisation of `predictive`'s reactive floor (an HPA of its
    /// own); equal to --target-utilization makes it the HPA itself.
    #[arg(long, default_value_t = 0.9)]
    pub floor_utilization: f64,
    /// Seconds the reactive floor keeps replicas after the demand that
    /// asked for them fell (the HPA's scale-down window is 300).
    #[arg(long, default_value_t = 180)]
    pub floor_window: u32,
    /// Output CSV; an SVG chart is written beside it (same name, `.svg`).
    #[arg(long)]
    pub output: PathBuf,
    #[command(flatten)]
    /// Model selection (for `predictive`).
    pub models: ModelArgs,
}

impl BacktestArgs {
    /// The library's settings; a bad `--models` list is an error.
    pub fn resolve(self) -> Result<BacktestCommand, String> {
        Ok(BacktestCommand {
            csv: self.csv,
            horizon: self.horizon,
            output: self.output,
            refit_every: self.refit_every,
            output_every: self.output_every,
            models: self.models.resolve()?,
        })
    }
}

impl SimulateArgs {
    /// The library's settings; a bad `--models` list is an error.
    pub fn resolve(self) -> Result<SimulateCommand, String> {
        Ok(SimulateCommand {
            csv: self.csv,
            policy: self.policy.into(),
            capacity: self.capacity,
            lead: self.lead,
            min: self.min,
            max: self.max,
            target_utilization: self.target_utilization,
            predictive_utilization: self.predictive_utilization,
            headroom: self.headroom,
            plan_window: self.plan_window.into(),
            hold_headroom: self.hold_headroom,
            release_after: self.release_after,
            floor_utilization: self.floor_utilization,
            floor_window: self.floor_window,
            output: self.output,
            models: self.models.resolve()?,
        })
    }
}
