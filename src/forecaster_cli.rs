//! `prescient forecaster` flags: parsed here, resolved into the library's
//! [`WorkerConfig`] (the forecaster crate has no flag types).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use prescient_forecaster::ModelKind;
use prescient_forecaster::Policies;
use prescient_forecaster::{WorkerConfig, run_worker};

/// `prescient forecaster` flags.
#[derive(Debug, clap::Args)]
pub struct WorkerArgs {
    /// PostgreSQL URL.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: String,
    /// Kafka bootstrap servers for `scaling-decisions` (omit to record in PostgreSQL only).
    #[arg(long, env = "KAFKA_BROKERS")]
    pub brokers: Option<String>,
    /// Kafka TLS/SASL.
    #[command(flatten)]
    pub kafka: crate::connect_args::KafkaSecurityArgs,
    /// Capacity policy TOML (see docs/forecaster.md); without one every
    /// service gets the default dry-run policy.
    #[arg(long, env = "PRESCIENT_POLICY_FILE")]
    pub policy_file: Option<PathBuf>,
    /// Plan only for services listed in the policy file.
    #[arg(long)]
    pub only_listed: bool,
    /// Serve Prometheus `/metrics` on this address.
    #[arg(
        long,
        env = "PRESCIENT_FORECASTER_METRICS_ADDR",
        default_value = "0.0.0.0:9102"
    )]
    pub metrics_addr: SocketAddr,
    /// Bucket length of `service_minute`, as the dataflow's `--bucket`
    /// (whole minutes dividing a day) [default: the dataflow's, recorded in
    /// `ingest_frontier`; one minute while there is none].
    #[arg(long, env = "PRESCIENT_BUCKET", value_parser = prescient_dataflow::parse_duration)]
    pub bucket: Option<Duration>,
    /// Seconds between fallback polls for a closed bucket (the worker wakes
    /// on `NOTIFY prescient_frontier`).
    #[arg(long, default_value_t = 30.0)]
    pub poll_secs: f64,
    /// Forecast horizon in minutes.
    #[arg(long, default_value_t = 60)]
    pub horizon: usize,
    /// Days of history kept per service.
    #[arg(long, default_value_t = 8.0)]
    pub history_days: f64,
    /// Refit models after this many minutes.
    #[arg(long, default_value_t = 60)]
    pub retrain_minutes: u32,
    /// Comma-separated models (naive, snaive_daily, snaive_weekly, ets, profile, lstm).
    #[arg(long, default_value = "naive,snaive_daily,snaive_weekly,ets,profile")]
    pub models: String,
    /// Directory for trained model files (safetensors).
    #[arg(long)]
    pub model_dir: Option<PathBuf>,
    /// Record all decisions as dry-run.
    #[arg(long)]
    pub dry_run: bool,
}

impl WorkerArgs {
    /// Resolves flags and the policy file into a [`WorkerConfig`].
    pub fn into_config(self) -> anyhow::Result<WorkerConfig> {
        let mut c = WorkerConfig::new(self.database_url);
        c.brokers = self.brokers.filter(|b| !b.is_empty());
        c.kafka_security = self.kafka.security();
        if let Some(p) = &self.policy_file {
            c.policies = Policies::from_path(p)?;
        }
        c.policies.only_listed = self.only_listed;
        c.metrics_addr = Some(self.metrics_addr);
        c.bucket = self.bucket;
        if !(self.poll_secs.is_finite() && self.poll_secs > 0.0) {
            anyhow::bail!("--poll-secs must be > 0");
        }
        c.poll_interval = Duration::from_secs_f64(self.poll_secs.max(0.05));
        c.horizon_min = self.horizon.max(1);
        c.history_days = self.history_days;
        c.retrain_every_min = self.retrain_minutes.max(1);
        c.models.models = ModelKind::parse_list(&self.models)
            .map_err(anyhow::Error::msg)
            .context("--models")?;
        c.model_dir = self.model_dir;
        c.force_dry_run = self.dry_run;
        Ok(c)
    }
}

/// Runs the `prescient forecaster` worker until interrupted (Ctrl-C).
pub async fn run(args: WorkerArgs) -> anyhow::Result<()> {
    crate::connect_args::check_database_url(&args.database_url)?;
    let config = args.into_config()?;
    run_worker(config, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: WorkerArgs,
    }

    #[test]
    fn flags_resolve_into_the_config() {
        let cli = Cli::try_parse_from([
            "x",
            "--database-url",
            "postgres://h/db",
            "--bucket",
            "5m",
            "--poll-secs",
            "2",
            "--models",
            "naive,ets",
        ])
        .unwrap();
        let c = cli.args.into_config().unwrap();
        assert_eq!(c.bucket, Some(Duration::from_secs(300)));
        assert_eq!(c.poll_interval, Duration::from_secs(2));
        assert_eq!(c.models.models, vec![ModelKind::Naive, ModelKind::Ets]);
        let bad =
            Cli::try_parse_from(["x", "--database-url", "u", "--models", "naive,nope"]).unwrap();
        assert!(bad.args.into_config().is_err());
    }

    #[test]
    fn backtest_and_simulate_flags_resolve_into_the_library_settings() {
        use crate::forecaster_flags::{BacktestArgs, SimulateArgs};
        use prescient_forecaster::{PlanWindow, Policy};
        #[derive(Parser)]
        struct B {
            #[command(flatten)]
            args: BacktestArgs,
        }
        #[derive(Parser)]
        struct S {
            #[command(flatten)]
            args: SimulateArgs,
        }
        let b = B::try_parse_from([
            "x",
            "--csv",
            "in.csv",
            "--output",
            "o.csv",
            "--models",
            "naive,profile",
        ])
        .unwrap()
        .args
        .resolve()
        .unwrap();
        assert_eq!((b.horizon, b.models.calibration_days), (12, 3.0));
        assert_eq!(b.models.models, vec![ModelKind::Naive, ModelKind::Profile]);
        let bad = B::try_parse_from(["x", "--csv", "i", "--output", "o", "--models", "naive,,x"])
            .unwrap();
        assert!(bad.args.resolve().is_err());
        // `simulate --policy predictive --capacity 30 --lead 5` plus `extra`.
        let predictive = |extra: &[&str]| {
            let mut args = vec![
                "x",
                "--csv",
                "i",
                "--output",
                "o",
                "--policy",
                "predictive",
                "--capacity",
                "30",
                "--lead",
                "5",
            ];
            args.extend_from_slice(extra);
            S::try_parse_from(args).unwrap().args.resolve().unwrap()
        };
        let s = predictive(&[]);
        assert_eq!(
            (s.policy, s.headroom, s.floor_window),
            (Policy::Predictive, 1.0, 180)
        );
        assert_eq!(
            (s.plan_window, s.hold_headroom, s.release_after),
            (PlanWindow::Arrival, None, 5)
        );
        assert_eq!(s.floor_utilization, 0.9);
        let lean = predictive(&[
            "--plan-window",
            "now",
            "--hold-headroom",
            "1.2",
            "--release-after",
            "3",
        ]);
        assert_eq!(
            (lean.plan_window, lean.hold_headroom, lean.release_after),
            (PlanWindow::Now, Some(1.2), 3)
        );
        let hpa = ["x", "--csv", "i", "--output", "o", "--policy", "hpa"];
        assert!(S::try_parse_from(hpa.iter().chain(&["--capacity", "1", "--lead", "1"])).is_err());
    }
}
