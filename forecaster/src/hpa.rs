//! The Kubernetes Horizontal Pod Autoscaler's algorithm with its documented
//! defaults, as the reactive baseline (and the planner's fallback).
//!
//! * desired = ⌈current × metric / target⌉, skipped when the ratio is within
//!   the 10% tolerance;
//! * while scaling up, pods that are not ready yet count as using nothing, so
//!   the ratio is computed over all requested pods;
//! * scale-up is limited to max(100%, 4 pods) per 15 s period;
//! * scale-down uses the highest recommendation of the last 300 s
//!   (stabilisation window);
//! * the result is clamped to `[min, max]`.

use std::collections::VecDeque;

/// HPA settings (Kubernetes defaults in parentheses).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HpaConfig {
    /// Target utilisation of a replica's capacity (default 0.7).
    pub target_utilization: f64,
    /// Ratio tolerance (default 0.1).
    pub tolerance: f64,
    /// Scale-down stabilisation window in seconds (default 300).
    pub scale_down_window_s: u32,
    /// Scale-up policy period in seconds (default 15).
    pub scale_up_period_s: u32,
    /// Scale-up policy: percent of current replicas per period (default 100).
    pub scale_up_percent: u32,
    /// Scale-up policy: pods per period (default 4).
    pub scale_up_pods: u32,
    /// Lower bound.
    pub min: u32,
    /// Upper bound.
    pub max: u32,
}

impl HpaConfig {
    /// Defaults with the given bounds.
    pub(crate) fn new(min: u32, max: u32) -> Self {
        HpaConfig {
            target_utilization: 0.7,
            tolerance: 0.1,
            scale_down_window_s: 300,
            scale_up_period_s: 15,
            scale_up_percent: 100,
            scale_up_pods: 4,
            min,
            max: max.max(min),
        }
    }
}

/// A stateful HPA controller.
#[derive(Debug, Clone)]
pub(crate) struct Hpa {
    config: HpaConfig,
    /// (time s, recommendation) within the stabilisation window.
    recommendations: VecDeque<(f64, u32)>,
    /// (time s, replicas before a scale-up) within the scale-up period.
    scale_ups: VecDeque<(f64, u32)>,
}

impl Hpa {
    /// A controller with `config`.
    pub(crate) fn new(config: HpaConfig) -> Self {
        Hpa {
            config,
            recommendations: VecDeque::new(),
            scale_ups: VecDeque::new(),
        }
    }

    /// Replicas needed so `load` (per unit of time) runs at the target
    /// utilisation of `capacity` per replica, ignoring tolerance and limits.
    pub(crate) fn replicas_for(&self, load: f64, capacity: f64) -> u32 {
        let per = (capacity * self.config.target_utilization).max(1e-9);
        ((load / per).ceil().max(0.0) as u32).clamp(self.config.min, self.config.max)
    }

    /// One evaluation at time `now_s`: `current` is the requested replica
    /// count, `load` the total demand rate, `capacity` what one replica
    /// serves at 100% in the same unit. Returns the new requested count.
    pub(crate) fn step(&mut self, now_s: f64, current: u32, load: f64, capacity: f64) -> u32 {
        let c = &self.config;
        let current_eff = current.max(1);
        let usage = load / f64::from(current_eff) / (capacity * c.target_utilization).max(1e-9);
        let raw = if (usage - 1.0).abs() <= c.tolerance {
            current
        } else {
            (f64::from(current_eff) * usage).ceil() as u32
        };
        let raw = raw.clamp(c.min, c.max);
        // Scale-down stabilisation: highest recommendation in the window.
        let window = f64::from(c.scale_down_window_s);
        self.recommendations.push_back((now_s, raw));
        while self
            .recommendations
            .front()
            .is_some_and(|(t, _)| *t <= now_s - window)
        {
            self.recommendations.pop_front();
        }
        let stabilised = if raw < current {
            self.recommendations
                .iter()
                .map(|r| r.1)
                .max()
                .unwrap_or(raw)
                .min(current)
        } else {
            raw
        };
        // Scale-up limit relative to the replicas at the start of the period.
        let period = f64::from(c.scale_up_period_s);
        while self
            .scale_ups
            .front()
            .is_some_and(|(t, _)| *t <= now_s - period)
        {
            self.scale_ups.pop_front();
        }
        let base = self.scale_ups.iter().map(|s| s.1).min().unwrap_or(current);
        let limit = (base + base * c.scale_up_percent / 100).max(base + c.scale_up_pods);
        let desired = if stabilised > current {
            stabilised.min(limit).max(current)
        } else {
            stabilised
        };
        if desired > current {
            self.scale_ups.push_back((now_s, current));
        }
        desired.clamp(c.min, c.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerance_and_ratio_rule() {
        let mut h = Hpa::new(HpaConfig::new(1, 100));
        // 10 replicas at 70% target of 10/replica = 70 load is on target.
        assert_eq!(h.step(0.0, 10, 75.0, 10.0), 10); // 7% over: within tolerance
        assert_eq!(h.step(15.0, 10, 140.0, 10.0), 20); // ratio 2
    }

    #[test]
    fn scale_up_is_limited_per_period() {
        let mut h = Hpa::new(HpaConfig::new(1, 100));
        assert_eq!(h.step(0.0, 2, 1000.0, 10.0), 6); // max(2×2, 2+4)
        assert_eq!(h.step(5.0, 6, 1000.0, 10.0), 6); // same period: still limited from 2
        assert_eq!(h.step(15.0, 6, 1000.0, 10.0), 12); // new period: doubles
    }

    #[test]
    fn scale_down_waits_for_the_window() {
        let mut h = Hpa::new(HpaConfig::new(1, 100));
        assert_eq!(h.step(0.0, 10, 70.0, 10.0), 10);
        assert_eq!(h.step(15.0, 10, 7.0, 10.0), 10);
        assert_eq!(h.step(299.0, 10, 7.0, 10.0), 10);
        assert_eq!(h.step(301.0, 10, 7.0, 10.0), 1);
    }
}
