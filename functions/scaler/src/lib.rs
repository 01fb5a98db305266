//! The **scaler** Lambda function: applies `scaling-decisions` to EKS.
//!
//! Triggered by an MSK / self-managed Kafka event source mapping on
//! `scaling-decisions` (or invoked directly with one decision), it resizes
//! EKS managed node groups (`UpdateNodegroupConfig`) and Deployments (the
//! Kubernetes `scale` subresource), safely: expired decisions are skipped,
//! sizes are clamped to the decision's and the node group's bounds, the
//! newest decision per target wins a batch, repeats change nothing, and
//! every outcome is published to SNS. Failed records are reported to
//! Lambda for retry only when retrying can help.
//!
//! The decision logic is a pure function, [`plan()`], that `prescient demo`
//! also uses in dry-run:
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use prescient_contracts::action::Outcome;
//! use prescient_contracts::decision::{Mode, ScalingDecision, Target};
//! use prescient_scaler::{plan, Observed};
//!
//! let now = Utc.with_ymd_and_hms(2026, 11, 21, 10, 1, 0).unwrap();
//! let decision = ScalingDecision {
//!     id: uuid::Uuid::new_v4(),
//!     service: "checkout".into(),
//!     issued_at: now - chrono::Duration::minutes(1),
//!     expires_at: now + chrono::Duration::minutes(4),
//!     target: Target::Nodegroup { cluster: "prod".into(), nodegroup: "web".into() },
//!     current: 2,
//!     desired: 50,
//!     min: 1,
//!     max: 20,
//!     policy: "checkout".into(),
//!     reason: "p90 forecast 9000 rpm at +8 min".into(),
//!     forecast: None,
//!     mode: Mode::Apply,
//! };
//! // The node group allows at most 10 nodes: 50 is clamped.
//! let action = plan(&decision, Observed { current: 2, min: Some(1), max: Some(10) }, now);
//! assert_eq!(action.outcome, Outcome::Clamped);
//! assert_eq!(action.applied, Some(10));
//! ```
//!
//! Modules: [`config`] (environment), [`record`] (Kafka records in,
//! partial-batch response out), [`plan`](mod@plan) (pure decision logic), `eks`
//! (node groups, cluster access), `kube` (Deployment scale, EKS token),
//! `publish` (SNS, Kafka), `handler` (the batch), [`error`] (retryable or not),
//! `lambda` (the runtime loop and logs both functions' `main` share).
//! With the `testkit` feature, `testkit` starts a `moto_server` for tests.
//!
//! Features: `aws` (default) is the Lambda function itself (AWS SDK and
//! Kubernetes clients, handler, binary); without it
//! (`default-features = false`) only [`plan`](mod@plan), [`record`],
//! [`config`] and [`error`] remain, free of the AWS SDK. `kafka` adds
//! publishing to the `scaling-actions` topic; `testkit` the test helpers.

pub mod config;
#[cfg(feature = "aws")]
pub mod eks;
pub mod error;
#[cfg(feature = "aws")]
pub mod handler;
#[cfg(feature = "aws")]
pub mod kube;
#[cfg(feature = "lambda")]
pub mod lambda;
pub mod plan;
#[cfg(feature = "aws")]
pub mod publish;
pub mod record;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use config::Config;
pub use error::ScalerError;
#[cfg(feature = "aws")]
pub use handler::{BatchReport, Invocation, Scaler};
pub use plan::{Observed, plan};
pub use record::KafkaBatchResponse;
