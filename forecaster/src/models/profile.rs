//! Smoothed daily profile × level: the model for spiky minute-level traffic.
//!
//! Per-minute web traffic is mostly noise around a daily shape: the last
//! value carries the noise of one minute, while the shape is known from the
//! past days and the current level (how busy today is against the usual) is
//! known from the last hour. The model separates the two:
//!
//! ```text
//! profile  p(s) = mean over the last `days` days d of the mean of y within
//!                 ±`window` of s − d·m       (m = points per day)
//! ratio    r_t  = y_t / p(t)                  (additive: y_t − p(t))
//! level    L_t  = L_{t−1} + α (clip(r_t) − L_{t−1})   for every α of a grid
//! forecast ŷ_{t+h} = L_t^{α(h)} · p(t + h)      (additive: L + p)
//! ```
//!
//! * The profile averages `2·window + 1` minutes of `days` days, so a spike
//!   in one minute moves it by a few per mille; a window never reads past
//!   the last observed point (rolling origin stays honest).
//! * Spike robustness: a ratio more than `clip` robust deviations from the
//!   level is clipped before it updates the level; a level shift that lasts
//!   moves the robust deviation and the level with it.
//! * Blending toward the last value at short horizons: every α of the grid
//!   keeps its own level, and `fit` picks, per horizon, the α with the lowest
//!   error over the last `eval_points` origins — large α (close to the last
//!   value) wins at one minute, small α (a long average) at an hour.
//! * Multiplicative (traffic scales the daily shape) unless the history has
//!   negative values or a zero profile, then additive.

use super::{ModelError, PointModel};

/// Settings of [`Profile`]; defaults in parentheses.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileConfig {
    /// Past days averaged into the profile (14; fewer while history is short).
    pub days: usize,
    /// Half-width of the smoothing window in points (`points_per_day / 48`,
    /// i.e. ±30 minutes, at least 1).
    pub window: usize,
    /// Level smoothing factors tried per horizon.
    pub alphas: Vec<f64>,
    /// Ratios further than this many mean absolute deviations from the level
    /// are clipped before updating it (4.0).
    pub clip: f64,
    /// Origins at the end of the history the α per horizon is chosen on (two days).
    pub eval_points: usize,
}

impl ProfileConfig {
    /// Defaults for a series with `points_per_day` points a day.
    pub fn for_points_per_day(points_per_day: usize) -> Self {
        ProfileConfig {
            days: 14,
            window: (points_per_day / 48).max(1),
            alphas: vec![0.01, 0.02, 0.03, 0.05, 0.08, 0.12, 0.2, 0.35, 0.6],
            clip: 4.0,
            eval_points: 2 * points_per_day.max(1),
        }
    }
}

/// The smoothed-profile × level model (see the module docs).
#[derive(Debug, Clone)]
pub struct Profile {
    ppd: usize,
    cfg: ProfileConfig,
    /// Recent history (at most `keep` points plus slack).
    hist: Vec<f64>,
    /// `prefix[i]` = sum of `hist[..i]`.
    prefix: Vec<f64>,
    /// Index of `hist[0]` in the whole series.
    offset: usize,
    multiplicative: bool,
    /// One level per α.
    levels: Vec<f64>,
    /// Mean absolute deviation of the ratio from the level (for clipping).
    mad: f64,
    /// Per horizon (0-based): index into `alphas`.
    choice: Vec<usize>,
    fitted: bool,
}

impl Profile {
    /// An unfitted model for `points_per_day` with default settings.
    pub fn new(points_per_day: usize) -> Self {
        Self::with_config(
            points_per_day,
            ProfileConfig::for_points_per_day(points_per_day),
        )
    }

    /// An unfitted model with explicit settings.
    pub fn with_config(points_per_day: usize, cfg: ProfileConfig) -> Self {
        Profile {
            ppd: points_per_day.max(1),
            cfg,
            hist: vec![],
            prefix: vec![0.0],
            offset: 0,
            multiplicative: true,
            levels: vec![],
            mad: 0.0,
            choice: vec![],
            fitted: false,
        }
    }

    /// The α chosen for horizon `h` (1-based), once fitted.
    pub fn alpha_for(&self, h: usize) -> Option<f64> {
        let i = *self.choice.get(h.max(1) - 1).or(self.choice.last())?;
        self.cfg.alphas.get(i).copied()
    }

    fn keep(&self) -> usize {
        self.cfg.days.max(1) * self.ppd + 2 * self.cfg.window + 2
    }

    /// Absolute index of the last observed point.
    fn last(&self) -> usize {
        self.offset + self.hist.len() - 1
    }

    fn push(&mut self, y: f64) {
        self.hist.push(y);
        let s = self.prefix.last().copied().unwrap_or(0.0) + y;
        self.prefix.push(s);
        let keep = self.keep();
        if self.hist.len() > 2 * keep {
            let drop = self.hist.len() - keep;
            self.hist.drain(..drop);
            self.offset += drop;
            self.prefix.clear();
            self.prefix.push(0.0);
            let mut acc = 0.0;
            for &v in &self.hist {
                acc += v;
                self.prefix.push(acc);
            }
        }
    }

    /// Profile at absolute index `s`, from days before it, reading only
    /// points up to `known` (absolute). `None` without a past day.
    fn profile_at(&self, s: usize, known: usize) -> Option<f64> {
        let (m, w) = (self.ppd, self.cfg.window);
        let mut sum = 0.0;
        let mut n = 0usize;
        for d in 1..=self.cfg.days.max(1) {
            let Some(c) = s.checked_sub(d * m) else { break };
            let lo = c.saturating_sub(w).max(self.offset);
            let hi = (c + w).min(known);
            if hi < lo || hi < self.offset {
                break;
            }
            let (a, b) = (lo - self.offset, hi - self.offset + 1);
            sum += (self.prefix[b] - self.prefix[a]) / (b - a) as f64;
            n += 1;
        }
        (n > 0).then(|| sum / n as f64)
    }

    fn ratio(&self, y: f64, p: f64) -> f64 {
        if self.multiplicative {
            y / p.max(1e-9)
        } else {
            y - p
        }
    }

    fn combine(&self, level: f64, p: f64) -> f64 {
        if self.multiplicative {
            level * p
        } else {
            level + p
        }
    }

    /// Updates the levels with the ratio of the newest point (already pushed).
    fn update_levels(&mut self) {
        let t = self.last();
        let Some(p) = self.profile_at(t, t.saturating_sub(1)) else {
            return;
        };
        let r = self.ratio(self.hist[self.hist.len() - 1], p);
        if self.levels.is_empty() {
            self.levels = vec![r; self.cfg.alphas.len()];
            self.mad = if self.multiplicative {
                0.2
            } else {
                p.abs() * 0.2 + 1.0
            };
            return;
        }
        // Clip against the slowest level (the most robust reference).
        let reference = self.levels[0];
        let dev = r - reference;
        let bound = self.cfg.clip * self.mad.max(1e-9);
        let rc = reference + dev.clamp(-bound, bound);
        self.mad += 0.01 * (dev.abs() - self.mad);
        for (l, a) in self.levels.iter_mut().zip(&self.cfg.alphas) {
            *l += a * (rc - *l);
        }
    }

    fn path(&self, horizon: usize, level_for: impl Fn(usize) -> f64) -> Vec<f64> {
        let t = self.last();
        (1..=horizon)
            .map(|h| {
                let p = self.profile_at(t + h, t).unwrap_or(0.0);
                self.combine(level_for(h), p)
            })
            .collect()
    }
}

impl PointModel for Profile {
    fn name(&self) -> &'static str {
        "profile"
    }

    fn fit(&mut self, history: &[f64]) -> Result<(), ModelError> {
        let need = self.ppd + 2 * self.cfg.window + 2;
        if history.len() < need {
            return Err(ModelError::TooShort {
                model: "profile",
                got: history.len(),
                need,
            });
        }
        let keep = self.keep();
        let start = history
            .len()
            .saturating_sub(keep + self.cfg.eval_points + 64);
        let nonneg = history[start..].iter().all(|v| *v >= 0.0);
        let mean = history[start..].iter().sum::<f64>() / (history.len() - start) as f64;
        self.multiplicative = nonneg && mean > 0.0;
        self.hist.clear();
        self.prefix = vec![0.0];
        self.offset = start;
        self.levels.clear();
        let alphas = self.cfg.alphas.len();
        let eval_from = history.len().saturating_sub(self.cfg.eval_points);
        // Horizons scored during the evaluation (grows as needed).
        const MAX_H: usize = 60;
        let mut err = vec![vec![0.0; alphas]; MAX_H];
        let mut cnt = vec![0usize; MAX_H];
        for (i, &y) in history.iter().enumerate().skip(start) {
            self.push(y);
            self.update_levels();
            if i + 1 >= eval_from && !self.levels.is_empty() && i + 1 < history.len() {
                // Origin i: score every α at every horizon that has an actual.
                for h in 1..=MAX_H.min(history.len() - 1 - i) {
                    let Some(p) = self.profile_at(i + h, i) else {
                        continue;
                    };
                    let a = history[i + h];
                    for (k, l) in self.levels.iter().enumerate() {
                        err[h - 1][k] += (a - self.combine(*l, p)).abs();
                    }
                    cnt[h - 1] += 1;
                }
            }
        }
        if self.levels.is_empty() {
            return Err(ModelError::TooShort {
                model: "profile",
                got: history.len(),
                need: need + 1,
            });
        }
        // Per horizon h, the α with the lowest mean error pooled over the
        // horizons h·2/3 ..= h·3/2: neighbouring horizons want nearly the
        // same α, and pooling them keeps one noisy day from deciding.
        let mut last_choice = alphas / 2;
        self.choice = (1..=MAX_H)
            .map(|h| {
                let (lo, hi) = ((h * 2).div_ceil(3).max(1), (h * 3 / 2).clamp(h, MAX_H));
                let pooled: Vec<f64> = (0..alphas)
                    .map(|k| {
                        (lo..=hi)
                            .filter(|g| cnt[g - 1] > 0)
                            .map(|g| err[g - 1][k] / cnt[g - 1] as f64)
                            .sum()
                    })
                    .collect();
                if (lo..=hi).all(|g| cnt[g - 1] == 0) {
                    return last_choice;
                }
                let best = (0..alphas)
                    .min_by(|a, b| pooled[*a].total_cmp(&pooled[*b]))
                    .unwrap_or(0);
                last_choice = best;
                best
            })
            .collect();
        self.fitted = true;
        Ok(())
    }

    fn observe(&mut self, y: f64) {
        if !self.fitted {
            return;
        }
        self.push(y);
        self.update_levels();
    }

    fn forecast(&self, horizon: usize) -> Vec<f64> {
        if !self.fitted || self.levels.is_empty() {
            return vec![self.hist.last().copied().unwrap_or(0.0); horizon];
        }
        let last_choice = *self.choice.last().unwrap_or(&0);
        self.path(horizon, |h| {
            self.levels[*self.choice.get(h - 1).unwrap_or(&last_choice)]
        })
    }

    fn clone_box(&self) -> Box<dyn PointModel> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn daily(ppd: usize, days: usize, scale: impl Fn(usize) -> f64) -> Vec<f64> {
        (0..ppd * days)
            .map(|t| {
                scale(t)
                    * (100.0 + 60.0 * ((t % ppd) as f64 / ppd as f64 * std::f64::consts::TAU).sin())
            })
            .collect()
    }

    #[test]
    fn follows_the_daily_shape_and_the_level() {
        let ppd = 96;
        // The second half runs at 1.5× the usual traffic.
        let y = daily(ppd, 6, |t| if t >= ppd * 5 { 1.5 } else { 1.0 });
        let mut m = Profile::new(ppd);
        m.fit(&y[..ppd * 5 + 48]).unwrap();
        let f = m.forecast(10);
        for (h, v) in f.iter().enumerate() {
            let want = y[ppd * 5 + 48 + h];
            assert!((v - want).abs() / want < 0.1, "h={} {v} vs {want}", h + 1);
        }
        // A single spike barely moves the slow levels.
        let before = m.forecast(30)[29];
        m.observe(1e6);
        let after = m.forecast(30)[29];
        assert!(
            (after - before).abs() / before < 0.25,
            "{before} -> {after}"
        );
        assert!(m.alpha_for(1).is_some());
    }

    #[test]
    fn never_reads_past_the_origin() {
        let ppd = 48;
        let y = daily(ppd, 4, |_| 1.0);
        let mut a = Profile::new(ppd);
        a.fit(&y[..ppd * 3]).unwrap();
        let mut changed = y.clone();
        for v in &mut changed[ppd * 3..] {
            *v *= 7.0;
        }
        let mut b = Profile::new(ppd);
        b.fit(&changed[..ppd * 3]).unwrap();
        assert_eq!(a.forecast(20), b.forecast(20));
    }

    #[test]
    fn additive_with_negative_values_and_short_history_errors() {
        let ppd = 96;
        let y: Vec<f64> = (0..ppd * 4)
            .map(|t| 10.0 * ((t % ppd) as f64 / ppd as f64 * std::f64::consts::TAU).sin())
            .collect();
        let mut m = Profile::new(ppd);
        m.fit(&y).unwrap();
        assert!(!m.multiplicative);
        for (h, v) in m.forecast(3).iter().enumerate() {
            assert!(
                (v - y[h + 1]).abs() < 1.5,
                "h={} {v} vs {}",
                h + 1,
                y[h + 1]
            );
        }
        assert!(Profile::new(ppd).fit(&y[..50]).is_err());
    }
}
