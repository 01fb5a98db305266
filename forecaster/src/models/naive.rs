//! Naive (last value) and seasonal naive (same time one season ago) models.

use super::{ModelError, PointModel, Recent};

/// Forecasts the last observed value for every horizon.
#[derive(Debug, Clone, Default)]
pub struct Naive {
    last: f64,
}

impl PointModel for Naive {
    fn name(&self) -> &'static str {
        "naive"
    }
    fn fit(&mut self, history: &[f64]) -> Result<(), ModelError> {
        self.last = *history.last().ok_or(ModelError::TooShort {
            model: "naive",
            got: 0,
            need: 1,
        })?;
        Ok(())
    }
    fn observe(&mut self, y: f64) {
        self.last = y;
    }
    fn forecast(&self, horizon: usize) -> Vec<f64> {
        vec![self.last; horizon]
    }
    fn clone_box(&self) -> Box<dyn PointModel> {
        Box::new(self.clone())
    }
}

/// Forecasts the value one season (`period` points) before the target.
#[derive(Debug, Clone)]
pub struct SeasonalNaive {
    name: &'static str,
    period: usize,
    recent: Recent,
}

impl SeasonalNaive {
    /// A seasonal naive model with the given name and season length in points.
    pub fn new(name: &'static str, period: usize) -> Self {
        let period = period.max(1);
        SeasonalNaive {
            name,
            period,
            recent: Recent::new(period),
        }
    }
    /// Daily seasonal naive for `points_per_day`.
    pub fn daily(points_per_day: usize) -> Self {
        Self::new("snaive_daily", points_per_day)
    }
    /// Weekly seasonal naive for `points_per_day`.
    pub fn weekly(points_per_day: usize) -> Self {
        Self::new("snaive_weekly", points_per_day * 7)
    }
    /// Season length in points.
    pub fn period(&self) -> usize {
        self.period
    }
}

impl PointModel for SeasonalNaive {
    fn name(&self) -> &'static str {
        self.name
    }
    fn fit(&mut self, history: &[f64]) -> Result<(), ModelError> {
        if history.len() < self.period {
            return Err(ModelError::TooShort {
                model: self.name,
                got: history.len(),
                need: self.period,
            });
        }
        self.recent = Recent::from_history(self.period, history);
        Ok(())
    }
    fn observe(&mut self, y: f64) {
        self.recent.push(y);
    }
    fn forecast(&self, horizon: usize) -> Vec<f64> {
        let m = self.period;
        (1..=horizon)
            .map(|h| {
                // value at t + h - m * ceil(h / m)
                let back = m * h.div_ceil(m) - h + 1;
                self.recent.ago(back)
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
    fn seasonal_naive_repeats_the_last_season() {
        let mut m = SeasonalNaive::new("s", 3);
        m.fit(&[9.0, 1.0, 2.0, 3.0]).unwrap();
        assert_eq!(m.forecast(7), vec![1.0, 2.0, 3.0, 1.0, 2.0, 3.0, 1.0]);
        m.observe(4.0);
        assert_eq!(m.forecast(3), vec![2.0, 3.0, 4.0]);
        assert!(m.fit(&[1.0]).is_err());
        let mut n = Naive::default();
        n.fit(&[1.0, 5.0]).unwrap();
        assert_eq!(n.forecast(2), vec![5.0, 5.0]);
    }
}
