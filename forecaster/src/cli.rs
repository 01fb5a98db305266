//! Entry points of the offline subcommands (`backtest`, `simulate`), driven
//! by plain settings structs. The flags live in the binary
//! (`src/forecaster_flags.rs`, `src/forecaster_cli.rs` for the worker) and
//! resolve into [`BacktestCommand`], [`SimulateCommand`] and
//! [`crate::worker::WorkerConfig`]; this crate has no flag types.

use crate::backtest::{self, BacktestOptions};
use crate::select::{ModelKind, ModelsConfig};
use crate::series::Series;
use crate::simulate::{self, PlanWindow, Policy, SimOptions};
use std::io::BufWriter;
use std::path::{Path, PathBuf};

/// Errors of the forecaster's commands.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Reading the input series failed.
    #[error(transparent)]
    Series(#[from] crate::series::SeriesError),
    /// The backtest failed.
    #[error(transparent)]
    Backtest(#[from] backtest::BacktestError),
    /// The simulation failed.
    #[error(transparent)]
    Simulate(#[from] simulate::SimulateError),
    /// The policy or models file is invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// An output file could not be written.
    #[error("{path}: {source}")]
    Io {
        /// File path.
        path: String,
        /// Underlying error.
        source: std::io::Error,
    },
    /// A flag has an invalid value.
    #[error("{0}")]
    Usage(String),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> CliError + '_ {
    move |source| CliError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Model selection shared by `backtest` and `simulate` (the binary's
/// `--models`, `--seed`, … flags resolve into this).
#[derive(Debug, Clone)]
pub struct ModelSelection {
    /// Members of the ensemble.
    pub models: Vec<ModelKind>,
    /// Seed of the LSTM's initialisation and batch order.
    pub seed: u64,
    /// Warm-up in points before the first forecast (default: 8 days or half the series).
    pub warmup: Option<usize>,
    /// Use only the first DAYS days of the series (default: all of it).
    pub days: Option<f64>,
    /// Days of rolling-origin evaluation per fit (model choice and intervals).
    pub calibration_days: f64,
    /// Show no progress bar.
    pub quiet: bool,
}

impl ModelSelection {
    fn read(&self, path: &Path) -> Result<Series, CliError> {
        let s = Series::from_csv_path(path)?;
        Ok(match self.days {
            Some(d) if d.is_nan() || d <= 0.0 => {
                return Err(CliError::Usage("--days must be > 0".into()));
            }
            Some(d) => s.first_days(d),
            None => s,
        })
    }

    fn config(&self) -> Result<ModelsConfig, CliError> {
        let models = self.models.clone();
        if models.is_empty() {
            return Err(CliError::Usage("no models selected".into()));
        }
        if self.calibration_days.is_nan() || self.calibration_days <= 0.0 {
            return Err(CliError::Usage("--calibration-days must be > 0".into()));
        }
        let mut c = ModelsConfig {
            models,
            calibration_days: self.calibration_days,
            ..Default::default()
        };
        c.lstm.seed = self.seed;
        Ok(c)
    }
}

/// `prescient backtest`: rolling-origin forecasts of a `timestamp,value` CSV.
#[derive(Debug, Clone)]
pub struct BacktestCommand {
    /// Input series (`timestamp,value`, fixed interval, e.g. 1 or 5 minutes).
    pub csv: PathBuf,
    /// Forecast horizon in steps of the series' interval.
    pub horizon: usize,
    /// Output CSV: `origin,target,horizon,model,p10,p50,p90`.
    pub output: PathBuf,
    /// Refit every this many points (default: one day).
    pub refit_every: Option<usize>,
    /// Write rows only for every this many origins (scores cover all).
    pub output_every: usize,
    /// Model selection.
    pub models: ModelSelection,
}

/// `prescient simulate`: replay a series as demand through a scaling policy.
#[derive(Debug, Clone)]
pub struct SimulateCommand {
    /// Input series (`timestamp,value`): requests per interval.
    pub csv: PathBuf,
    /// Scaling policy.
    pub policy: Policy,
    /// Requests per interval one replica serves at 100%.
    pub capacity: f64,
    /// Minutes from requesting a replica until it is ready.
    pub lead: f64,
    /// Minimum replicas.
    pub min: u32,
    /// Maximum replicas.
    pub max: u32,
    /// Target utilisation of `reactive` (and of `predictive` during its warm-up).
    pub target_utilization: f64,
    /// Utilisation `predictive` sizes its p90 forecast at (1.0: the p90 is the headroom).
    pub predictive_utilization: f64,
    /// The plan's headroom: it sizes for p50 + HEADROOM × (p90 − p50)
    /// (1.0: the p90; lower is cheaper and leaves more to the floor).
    pub headroom: f64,
    /// Which forecast intervals the plan sizes for.
    pub plan_window: PlanWindow,
    /// Headroom for keeping replicas the forecast needs before new ones
    /// could arrive (`PlanWindow::Arrival`); `None`: the same as `headroom`.
    pub hold_headroom: Option<f64>,
    /// Minutes the plan waits, wanting fewer replicas, before it gives them
    /// back (at least one interval).
    pub release_after: u32,
    /// Target utilisation of `predictive`'s reactive floor (an HPA of its
    /// own); equal to --target-utilization makes it the HPA itself.
    pub floor_utilization: f64,
    /// Seconds the reactive floor keeps replicas after the demand that
    /// asked for them fell (the HPA's scale-down window is 300).
    pub floor_window: u32,
    /// Output CSV; an SVG chart is written beside it (same name, `.svg`).
    pub output: PathBuf,
    /// Model selection (for `predictive`).
    pub models: ModelSelection,
}

/// candle parallelises every matrix product over all cores, which for the
/// LSTM's tiny matrices costs more in thread wake-ups than it gains (2-3×
/// slower on 2 cores). The offline commands run the models on one thread
/// unless the user chose otherwise.
fn single_threaded_candle() {
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        // SAFETY: called at the start of a synchronous command, before this
        // crate starts any thread; nothing else reads the environment
        // concurrently in the `prescient` binary at that point.
        unsafe { std::env::set_var("RAYON_NUM_THREADS", "1") };
    }
}

/// Runs `prescient backtest`.
pub fn backtest(args: BacktestCommand) -> Result<(), CliError> {
    single_threaded_candle();
    let series = args.models.read(&args.csv)?;
    let opts = BacktestOptions {
        horizon: args.horizon,
        warmup: args.models.warmup,
        refit_every: args.refit_every,
        output_every: args.output_every,
        models: args.models.config()?,
        progress: !args.models.quiet,
    };
    let file = std::fs::File::create(&args.output).map_err(io_err(&args.output))?;
    let mut out = BufWriter::new(file);
    let started = std::time::Instant::now();
    let report = backtest::run(&series, &opts, &mut out)?;
    let mut horizons: Vec<usize> = [1, 5, 15, 30, 60]
        .into_iter()
        .filter(|h| *h < args.horizon)
        .collect();
    horizons.push(args.horizon);
    println!(
        "{}: {} points at {} s, warm-up {}, {} rows to {} in {:.1} s (MASE scale {:.3})",
        args.csv.display(),
        report.points,
        series.interval_secs,
        report.warmup,
        report.rows,
        args.output.display(),
        started.elapsed().as_secs_f64(),
        report.scale
    );
    print!("{}", report.table(&horizons));
    Ok(())
}

/// Runs `prescient simulate`.
pub fn simulate(args: SimulateCommand) -> Result<(), CliError> {
    single_threaded_candle();
    let series = args.models.read(&args.csv)?;
    if args.lead.is_nan() || args.lead < 0.0 {
        return Err(CliError::Usage("--lead must be >= 0 minutes".into()));
    }
    let models = args.models.config()?;
    let opts = SimOptions {
        policy: args.policy,
        capacity: args.capacity,
        lead_s: (args.lead * 60.0).round() as u32,
        min: args.min,
        max: args.max,
        target_utilization: args.target_utilization,
        predictive_utilization: args.predictive_utilization,
        floor_utilization: args.floor_utilization,
        floor_scale_down_window_s: args.floor_window,
        headroom: args.headroom,
        plan_window: args.plan_window,
        hold_headroom: args.hold_headroom.unwrap_or(args.headroom),
        release_after: series.steps_for_minutes(args.release_after).max(1),
        warmup: args.models.warmup,
        models,
        progress: !args.models.quiet,
    };
    let (rows, s) = simulate::run(&series, &opts)?;
    let file = std::fs::File::create(&args.output).map_err(io_err(&args.output))?;
    simulate::write_csv(&series, &rows, args.capacity, &mut BufWriter::new(file))
        .map_err(io_err(&args.output))?;
    let svg_path = args.output.with_extension("svg");
    let title = format!(
        "{} — {} (capacity {}, lead {} min, replicas {}..{})",
        args.csv.file_name().and_then(|f| f.to_str()).unwrap_or(""),
        s.policy,
        args.capacity,
        args.lead,
        args.min,
        args.max
    );
    std::fs::write(
        &svg_path,
        simulate::svg_chart(&series, &rows, args.capacity, &title),
    )
    .map_err(io_err(&svg_path))?;
    println!("policy            {}", s.policy);
    println!("intervals         {} (after warm-up)", s.intervals);
    println!("demand            {:.0}", s.demand);
    println!(
        "unserved          {:.0} ({:.3}%)",
        s.unserved,
        s.unserved_fraction * 100.0
    );
    println!("under-provisioned {} intervals", s.under_provisioned);
    println!(
        "replica-minutes   {:.0} ({:.1} replica-hours)",
        s.replica_minutes, s.replica_hours
    );
    println!("scaling actions   {}", s.scaling_actions);
    println!("wrote {} and {}", args.output.display(), svg_path.display());
    Ok(())
}
