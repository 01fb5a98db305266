//! The `scaling-decisions` contract: what capacity a service should have.
//!
//! A decision is idempotent (it sets a target size, it never adds), bounded
//! (`min` ≤ `desired` ≤ `max`) and expires: a consumer must not apply it
//! after `expires_at`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What a decision resizes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Target {
    /// An EKS managed node group: the decision sets its desired size.
    Nodegroup {
        /// EKS cluster name.
        cluster: String,
        /// Node group name.
        nodegroup: String,
    },
    /// A Kubernetes Deployment: the decision sets its replicas.
    Deployment {
        /// EKS cluster name.
        cluster: String,
        /// Namespace of the Deployment.
        namespace: String,
        /// Deployment name.
        name: String,
    },
}

/// Whether a decision is only recorded or also applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[derive(strum::IntoStaticStr, strum::EnumString, strum::Display)]
#[strum(serialize_all = "kebab-case")]
pub enum Mode {
    /// Forecast-only: record the decision, change nothing.
    DryRun,
    /// Apply the decision to the target.
    Apply,
}

impl Mode {
    /// `dry-run` or `apply`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// The forecast a decision was based on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForecastSummary {
    /// Minutes ahead of `issued_at` (the lead time covered).
    pub horizon: u32,
    /// Median forecast of requests per minute.
    pub p50: f64,
    /// Upper (90th percentile) forecast of requests per minute.
    pub p90: f64,
}

/// One scaling decision, as published on `scaling-decisions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScalingDecision {
    /// Unique id; a consumer applies each id at most once.
    pub id: Uuid,
    /// The service the decision is for.
    pub service: String,
    /// When the decision was made.
    pub issued_at: DateTime<Utc>,
    /// After this instant the decision must not be applied.
    pub expires_at: DateTime<Utc>,
    /// What to resize.
    pub target: Target,
    /// Size the planner believed the target had.
    pub current: u32,
    /// Size the target should have.
    pub desired: u32,
    /// Lower bound of the target size.
    pub min: u32,
    /// Upper bound of the target size.
    pub max: u32,
    /// Name of the policy that produced the decision.
    pub policy: String,
    /// Why: which forecast or fallback led here, in words.
    pub reason: String,
    /// The forecast behind the decision; `null` for a reactive fallback.
    pub forecast: Option<ForecastSummary>,
    /// `dry-run` or `apply`.
    pub mode: Mode,
}

impl ScalingDecision {
    /// True once `now` is at or past `expires_at`.
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        now >= self.expires_at
    }

    /// `desired` clamped into `[min, max]` (and into `[min', max']` when the
    /// target has tighter bounds of its own).
    pub fn clamped_desired(&self, target_min: Option<u32>, target_max: Option<u32>) -> u32 {
        let lo = self.min.max(target_min.unwrap_or(0));
        let hi = self.max.min(target_max.unwrap_or(u32::MAX)).max(lo);
        self.desired.clamp(lo, hi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ScalingDecision {
        ScalingDecision {
            id: Uuid::nil(),
            service: "checkout".into(),
            issued_at: "2026-11-21T10:00:00Z".parse().unwrap(),
            expires_at: "2026-11-21T10:05:00Z".parse().unwrap(),
            target: Target::Nodegroup {
                cluster: "prod".into(),
                nodegroup: "web".into(),
            },
            current: 2,
            desired: 5,
            min: 1,
            max: 10,
            policy: "checkout".into(),
            reason: "p90 forecast 4200 rpm at +8 min".into(),
            forecast: Some(ForecastSummary {
                horizon: 8,
                p50: 3900.0,
                p90: 4200.0,
            }),
            mode: Mode::DryRun,
        }
    }

    #[test]
    fn json_shape_matches_the_contract() {
        let v = serde_json::to_value(sample()).unwrap();
        assert_eq!(v["target"]["kind"], "nodegroup");
        assert_eq!(v["target"]["nodegroup"], "web");
        assert_eq!(v["mode"], "dry-run");
        assert_eq!(v["forecast"]["horizon"], 8);
        assert_eq!(v["issued_at"], "2026-11-21T10:00:00Z");
        let back: ScalingDecision = serde_json::from_value(v).unwrap();
        assert_eq!(back, sample());
        let dep = Target::Deployment {
            cluster: "c".into(),
            namespace: "ns".into(),
            name: "api".into(),
        };
        assert_eq!(
            serde_json::to_string(&dep).unwrap(),
            r#"{"kind":"deployment","cluster":"c","namespace":"ns","name":"api"}"#
        );
    }

    #[test]
    fn expiry_and_clamping() {
        let d = sample();
        assert!(!d.is_expired("2026-11-21T10:04:59Z".parse().unwrap()));
        assert!(d.is_expired("2026-11-21T10:05:00Z".parse().unwrap()));
        let mut big = d.clone();
        big.desired = 50;
        assert_eq!(big.clamped_desired(None, None), 10);
        assert_eq!(big.clamped_desired(Some(1), Some(8)), 8);
        let mut small = d;
        small.desired = 0;
        assert_eq!(small.clamped_desired(Some(2), None), 2);
    }
}
