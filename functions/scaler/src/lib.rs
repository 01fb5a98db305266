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
//! The decision logic is the pure function
//! [`prescient_functions_common::plan()`], shared with `prescient demo`
//! (dry-run); Kafka record decoding, environment helpers and the runtime
//! loop come from `prescient-functions-common` too, so this crate and the
//! notifier do not depend on each other.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use prescient_scaler::{Config, Invocation, Scaler};
//!
//! let sdk = aws_config::load_from_env().await;
//! let scaler = Scaler::new(&sdk, Config::from_env()?)?;
//! let invocation = Invocation::from_json(serde_json::json!({
//!     "eventSource": "aws:kafka", "records": {}
//! }))?;
//! let report = scaler.handle(invocation, chrono::Utc::now()).await?;
//! println!("{}", serde_json::to_string(&report)?);
//! # Ok(()) }
//! ```
//!
//! Modules (private; the API is re-exported at the root): `config` (environment), `eks` (node groups, cluster access),
//! `kube` (Deployment scale, EKS token), `publish` (SNS, Kafka), `handler`
//! (the batch), `error` (retryable or not). Feature `kafka` adds
//! publishing to the `scaling-actions` topic.

mod config;
mod eks;
mod error;
mod handler;
mod kube;
mod publish;

pub use config::{Config, ConfigError, KafkaConfig};
pub use error::ScalerError;
pub use handler::{BatchReport, Invocation, Scaler};
pub use kube::ClusterAccess;
