//! The pure part of the scaler: what to do with one decision, given what the
//! target looks like now. No AWS calls; the handler and `prescient demo`
//! (dry-run) both use [`plan`].

use chrono::{DateTime, Utc};
use prescient_contracts::action::{Outcome, ScalingAction};
use prescient_contracts::decision::{Mode, ScalingDecision};

/// What the scaler observed of a target before deciding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observed {
    /// Current size: a node group's desired size, a Deployment's replicas.
    pub current: u32,
    /// The target's own lower bound, when it has one (node group `minSize`).
    pub min: Option<u32>,
    /// The target's own upper bound, when it has one (node group `maxSize`).
    pub max: Option<u32>,
}

impl Observed {
    /// What the planner believed when it made the decision (`current`, no
    /// target bounds): what a dry run without AWS access can go on.
    pub fn from_decision(decision: &ScalingDecision) -> Observed {
        Observed {
            current: decision.current,
            min: None,
            max: None,
        }
    }
}

/// Checks the parts of a decision the type system cannot: bounds in order,
/// a service and target names that are not empty.
pub fn validate(decision: &ScalingDecision) -> Result<(), String> {
    use prescient_contracts::decision::Target;
    if decision.min > decision.max {
        return Err(format!(
            "invalid bounds: min {} > max {}",
            decision.min, decision.max
        ));
    }
    if decision.service.is_empty() {
        return Err("empty service".into());
    }
    let names_ok = match &decision.target {
        Target::Nodegroup { cluster, nodegroup } => !cluster.is_empty() && !nodegroup.is_empty(),
        Target::Deployment {
            cluster,
            namespace,
            name,
        } => !cluster.is_empty() && !namespace.is_empty() && !name.is_empty(),
    };
    if !names_ok {
        return Err("target has an empty name".into());
    }
    if decision.expires_at < decision.issued_at {
        return Err("expires_at is before issued_at".into());
    }
    Ok(())
}

/// Decides what to do with `decision`, given the target as `observed` at
/// `now`.
///
/// * invalid decision → [`Outcome::Failed`] (not retryable);
/// * `now >= expires_at` → [`Outcome::SkippedStale`];
/// * size clamped into the decision's and the target's bounds;
/// * clamped size equals `observed.current` → [`Outcome::Unchanged`];
/// * `mode: dry-run` → [`Outcome::DryRun`] with the size that would be set;
/// * otherwise [`Outcome::Applied`], or [`Outcome::Clamped`] when clamping
///   changed the size.
///
/// The caller applies `action.applied` when `action.outcome.changed_target()`.
pub fn plan(decision: &ScalingDecision, observed: Observed, now: DateTime<Utc>) -> ScalingAction {
    let mut action = ScalingAction {
        decision_id: decision.id,
        service: decision.service.clone(),
        target: decision.target.clone(),
        outcome: Outcome::Failed,
        previous: Some(observed.current),
        requested: decision.desired,
        applied: None,
        reason: String::new(),
        mode: decision.mode,
        retryable: false,
        at: now,
    };
    if let Err(why) = validate(decision) {
        action.reason = format!("invalid decision: {why}");
        return action;
    }
    if decision.is_expired(now) {
        action.outcome = Outcome::SkippedStale;
        action.reason = format!(
            "expired at {} ({}s ago); not applied",
            decision.expires_at.to_rfc3339(),
            (now - decision.expires_at).num_seconds()
        );
        return action;
    }
    let target = decision.clamped_desired(observed.min, observed.max);
    let lo = decision.min.max(observed.min.unwrap_or(0));
    let hi = decision.max.min(observed.max.unwrap_or(u32::MAX)).max(lo);
    let clamp_note = if target != decision.desired {
        format!(
            "desired {} clamped to {target} (bounds {lo}..={hi}); ",
            decision.desired
        )
    } else {
        String::new()
    };
    if target == observed.current {
        action.outcome = Outcome::Unchanged;
        action.applied = Some(target);
        action.reason = format!("{clamp_note}already at {target}");
        return action;
    }
    action.applied = Some(target);
    match decision.mode {
        Mode::DryRun => {
            action.outcome = Outcome::DryRun;
            action.reason = format!(
                "{clamp_note}dry-run: would set {} → {target}",
                observed.current
            );
        }
        Mode::Apply => {
            action.outcome = if target != decision.desired {
                Outcome::Clamped
            } else {
                Outcome::Applied
            };
            action.reason = format!("{clamp_note}set {} → {target}", observed.current);
        }
    }
    action
}

#[cfg(test)]
mod tests {
    use super::*;
    use prescient_contracts::decision::Target;
    use uuid::Uuid;

    fn decision(desired: u32, mode: Mode) -> ScalingDecision {
        ScalingDecision {
            id: Uuid::from_u128(7),
            max: 20,
            mode,
            ..crate::testkit::decision("web", desired, "2026-11-21T10:00:00Z".parse().unwrap())
        }
    }

    fn now() -> DateTime<Utc> {
        "2026-11-21T10:01:00Z".parse().unwrap()
    }

    const NG: Observed = Observed {
        current: 2,
        min: Some(1),
        max: Some(10),
    };

    #[test]
    fn applies_within_bounds() {
        let a = plan(&decision(5, Mode::Apply), NG, now());
        assert_eq!(a.outcome, Outcome::Applied);
        assert_eq!((a.previous, a.applied, a.requested), (Some(2), Some(5), 5));
        assert_eq!(a.reason, "set 2 → 5");
        assert!(!a.retryable);
    }

    #[test]
    fn clamps_to_the_tighter_of_decision_and_target_bounds() {
        let a = plan(&decision(50, Mode::Apply), NG, now());
        assert_eq!(a.outcome, Outcome::Clamped);
        assert_eq!(a.applied, Some(10));
        assert!(
            a.reason.contains("clamped to 10 (bounds 1..=10)"),
            "{}",
            a.reason
        );
        let mut d = decision(0, Mode::Apply);
        d.min = 3;
        let a = plan(&d, NG, now());
        assert_eq!((a.outcome, a.applied), (Outcome::Clamped, Some(3)));
    }

    #[test]
    fn unchanged_when_already_there_even_after_clamping() {
        let a = plan(&decision(2, Mode::Apply), NG, now());
        assert_eq!((a.outcome, a.applied), (Outcome::Unchanged, Some(2)));
        let at_max = Observed { current: 10, ..NG };
        let a = plan(&decision(50, Mode::Apply), at_max, now());
        assert_eq!(a.outcome, Outcome::Unchanged);
    }

    #[test]
    fn expired_is_skipped_at_the_exact_instant() {
        let d = decision(5, Mode::Apply);
        let a = plan(&d, NG, d.expires_at);
        assert_eq!(a.outcome, Outcome::SkippedStale);
        assert_eq!(a.applied, None);
        let a = plan(&d, NG, d.expires_at - chrono::Duration::milliseconds(1));
        assert_eq!(a.outcome, Outcome::Applied);
    }

    #[test]
    fn dry_run_reports_what_would_happen() {
        let a = plan(&decision(50, Mode::DryRun), NG, now());
        assert_eq!(
            (a.outcome, a.applied, a.mode),
            (Outcome::DryRun, Some(10), Mode::DryRun)
        );
        assert!(a.reason.contains("would set 2 → 10"), "{}", a.reason);
        let d = decision(4, Mode::DryRun);
        let a = plan(&d, Observed::from_decision(&d), now());
        assert_eq!((a.outcome, a.applied), (Outcome::DryRun, Some(4)));
    }

    #[test]
    fn invalid_decisions_fail_without_retry() {
        let mut d = decision(5, Mode::Apply);
        d.min = 11;
        d.max = 3;
        let a = plan(&d, NG, now());
        assert_eq!(a.outcome, Outcome::Failed);
        assert!(!a.retryable);
        assert!(a.reason.contains("min 11 > max 3"));
        let mut d = decision(5, Mode::Apply);
        d.target = Target::Deployment {
            cluster: "c".into(),
            namespace: String::new(),
            name: "x".into(),
        };
        assert_eq!(plan(&d, NG, now()).outcome, Outcome::Failed);
    }
}
