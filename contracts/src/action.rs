//! The `scaling-actions` contract: what the scaler did with a decision.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::decision::{Mode, Target};

/// The outcome of one decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// The target was resized to the decision's size.
    Applied,
    /// The target already had the decision's size; nothing was called.
    Unchanged,
    /// The target was resized, to a size clamped into its bounds.
    Clamped,
    /// The decision had expired and was not applied.
    SkippedStale,
    /// A newer decision for the same target came in the same batch.
    SkippedSuperseded,
    /// Dry-run mode: recorded, not applied.
    DryRun,
    /// Applying failed; see `reason`.
    Failed,
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
    /// Size the decision asked for.
    pub requested: u32,
    /// Size set (or that would be set), when any.
    pub applied: Option<u32>,
    /// Why, in words.
    pub reason: String,
    /// Mode of the decision.
    pub mode: Mode,
    /// When the scaler handled it.
    pub at: DateTime<Utc>,
}
