//! The scaler's handler: a batch of decisions in, actions applied and
//! published, failed records reported for retry.
//!
//! Per batch: decode each record (undecodable records are logged and not
//! retried: the same bytes would fail again); keep only the newest decision
//! per target (by `issued_at`, then offset; the others are
//! `skipped-superseded`); handle the remaining targets concurrently; publish
//! one action per decoded record; report as failed the records whose action
//! is a retryable failure or could not be published.
//!
//! Idempotency, three layers deep: a decision sets an absolute size and the
//! call is skipped when the target already has it; a warm function
//! remembers the last decision it applied per target (a duplicate is
//! `unchanged`, an older one `skipped-superseded`); node group updates carry
//! the decision id as EKS client request token.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Mutex;

use aws_config::SdkConfig;
use aws_lambda_events::event::kafka::KafkaEvent;
use chrono::{DateTime, Utc};
use futures_util::stream::{self, StreamExt};
use prescient_contracts::action::{Outcome, ScalingAction};
use prescient_contracts::decision::{Mode, ScalingDecision, Target};
use serde::Serialize;
use uuid::Uuid;

use crate::config::Config;
use crate::eks::Eks;
use crate::error::ScalerError;
use crate::kube::Kube;
use crate::publish::Publisher;
use prescient_functions_common::plan::{Observed, plan, validate};
use prescient_functions_common::record::{KafkaBatchResponse, RecordId, decode, records};

/// What a Lambda invocation carries.
#[derive(Debug, Clone, PartialEq)]
pub enum Invocation {
    /// A batch from an MSK or self-managed Kafka event source mapping.
    Kafka(KafkaEvent),
    /// One decision, invoked directly by an operator
    /// (`aws lambda invoke --payload '{…decision…}'`).
    Decision(Box<ScalingDecision>),
}

/// An invocation payload that is neither a Kafka event nor a decision.
#[derive(Debug, thiserror::Error)]
#[error("payload is neither a Kafka event nor a scaling decision: {0}")]
pub struct InvocationError(String);

impl Invocation {
    /// Recognises a Kafka event by its `records` object and `eventSource`;
    /// anything else must be a decision.
    pub fn from_json(value: serde_json::Value) -> Result<Invocation, InvocationError> {
        let is_kafka = value.get("records").is_some_and(|r| r.is_object())
            && value.get("eventSource").is_some();
        if is_kafka {
            serde_json::from_value(value)
                .map(Invocation::Kafka)
                .map_err(|e| InvocationError(e.to_string()))
        } else {
            serde_json::from_value(value)
                .map(|d| Invocation::Decision(Box::new(d)))
                .map_err(|e| InvocationError(e.to_string()))
        }
    }
}

/// What one Kafka batch produced.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BatchReport {
    /// The partial-batch response for Lambda.
    pub response: KafkaBatchResponse,
    /// One action per decoded record, in record order.
    pub actions: Vec<(RecordId, ScalingAction)>,
    /// Records that could not be decoded (logged, not retried).
    pub invalid: Vec<(RecordId, String)>,
}

#[derive(Debug, Clone, Copy)]
struct Applied {
    id: Uuid,
    issued_at: DateTime<Utc>,
    size: u32,
}

/// The scaler: AWS clients built once, plus the per-target memory of what a
/// warm function already applied.
#[derive(Debug)]
pub struct Scaler {
    config: Config,
    eks: Eks,
    kube: Kube,
    publisher: Publisher,
    ledger: Mutex<HashMap<Target, Applied>>,
}

impl Scaler {
    /// Builds the clients from an SDK configuration (standard AWS env vars)
    /// and the scaler's [`Config`]. Fails only on an unusable Kafka
    /// configuration.
    pub fn new(sdk: &SdkConfig, config: Config) -> Result<Scaler, ScalerError> {
        #[allow(unused_mut)]
        let mut publisher = Publisher::new(
            aws_sdk_sns::Client::new(sdk),
            config.actions_topic_arn.clone(),
        );
        #[cfg(feature = "kafka")]
        if let Some(kafka) = &config.kafka {
            publisher = publisher.with_kafka(kafka)?;
        }
        Ok(Scaler {
            eks: Eks::new(aws_sdk_eks::Client::new(sdk)),
            kube: Kube::new(sdk, config.sts_url.clone(), config.http_timeout),
            publisher,
            config,
            ledger: Mutex::new(HashMap::new()),
        })
    }

    /// The settings in use.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The Kubernetes client (to register a cluster's access up front).
    pub fn kube(&self) -> &Kube {
        &self.kube
    }

    /// Handles any invocation; returns the JSON to answer Lambda with: a
    /// [`KafkaBatchResponse`] for a batch, the [`ScalingAction`] for a
    /// direct decision.
    pub async fn handle(
        &self,
        invocation: Invocation,
        now: DateTime<Utc>,
    ) -> Result<serde_json::Value, ScalerError> {
        match invocation {
            Invocation::Kafka(event) => {
                let report = self.handle_kafka(&event, now).await;
                Ok(serde_json::to_value(report.response).expect("response serializes"))
            }
            Invocation::Decision(d) => {
                let action = self.handle_decision(&d, now).await?;
                Ok(serde_json::to_value(action).expect("action serializes"))
            }
        }
    }

    /// Handles one directly invoked decision and publishes its action.
    /// `Err` only when publishing failed.
    pub async fn handle_decision(
        &self,
        decision: &ScalingDecision,
        now: DateTime<Utc>,
    ) -> Result<ScalingAction, ScalerError> {
        let action = self.decide(decision, now).await;
        let mut results = self.publisher.publish(std::slice::from_ref(&action)).await;
        results.pop().unwrap_or(Ok(()))?;
        Ok(action)
    }

    /// Handles a Kafka batch (see the module docs).
    pub async fn handle_kafka(&self, event: &KafkaEvent, now: DateTime<Utc>) -> BatchReport {
        let mut report = BatchReport::default();
        let mut decoded: Vec<(RecordId, ScalingDecision)> = Vec::new();
        for (id, record) in records(event) {
            match decode(record) {
                Ok(d) => decoded.push((id, d)),
                Err(e) => {
                    tracing::error!(record = %id, error = %e, "undecodable scaling decision: skipped, not retried");
                    report.invalid.push((id, e.to_string()));
                }
            }
        }

        // The newest decision per target wins the batch.
        let mut winner: HashMap<&Target, usize> = HashMap::new();
        for (i, (id, d)) in decoded.iter().enumerate() {
            winner
                .entry(&d.target)
                .and_modify(|w| {
                    let (wid, wd) = &decoded[*w];
                    if (d.issued_at, id) > (wd.issued_at, wid) {
                        *w = i;
                    }
                })
                .or_insert(i);
        }
        let mut actions: Vec<Option<ScalingAction>> = vec![None; decoded.len()];
        for (i, (_, d)) in decoded.iter().enumerate() {
            let w = winner[&d.target];
            if w != i {
                let newer = &decoded[w].1;
                actions[i] = Some(skipped(
                    d,
                    Outcome::SkippedSuperseded,
                    format!(
                        "decision {} issued at {} for the same target in this batch wins",
                        newer.id,
                        newer.issued_at.to_rfc3339()
                    ),
                    now,
                ));
            }
        }
        let mut winners: Vec<usize> = winner.into_values().collect();
        winners.sort_unstable();
        let done: Vec<(usize, ScalingAction)> = stream::iter(winners)
            .map(|i| {
                let d = &decoded[i].1;
                async move { (i, self.decide(d, now).await) }
            })
            .buffer_unordered(self.config.max_concurrency)
            .collect()
            .await;
        for (i, a) in done {
            actions[i] = Some(a);
        }

        let actions: Vec<ScalingAction> = actions
            .into_iter()
            .map(|a| a.expect("every record has an action"))
            .collect();
        let published = self.publisher.publish(&actions).await;
        for (((id, _), action), result) in decoded.into_iter().zip(actions).zip(published) {
            if (action.outcome == Outcome::Failed && action.retryable) || result.is_err() {
                report.response.fail(&id);
            }
            report.actions.push((id, action));
        }
        report
    }

    /// What to do with one decision, applying it when needed. Never fails:
    /// errors become a `failed` action, classified retryable or not.
    async fn decide(&self, decision: &ScalingDecision, now: DateTime<Utc>) -> ScalingAction {
        let decision: Cow<'_, ScalingDecision> =
            if self.config.force_dry_run && decision.mode != Mode::DryRun {
                let mut forced = decision.clone();
                forced.mode = Mode::DryRun;
                Cow::Owned(forced)
            } else {
                Cow::Borrowed(decision)
            };
        let d = decision.as_ref();
        if validate(d).is_err() || d.is_expired(now) {
            let mut a = plan(d, Observed::from_decision(d), now);
            a.previous = None;
            return a;
        }
        let seen = self.ledger.lock().expect("ledger").get(&d.target).copied();
        if let Some(last) = seen {
            if last.id == d.id {
                let mut a = skipped(
                    d,
                    Outcome::Unchanged,
                    "decision already applied (duplicate delivery)".into(),
                    now,
                );
                a.previous = Some(last.size);
                a.applied = Some(last.size);
                return a;
            }
            if last.issued_at > d.issued_at {
                return skipped(
                    d,
                    Outcome::SkippedSuperseded,
                    format!(
                        "newer decision {} issued at {} was already applied",
                        last.id,
                        last.issued_at.to_rfc3339()
                    ),
                    now,
                );
            }
        }
        if d.mode == Mode::DryRun {
            return plan(d, Observed::from_decision(d), now);
        }
        match self.apply(d, now).await {
            Ok(a) => {
                if let Some(size) = a.applied {
                    self.ledger.lock().expect("ledger").insert(
                        d.target.clone(),
                        Applied {
                            id: d.id,
                            issued_at: d.issued_at,
                            size,
                        },
                    );
                }
                a
            }
            Err(e) => {
                tracing::warn!(decision_id = %d.id, error = %e, retryable = e.is_retryable(), "applying a decision failed");
                let mut a = skipped(d, Outcome::Failed, e.to_string(), now);
                a.retryable = e.is_retryable();
                a
            }
        }
    }

    async fn apply(
        &self,
        d: &ScalingDecision,
        now: DateTime<Utc>,
    ) -> Result<ScalingAction, ScalerError> {
        match &d.target {
            Target::Nodegroup { cluster, nodegroup } => {
                let observed = self.eks.observe_nodegroup(cluster, nodegroup).await?;
                let action = plan(d, observed, now);
                if action.outcome.changed_target()
                    && let Some(size) = action.applied
                {
                    self.eks
                        .set_nodegroup_size(cluster, nodegroup, size, &d.id.to_string())
                        .await?;
                }
                Ok(action)
            }
            Target::Deployment {
                cluster,
                namespace,
                name,
            } => {
                if !self.kube.knows(cluster) {
                    let access = self.eks.cluster_access(cluster).await?;
                    self.kube.add_cluster(cluster, access)?;
                }
                let current = self.kube.replicas(cluster, namespace, name).await?;
                let action = plan(
                    d,
                    Observed {
                        current,
                        min: None,
                        max: None,
                    },
                    now,
                );
                if action.outcome.changed_target()
                    && let Some(size) = action.applied
                {
                    self.kube
                        .set_replicas(cluster, namespace, name, size)
                        .await?;
                }
                Ok(action)
            }
        }
    }
}

/// An action that applies nothing.
fn skipped(
    d: &ScalingDecision,
    outcome: Outcome,
    reason: String,
    now: DateTime<Utc>,
) -> ScalingAction {
    ScalingAction {
        decision_id: d.id,
        service: d.service.clone(),
        target: d.target.clone(),
        outcome,
        previous: None,
        requested: d.desired,
        applied: None,
        reason,
        mode: d.mode,
        retryable: false,
        at: now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_config::{BehaviorVersion, Region};
    use aws_credential_types::Credentials;
    use aws_credential_types::provider::SharedCredentialsProvider;
    use chrono::Duration;
    use prescient_functions_common::testkit::{self, kafka_event};

    /// A scaler whose AWS endpoint refuses connections: any AWS call fails,
    /// retryably, so a test sees whether one was attempted.
    fn offline_scaler(config: Config) -> Scaler {
        let sdk = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url("http://127.0.0.1:1")
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                "a", "b", None, None, "t",
            )))
            .build();
        Scaler::new(&sdk, config).expect("a scaler")
    }

    fn now() -> DateTime<Utc> {
        "2026-11-21T10:01:00Z".parse().unwrap()
    }

    fn decision(
        n: u128,
        nodegroup: &str,
        desired: u32,
        issued_min: i64,
        mode: Mode,
    ) -> ScalingDecision {
        let issued_at: DateTime<Utc> = "2026-11-21T10:00:00Z".parse::<DateTime<Utc>>().unwrap()
            + Duration::minutes(issued_min);
        ScalingDecision {
            id: Uuid::from_u128(n),
            mode,
            ..testkit::decision(nodegroup, desired, issued_at)
        }
    }

    fn event(decisions: &[(i64, i64, &ScalingDecision)]) -> KafkaEvent {
        testkit::decisions_event(decisions.iter().copied())
    }

    fn outcomes(report: &BatchReport) -> Vec<(String, Outcome)> {
        report
            .actions
            .iter()
            .map(|(id, a)| (id.to_string(), a.outcome))
            .collect()
    }

    #[tokio::test]
    async fn newest_decision_per_target_wins_the_batch() {
        let scaler = offline_scaler(Config::default());
        let older = decision(1, "web", 4, 0, Mode::DryRun);
        let newer = decision(2, "web", 6, 1, Mode::DryRun);
        let other = decision(3, "batch", 3, 0, Mode::DryRun);
        // The newer one arrives first: order in the batch does not matter.
        let report = scaler
            .handle_kafka(
                &event(&[(0, 10, &newer), (0, 11, &older), (1, 5, &other)]),
                now(),
            )
            .await;
        assert_eq!(
            outcomes(&report),
            [
                ("scaling-decisions-0@10".to_string(), Outcome::DryRun),
                (
                    "scaling-decisions-0@11".to_string(),
                    Outcome::SkippedSuperseded
                ),
                ("scaling-decisions-1@5".to_string(), Outcome::DryRun),
            ]
        );
        assert_eq!(report.actions[0].1.applied, Some(6));
        assert!(report.actions[1].1.reason.contains(&newer.id.to_string()));
        assert!(report.response.batch_item_failures.is_empty());
    }

    #[tokio::test]
    async fn stale_and_undecodable_records_are_not_retried() {
        let scaler = offline_scaler(Config::default());
        let stale = decision(1, "web", 5, -30, Mode::Apply);
        let mut ev = event(&[(0, 1, &stale)]);
        let bad = kafka_event(
            "scaling-decisions",
            [(0, 2, &b"{\"id\":\"not a decision\"}"[..])],
        );
        ev.records
            .get_mut("scaling-decisions-0")
            .unwrap()
            .extend(bad.records["scaling-decisions-0"].clone());
        let mut not_b64 = bad.records["scaling-decisions-0"][0].clone();
        not_b64.offset = 3;
        not_b64.value = Some("%%%".into());
        ev.records
            .get_mut("scaling-decisions-0")
            .unwrap()
            .push(not_b64);
        let report = scaler.handle_kafka(&ev, now()).await;
        assert_eq!(
            outcomes(&report),
            [("scaling-decisions-0@1".to_string(), Outcome::SkippedStale)]
        );
        assert_eq!(report.invalid.len(), 2);
        assert_eq!(report.invalid[0].0.offset, 2);
        assert!(
            report.invalid[1].1.contains("base64"),
            "{}",
            report.invalid[1].1
        );
        assert!(report.response.batch_item_failures.is_empty());
    }

    #[tokio::test]
    async fn retryable_failures_are_reported_per_record() {
        let scaler = offline_scaler(Config::default());
        let reachable_fails = decision(1, "web", 5, 0, Mode::Apply);
        let mut invalid = decision(2, "db", 5, 0, Mode::Apply);
        invalid.min = 9;
        invalid.max = 3;
        let dry = decision(3, "cache", 5, 0, Mode::DryRun);
        let report = scaler
            .handle_kafka(
                &event(&[(2, 40, &reachable_fails), (2, 41, &invalid), (3, 7, &dry)]),
                now(),
            )
            .await;
        let failed = &report.actions[0].1;
        assert_eq!(failed.outcome, Outcome::Failed);
        assert!(
            failed.retryable,
            "a connection failure is retryable: {}",
            failed.reason
        );
        assert!(
            failed.reason.contains("DescribeNodegroup"),
            "{}",
            failed.reason
        );
        assert_eq!(
            (report.actions[1].1.outcome, report.actions[1].1.retryable),
            (Outcome::Failed, false)
        );
        assert_eq!(report.actions[2].1.outcome, Outcome::DryRun);
        assert_eq!(
            serde_json::to_value(&report.response).unwrap(),
            serde_json::json!({"batchItemFailures":[{"itemIdentifier":{"topic-partition":"scaling-decisions-2","offset":40}}]})
        );
    }

    #[tokio::test]
    async fn forced_dry_run_never_calls_aws() {
        let scaler = offline_scaler(Config {
            force_dry_run: true,
            ..Config::default()
        });
        let d = decision(1, "web", 50, 0, Mode::Apply);
        let report = scaler.handle_kafka(&event(&[(0, 1, &d)]), now()).await;
        let a = &report.actions[0].1;
        assert_eq!(
            (a.outcome, a.mode, a.applied),
            (Outcome::DryRun, Mode::DryRun, Some(10))
        );
    }

    #[tokio::test]
    async fn direct_invocation_and_dispatch() {
        let scaler = offline_scaler(Config::default());
        let d = decision(9, "web", 3, 0, Mode::DryRun);
        let inv = Invocation::from_json(serde_json::to_value(&d).unwrap()).unwrap();
        assert_eq!(inv, Invocation::Decision(Box::new(d.clone())));
        let out = scaler.handle(inv, now()).await.unwrap();
        assert_eq!(out["outcome"], "dry-run");
        assert_eq!(out["decision_id"], d.id.to_string());
        let ev = serde_json::to_value(event(&[(0, 1, &d)])).unwrap();
        let out = scaler
            .handle(Invocation::from_json(ev).unwrap(), now())
            .await
            .unwrap();
        assert_eq!(out, serde_json::json!({"batchItemFailures": []}));
        assert!(Invocation::from_json(serde_json::json!({"hello": 1})).is_err());
    }
}
