//! The scaler against a real `moto_server`: an EKS cluster with a node group
//! (min 1, max 10, desired 2), an SNS topic with an SQS queue subscribed.

use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_eks::types::NodegroupScalingConfig;
use chrono::{DateTime, Utc};
use prescient_contracts::action::{Outcome, ScalingAction};
use prescient_contracts::decision::{ScalingDecision, Target};
use prescient_functions_common::testkit::{
    self, MotoServer, create_cluster, drain_queue, subscribe_queue,
};
use prescient_scaler::{Config, Scaler};

const CLUSTER: &str = "prod";
const NODEGROUP: &str = "web";
const UPDATES: &str = "/node-groups/web/update-config";

struct Env {
    moto: MotoServer,
    sdk: SdkConfig,
    topic_arn: String,
    queue_url: String,
}

async fn setup() -> Env {
    let moto = MotoServer::start();
    let sdk = moto.sdk_config();
    let eks = aws_sdk_eks::Client::new(&sdk);
    create_cluster(&sdk, CLUSTER).await;
    eks.create_nodegroup()
        .cluster_name(CLUSTER)
        .nodegroup_name(NODEGROUP)
        .node_role("arn:aws:iam::123456789012:role/eks-node")
        .subnets("subnet-0a1b2c3d")
        .scaling_config(
            NodegroupScalingConfig::builder()
                .min_size(1)
                .max_size(10)
                .desired_size(2)
                .build(),
        )
        .send()
        .await
        .expect("CreateNodegroup");
    let sns = aws_sdk_sns::Client::new(&sdk);
    let topic_arn = sns
        .create_topic()
        .name("scaling-actions")
        .send()
        .await
        .expect("CreateTopic")
        .topic_arn
        .unwrap();
    let queue_url = subscribe_queue(&sdk, &topic_arn, "actions-inbox").await;
    Env {
        moto,
        sdk,
        topic_arn,
        queue_url,
    }
}

impl Env {
    fn scaler(&self) -> Scaler {
        Scaler::new(
            &self.sdk,
            Config {
                actions_topic_arn: Some(self.topic_arn.clone()),
                ..Config::default()
            },
        )
        .unwrap()
    }

    async fn desired_size(&self) -> i32 {
        let out = aws_sdk_eks::Client::new(&self.sdk)
            .describe_nodegroup()
            .cluster_name(CLUSTER)
            .nodegroup_name(NODEGROUP)
            .send()
            .await
            .expect("DescribeNodegroup");
        out.nodegroup
            .unwrap()
            .scaling_config
            .unwrap()
            .desired_size
            .unwrap()
    }

    async fn published(&self, at_least: usize) -> Vec<ScalingAction> {
        drain_queue(&self.sdk, &self.queue_url, at_least, Duration::from_secs(5))
            .await
            .iter()
            .map(|m| serde_json::from_str(m).expect("each message is a ScalingAction"))
            .collect()
    }
}

fn decision(desired: u32, issued_at: DateTime<Utc>) -> ScalingDecision {
    ScalingDecision {
        max: 100,
        reason: "p90 forecast at +8 min".into(),
        ..testkit::decision(NODEGROUP, desired, issued_at)
    }
}

fn batch(decisions: &[&ScalingDecision]) -> aws_lambda_events::event::kafka::KafkaEvent {
    testkit::decisions_event(
        decisions
            .iter()
            .enumerate()
            .map(|(i, d)| (0, 100 + i as i64, *d)),
    )
}

#[tokio::test]
async fn decision_for_5_sets_desired_5_and_is_announced() {
    let env = setup().await;
    let now = Utc::now();
    let d = decision(5, now);
    let report = env.scaler().handle_kafka(&batch(&[&d]), now).await;
    assert!(report.response.batch_item_failures.is_empty(), "{report:?}");
    let a = &report.actions[0].1;
    assert_eq!(
        (a.outcome, a.previous, a.applied),
        (Outcome::Applied, Some(2), Some(5))
    );
    assert_eq!(env.desired_size().await, 5);
    assert_eq!(env.moto.requests_matching(UPDATES), 1);
    let published = env.published(1).await;
    assert_eq!(published, vec![a.clone()]);
}

#[tokio::test]
async fn decision_for_50_is_clamped_to_the_nodegroup_max() {
    let env = setup().await;
    let now = Utc::now();
    let d = decision(50, now);
    let report = env.scaler().handle_kafka(&batch(&[&d]), now).await;
    let a = &report.actions[0].1;
    assert_eq!(
        (a.outcome, a.requested, a.applied),
        (Outcome::Clamped, 50, Some(10))
    );
    assert!(a.reason.contains("clamped to 10"), "{}", a.reason);
    assert_eq!(env.desired_size().await, 10);
    let published = env.published(1).await;
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].outcome, Outcome::Clamped);
}

#[tokio::test]
async fn expired_decision_changes_nothing_but_is_announced() {
    let env = setup().await;
    let now = Utc::now();
    let d = decision(7, now - chrono::Duration::minutes(6));
    let report = env.scaler().handle_kafka(&batch(&[&d]), now).await;
    assert_eq!(report.actions[0].1.outcome, Outcome::SkippedStale);
    assert!(report.response.batch_item_failures.is_empty());
    assert_eq!(
        env.moto.requests_matching("/node-groups/web"),
        0,
        "not even described"
    );
    assert_eq!(env.desired_size().await, 2);
    let published = env.published(1).await;
    assert_eq!(
        published.iter().map(|a| a.outcome).collect::<Vec<_>>(),
        [Outcome::SkippedStale]
    );
}

#[tokio::test]
async fn same_decision_twice_makes_one_change() {
    let env = setup().await;
    let now = Utc::now();
    let d = decision(6, now);
    let scaler = env.scaler();
    // Twice in one batch, then redelivered to the same warm function, then
    // to a cold one that has no memory of it.
    let first = scaler.handle_kafka(&batch(&[&d, &d]), now).await;
    let again = scaler.handle_kafka(&batch(&[&d]), now).await;
    let cold = env.scaler().handle_kafka(&batch(&[&d]), now).await;
    let outcomes: Vec<Outcome> = [&first, &again, &cold]
        .iter()
        .flat_map(|r| r.actions.iter().map(|(_, a)| a.outcome))
        .collect();
    assert_eq!(
        outcomes,
        [
            Outcome::SkippedSuperseded,
            Outcome::Applied,
            Outcome::Unchanged,
            Outcome::Unchanged
        ]
    );
    assert_eq!(env.desired_size().await, 6);
    assert_eq!(
        env.moto.requests_matching(UPDATES),
        1,
        "exactly one UpdateNodegroupConfig"
    );
    let published = env.published(4).await;
    assert_eq!(published.len(), 4, "every outcome is announced");
    assert!(published.iter().all(|a| a.decision_id == d.id));
}

#[tokio::test]
async fn newer_decision_wins_and_older_one_later_is_superseded() {
    let env = setup().await;
    let now = Utc::now();
    let older = decision(3, now - chrono::Duration::seconds(30));
    let newer = decision(8, now);
    let scaler = env.scaler();
    let report = scaler.handle_kafka(&batch(&[&newer, &older]), now).await;
    let outcomes: Vec<Outcome> = report.actions.iter().map(|(_, a)| a.outcome).collect();
    assert_eq!(outcomes, [Outcome::Applied, Outcome::SkippedSuperseded]);
    assert_eq!(env.desired_size().await, 8);
    // The older one, redelivered alone later, must not undo the newer one.
    let late = scaler.handle_kafka(&batch(&[&older]), now).await;
    assert_eq!(late.actions[0].1.outcome, Outcome::SkippedSuperseded);
    assert_eq!(env.desired_size().await, 8);
}

#[tokio::test]
async fn missing_nodegroup_fails_without_retry() {
    let env = setup().await;
    let now = Utc::now();
    let mut d = decision(4, now);
    d.target = Target::Nodegroup {
        cluster: CLUSTER.into(),
        nodegroup: "nope".into(),
    };
    let report = env.scaler().handle_kafka(&batch(&[&d]), now).await;
    let a = &report.actions[0].1;
    assert_eq!(
        (a.outcome, a.retryable),
        (Outcome::Failed, false),
        "{}",
        a.reason
    );
    assert!(
        a.reason.contains("ResourceNotFoundException"),
        "{}",
        a.reason
    );
    assert!(report.response.batch_item_failures.is_empty());
    assert_eq!(env.published(1).await[0].outcome, Outcome::Failed);
}

#[tokio::test]
async fn recorded_msk_event_is_handled() {
    let env = setup().await;
    let raw = include_str!("fixtures/msk-event.json");
    let event: aws_lambda_events::event::kafka::KafkaEvent =
        serde_json::from_str(raw).expect("the recorded event parses");
    let report = env.scaler().handle_kafka(&event, Utc::now()).await;
    let got: Vec<(String, Outcome)> = report
        .actions
        .iter()
        .map(|(id, a)| (id.to_string(), a.outcome))
        .collect();
    assert_eq!(
        got,
        [
            ("scaling-decisions-0@1041".to_string(), Outcome::Applied),
            (
                "scaling-decisions-0@1042".to_string(),
                Outcome::SkippedSuperseded
            ),
            ("scaling-decisions-1@877".to_string(), Outcome::DryRun),
        ]
    );
    assert_eq!(env.desired_size().await, 5);
    assert!(report.response.batch_item_failures.is_empty());
}
