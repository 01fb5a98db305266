//! Operational alerts raised by the worker ([`Alert`] of the contracts),
//! with hysteresis so a condition that comes and goes does not flap.
//!
//! Per service and closed bucket the worker checks three conditions:
//!
//! | condition | [`AlertKind`] | bad when |
//! | --- | --- | --- |
//! | live forecast error high | `forecast-error-high` | live MASE above the service policy's `max_live_mase` |
//! | fallback to reactive | `fallback-reactive` | the service's decision was planned reactively although it has a forecast model (warm-up does not count) |
//! | forecasts stale | `other` (message `forecasts stale: …`) | no forecast from this bucket although the service had forecasts before, or its fit fails (a first fit only deferred by the fit budget is warm-up, not stale) |
//!
//! A condition raises its alert once after [`AlertConfig::fire_after`]
//! consecutive bad buckets and clears after [`AlertConfig::clear_after`]
//! consecutive good ones; while raised it is not raised again, and a bad
//! bucket restarts the count towards clearing ([`Hysteresis`]). Raised
//! alerts go, as JSON keyed by service, to the `scaling-actions` topic that
//! the notifier consumes (the actions consumer skips them). Clearing sends
//! nothing (the contract has no "resolved"); it shows in the metric
//! `prescient_forecaster_alert_active{service,kind}`.

use prescient_contracts::action::{Alert, AlertKind};

/// Hysteresis settings (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertConfig {
    /// Consecutive bad buckets before an alert is raised (default 3).
    pub fire_after: u32,
    /// Consecutive good buckets before a raised alert clears (default 10).
    pub clear_after: u32,
}

impl Default for AlertConfig {
    fn default() -> Self {
        AlertConfig {
            fire_after: 3,
            clear_after: 10,
        }
    }
}

/// A change of an alert's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transition {
    /// The alert is raised now.
    Raised,
    /// The alert cleared now.
    Cleared,
}

/// Hysteresis of one condition: raised after `fire_after` consecutive bad
/// observations, cleared after `clear_after` consecutive good ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Hysteresis {
    active: bool,
    bad: u32,
    good: u32,
}

impl Hysteresis {
    /// Whether the alert is raised.
    #[cfg(test)]
    pub(crate) fn active(&self) -> bool {
        self.active
    }

    /// Records one observation; returns the transition it caused, if any.
    pub(crate) fn observe(&mut self, bad: bool, config: AlertConfig) -> Option<Transition> {
        if bad {
            self.good = 0;
            self.bad = self.bad.saturating_add(1);
            if !self.active && self.bad >= config.fire_after.max(1) {
                self.active = true;
                return Some(Transition::Raised);
            }
        } else {
            self.bad = 0;
            self.good = self.good.saturating_add(1);
            if self.active && self.good >= config.clear_after.max(1) {
                self.active = false;
                return Some(Transition::Cleared);
            }
        }
        None
    }
}

/// The conditions the worker tracks per service.
#[derive(
    strum::IntoStaticStr, strum::EnumIter, Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
)]
pub enum Condition {
    /// Live MASE above the policy's `max_live_mase`.
    #[strum(serialize = "forecast-error-high")]
    ErrorHigh,
    /// Planned reactively although a forecast model exists.
    #[strum(serialize = "fallback-reactive")]
    Fallback,
    /// No forecast from this bucket although there were forecasts before,
    /// or fitting fails.
    #[strum(serialize = "forecasts-stale")]
    Stale,
}

impl Condition {
    /// All conditions.
    pub fn all() -> impl Iterator<Item = Condition> {
        <Condition as strum::IntoEnumIterator>::iter()
    }

    /// The contract's kind for this condition.
    pub fn kind(self) -> AlertKind {
        match self {
            Condition::ErrorHigh => AlertKind::ForecastErrorHigh,
            Condition::Fallback => AlertKind::FallbackReactive,
            Condition::Stale => AlertKind::Other,
        }
    }

    /// Label in metrics and logs.
    pub fn label(self) -> &'static str {
        self.into()
    }
}

/// One bucket's observation of a service: for each condition, `Some(why)`
/// when bad.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Observation {
    /// Live MASE too high: why.
    pub error_high: Option<String>,
    /// Reactive fallback: why.
    pub fallback: Option<String>,
    /// Forecasts stale: why.
    pub stale: Option<String>,
}

impl Observation {
    fn get(&self, c: Condition) -> Option<&String> {
        match c {
            Condition::ErrorHigh => self.error_high.as_ref(),
            Condition::Fallback => self.fallback.as_ref(),
            Condition::Stale => self.stale.as_ref(),
        }
    }
}

/// The hysteresis of every condition of one service.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ServiceAlerts {
    states: [Hysteresis; 3],
}

impl ServiceAlerts {
    /// Whether `c` is raised.
    #[cfg(test)]
    pub(crate) fn active(&self, c: Condition) -> bool {
        self.states[c as usize].active()
    }

    /// Feeds one bucket's observation; returns the alerts raised now and
    /// the conditions that cleared now.
    pub(crate) fn observe(
        &mut self,
        service: &str,
        obs: &Observation,
        at: chrono::DateTime<chrono::Utc>,
        config: AlertConfig,
    ) -> (Vec<Alert>, Vec<Condition>) {
        let (mut raised, mut cleared) = (vec![], vec![]);
        for c in Condition::all() {
            let why = obs.get(c);
            match self.states[c as usize].observe(why.is_some(), config) {
                Some(Transition::Raised) => raised.push(Alert {
                    alert: c.kind(),
                    service: service.to_string(),
                    message: match c {
                        Condition::Stale => {
                            format!("forecasts stale: {}", why.map_or("", String::as_str))
                        }
                        _ => why.cloned().unwrap_or_default(),
                    },
                    at,
                }),
                Some(Transition::Cleared) => cleared.push(c),
                None => {}
            }
        }
        (raised, cleared)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const C: AlertConfig = AlertConfig {
        fire_after: 3,
        clear_after: 5,
    };

    fn run(seq: &[bool]) -> Vec<(usize, Transition)> {
        let mut h = Hysteresis::default();
        seq.iter()
            .enumerate()
            .filter_map(|(i, b)| h.observe(*b, C).map(|t| (i, t)))
            .collect()
    }

    #[test]
    fn fires_once_after_n_bad_and_clears_after_m_good() {
        let mut seq = vec![true; 10];
        seq.extend([false; 5]);
        assert_eq!(
            run(&seq),
            vec![(2, Transition::Raised), (14, Transition::Cleared)]
        );
        // Two bad buckets are not enough.
        assert_eq!(run(&[true, true, false, true, true, false]), vec![]);
    }

    #[test]
    fn does_not_flap_on_alternating_conditions() {
        // Raised, then bad and good alternate: stays raised, no repeat.
        let mut seq = vec![true; 3];
        for i in 0..40 {
            seq.push(i % 2 == 0);
        }
        assert_eq!(run(&seq), vec![(2, Transition::Raised)]);
        // Four good then one bad restarts the count to clearing.
        let mut seq = vec![true; 3];
        seq.extend([false, false, false, false, true, false, false, false, false]);
        assert_eq!(run(&seq), vec![(2, Transition::Raised)]);
        seq.push(false);
        assert_eq!(
            run(&seq),
            vec![(2, Transition::Raised), (12, Transition::Cleared)]
        );
    }

    #[test]
    fn service_alerts_carry_kind_service_and_reason() {
        let mut s = ServiceAlerts::default();
        let at = "2026-11-21T10:00:00Z".parse().unwrap();
        let bad = Observation {
            stale: Some("no forecast for 3 min".into()),
            fallback: Some("reactive fallback (no forecast)".into()),
            ..Default::default()
        };
        for _ in 0..2 {
            assert_eq!(s.observe("checkout", &bad, at, C).0, vec![]);
        }
        let (raised, _) = s.observe("checkout", &bad, at, C);
        let kinds: Vec<AlertKind> = raised.iter().map(|a| a.alert).collect();
        assert_eq!(kinds, vec![AlertKind::FallbackReactive, AlertKind::Other]);
        assert_eq!(raised[1].message, "forecasts stale: no forecast for 3 min");
        assert_eq!(raised[0].service, "checkout");
        assert!(s.active(Condition::Stale) && !s.active(Condition::ErrorHigh));
        let mut cleared = vec![];
        for _ in 0..5 {
            cleared.extend(s.observe("checkout", &Observation::default(), at, C).1);
        }
        assert_eq!(cleared, vec![Condition::Fallback, Condition::Stale]);
    }

    proptest! {
        /// Between two raises there is a clear, a raise needs `fire_after`
        /// bad observations just before it, a clear `clear_after` good ones.
        #[test]
        fn transitions_follow_the_runs(seq in proptest::collection::vec(any::<bool>(), 0..200)) {
            let ts = run(&seq);
            for w in ts.windows(2) {
                prop_assert_ne!(w[0].1, w[1].1, "{:?}", ts);
            }
            for (i, t) in &ts {
                let (n, want) = match t {
                    Transition::Raised => (C.fire_after as usize, true),
                    Transition::Cleared => (C.clear_after as usize, false),
                };
                prop_assert!(*i + 1 >= n);
                prop_assert!(seq[*i + 1 - n..=*i].iter().all(|b| *b == want), "{:?}", ts);
            }
            if let Some((_, t)) = ts.first() {
                prop_assert_eq!(*t, Transition::Raised);
            }
        }
    }
}
