//! Point forecasting models and the quantiles they are turned into.
//!
//! Every model implements [`PointModel`]: `fit` estimates its parameters on a
//! history and leaves its state at the end of it, `observe` advances the
//! state by one new value without refitting, and `forecast` gives the median
//! path for horizons `1..=h`. Prediction intervals come from the model's own
//! out-of-sample errors (see [`crate::select`]), so every model gets p10/p90
//! the same honest way.

mod ets;
mod lstm;
mod naive;
mod profile;

pub use ets::Ets;
pub use lstm::{Lstm, LstmConfig};
pub use naive::{Naive, SeasonalNaive};
pub use profile::{Profile, ProfileConfig};

/// Errors of model fitting, training and persistence.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The history is too short for this model.
    #[error("{model}: history of {got} points is too short (needs {need})")]
    TooShort {
        /// Model name.
        model: &'static str,
        /// Points given.
        got: usize,
        /// Points needed.
        need: usize,
    },
    /// A candle (tensor) operation failed.
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
    /// No member of an ensemble could be fitted.
    #[error("no model could be fitted: {0}")]
    NoModel(String),
    /// A saved model file does not match this model's configuration.
    #[error("saved model does not match: {0}")]
    Mismatch(String),
}

/// One forecast step: the 10th, 50th and 90th percentiles.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quantiles {
    /// 10th percentile (lower bound of the 80% interval).
    pub p10: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile (upper bound of the 80% interval).
    pub p90: f64,
}

/// A model that forecasts a median path from its state.
pub trait PointModel: Send + Sync {
    /// Short name used in output files and tables (`naive`, `snaive_daily`, ...).
    fn name(&self) -> &'static str;
    /// Estimates parameters on `history` and sets the state to its end.
    fn fit(&mut self, history: &[f64]) -> Result<(), ModelError>;
    /// Advances the state by one new observation (no refit).
    fn observe(&mut self, y: f64);
    /// Median forecasts for horizons `1..=horizon`.
    fn forecast(&self, horizon: usize) -> Vec<f64>;
    /// A boxed copy (models are cloned to evaluate them out of sample).
    fn clone_box(&self) -> Box<dyn PointModel>;
    /// Saves trained state worth keeping across restarts; `Ok(false)` when
    /// the model has none (cheap models simply refit).
    fn persist(&self, _path: &std::path::Path) -> Result<bool, ModelError> {
        Ok(false)
    }
    /// Restores state saved by [`PointModel::persist`]; `Ok(false)` when the
    /// model keeps none. A restored model's next `fit` fine-tunes.
    fn restore(&mut self, _path: &std::path::Path) -> Result<bool, ModelError> {
        Ok(false)
    }
}

impl Clone for Box<dyn PointModel> {
    fn clone(&self) -> Self {
        self.clone_box()
    }
}

/// A fixed-capacity ring buffer of the most recent values.
#[derive(Debug, Clone, Default)]
pub(crate) struct Recent {
    buf: Vec<f64>,
    cap: usize,
    head: usize,
}

impl Recent {
    /// An empty buffer keeping at most `cap` values.
    pub(crate) fn new(cap: usize) -> Self {
        Recent {
            buf: Vec::with_capacity(cap.min(1 << 16)),
            cap: cap.max(1),
            head: 0,
        }
    }
    /// Keeps the last `cap` values of `history`.
    pub(crate) fn from_history(cap: usize, history: &[f64]) -> Self {
        let mut r = Recent::new(cap);
        for &y in &history[history.len().saturating_sub(r.cap)..] {
            r.push(y);
        }
        r
    }
    /// Appends a value, dropping the oldest when full.
    pub(crate) fn push(&mut self, y: f64) {
        if self.buf.len() < self.cap {
            self.buf.push(y);
        } else {
            self.buf[self.head] = y;
            self.head = (self.head + 1) % self.cap;
        }
    }
    /// Number of values held.
    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }
    /// True when empty.
    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
    /// The value `back` steps ago (`back = 1` is the latest).
    pub(crate) fn ago(&self, back: usize) -> f64 {
        let n = self.buf.len();
        debug_assert!(back >= 1 && back <= n);
        if n < self.cap {
            self.buf[n - back]
        } else {
            self.buf[(self.head + self.cap - back) % self.cap]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_buffer_keeps_the_latest() {
        let mut r = Recent::from_history(3, &[1.0, 2.0, 3.0, 4.0]);
        assert_eq!((r.ago(1), r.ago(3)), (4.0, 2.0));
        r.push(5.0);
        assert_eq!((r.ago(1), r.ago(2), r.ago(3), r.len()), (5.0, 4.0, 3.0, 3));
    }
}
