//! The **notifier** Lambda function: turns the scaler's actions and the
//! forecaster's alerts into short human messages.
//!
//! Triggered by SNS (the topic the scaler publishes to), or by a Kafka event
//! source mapping on `scaling-actions`. Each [`ScalingAction`] or [`Alert`]
//! becomes one line plus its reason, sent to a Slack-compatible webhook
//! (URL from the environment or Secrets Manager) and/or an SNS topic with
//! e-mail subscriptions. Bursts are collapsed per target: at most one
//! message per window, the rest counted into the next one. Secrets are
//! never logged.
//!
//! ```
//! use prescient_notifier::Notice;
//!
//! let n = Notice::parse(None, r#"{"decision_id":"6f1c0d2e-0000-4000-8000-000000000000",
//!   "service":"checkout","target":{"kind":"nodegroup","cluster":"prod","nodegroup":"web"},
//!   "outcome":"applied","previous":2,"requested":5,"applied":5,"reason":"set 2 → 5",
//!   "mode":"apply","retryable":false,"at":"2026-11-21T10:00:00Z"}"#);
//! assert_eq!(n.render(), ":white_check_mark: *checkout*: node group prod/web scaled 2 → 5\nset 2 → 5 (decision 6f1c0d2e)");
//! ```
//!
//! [`ScalingAction`]: prescient_contracts::action::ScalingAction
//! [`Alert`]: prescient_contracts::action::Alert

mod config;
mod handler;
mod limiter;
mod notice;
mod sink;

pub use config::Config;
pub use handler::{Invocation, Notifier, Report};
pub use notice::Notice;
pub use sink::SecretUrl;
