//! Exponential smoothing: additive Holt-Winters with a damped trend.
//!
//! ```text
//! level    l_t = α (y_t − s_{t−m}) + (1 − α)(l_{t−1} + φ b_{t−1})
//! trend    b_t = β (l_t − l_{t−1}) + (1 − β) φ b_{t−1}
//! season   s_t = γ (y_t − l_t) + (1 − γ) s_{t−m}
//! forecast ŷ_{t+h} = l_t + (φ + … + φ^h) b_t + s_{t+h−m⌈h/m⌉}
//! ```
//!
//! Parameters are chosen by a grid search minimising the sum of one-step and
//! `fit_horizon`-step squared errors over the last `fit_window` points (the
//! one-step error alone favours fast-tracking levels that extrapolate badly). With less than two seasons of history
//! the model drops the season (damped Holt).

use super::{ModelError, PointModel};

const ALPHAS: [f64; 7] = [0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9];
const BETAS: [f64; 4] = [0.0, 0.01, 0.05, 0.15];
const GAMMAS: [f64; 4] = [0.01, 0.05, 0.15, 0.3];
const PHIS: [f64; 3] = [0.8, 0.9, 0.98];

/// Smoothing parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EtsParams {
    /// Level smoothing.
    pub alpha: f64,
    /// Trend smoothing.
    pub beta: f64,
    /// Season smoothing.
    pub gamma: f64,
    /// Trend damping.
    pub phi: f64,
}

#[derive(Debug, Clone)]
struct State {
    level: f64,
    trend: f64,
    season: Vec<f64>,
    /// Index into `season` of the next observation's phase.
    phase: usize,
}

impl State {
    fn init(y: &[f64], m: usize) -> State {
        if m <= 1 {
            return State {
                level: y[0],
                trend: 0.0,
                season: vec![0.0],
                phase: 0,
            };
        }
        let mean1 = y[..m].iter().sum::<f64>() / m as f64;
        let mean2 = y[m..2 * m].iter().sum::<f64>() / m as f64;
        let season = (0..m)
            .map(|i| (y[i] - mean1 + y[m + i] - mean2) / 2.0)
            .collect();
        State {
            level: mean1,
            trend: (mean2 - mean1) / m as f64 / 4.0,
            season,
            phase: 0,
        }
    }

    #[inline]
    fn one_step(&self, phi: f64) -> f64 {
        self.level + phi * self.trend + self.season[self.phase]
    }

    /// Forecast `h` steps ahead from this state, given `damp = φ + … + φ^h`.
    #[inline]
    fn ahead(&self, damp: f64, h: usize) -> f64 {
        self.level + damp * self.trend + self.season[(self.phase + h - 1) % self.season.len()]
    }

    #[inline]
    fn update(&mut self, y: f64, p: &EtsParams, seasonal: bool) {
        let s_old = self.season[self.phase];
        let prev = self.level;
        let level = p.alpha * (y - s_old) + (1.0 - p.alpha) * (prev + p.phi * self.trend);
        self.trend = p.beta * (level - prev) + (1.0 - p.beta) * p.phi * self.trend;
        self.level = level;
        if seasonal {
            self.season[self.phase] = p.gamma * (y - level) + (1.0 - p.gamma) * s_old;
        }
        self.phase = (self.phase + 1) % self.season.len();
    }
}

/// Damped-trend additive Holt-Winters model.
#[derive(Debug, Clone)]
pub struct Ets {
    period: usize,
    fit_window: usize,
    fit_horizon: usize,
    params: EtsParams,
    seasonal: bool,
    season_len: usize,
    state: Option<State>,
}

impl Ets {
    /// A model with season `period` (points) fitted on at most `fit_window`
    /// points for forecasts up to `fit_horizon` steps.
    pub fn new(period: usize, fit_window: usize, fit_horizon: usize) -> Self {
        Ets {
            period: period.max(1),
            fit_window: fit_window.max(8),
            fit_horizon: fit_horizon.max(1),
            params: EtsParams {
                alpha: 0.3,
                beta: 0.0,
                gamma: 0.05,
                phi: 0.9,
            },
            seasonal: false,
            season_len: 1,
            state: None,
        }
    }
    /// The fitted parameters.
    pub fn params(&self) -> EtsParams {
        self.params
    }
    /// Whether the fitted model has a season.
    pub fn is_seasonal(&self) -> bool {
        self.seasonal
    }
    /// Season length chosen by the fit (daily, weekly, or 1 without season).
    pub fn season_len(&self) -> usize {
        self.season_len
    }

    /// Runs the filter over `y`, scoring points from index `score_from` on
    /// (at least past the two seasons used for initialisation).
    fn run(
        y: &[f64],
        m: usize,
        p: &EtsParams,
        seasonal: bool,
        hz: usize,
        score_from: usize,
        give_up: f64,
    ) -> (f64, State) {
        let mut st = State::init(y, m);
        let skip = if seasonal { 2 * m } else { 1 }
            .max(score_from)
            .min(y.len());
        // Warm the state on the initialisation span, then score the rest.
        for &v in &y[..skip] {
            st.update(v, p, seasonal);
        }
        let mut sse = 0.0;
        let damp_h: f64 = (1..=hz).map(|k| p.phi.powi(k as i32)).sum();
        // ring[t % (hz + 1)] = forecast of y[t] made hz steps earlier
        let mut ring = vec![f64::NAN; hz + 1];
        for (i, &v) in y[skip..].iter().enumerate() {
            let e = v - st.one_step(p.phi);
            sse += e * e;
            if hz > 1 {
                let slot = i % (hz + 1);
                if !ring[slot].is_nan() {
                    let eh = v - ring[slot];
                    sse += eh * eh;
                }
                ring[(i + hz) % (hz + 1)] = st.ahead(damp_h, hz);
            }
            if sse > give_up {
                return (f64::INFINITY, st);
            }
            st.update(v, p, seasonal);
        }
        (sse, st)
    }
}

impl PointModel for Ets {
    fn name(&self) -> &'static str {
        "ets"
    }

    fn fit(&mut self, history: &[f64]) -> Result<(), ModelError> {
        if history.len() < 4 {
            return Err(ModelError::TooShort {
                model: "ets",
                got: history.len(),
                need: 4,
            });
        }
        // Candidate seasons: the daily one, and the weekly one once three
        // weeks of history exist; both scored on the same final span.
        let weekly = self.period * 7;
        let mut seasons = vec![];
        if self.period > 1 && history.len() >= 3 * weekly {
            seasons.push(weekly);
        }
        let window = self
            .fit_window
            .max(3 * self.period)
            .max(seasons.first().map_or(0, |w| 3 * w));
        let y = &history[history.len().saturating_sub(window)..];
        if self.period > 1 && y.len() >= 3 * self.period {
            seasons.push(self.period);
        }
        if seasons.is_empty() {
            seasons.push(1);
        }
        let score_from = seasons
            .iter()
            .map(|m| if *m > 1 { 2 * m } else { 1 })
            .max()
            .unwrap_or(1);
        let hz = self.fit_horizon.min(y.len() / 4).max(1);
        let mut best = (f64::INFINITY, self.params, 1);
        for &m in &seasons {
            let seasonal = m > 1;
            let gammas: &[f64] = if seasonal { &GAMMAS } else { &[0.0] };
            for &alpha in &ALPHAS {
                for &beta in &BETAS {
                    for &gamma in gammas {
                        for &phi in &PHIS {
                            let p = EtsParams {
                                alpha,
                                beta,
                                gamma,
                                phi,
                            };
                            let (sse, _) = Self::run(y, m, &p, seasonal, hz, score_from, best.0);
                            if sse < best.0 {
                                best = (sse, p, m);
                            }
                        }
                    }
                }
            }
        }
        let (_, params, m) = best;
        self.params = params;
        self.seasonal = m > 1;
        self.season_len = m;
        let (_, st) = Self::run(
            y,
            m,
            &self.params,
            self.seasonal,
            hz,
            score_from,
            f64::INFINITY,
        );
        self.state = Some(st);
        Ok(())
    }

    fn observe(&mut self, y: f64) {
        if let Some(st) = &mut self.state {
            st.update(y, &self.params, self.seasonal);
        }
    }

    fn forecast(&self, horizon: usize) -> Vec<f64> {
        let Some(st) = &self.state else {
            return vec![0.0; horizon];
        };
        let m = st.season.len();
        let mut damp = 0.0;
        let mut pow = 1.0;
        (1..=horizon)
            .map(|h| {
                pow *= self.params.phi;
                damp += pow;
                st.level + damp * st.trend + st.season[(st.phase + h - 1) % m]
            })
            .collect()
    }

    fn clone_box(&self) -> Box<dyn PointModel> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_a_clean_seasonal_pattern() {
        let m = 12;
        let y: Vec<f64> = (0..m * 10)
            .map(|t| 100.0 + 20.0 * ((t % m) as f64 / m as f64 * std::f64::consts::TAU).sin())
            .collect();
        let mut e = Ets::new(m, 10_000, 3);
        e.fit(&y).unwrap();
        assert!(e.is_seasonal());
        let f = e.forecast(m);
        for (h, v) in f.iter().enumerate() {
            let t = y.len() + h;
            let truth = 100.0 + 20.0 * ((t % m) as f64 / m as f64 * std::f64::consts::TAU).sin();
            assert!((v - truth).abs() < 1.0, "h={h}: {v} vs {truth}");
        }
    }

    #[test]
    fn short_history_drops_the_season_and_tracks_level() {
        let mut e = Ets::new(288, 10_000, 3);
        e.fit(&[10.0, 11.0, 10.0, 11.0, 10.0, 11.0]).unwrap();
        assert!(!e.is_seasonal());
        let f = e.forecast(3);
        assert!(f.iter().all(|v| (9.0..12.0).contains(v)), "{f:?}");
    }
}
