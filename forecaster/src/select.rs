//! Per-series model choice: every member is evaluated by rolling-origin
//! forecasts over the last part of the history, its errors give its
//! prediction intervals, and the `auto` forecast is, per horizon, the best
//! member blended with at most one other (the share that had the lowest
//! error over the calibration span, 0 to 50%), times a bias factor that
//! moves it toward the median (the forecast an absolute error rewards).

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
    /// Smoothed daily profile × level (see [`crate::Profile`]).
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
    /// A member may be blended into `auto` at a horizon (with the best
    /// member, at the share of 10, 20, 30 or 50% whose blend had the
    /// lowest calibration error, or not at all) when its own error there is
    /// within this factor of the best member's (default 1.2).
    pub ensemble_tolerance: f64,
    /// Multiply `auto` per horizon by the factor (0.90–1.04) that
    /// minimises its absolute error over the calibration span, for a
    /// non-negative series (default true).
    pub bias_correction: bool,
    /// LSTM hyper-parameters.
    pub lstm: LstmConfig,
}

impl Default for ModelsConfig {
    fn default() -> Self {
        ModelsConfig {
            models: ModelKind::all().collect(),
            calibration_days: 1.0,
            ets_fit_days: 14.0,
            ensemble_tolerance: 1.2,
            bias_correction: true,
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
    /// Per horizon, the factor `auto`'s combination is multiplied by.
    scale: Vec<f64>,
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
            scale: vec![],
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
        self.weights = self.blend_weights(&paths, &history[n - c..]);
        self.scale = if self.nonnegative && self.config.bias_correction {
            let base: Vec<Vec<f64>> = (0..c)
                .map(|o| (0..hz).map(|h| self.combine(&paths, o, h, 1.0)).collect())
                .collect();
            best_scales(&base, &history[n - c..], hz)
        } else {
            vec![1.0; hz]
        };
        let auto_paths: Vec<Vec<f64>> = (0..c)
            .map(|o| {
                (0..hz)
                    .map(|h| self.combine(&paths, o, h, self.scale[h]))
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

    /// Per horizon: the member with the lowest calibration error, blended
    /// with at most one other member (within `ensemble_tolerance` of the
    /// best) at the share of [`BLEND_SHARES`] whose blend has the lowest
    /// error — errors pooled over neighbouring horizons (h·2/3 ..= h·3/2),
    /// as the profile model pools them, so one noisy day does not decide.
    fn blend_weights(&self, paths: &[Vec<Vec<f64>>], actual: &[f64]) -> Vec<Vec<f64>> {
        let hz = self.horizon;
        let k = self.members.len();
        let tol = self.config.ensemble_tolerance.max(1.0);
        let fitted: Vec<usize> = (0..k).filter(|i| self.members[*i].fitted).collect();
        let pool = |h: usize| {
            (
                ((h + 1) * 2).div_ceil(3).max(1) - 1,
                ((h + 1) * 3 / 2).clamp(h + 1, hz) - 1,
            )
        };
        // The best member per horizon, on MAE pooled over neighbouring horizons.
        let best: Vec<usize> = (0..hz)
            .map(|h| {
                let (lo, hi) = pool(h);
                let pooled = |i: usize| (lo..=hi).map(|g| self.members[i].mae[g]).sum::<f64>();
                *fitted
                    .iter()
                    .min_by(|a, b| pooled(**a).total_cmp(&pooled(**b)))
                    .unwrap_or(&fitted[0])
            })
            .collect();
        // MAE at every horizon of (1 − share)·b + share·j, for every member
        // b that is best somewhere and every partner j (share 0: b alone).
        let ns = BLEND_SHARES.len();
        let mut blend_mae: std::collections::HashMap<usize, Vec<Vec<Vec<f64>>>> =
            Default::default();
        for &b in &best {
            blend_mae.entry(b).or_insert_with(|| {
                (0..k)
                    .map(|j| {
                        if !self.members[j].fitted {
                            return vec![];
                        }
                        BLEND_SHARES
                            .iter()
                            .map(|sh| {
                                (0..hz)
                                    .map(|h| {
                                        let (mut sum, mut n) = (0.0, 0usize);
                                        for (o, a) in actual.iter().skip(h).enumerate() {
                                            let f =
                                                (1.0 - sh) * paths[b][o][h] + sh * paths[j][o][h];
                                            sum += (a - f).abs();
                                            n += 1;
                                        }
                                        if n > 0 { sum / n as f64 } else { 0.0 }
                                    })
                                    .collect()
                            })
                            .collect()
                    })
                    .collect()
            });
        }
        (0..hz)
            .map(|g| {
                let b = best[g];
                let (lo, hi) = pool(g);
                let table = &blend_mae[&b];
                let mut w = vec![0.0; k];
                let mut choice = (b, 0usize, f64::INFINITY);
                for &j in &fitted {
                    if j != b && self.members[j].mae[g] > self.members[b].mae[g] * tol + 1e-12 {
                        continue;
                    }
                    let shares = if j == b { 0..1 } else { 1..ns };
                    for si in shares {
                        let e: f64 = (lo..=hi).map(|h| table[j][si][h]).sum();
                        if e < choice.2 {
                            choice = (j, si, e);
                        }
                    }
                }
                let sh = BLEND_SHARES[choice.1];
                w[b] += 1.0 - sh;
                w[choice.0] += sh;
                w
            })
            .collect()
    }

    /// `auto`'s value at calibration origin `o`, horizon `h` (0-based), times `scale`.
    fn combine(&self, paths: &[Vec<Vec<f64>>], o: usize, h: usize, scale: f64) -> f64 {
        scale
            * self.weights[h]
                .iter()
                .zip(paths)
                .filter(|(w, _)| **w > 0.0)
                .map(|(w, p)| w * p[o][h])
                .sum::<f64>()
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
        for (v, s) in path.iter_mut().zip(&self.scale) {
            *v *= s;
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

/// Shares of the second member tried when blending two (0: the best alone).
const BLEND_SHARES: [f64; 5] = [0.0, 0.1, 0.2, 0.3, 0.5];

/// Factors tried by the bias correction (1.0: none).
const SCALES: [f64; 11] = [
    0.9, 0.92, 0.94, 0.96, 0.97, 0.98, 0.99, 1.0, 1.01, 1.02, 1.04,
];

/// Per horizon, the factor of [`SCALES`] that minimises the absolute error
/// of `paths` against `actual` (pooled over h·2/3 ..= h·3/2): a forecast
/// scored by its absolute error should be the median, and minute traffic's
/// bursts put the median below the mean the models estimate.
fn best_scales(paths: &[Vec<f64>], actual: &[f64], hz: usize) -> Vec<f64> {
    let nc = SCALES.len();
    let mut err = vec![vec![0.0; nc]; hz];
    let mut cnt = vec![0usize; hz];
    for h in 0..hz {
        for (o, a) in actual.iter().skip(h).enumerate() {
            cnt[h] += 1;
            for (c, s) in SCALES.iter().enumerate() {
                err[h][c] += (a - s * paths[o][h]).abs();
            }
        }
    }
    let mut prev = 1.0;
    (0..hz)
        .map(|h| {
            let (lo, hi) = (
                ((h + 1) * 2).div_ceil(3).max(1) - 1,
                ((h + 1) * 3 / 2).clamp(h + 1, hz) - 1,
            );
            if (lo..=hi).all(|g| cnt[g] == 0) {
                return prev;
            }
            let pooled = |c: usize| -> f64 {
                (lo..=hi)
                    .filter(|g| cnt[*g] > 0)
                    .map(|g| err[g][c] / cnt[g] as f64)
                    .sum()
            };
            let c = (0..nc)
                .min_by(|a, b| pooled(*a).total_cmp(&pooled(*b)))
                .unwrap_or(0);
            prev = SCALES[c];
            prev
        })
        .collect()
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
pub(crate) fn quantile_sorted(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let pos = q.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let i = pos.floor() as usize;
    let j = (i + 1).min(v.len() - 1);
    v[i] + (pos - i as f64) * (v[j] - v[i])
}

#[cfg(test)]
pub(crate) mod tests {
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

    /// splitmix64: deterministic, well-mixed test noise.
    pub(crate) fn splitmix(t: u64) -> u64 {
        let mut z = t.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    #[test]
    fn bias_factor_moves_toward_the_median() {
        // A forecast of 10 against bursty actuals: 9 most of the time, 18
        // one time in ten (mean ≈ 10, median 9).
        let actual: Vec<f64> = (0..400)
            .map(|i| if i % 10 == 0 { 18.0 } else { 9.0 })
            .collect();
        let paths: Vec<Vec<f64>> = (0..400).map(|_| vec![10.0; 3]).collect();
        assert_eq!(best_scales(&paths, &actual, 3), vec![0.9; 3]);
        // Unbiased symmetric errors keep the factor at 1.
        let even: Vec<f64> = (0..400)
            .map(|i| 10.0 + ((i * 8) % 21) as f64 * 0.5 - 5.0)
            .collect();
        assert_eq!(best_scales(&paths, &even, 3), vec![1.0; 3]);
    }

    #[test]
    fn auto_takes_the_best_member_and_only_blends_what_helps() {
        // Noise around a flat level: the last value is a bad forecast, the
        // daily seasonal naive of a flat series is as bad, ETS is good.
        let y: Vec<f64> = (0..24 * 12)
            .map(|t| {
                let x = splitmix(t as u64);
                100.0 + 20.0 * ((x >> 11) as f64 / (1u64 << 53) as f64 - 0.5)
            })
            .collect();
        let cfg = ModelsConfig {
            models: vec![ModelKind::Naive, ModelKind::Ets],
            calibration_days: 3.0,
            bias_correction: false,
            ..Default::default()
        };
        let mut e = Ensemble::new(&cfg, 24, 4);
        let rep = e.fit(&y).unwrap();
        let (naive, ets) = (&rep.mae[0].1, &rep.mae[1].1);
        assert!(ets[0] < naive[0] / 1.2, "ets {ets:?} naive {naive:?}");
        // Naive is further than the tolerance from ETS: ETS alone.
        for h in 0..4 {
            assert_eq!(e.weights[h], vec![0.0, 1.0], "h={h}");
        }
        assert_eq!(e.leading_model(1), "ets");
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
