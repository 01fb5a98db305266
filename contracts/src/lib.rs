//! Prescient's public wire contracts, shared by every component that speaks
//! them and light enough for the AWS Lambda functions (no timely, no sqlx).
//!
//! * [`event`]: the user-activity event producers write to `user-events`,
//!   with the validation rules of the contract and the reasons a record is
//!   rejected to `user-events-dlq`.
//! * [`decision`]: the scaling decision the forecaster publishes to
//!   `scaling-decisions`.
//! * [`action`]: the outcome the scaler publishes to `scaling-actions` / SNS.
//!
//! ```
//! use prescient_contracts::event::parse_event;
//!
//! let e = parse_event(br#"{"ts":"2026-11-21T10:00:00Z","tenant":"acme","service":"checkout","status":503}"#).unwrap();
//! assert_eq!(e.service, "checkout");
//! assert!(e.is_error());
//! assert_eq!(e.ts_ms, 1_795_255_200_000);
//!
//! let bad = parse_event(br#"{"ts":1700000000000,"tenant":"acme"}"#).unwrap_err();
//! assert_eq!(bad.reason.as_str(), "missing_field");
//! ```

pub mod action;
pub mod decision;
pub mod event;

/// Kafka topic the producers write events to.
pub const USER_EVENTS_TOPIC: &str = "user-events";
/// Kafka topic rejected events go to, with their reason in headers.
pub const DEAD_LETTER_TOPIC: &str = "user-events-dlq";
/// Kafka topic the forecaster publishes scaling decisions to.
pub const SCALING_DECISIONS_TOPIC: &str = "scaling-decisions";
/// Kafka topic the scaler publishes what it did with each decision to
/// ([`action::ScalingAction`]); the forecaster publishes its
/// [`action::Alert`]s there too, for the notifier.
pub const SCALING_ACTIONS_TOPIC: &str = "scaling-actions";
