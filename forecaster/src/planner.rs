//! The capacity planner: turns a service's forecast and policy into a
//! bounded, idempotent [`ScalingDecision`].
//!
//! 1. If the forecast is missing, older than `max_forecast_age_min`, or its
//!    live MASE exceeds `max_live_mase`, plan reactively: the replicas the
//!    last closed minute needed (kept as is within 10%, like the HPA).
//! 2. Otherwise replicas = ⌈peak p90 / capacity_per_replica⌉, the peak taken
//!    over horizons `lead ..= lead + 2` minutes (what must be ready when
//!    capacity requested now arrives).
//! 3. Sizes are converted to the target's unit (nodes for a nodegroup).
//! 4. Scale-in is refused within `scale_in_stabilization_min` of the last
//!    scale-up and otherwise goes only down to the highest size recommended
//!    within that window; every change is at most `max_step`; the result is
//!    clamped to `[min, max]`.
//!
//! Steps 1 (the ±10% band) and 4 measure from the target's actual size
//! ([`PlanInput::current`], which the worker reads from the scaler's
//! outcomes). While that size is unknown (no outcome yet) they are skipped:
//! the decision goes straight to the planned size within `[min, max]`,
//! reports `current` as `min`, and its reason says so. Measuring a step from
//! a guessed size could shrink a target that is really larger.
//!
//! The planner is a pure function: the same input gives the same decision,
//! including its id (a UUID v5 of service and issue time).

use crate::config::ServicePolicy;
use chrono::{DateTime, TimeDelta, Utc};
use prescient_contracts::decision::{ForecastSummary, ScalingDecision, Target};
use uuid::Uuid;

/// Namespace of decision ids (UUID v5 over `service/issued_at`).
pub(crate) const DECISION_NAMESPACE: Uuid =
    Uuid::from_u128(0x5c1e_7a2b_9d4e_4f11_8a3c_6b0d_2e9f_4a17);

/// One forecast point: requests per minute at `horizon_min` minutes ahead.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ForecastPoint {
    /// Minutes ahead of the forecast's issue time.
    pub horizon_min: u32,
    /// Median.
    pub p50: f64,
    /// Upper (90th percentile).
    pub p90: f64,
}

/// The latest forecast of a service.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ForecastView {
    /// When it was made (the last closed minute it saw).
    pub issued_at: DateTime<Utc>,
    /// Points by horizon.
    pub points: Vec<ForecastPoint>,
    /// Live MASE of recent forecasts, if known.
    pub live_mase: Option<f64>,
}

/// Everything the planner looks at for one service.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PlanInput {
    /// Service name.
    pub service: String,
    /// Name of the policy (recorded in the decision).
    pub policy_name: String,
    /// Decision time.
    pub now: DateTime<Utc>,
    /// Size the target has now, in the target's unit (the scaler's latest
    /// outcome for it); `None` while unknown.
    pub current: Option<u32>,
    /// Requests in the last closed minute.
    pub last_minute_requests: f64,
    /// The latest forecast.
    pub forecast: Option<ForecastView>,
    /// When the target was last scaled up.
    pub last_scale_up: Option<DateTime<Utc>>,
    /// Earlier decisions' desired sizes `(issued_at, desired)`, for the
    /// scale-in stabilisation window.
    pub recent_desired: Vec<(DateTime<Utc>, u32)>,
}

/// Turns an input and a policy into a decision.
pub(crate) fn plan(input: &PlanInput, policy: &ServicePolicy) -> ScalingDecision {
    let target = policy.target_for(&input.service);
    let per_unit = match target {
        Target::Nodegroup { .. } => policy.pods_per_node.max(1),
        Target::Deployment { .. } => 1,
    };
    let to_unit = |replicas: u32| replicas.div_ceil(per_unit);
    let (min, max) = (
        to_unit(policy.min_replicas),
        to_unit(policy.max_replicas).max(to_unit(policy.min_replicas)),
    );
    let cap = policy.capacity_per_replica.max(1e-9);
    let replicas = |rpm: f64| ((rpm / cap).ceil().max(0.0)).min(f64::from(u32::MAX)) as u32;
    let known = input.current;
    let current = known.unwrap_or(min);

    let fallback = match &input.forecast {
        None => Some("no forecast".to_string()),
        Some(f) => {
            let age = (input.now - f.issued_at).num_seconds();
            if age > i64::from(policy.max_forecast_age_min) * 60 {
                Some(format!(
                    "forecast is stale ({} min old > {} min)",
                    age / 60,
                    policy.max_forecast_age_min
                ))
            } else if age < 0 {
                Some("forecast is from the future".to_string())
            } else if let Some(m) = f.live_mase.filter(|m| *m > policy.max_live_mase) {
                Some(format!(
                    "forecast error is poor (live MASE {m:.2} > {:.2})",
                    policy.max_live_mase
                ))
            } else {
                let lead = policy.lead_time_min;
                let has = f
                    .points
                    .iter()
                    .any(|p| p.horizon_min >= lead && p.horizon_min <= lead + 2);
                (!has).then(|| format!("forecast does not reach the lead time ({lead} min)"))
            }
        }
    };

    let (raw, mut reason, summary) = match (&fallback, &input.forecast) {
        (None, Some(f)) => {
            let lead = policy.lead_time_min;
            let peak = f
                .points
                .iter()
                .filter(|p| p.horizon_min >= lead && p.horizon_min <= lead + 2)
                .max_by(|a, b| {
                    a.p90
                        .total_cmp(&b.p90)
                        .then(b.horizon_min.cmp(&a.horizon_min))
                })
                .copied()
                .expect("checked above");
            let r = replicas(peak.p90);
            (
                to_unit(r),
                format!(
                    "predictive: p90 {:.0} req/min at +{} min needs {r} replicas at {:.0} req/min each",
                    peak.p90, peak.horizon_min, cap
                ),
                Some(ForecastSummary {
                    horizon: peak.horizon_min,
                    p50: peak.p50,
                    p90: peak.p90,
                }),
            )
        }
        (why, _) => {
            let need = to_unit(replicas(input.last_minute_requests));
            let ratio = f64::from(need) / f64::from(current.max(1));
            let keep = known.is_some() && current > 0 && (ratio - 1.0).abs() <= 0.1;
            let r = if keep { current } else { need };
            (
                r,
                format!(
                    "reactive fallback ({}): last minute {:.0} req/min needs {need}",
                    why.as_deref().unwrap_or("unknown"),
                    input.last_minute_requests
                ),
                None,
            )
        }
    };

    let mut desired = raw;
    if known.is_none() {
        reason.push_str("; size unknown (no scaler outcome yet): no step limit or scale-in hold");
    } else if desired < current {
        let window = TimeDelta::minutes(i64::from(policy.scale_in_stabilization_min));
        if input.last_scale_up.is_some_and(|t| input.now - t < window) {
            desired = current;
            reason.push_str("; scale-in held: scaled up within the stabilisation window");
        } else {
            let held = input
                .recent_desired
                .iter()
                .filter(|(t, _)| input.now - *t < window && *t <= input.now)
                .map(|(_, d)| *d)
                .max()
                .unwrap_or(0)
                .min(current);
            if held > desired {
                desired = held;
                reason.push_str(&format!(
                    "; scale-in limited to {held} (highest in the stabilisation window)"
                ));
            }
        }
    }
    let step = policy.max_step.max(1);
    if known.is_none() {
        // Nothing to measure a step from.
    } else if desired > current.saturating_add(step) {
        desired = current.saturating_add(step);
        reason.push_str(&format!("; step limited to +{step}"));
    } else if desired < current.saturating_sub(step) {
        desired = current.saturating_sub(step);
        reason.push_str(&format!("; step limited to -{step}"));
    }
    if desired < min || desired > max {
        desired = desired.clamp(min, max);
        reason.push_str(&format!("; clamped to [{min}, {max}]"));
    }
    let id_key = format!("{}/{}", input.service, input.now.to_rfc3339());
    ScalingDecision {
        id: Uuid::new_v5(&DECISION_NAMESPACE, id_key.as_bytes()),
        service: input.service.clone(),
        issued_at: input.now,
        expires_at: input.now + TimeDelta::minutes(i64::from(policy.decision_ttl_min)),
        target,
        current,
        desired,
        min,
        max,
        policy: input.policy_name.clone(),
        reason,
        forecast: summary,
        mode: policy.mode,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t(min: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + min * 60, 0).unwrap()
    }

    fn forecast(issued: i64, level: f64) -> ForecastView {
        ForecastView {
            issued_at: t(issued),
            points: (1..=60)
                .map(|h| ForecastPoint {
                    horizon_min: h,
                    p50: level,
                    p90: level * 1.2,
                })
                .collect(),
            live_mase: Some(0.8),
        }
    }

    fn input(now: i64, current: u32, fc: Option<ForecastView>) -> PlanInput {
        PlanInput {
            service: "checkout".into(),
            policy_name: "checkout".into(),
            now: t(now),
            current: Some(current),
            last_minute_requests: 500.0,
            forecast: fc,
            last_scale_up: None,
            recent_desired: vec![],
        }
    }

    #[test]
    fn predictive_uses_p90_at_the_lead() {
        let p = ServicePolicy::default(); // 100 rpm/replica, lead 5
        let d = plan(&input(10, 5, Some(forecast(10, 1000.0))), &p);
        assert_eq!(d.desired, 12); // 1200 / 100
        assert_eq!(d.forecast.as_ref().unwrap().horizon, 5);
        assert!(d.reason.starts_with("predictive"), "{}", d.reason);
        assert_eq!(d.expires_at - d.issued_at, TimeDelta::minutes(5));
    }

    #[test]
    fn stale_or_poor_forecasts_fall_back_to_reactive() {
        let p = ServicePolicy::default();
        let d = plan(&input(10, 5, Some(forecast(2, 1000.0))), &p);
        assert!(
            d.reason.contains("stale") && d.forecast.is_none(),
            "{}",
            d.reason
        );
        assert_eq!(d.desired, 5); // 500 rpm / 100
        let mut poor = forecast(10, 1000.0);
        poor.live_mase = Some(3.0);
        let d = plan(&input(10, 5, Some(poor)), &p);
        assert!(d.reason.contains("poor"), "{}", d.reason);
        assert!(plan(&input(10, 5, None), &p).reason.contains("no forecast"));
    }

    #[test]
    fn nodegroups_are_sized_in_nodes() {
        let p = ServicePolicy {
            pods_per_node: 4,
            max_replicas: 40,
            target: Some(Target::Nodegroup {
                cluster: "c".into(),
                nodegroup: "n".into(),
            }),
            ..Default::default()
        };
        let d = plan(&input(10, 1, Some(forecast(10, 1000.0))), &p);
        assert_eq!((d.desired, d.min, d.max), (3, 1, 10)); // 12 replicas / 4
    }

    #[test]
    fn unknown_size_is_not_step_limited_and_reports_min() {
        let p = ServicePolicy {
            max_step: 2,
            min_replicas: 3,
            ..Default::default()
        };
        let mut i = input(10, 5, Some(forecast(10, 1000.0)));
        assert_eq!(plan(&i, &p).desired, 7, "known size 5: +2 at most");
        i.current = None;
        i.last_scale_up = Some(t(9));
        let d = plan(&i, &p);
        assert_eq!((d.current, d.desired), (3, 12), "{}", d.reason);
        assert!(d.reason.contains("size unknown"), "{}", d.reason);
        // A forecast below a large unknown size is not held by stabilisation.
        let d = plan(&input_unknown(10, Some(forecast(10, 100.0))), &p);
        assert_eq!(d.desired, 3);
    }

    fn input_unknown(now: i64, fc: Option<ForecastView>) -> PlanInput {
        let mut i = input(now, 0, fc);
        i.current = None;
        i.recent_desired = vec![(t(now - 1), 15)];
        i
    }

    fn arb_input() -> impl Strategy<Value = (PlanInput, ServicePolicy)> {
        (
            proptest::option::weighted(0.9, 0u32..60),
            0.0f64..20_000.0,
            proptest::option::of((
                0i64..10,
                0.0f64..20_000.0,
                proptest::option::of(0.0f64..4.0),
            )),
            proptest::option::of(0i64..30),
            proptest::collection::vec((0i64..30, 0u32..80), 0..5),
            (
                0u32..10,
                1u32..60,
                1u32..8,
                1u32..20,
                0u32..30,
                1.0f64..500.0,
                1u32..4,
            ),
        )
            .prop_map(
                |(current, last, fc, up, recent, (min, span, step, lead, stab, cap, ppn))| {
                    let now = 30;
                    let forecast = fc.map(|(age, level, mase)| {
                        let mut f = forecast(now - age, level);
                        f.live_mase = mase;
                        f
                    });
                    let mut i = input(now, 0, forecast);
                    i.current = current;
                    i.last_minute_requests = last;
                    i.last_scale_up = up.map(t);
                    i.recent_desired = recent.into_iter().map(|(m, d)| (t(m), d)).collect();
                    let target = (ppn > 1).then(|| Target::Nodegroup {
                        cluster: "c".into(),
                        nodegroup: "n".into(),
                    });
                    let p = ServicePolicy {
                        min_replicas: min,
                        max_replicas: min + span,
                        max_step: step,
                        lead_time_min: lead,
                        scale_in_stabilization_min: stab,
                        capacity_per_replica: cap,
                        pods_per_node: ppn,
                        target,
                        ..Default::default()
                    };
                    (i, p)
                },
            )
    }

    proptest! {
        #[test]
        fn never_outside_bounds((i, p) in arb_input()) {
            let d = plan(&i, &p);
            prop_assert!(d.min <= d.desired && d.desired <= d.max, "{d:?}");
        }

        #[test]
        fn no_scale_in_inside_the_stabilisation_window((i, p) in arb_input()) {
            let d = plan(&i, &p);
            let recent_up = i.last_scale_up.is_some_and(|u| i.now - u < TimeDelta::minutes(i64::from(p.scale_in_stabilization_min)));
            if let Some(c) = i.current.filter(|c| recent_up && *c >= d.min && *c <= d.max) {
                prop_assert!(d.desired >= c, "{d:?}");
            }
        }

        #[test]
        fn same_inputs_same_decision((i, p) in arb_input()) {
            prop_assert_eq!(plan(&i, &p), plan(&i.clone(), &p.clone()));
        }

        #[test]
        fn stale_forecast_gives_reactive((mut i, p) in arb_input()) {
            if let Some(f) = &mut i.forecast {
                f.issued_at = i.now - TimeDelta::minutes(i64::from(p.max_forecast_age_min) + 1);
            }
            let d = plan(&i, &p);
            prop_assert!(d.forecast.is_none());
            prop_assert!(d.reason.starts_with("reactive fallback"), "{}", d.reason);
        }

        #[test]
        fn step_is_bounded_when_current_is_in_bounds((i, p) in arb_input()) {
            let d = plan(&i, &p);
            if let Some(c) = i.current.filter(|c| *c >= d.min && *c <= d.max) {
                prop_assert!(d.desired.abs_diff(c) <= p.max_step, "{d:?}");
            }
        }

        #[test]
        fn unknown_size_reports_min((mut i, p) in arb_input()) {
            i.current = None;
            let d = plan(&i, &p);
            prop_assert_eq!(d.current, d.min);
        }
    }
}
