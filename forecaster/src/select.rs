//! Per-series model choice: every member is evaluated by rolling-origin
//! forecasts over the last part of the history, its errors give its
//! prediction intervals, and the `auto` forecast is an inverse-error weighted
//! ensemble (per horizon) of the members within 20% of the best.

use crate::models::{
    Ets, Lstm, LstmConfig, ModelError, Naive, PointModel, Profile, Quantiles, SeasonalNaive,
};
use serde::{Deserialize, Serialize};

/// The models a set can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[derive(strum::IntoStaticStr, strum::EnumString, strum::EnumIter)]
#[strum(serialize_all = "snake_case")]
pub enum ModelKind {
    /// Last value.
    Naive,
    /// Same time yesterday.
    SnaiveDaily,
    /// Same time last week.
    SnaiveWeekly,
    /// Damped-trend Holt-Winters with a daily season.
    Ets,
    /// Smoothed daily profile × level (see [`crate::models::profile`]).
    Profile,
    /// LSTM trained with candle.
    Lstm,
}

impl ModelKind {
    /// Every kind, in output order (declaration order).
    pub fn all() -> impl Iterator<Item = ModelKind> {
        <ModelKind as strum::IntoEnumIterator>::iter()
    }

    /// Every kind but the LSTM, in output order: the worker's default set
    /// (fits 1,000 services within a tick on one core).
    pub fn statistical() -> Vec<ModelKind> {
        ModelKind::all().filter(|k| *k != ModelKind::Lstm).collect()
    }

    /// Parses `naive`, `snaive_daily`, `snaive_weekly`, `ets`, `profile` or `lstm`.
    pub fn parse(s: &str) -> Option<ModelKind> {
        s.parse().ok()
    }

    /// Parses a comma-separated list (`naive,ets,profile`); blanks are
    /// skipped, an unknown name or an empty list is an error. The one
    /// parser behind `--models` of every command.
    pub fn parse_list(s: &str) -> Result<Vec<ModelKind>, String> {
        let kinds = s
            .split(',')
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .map(|m| {
                ModelKind::parse(m).ok_or_else(|| {
                    let known: Vec<_> = ModelKind::all().map(ModelKind::name).collect();
                    format!("unknown model {m:?} (known: {})", known.join(", "))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if kinds.is_empty() {
            return Err("--models needs at least one model".into());
        }
        Ok(kinds)
    }

    /// The name used in outputs.
    pub fn name(self) -> &'static str {
        self.into()
    }
}

/// Which models to run and how to evaluate them. Defaults in parentheses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelsConfig {
    /// Members of the ensemble (default all five).
    pub models: Vec<ModelKind>,
    /// Rolling-origin evaluation span in days, the last part of each fit's
    /// history; also the sample the intervals come from (default 1.0).
    pub calibration_days: f64,
    /// Most recent days the ETS parameters are fitted on (default 14.0).
    pub ets_fit_days: f64,
    /// A member joins the `auto` ensemble at a horizon when its error there
    /// is within this factor of the best member's (default 1.2).
    pub ensemble_tolerance: f64,
    /// LSTM hyper-parameters.
    pub lstm: LstmConfig,
}

impl Default for ModelsConfig {
    fn default() -> Self {
        ModelsConfig {
            models: ModelKind::all().collect(),
            calibration_days: 1.0,
            ets_fit_days: 14.0,
            ensemble_tolerance: 1.05,
            lstm: LstmConfig::default(),
        }
    }
}

/// One member with its out-of-sample error profile.
#[derive(Clone)]
struct Member {
    kind: ModelKind,
    model: Box<dyn PointModel>,
    fitted: bool,
    /// Per horizon: 10th and 90th percentile of (actual − forecast).
    lo: Vec<f64>,
    hi: Vec<f64>,
    /// Per horizon: mean absolute error.
    mae: Vec<f64>,
}

/// What a fit found, per member.
#[derive(Debug, Clone, PartialEq)]
pub struct FitReport {
    /// `(model, mean absolute error per horizon)` for every fitted member.
    pub mae: Vec<(&'static str, Vec<f64>)>,
    /// `(model, error)` for members that could not be fitted.
    pub failed: Vec<(&'static str, String)>,
    /// `(model, seconds)` spent fitting and evaluating each member.
    pub fit_secs: Vec<(&'static str, f64)>,
    /// Rolling-origin evaluation points used.
    pub calibration_points: usize,
}

/// A set of models for one series plus the `auto` ensemble over them.
#[derive(Clone)]
pub struct Ensemble {
    horizon: usize,
    points_per_day: usize,
    config: ModelsConfig,
    members: Vec<Member>,
    /// Per horizon, weight of each member in `auto`.
    weights: Vec<Vec<f64>>,
    lo: Vec<f64>,
    hi: Vec<f64>,
    nonnegative: bool,
    /// For a non-negative series, interval errors are relative to
    /// `max(forecast, rel_floor)` (traffic's errors grow with its level);
    /// `None` for series with negative values (absolute errors).
    rel_floor: Option<f64>,
}

impl Ensemble {
    /// Unfitted models for a series with `points_per_day` points a day,
    /// forecasting `horizon` steps.
    pub fn new(config: &ModelsConfig, points_per_day: usize, horizon: usize) -> Self {
        let ppd = points_per_day.max(1);
        let members = config
            .models
            .iter()
            .map(|&kind| {
                let model: Box<dyn PointModel> = match kind {
                    ModelKind::Naive => Box::new(Naive::default()),
                    ModelKind::SnaiveDaily => Box::new(SeasonalNaive::daily(ppd)),
                    ModelKind::SnaiveWeekly => Box::new(SeasonalNaive::weekly(ppd)),
                    ModelKind::Ets => Box::new(Ets::new(
                        ppd,
                        (config.ets_fit_days * ppd as f64) as usize,
                        horizon,
                    )),
                    ModelKind::Lstm => Box::new(Lstm::new(config.lstm.clone(), horizon, ppd)),
                    ModelKind::Profile => Box::new(Profile::new(ppd)),
                };
                Member {
                    kind,
                    model,
                    fitted: false,
                    lo: vec![],
                    hi: vec![],
                    mae: vec![],
                }
            })
            .collect();
        Ensemble {
            horizon: horizon.max(1),
            points_per_day: ppd,
            config: config.clone(),
            members,
            weights: vec![],
            lo: vec![],
            hi: vec![],
            nonnegative: true,
            rel_floor: None,
        }
    }

    /// Forecast horizon in steps.
    pub fn horizon(&self) -> usize {
        self.horizon
    }

    /// True once at least one member is fitted.
    pub fn is_fitted(&self) -> bool {
        self.members.iter().any(|m| m.fitted)
    }

    /// Names of fitted members, in order.
    pub fn fitted_models(&self) -> Vec<&'static str> {
        self.members
            .iter()
            .filter(|m| m.fitted)
            .map(|m| m.kind.name())
            .collect()
    }

    /// Fits every member on `history[..n - c]`, walks it through the last `c`
    /// points forecasting at each origin (rolling origin), and derives the
    /// intervals and ensemble weights from those errors. Afterwards every
    /// member's state is at the end of `history`. Members that cannot be
    /// fitted (history too short) are left out until the next fit.
    pub fn fit(&mut self, history: &[f64]) -> Result<FitReport, ModelError> {
        let n = history.len();
        let hz = self.horizon;
        let c = ((self.config.calibration_days * self.points_per_day as f64) as usize)
            .min(n / 3)
            .max(1);
        self.nonnegative = history.iter().all(|v| *v >= 0.0);
        self.rel_floor = self.nonnegative.then(|| {
            let tail = &history[n - c..];
            (0.1 * tail.iter().sum::<f64>() / tail.len() as f64).max(1e-6)
        });
        let prefix = &history[..n - c];
        let mut failed = vec![];
        // paths[member][origin] = forecast path
        let mut paths: Vec<Vec<Vec<f64>>> = vec![];
        let mut fit_secs = vec![];
        for m in &mut self.members {
            let started = std::time::Instant::now();
            m.fitted = false;
            if let Err(e) = m.model.fit(prefix) {
                failed.push((m.kind.name(), e.to_string()));
                paths.push(vec![]);
                continue;
            }
            let mut p = Vec::with_capacity(c);
            for &y in &history[n - c..] {
                p.push(m.model.forecast(hz));
                m.model.observe(y);
            }
            let (lo, hi, mae) = error_profile(&p, &history[n - c..], hz, self.rel_floor);
            (m.lo, m.hi, m.mae, m.fitted) = (lo, hi, mae, true);
            paths.push(p);
            fit_secs.push((m.kind.name(), started.elapsed().as_secs_f64()));
        }
        if !self.is_fitted() {
            let msg = failed
                .iter()
                .map(|(m, e)| format!("{m}: {e}"))
                .collect::<Vec<_>>()
                .join("; ");
            return Err(ModelError::NoModel(msg));
        }
        // Ensemble weights per horizon.
        let tol = self.config.ensemble_tolerance.max(1.0);
        self.weights = (0..hz)
            .map(|h| {
                let best = self
                    .members
                    .iter()
                    .filter(|m| m.fitted)
                    .map(|m| m.mae[h])
                    .fold(f64::INFINITY, f64::min);
                let raw: Vec<f64> = self
                    .members
                    .iter()
                    .map(|m| {
                        if m.fitted && m.mae[h] <= best * tol + 1e-12 {
                            1.0 / (m.mae[h] * m.mae[h]).max(1e-12)
                        } else {
                            0.0
                        }
                    })
                    .collect();
                let s: f64 = raw.iter().sum();
                raw.into_iter().map(|w| w / s).collect()
            })
            .collect();
        let auto_paths: Vec<Vec<f64>> = (0..c)
            .map(|o| {
                (0..hz)
                    .map(|h| {
                        self.weights[h]
                            .iter()
                            .zip(&paths)
                            .filter(|(w, _)| **w > 0.0)
                            .map(|(w, p)| w * p[o][h])
                            .sum()
                    })
                    .collect()
            })
            .collect();
        let (lo, hi, _) = error_profile(&auto_paths, &history[n - c..], hz, self.rel_floor);
        self.lo = lo;
        self.hi = hi;
        Ok(FitReport {
            mae: self
                .members
                .iter()
                .filter(|m| m.fitted)
                .map(|m| (m.kind.name(), m.mae.clone()))
                .collect(),
            failed,
            fit_secs,
            calibration_points: c,
        })
    }

    /// Feeds one new observation to every member (no refit).
    pub fn observe(&mut self, y: f64) {
        for m in self.members.iter_mut().filter(|m| m.fitted) {
            m.model.observe(y);
        }
    }

    fn quantiles(&self, path: &[f64], lo: &[f64], hi: &[f64]) -> Vec<Quantiles> {
        path.iter()
            .enumerate()
            .map(|(h, &p50)| {
                let unit = self.rel_floor.map_or(1.0, |f| p50.max(f));
                let mut q = Quantiles {
                    p10: (p50 + lo[h] * unit).min(p50),
                    p50,
                    p90: (p50 + hi[h] * unit).max(p50),
                };
                if self.nonnegative {
                    q.p10 = q.p10.max(0.0);
                    q.p50 = q.p50.max(0.0);
                    q.p90 = q.p90.max(0.0);
                }
                q
            })
            .collect()
    }

    /// The `auto` forecast for horizons `1..=horizon`.
    pub fn forecast(&self) -> Vec<Quantiles> {
        let hz = self.horizon;
        let mut path = vec![0.0; hz];
        for (i, m) in self.members.iter().enumerate().filter(|(_, m)| m.fitted) {
            if self.weights.iter().all(|w| w[i] == 0.0) {
                continue;
            }
            for (h, v) in m.model.forecast(hz).into_iter().enumerate() {
                path[h] += self.weights[h][i] * v;
            }
        }
        self.quantiles(&path, &self.lo, &self.hi)
    }

    /// Forecasts of every fitted member, then `auto`, as `(model, quantiles)`.
    pub fn forecast_all(&self) -> Vec<(&'static str, Vec<Quantiles>)> {
        let mut out: Vec<_> = self
            .members
            .iter()
            .filter(|m| m.fitted)
            .map(|m| {
                (
                    m.kind.name(),
                    self.quantiles(&m.model.forecast(self.horizon), &m.lo, &m.hi),
                )
            })
            .collect();
        out.push(("auto", self.forecast()));
        out
    }

    /// Saves members with trained state (the LSTM) as
    /// `dir/<key>.<model>.safetensors`; returns how many were saved.
    pub fn save_models(&self, dir: &std::path::Path, key: &str) -> Result<usize, ModelError> {
        let mut n = 0;
        for m in self.members.iter().filter(|m| m.fitted) {
            if m.model
                .persist(&dir.join(format!("{key}.{}.safetensors", m.kind.name())))?
            {
                n += 1;
            }
        }
        Ok(n)
    }

    /// Restores members saved by [`Ensemble::save_models`] (missing files are
    /// skipped, mismatching ones reported); the next [`Ensemble::fit`]
    /// fine-tunes them instead of training from scratch.
    pub fn load_models(&mut self, dir: &std::path::Path, key: &str) -> Result<usize, ModelError> {
        let mut n = 0;
        for m in &mut self.members {
            let path = dir.join(format!("{key}.{}.safetensors", m.kind.name()));
            if path.exists() && m.model.restore(&path)? {
                n += 1;
            }
        }
        Ok(n)
    }

    /// The member with the largest `auto` weight at horizon `h` (1-based).
    pub fn leading_model(&self, h: usize) -> &'static str {
        let w = &self.weights[(h.max(1) - 1).min(self.horizon - 1)];
        let i = (0..w.len())
            .max_by(|a, b| w[*a].total_cmp(&w[*b]))
            .unwrap_or(0);
        self.members[i].kind.name()
    }
}

/// Per horizon: p10 and p90 of errors and the mean absolute error, from
/// forecast paths issued at each origin of `actual` (path `o` forecasts
/// `actual[o..]`). With `rel_floor`, the quantiles are of errors relative to
/// `max(forecast, rel_floor)`; the mean absolute error is always absolute.
fn error_profile(
    paths: &[Vec<f64>],
    actual: &[f64],
    hz: usize,
    rel_floor: Option<f64>,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let mut lo = vec![0.0; hz];
    let mut hi = vec![0.0; hz];
    let mut mae = vec![0.0; hz];
    let mut errs = Vec::with_capacity(paths.len());
    for h in 0..hz {
        errs.clear();
        let mut abs = 0.0;
        for (o, p) in paths.iter().enumerate() {
            if let Some(a) = actual.get(o + h) {
                abs += (a - p[h]).abs();
                errs.push(match rel_floor {
                    Some(f) => (a - p[h]) / p[h].max(f),
                    None => a - p[h],
                });
            }
        }
        if errs.is_empty() {
            // Horizon longer than the evaluation span: reuse the last one.
            if h > 0 {
                (lo[h], hi[h], mae[h]) = (lo[h - 1], hi[h - 1], mae[h - 1]);
            }
            continue;
        }
        mae[h] = abs / errs.len() as f64;
        errs.sort_by(f64::total_cmp);
        lo[h] = quantile_sorted(&errs, 0.1);
        hi[h] = quantile_sorted(&errs, 0.9);
    }
    (lo, hi, mae)
}

/// Linear-interpolated quantile of sorted values.
pub fn quantile_sorted(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let pos = q.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let i = pos.floor() as usize;
    let j = (i + 1).min(v.len() - 1);
    v[i] + (pos - i as f64) * (v[j] - v[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_seasonal_model_on_a_seasonal_series() {
        let ppd = 24;
        let y: Vec<f64> = (0..ppd * 10)
            .map(|t| {
                100.0
                    + 40.0 * ((t % ppd) as f64 / ppd as f64 * std::f64::consts::TAU).sin()
                    + (t % 7) as f64
            })
            .collect();
        let cfg = ModelsConfig {
            models: vec![ModelKind::Naive, ModelKind::SnaiveDaily, ModelKind::Ets],
            ..Default::default()
        };
        let mut e = Ensemble::new(&cfg, ppd, 6);
        let rep = e.fit(&y).unwrap();
        assert_eq!(rep.mae.len(), 3);
        assert_ne!(e.leading_model(6), "naive");
        let f = e.forecast_all();
        assert_eq!(f.last().unwrap().0, "auto");
        for (_, qs) in &f {
            assert!(qs.iter().all(|q| q.p10 <= q.p50 && q.p50 <= q.p90));
        }
    }

    #[test]
    fn trained_models_persist_and_warm_start() {
        let y: Vec<f64> = (0..24 * 12)
            .map(|t| 50.0 + 10.0 * ((t % 24) as f64 / 24.0 * std::f64::consts::TAU).sin())
            .collect();
        let mut cfg = ModelsConfig {
            models: vec![ModelKind::Naive, ModelKind::Lstm],
            ..Default::default()
        };
        cfg.lstm = LstmConfig {
            window: 8,
            hidden: 4,
            epochs: 3,
            finetune_epochs: 1,
            max_samples: 128,
            ..Default::default()
        };
        let mut e = Ensemble::new(&cfg, 24, 3);
        e.fit(&y).unwrap();
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(e.save_models(dir.path(), "checkout").unwrap(), 1);
        let mut back = Ensemble::new(&cfg, 24, 3);
        assert_eq!(back.load_models(dir.path(), "checkout").unwrap(), 1);
        assert_eq!(back.load_models(dir.path(), "other").unwrap(), 0);
        back.fit(&y).unwrap(); // fine-tunes from the saved weights
        assert!(back.forecast().iter().all(|q| q.p50.is_finite()));
        let mut wrong = Ensemble::new(&cfg, 24, 4);
        assert!(wrong.load_models(dir.path(), "checkout").is_err());
    }

    #[test]
    fn short_history_leaves_weekly_out() {
        let y: Vec<f64> = (0..100).map(|t| t as f64).collect();
        let cfg = ModelsConfig {
            models: vec![ModelKind::Naive, ModelKind::SnaiveWeekly],
            ..Default::default()
        };
        let mut e = Ensemble::new(&cfg, 24, 3);
        let rep = e.fit(&y).unwrap();
        assert_eq!(rep.failed.len(), 1);
        assert_eq!(e.fitted_models(), vec!["naive"]);
        assert_eq!(quantile_sorted(&[1.0, 2.0, 3.0], 0.5), 2.0);
    }

    #[test]
    fn one_model_list_parser() {
        assert_eq!(
            ModelKind::parse_list(" naive, profile ,").unwrap(),
            vec![ModelKind::Naive, ModelKind::Profile]
        );
        assert!(
            ModelKind::parse_list("naive,arima")
                .unwrap_err()
                .contains("arima")
        );
        assert!(ModelKind::parse_list(" , ").is_err());
    }
}
