//! What Prescient's two Lambda functions share, kept apart so that neither
//! function depends on the other, and the `prescient` binary can use the
//! scaler's decision logic without compiling a Lambda function:
//!
//! - [`record`]: Kafka event-source records in (base64 JSON values), the
//!   partial-batch failure response out;
//! - [`config`]: environment parsing helpers and their error;
//! - [`plan`](mod@plan): the pure scaling decision logic, what the scaler
//!   applies and what `prescient demo` replays in dry-run;
//! - `lambda` (feature `runtime`): the runtime loop and CloudWatch logs both
//!   functions' `main` run;
//! - `testkit` (feature `testkit`): moto, MSK events, loopback servers for
//!   both functions' tests.
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use prescient_contracts::action::Outcome;
//! use prescient_contracts::decision::{Mode, ScalingDecision, Target};
//! use prescient_functions_common::{plan, Observed};
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

pub mod config;
#[cfg(feature = "runtime")]
pub mod lambda;
pub mod plan;
pub mod record;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use config::ConfigError;
pub use plan::{Observed, plan};
pub use record::{DecodeError, KafkaBatchResponse, RecordId};
