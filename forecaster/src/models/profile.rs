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

/// Horizons the α choice is scored at (longer ones use the last choice).
const MAX_H: usize = 60;

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
    /// Origins at the end of the history the α per horizon is first
    /// chosen on (two days).
    pub eval_points: usize,
    /// Half-life, in points, of the errors the α per horizon is chosen on
    /// (`None`: the `eval_points` before the fit, equally weighted, fixed
    /// until the next fit). With a half-life the choice keeps learning
    /// after the fit: every new point scores the forecasts every α made for
    /// it, and recent errors count more (default `None`: on the NASA trace
    /// a half-life of 0.1–2 days changed `profile`'s MAE by < 0.3%, and it
    /// was worse on NAB's bursty AAPL series).
    pub choice_half_life: Option<f64>,
    /// Level as the ratio of smoothed (clipped) traffic to smoothed
    /// profile instead of the smoothed ratio, so quiet minutes, whose ratio
    /// is noisy, count less (default true; multiplicative series only).
    pub sum_level: bool,
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
            choice_half_life: None,
            sum_level: true,
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
    /// Σ-level: smoothed (clipped) traffic and smoothed profile per α.
    num: Vec<f64>,
    den: Vec<f64>,
    /// The levels after each of the last `MAX_H` points, newest last.
    past_levels: std::collections::VecDeque<Vec<f64>>,
    /// Per horizon and α: (decayed) sum of absolute errors; per horizon:
    /// (decayed) count.
    err: Vec<Vec<f64>>,
    cnt: Vec<f64>,
    /// Per-point decay of `err`/`cnt` (1: none).
    decay: f64,
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
            num: vec![],
            den: vec![],
            past_levels: Default::default(),
            err: vec![],
            cnt: vec![],
            decay: 1.0,
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
            self.num = vec![r * p; self.cfg.alphas.len()];
            self.den = vec![p; self.cfg.alphas.len()];
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
        if self.cfg.sum_level && self.multiplicative {
            for (k, a) in self.cfg.alphas.iter().enumerate() {
                self.num[k] += a * (rc * p - self.num[k]);
                self.den[k] += a * (p - self.den[k]);
                self.levels[k] = self.num[k] / self.den[k].max(1e-9);
            }
        } else {
            for (l, a) in self.levels.iter_mut().zip(&self.cfg.alphas) {
                *l += a * (rc - *l);
            }
        }
    }

    /// Scores the newest point (already pushed, levels not yet updated)
    /// against what every α forecast for it 1..=`MAX_H` points earlier,
    /// then remembers the current levels.
    fn score_newest(&mut self, scoring: bool) {
        if scoring && !self.past_levels.is_empty() {
            let t = self.last();
            let y = self.hist[self.hist.len() - 1];
            if let Some(p) = self.profile_at(t, t.saturating_sub(1)) {
                for (c, e) in self.cnt.iter_mut().zip(self.err.iter_mut()) {
                    *c *= self.decay;
                    e.iter_mut().for_each(|v| *v *= self.decay);
                }
                for (h, ls) in self.past_levels.iter().rev().enumerate() {
                    for (k, l) in ls.iter().enumerate() {
                        self.err[h][k] += (y - self.combine(*l, p)).abs();
                    }
                    self.cnt[h] += 1.0;
                }
            }
        }
    }

    fn remember_levels(&mut self) {
        if self.levels.is_empty() {
            return;
        }
        if self.past_levels.len() == MAX_H {
            self.past_levels.pop_front();
        }
        self.past_levels.push_back(self.levels.clone());
    }

    /// Per horizon h, the α with the lowest mean error pooled over the
    /// horizons h·2/3 ..= h·3/2: neighbouring horizons want nearly the
    /// same α, and pooling them keeps one noisy day from deciding.
    fn choose(&self) -> Vec<usize> {
        let alphas = self.cfg.alphas.len();
        let mut last_choice = alphas / 2;
        (1..=MAX_H)
            .map(|h| {
                let (lo, hi) = ((h * 2).div_ceil(3).max(1), (h * 3 / 2).clamp(h, MAX_H));
                if (lo..=hi).all(|g| self.cnt[g - 1] <= 0.0) {
                    return last_choice;
                }
                let pooled = |k: usize| -> f64 {
                    (lo..=hi)
                        .filter(|g| self.cnt[g - 1] > 0.0)
                        .map(|g| self.err[g - 1][k] / self.cnt[g - 1])
                        .sum()
                };
                let best = (0..alphas)
                    .min_by(|a, b| pooled(*a).total_cmp(&pooled(*b)))
                    .unwrap_or(0);
                last_choice = best;
                best
            })
            .collect()
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
        self.err = vec![vec![0.0; alphas]; MAX_H];
        self.cnt = vec![0.0; MAX_H];
        self.past_levels.clear();
        self.decay = match self.cfg.choice_half_life {
            Some(hl) if hl > 0.0 => 0.5f64.powf(1.0 / hl),
            _ => 1.0,
        };
        for (i, &y) in history.iter().enumerate().skip(start) {
            self.push(y);
            // Score point i against the forecasts of the origins before it
            // that lie in the evaluation span.
            self.score_newest(i > eval_from);
            self.update_levels();
            if i + 1 >= eval_from {
                self.remember_levels();
            }
        }
        if self.levels.is_empty() {
            return Err(ModelError::TooShort {
                model: "profile",
                got: history.len(),
                need: need + 1,
            });
        }
        self.choice = self.choose();
        self.fitted = true;
        Ok(())
    }

    fn observe(&mut self, y: f64) {
        if !self.fitted {
            return;
        }
        self.push(y);
        if self.decay < 1.0 {
            self.score_newest(true);
            self.update_levels();
            self.remember_levels();
            self.choice = self.choose();
        } else {
            self.update_levels();
        }
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

    /// Deterministic noise, uniform in [−0.5, 0.5).
    fn noise(t: usize) -> f64 {
        use crate::select::tests::splitmix;
        let x = splitmix(t as u64);
        (x >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    }

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
    fn with_a_half_life_the_alpha_choice_keeps_learning() {
        let ppd = 96;
        // Calm: noise around the daily shape, a slow level forecasts best.
        let calm = daily(ppd, 5, |t| 1.0 + 0.6 * noise(t));
        // Then the level jumps every 20 points: only a fast level follows.
        let jumpy: Vec<f64> = daily(ppd, 3, |t| if (t / 20) % 2 == 0 { 0.5 } else { 2.0 });
        let fit = |half_life| {
            let mut cfg = ProfileConfig::for_points_per_day(ppd);
            cfg.choice_half_life = half_life;
            let mut m = Profile::with_config(ppd, cfg);
            m.fit(&calm).unwrap();
            let before = m.alpha_for(1).unwrap();
            for v in &jumpy {
                m.observe(*v);
            }
            (before, m.alpha_for(1).unwrap())
        };
        let (before, after) = fit(Some(ppd as f64 / 4.0));
        assert!(after > before, "alpha at 1 step: {before} -> {after}");
        let (before, after) = fit(None);
        assert_eq!(
            before, after,
            "without a half-life the choice waits for the refit"
        );
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
