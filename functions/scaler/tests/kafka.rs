//! Outcomes on the Kafka topic `scaling-actions` (feature `kafka`), against
//! librdkafka's mock cluster: `cargo test -p prescient-scaler --features kafka`.
#![cfg(feature = "kafka")]

use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use chrono::Utc;
use prescient_contracts::action::{Outcome, ScalingAction};
use prescient_contracts::decision::{Mode, ScalingDecision};
use prescient_functions_common::testkit::{self, kafka_event};
use prescient_scaler::KafkaConfig;
use prescient_scaler::{Config, Scaler};
use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::mocking::MockCluster;

fn decision(nodegroup: &str, minutes_old: i64) -> ScalingDecision {
    let issued_at = Utc::now() - chrono::Duration::minutes(minutes_old);
    ScalingDecision {
        mode: Mode::DryRun,
        ..testkit::decision(nodegroup, 4, issued_at)
    }
}

#[tokio::test]
async fn outcomes_are_published_to_scaling_actions_keyed_by_target() {
    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic("scaling-actions", 2, 1).unwrap();
    let config = Config {
        kafka: Some(KafkaConfig {
            brokers: cluster.bootstrap_servers(),
            topic: "scaling-actions".into(),
            properties: vec![("client.id".into(), "prescient-scaler-test".into())],
        }),
        ..Config::default()
    };
    let sdk = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .build();
    let scaler = Scaler::new(&sdk, config).unwrap();
    let (a, b) = (decision("web", 0), decision("batch", 10));
    let values = [
        serde_json::to_vec(&a).unwrap(),
        serde_json::to_vec(&b).unwrap(),
    ];
    let event = kafka_event(
        "scaling-decisions",
        [(0, 1, values[0].as_slice()), (0, 2, values[1].as_slice())],
    );
    let report = scaler.handle_kafka(&event, Utc::now()).await;
    assert!(
        report.response.batch_item_failures.is_empty(),
        "{:?}",
        report.response
    );

    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", cluster.bootstrap_servers())
        .set("group.id", "test")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&["scaling-actions"]).unwrap();
    let mut got: Vec<(String, ScalingAction)> = Vec::new();
    while got.len() < 2 {
        let msg = tokio::time::timeout(Duration::from_secs(20), consumer.recv())
            .await
            .expect("2 actions")
            .unwrap();
        let key = String::from_utf8(msg.key().unwrap().to_vec()).unwrap();
        got.push((key, serde_json::from_slice(msg.payload().unwrap()).unwrap()));
    }
    got.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(got[0].0, "nodegroup/prod/batch");
    assert_eq!(got[0].1.outcome, Outcome::SkippedStale);
    assert_eq!(got[1].0, "nodegroup/prod/web");
    assert_eq!(
        (got[1].1.outcome, got[1].1.decision_id),
        (Outcome::DryRun, a.id)
    );
}
