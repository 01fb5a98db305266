//! The `scaling-actions` contract: what the scaler did with a decision.
//!
//! The scaler publishes one [`ScalingAction`] per decision it receives, to
//! SNS (always, when a topic is configured) and to the Kafka topic
//! `scaling-actions` (when configured), as a JSON object:
//!
//! ```json
//! {"decision_id":"6f1c…","service":"checkout",
//!  "target":{"kind":"nodegroup","cluster":"prod","nodegroup":"web"},
//!  "outcome":"clamped","previous":2,"requested":50,"applied":10,
//!  "reason":"desired 50 clamped to 10 (bounds 1..=10); set desired size 2 → 10",
//!  "mode":"apply","retryable":false,"at":"2026-11-21T10:00:01Z"}
//! ```
//!
//! `outcome` is one of `applied`, `unchanged`, `clamped`, `skipped-stale`,
//! `skipped-superseded`, `dry-run`, `failed`. Only `applied` and `clamped`
//! changed anything. A `failed` action with `retryable: true` is retried by
//! Lambda; with `retryable: false` it never will be.
//!
//! The forecaster's operational alerts ([`Alert`]) travel on the same SNS
//! topic and on the Kafka topic `scaling-actions` (key = service) so the
//! notifier can announce both; a consumer of `scaling-actions` tells them
//! apart by the `outcome` (action) or `alert` (alert) field.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::decision::{Mode, Target};

/// The outcome of one decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[derive(strum::IntoStaticStr, strum::EnumString, strum::EnumIter, strum::Display)]
#[strum(serialize_all = "kebab-case")]
pub enum Outcome {
    /// The target was resized to the decision's size.
    Applied,
    /// The target already had the size the decision asks for (after
    /// clamping), or this decision was already applied: nothing was called.
    Unchanged,
    /// The target was resized, to a size clamped into its bounds.
    Clamped,
    /// The decision had expired and was not applied.
    SkippedStale,
    /// A newer decision for the same target (in the same batch, or applied
    /// before) wins; this one was not applied.
    SkippedSuperseded,
    /// Dry-run mode: recorded, not applied. `applied` is the size that would
    /// have been set.
    DryRun,
    /// Applying failed, or the decision is invalid; see `reason` and
    /// `retryable`.
    Failed,
}

impl Outcome {
    /// The kebab-case label used on the wire (`skipped-stale`, ...).
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Every outcome, in declaration order.
    pub fn all() -> impl Iterator<Item = Outcome> {
        <Outcome as strum::IntoEnumIterator>::iter()
    }

    /// True when the target's size was changed.
    pub fn changed_target(self) -> bool {
        matches!(self, Outcome::Applied | Outcome::Clamped)
    }
}

/// One outcome, as published on `scaling-actions` and SNS.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScalingAction {
    /// Id of the decision this is about.
    pub decision_id: Uuid,
    /// Service of the decision.
    pub service: String,
    /// What was (or would have been) resized.
    pub target: Target,
    /// What happened.
    pub outcome: Outcome,
    /// Size before, when known.
    pub previous: Option<u32>,
    /// Size the decision asked for (its `desired`).
    pub requested: u32,
    /// Size set (or, for `dry-run`, that would be set), when any.
    pub applied: Option<u32>,
    /// Why, in words.
    pub reason: String,
    /// Mode the decision was handled in (`dry-run` when the scaler forces it).
    pub mode: Mode,
    /// For `failed`: whether retrying can help (throttling, a timeout, an
    /// update in progress). Always `false` for other outcomes.
    #[serde(default)]
    pub retryable: bool,
    /// When the scaler handled it.
    pub at: DateTime<Utc>,
}

impl ScalingAction {
    /// A short key naming the target, e.g. `nodegroup/prod/web` or
    /// `deployment/prod/shop/api`: what the notifier collapses bursts on.
    pub fn target_key(&self) -> String {
        target_key(&self.target)
    }
}

/// `text` as an SNS subject: printable ASCII on one line (anything else
/// becomes `?`), under SNS's 100-character limit. Both functions title
/// their messages with it.
pub fn sns_subject(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .take(99)
        .collect()
}

/// A short, stable name for a target: `nodegroup/{cluster}/{nodegroup}` or
/// `deployment/{cluster}/{namespace}/{name}`.
pub fn target_key(target: &Target) -> String {
    match target {
        Target::Nodegroup { cluster, nodegroup } => format!("nodegroup/{cluster}/{nodegroup}"),
        Target::Deployment {
            cluster,
            namespace,
            name,
        } => format!("deployment/{cluster}/{namespace}/{name}"),
    }
}

/// Kind of an operational alert raised by the forecaster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AlertKind {
    /// The live forecast error of a service is above its threshold.
    ForecastErrorHigh,
    /// The planner fell back to reactive scaling (stale or poor forecasts).
    FallbackReactive,
    /// Anything else worth a human's attention.
    Other,
}

/// An operational alert, published as JSON on the same SNS topic as the
/// scaling actions, e.g.
/// `{"alert":"fallback-reactive","service":"checkout","message":"forecast 12 min stale","at":"2026-11-21T10:00:00Z"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// What kind of alert.
    pub alert: AlertKind,
    /// Service concerned.
    pub service: String,
    /// What happened, in words.
    pub message: String,
    /// When it was raised.
    pub at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_labels_match_the_wire() {
        for o in Outcome::all() {
            let wire = serde_json::to_value(o).unwrap();
            assert_eq!(wire.as_str(), Some(o.as_str()));
            assert_eq!(o.as_str().parse::<Outcome>().unwrap(), o);
            assert_eq!(o.to_string(), o.as_str());
        }
        assert_eq!(Outcome::all().count(), 7);
        assert_eq!(Mode::DryRun.as_str(), "dry-run");
        assert_eq!(Mode::DryRun.to_string(), "dry-run");
    }

    #[test]
    fn action_json_shape() {
        let a = ScalingAction {
            decision_id: Uuid::nil(),
            service: "checkout".into(),
            target: Target::Nodegroup {
                cluster: "prod".into(),
                nodegroup: "web".into(),
            },
            outcome: Outcome::SkippedStale,
            previous: None,
            requested: 5,
            applied: None,
            reason: "expired".into(),
            mode: Mode::Apply,
            retryable: false,
            at: "2026-11-21T10:00:00Z".parse().unwrap(),
        };
        let v = serde_json::to_value(&a).unwrap();
        assert_eq!(v["outcome"], "skipped-stale");
        assert_eq!(v["target"]["kind"], "nodegroup");
        assert_eq!(v["mode"], "apply");
        assert_eq!(a.target_key(), "nodegroup/prod/web");
        let mut without_retryable = v.clone();
        without_retryable
            .as_object_mut()
            .unwrap()
            .remove("retryable");
        let back: ScalingAction = serde_json::from_value(without_retryable).unwrap();
        assert_eq!(back, a);
        for o in [
            Outcome::Applied,
            Outcome::SkippedSuperseded,
            Outcome::DryRun,
            Outcome::Failed,
        ] {
            assert_eq!(serde_json::to_value(o).unwrap(), o.as_str());
        }
        assert!(Outcome::Clamped.changed_target());
        assert!(!Outcome::Unchanged.changed_target());
    }

    #[test]
    fn alert_json_shape() {
        let a: Alert = serde_json::from_str(
            r#"{"alert":"fallback-reactive","service":"checkout","message":"stale","at":"2026-11-21T10:00:00Z"}"#,
        )
        .unwrap();
        assert_eq!(a.alert, AlertKind::FallbackReactive);
        assert_eq!(
            target_key(&Target::Deployment {
                cluster: "c".into(),
                namespace: "n".into(),
                name: "d".into()
            }),
            "deployment/c/n/d"
        );
    }
}
