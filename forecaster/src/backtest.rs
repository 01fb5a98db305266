//! Rolling-origin backtests: forecast every origin after a warm-up with
//! every model and score the forecasts against what arrived.
//!
//! Models are refitted every `refit_every` points (default: one day) on all
//! history up to the origin; between refits they only absorb new values.
//! MASE is scaled by the in-sample (warm-up) mean absolute error of the
//! one-day seasonal naive forecast; sMAPE is in percent.

use crate::models::ModelError;
use crate::select::{Ensemble, ModelsConfig};
use crate::series::Series;
use std::collections::BTreeMap;
use std::io::Write;

/// Errors of a backtest.
#[derive(Debug, thiserror::Error)]
pub enum BacktestError {
    /// Writing the output failed.
    #[error("writing output: {0}")]
    Io(#[from] std::io::Error),
    /// Models could not be fitted.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The series is too short for the warm-up and horizon.
    #[error("series of {len} points is too short for warm-up {warmup} + horizon {horizon}")]
    TooShort {
        /// Points in the series.
        len: usize,
        /// Warm-up points.
        warmup: usize,
        /// Horizon.
        horizon: usize,
    },
}

/// Backtest settings.
#[derive(Debug, Clone)]
pub struct BacktestOptions {
    /// Forecast horizon in steps.
    pub horizon: usize,
    /// Points before the first origin; default `min(8 days, half the series)`.
    pub warmup: Option<usize>,
    /// Refit every this many points; default one day.
    pub refit_every: Option<usize>,
    /// Models and their settings.
    pub models: ModelsConfig,
    /// Write rows only for every this many origins (1: every origin);
    /// scores always cover every origin. A 4-week minute series at horizon
    /// 60 is 12 million rows per model set otherwise.
    pub output_every: usize,
    /// Show a progress bar on stderr.
    pub progress: bool,
}

/// Accumulated error of one model at one horizon.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Score {
    /// Forecasts scored.
    pub count: usize,
    /// Sum of absolute errors.
    pub abs_err: f64,
    /// Sum of sMAPE terms (percent).
    pub smape: f64,
    /// Actuals inside (default p10, p90).
    pub covered: usize,
}

/// Result of a backtest.
#[derive(Debug, Clone)]
pub struct BacktestReport {
    /// Points in the series.
    pub points: usize,
    /// First origin index.
    pub warmup: usize,
    /// MASE denominator: warm-up mean absolute error of seasonal naive.
    pub scale: f64,
    /// `(model, horizon) -> score`.
    pub scores: BTreeMap<(String, usize), Score>,
    /// Total fitting time per model in seconds, and the number of fits.
    pub fit_secs: BTreeMap<String, (f64, usize)>,
    /// Rows written.
    pub rows: usize,
}

impl BacktestReport {
    /// MASE of `model` at horizon `h` (1-based), if scored.
    pub fn mase(&self, model: &str, h: usize) -> Option<f64> {
        self.scores
            .get(&(model.to_string(), h))
            .filter(|s| s.count > 0)
            .map(|s| s.abs_err / s.count as f64 / self.scale)
    }
    /// Mean absolute error of `model` at horizon `h` (1-based), if scored.
    pub fn mae(&self, model: &str, h: usize) -> Option<f64> {
        self.scores
            .get(&(model.to_string(), h))
            .filter(|s| s.count > 0)
            .map(|s| s.abs_err / s.count as f64)
    }
    /// MAE of `model` relative to the last value's (`naive`) at horizon `h`.
    pub fn relative_to_naive(&self, model: &str, h: usize) -> Option<f64> {
        Some(self.mae(model, h)? / self.mae("naive", h)?.max(1e-12))
    }
    /// sMAPE (percent) of `model` at horizon `h`.
    pub fn smape(&self, model: &str, h: usize) -> Option<f64> {
        self.scores
            .get(&(model.to_string(), h))
            .filter(|s| s.count > 0)
            .map(|s| s.smape / s.count as f64)
    }
    /// Share of actuals inside the 80% interval.
    pub fn coverage(&self, model: &str, h: usize) -> Option<f64> {
        self.scores
            .get(&(model.to_string(), h))
            .filter(|s| s.count > 0)
            .map(|s| s.covered as f64 / s.count as f64)
    }
    /// Model names in output order (`auto` last).
    pub fn models(&self) -> Vec<String> {
        let mut m: Vec<String> = self.scores.keys().map(|k| k.0.clone()).collect();
        m.dedup();
        m.sort_by_key(|n| (n == "auto", order(n)));
        m
    }

    /// A plain-text table of MASE, sMAPE and interval coverage at `horizons`.
    pub fn table(&self, horizons: &[usize]) -> String {
        let mut s = String::new();
        s.push_str(&format!("{:<14}", "model"));
        for h in horizons {
            s.push_str(&format!(
                " {:>9} {:>9} {:>9}",
                format!("MASE@{h}"),
                format!("xlast@{h}"),
                format!("sMAPE@{h}")
            ));
        }
        s.push_str(&format!(" {:>9} {:>10}\n", "cover80", "fit s"));
        let last_h = *horizons.last().unwrap_or(&1);
        for m in self.models() {
            s.push_str(&format!("{m:<14}"));
            for &h in horizons {
                let f = |v: Option<f64>| v.map(|x| format!("{x:.3}")).unwrap_or_else(|| "-".into());
                s.push_str(&format!(
                    " {:>9} {:>9} {:>9}",
                    f(self.mase(&m, h)),
                    f(self.relative_to_naive(&m, h)),
                    f(self.smape(&m, h))
                ));
            }
            let cov = self
                .coverage(&m, last_h)
                .map(|c| format!("{:.0}%", c * 100.0))
                .unwrap_or_default();
            let fit = self
                .fit_secs
                .get(&m)
                .map(|(t, n)| format!("{:.3}", t / (*n).max(1) as f64))
                .unwrap_or_else(|| "-".into());
            s.push_str(&format!(" {cov:>9} {fit:>10}\n"));
        }
        s
    }
}

fn order(name: &str) -> usize {
    crate::select::ModelKind::all()
        .position(|k| k.name() == name)
        .unwrap_or(99)
}

/// Runs the backtest on `series`, writing
/// `origin,target,horizon,model,p10,p50,p90` rows to `out`.
pub fn run(
    series: &Series,
    opts: &BacktestOptions,
    out: &mut dyn Write,
) -> Result<BacktestReport, BacktestError> {
    let y = &series.values;
    let n = y.len();
    let ppd = series.points_per_day();
    let hz = opts.horizon.max(1);
    let warmup = opts.warmup.unwrap_or((8 * ppd).min(n / 2)).max(8);
    if n < warmup + 2 {
        return Err(BacktestError::TooShort {
            len: n,
            warmup,
            horizon: hz,
        });
    }
    let refit = opts.refit_every.unwrap_or(ppd).max(1);
    let lag = if warmup > ppd + 1 { ppd } else { 1 };
    let scale = {
        let d: Vec<f64> = (lag..warmup).map(|t| (y[t] - y[t - lag]).abs()).collect();
        (d.iter().sum::<f64>() / d.len().max(1) as f64).max(1e-9)
    };
    let fmt = "%Y-%m-%d %H:%M:%S";
    writeln!(out, "origin,target,horizon,model,p10,p50,p90")?;
    let mut ens = Ensemble::new(&opts.models, ppd, hz);
    let mut report = BacktestReport {
        points: n,
        warmup,
        scale,
        scores: BTreeMap::new(),
        fit_secs: BTreeMap::new(),
        rows: 0,
    };
    let origins = (warmup - 1)..(n - 1);
    let bar = if opts.progress && origins.len() > 500 {
        let b = indicatif::ProgressBar::new(origins.len() as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{msg} [{elapsed_precise}] {wide_bar} {pos}/{len} origins (eta {eta})",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b.set_message("backtest");
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    for t in origins {
        // t is the last observed index.
        if (t + 1 - warmup).is_multiple_of(refit) {
            let rep = ens.fit(&y[..=t])?;
            for (m, secs) in rep.fit_secs {
                let e = report.fit_secs.entry(m.to_string()).or_default();
                e.0 += secs;
                e.1 += 1;
            }
        } else {
            ens.observe(y[t]);
        }
        let origin = series.timestamp(t).format(fmt).to_string();
        let write = (t + 1 - warmup).is_multiple_of(opts.output_every.max(1));
        for (model, qs) in ens.forecast_all() {
            for (i, q) in qs.iter().enumerate() {
                let h = i + 1;
                let Some(&actual) = y.get(t + h) else { break };
                if write {
                    writeln!(
                        out,
                        "{origin},{},{h},{model},{:.4},{:.4},{:.4}",
                        series.timestamp(t + h).format(fmt),
                        q.p10,
                        q.p50,
                        q.p90
                    )?;
                    report.rows += 1;
                }
                let sc = report.scores.entry((model.to_string(), h)).or_default();
                let err = (actual - q.p50).abs();
                sc.count += 1;
                sc.abs_err += err;
                let denom = actual.abs() + q.p50.abs();
                if denom > 0.0 {
                    sc.smape += 200.0 * err / denom;
                }
                if q.p10 <= actual && actual <= q.p90 {
                    sc.covered += 1;
                }
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    out.flush()?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::select::ModelKind;

    #[test]
    fn writes_rows_and_scores_a_perfectly_seasonal_series() {
        let ppd = 12;
        let y: Vec<f64> = (0..ppd * 6)
            .map(|t| [5.0, 9.0, 20.0, 7.0][t % 4] + (t % ppd) as f64)
            .collect();
        let s = Series::new("2020-01-01T00:00:00Z".parse().unwrap(), 7200, y);
        let opts = BacktestOptions {
            horizon: 3,
            warmup: Some(ppd * 3),
            refit_every: None,
            models: ModelsConfig {
                models: vec![ModelKind::Naive, ModelKind::SnaiveDaily],
                ..Default::default()
            },
            output_every: 1,
            progress: false,
        };
        let mut out = Vec::new();
        let r = run(&s, &opts, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("origin,target,horizon,model,p10,p50,p90\n"));
        assert_eq!(text.lines().count(), r.rows + 1);
        // Seasonal naive is exact on a series that repeats every day.
        assert_eq!(r.mase("snaive_daily", 3), Some(0.0));
        assert!(r.mase("naive", 1).unwrap() > 0.1);
        assert!(r.mase("auto", 1).unwrap() < 1e-9);
        assert!(r.table(&[1, 3]).contains("auto"));
        assert_eq!(r.models(), vec!["naive", "snaive_daily", "auto"]);
        assert!(text.contains("2020-01-04 06:00:00,2020-01-04 08:00:00,1,naive,"));
    }
}
