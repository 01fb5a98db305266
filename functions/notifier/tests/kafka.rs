//! The notifier on a Kafka batch from `scaling-actions`: bursts collapse
//! within the batch and undelivered records are reported for retry.

mod common;

use chrono::Utc;
use common::{action, json, start_hook};
use prescient_contracts::action::Outcome;
use prescient_functions_common::testkit::kafka_event;
use prescient_notifier::{Config, Invocation, Notifier};

#[tokio::test]
async fn kafka_batches_from_scaling_actions_are_collapsed_and_failures_reported() {
    let (hook, url) = start_hook().await;
    let sdk = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .build();
    let config = Config {
        webhook_url: Some(prescient_notifier::SecretUrl::new(url)),
        ..Config::default()
    };
    let notifier = Notifier::new(&sdk, config);
    let a = json(&action(Outcome::Applied, "web"));
    let b = json(&action(Outcome::Clamped, "web"));
    let c = json(&action(Outcome::Clamped, "web"));
    let event = kafka_event(
        "scaling-actions",
        [
            (0, 1, a.as_bytes()),
            (0, 2, b.as_bytes()),
            (0, 3, c.as_bytes()),
        ],
    );
    let out = notifier
        .handle(Invocation::Kafka(event), Utc::now())
        .await
        .unwrap();
    assert_eq!(out, serde_json::json!({"batchItemFailures": []}));
    let texts = hook.texts();
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(
        texts[1].starts_with(":warning:") && texts[1].ends_with("(+1 similar message collapsed)"),
        "{}",
        texts[1]
    );

    *hook.fail.lock().unwrap() = true;
    let d = json(&action(Outcome::Failed, "db"));
    let event = kafka_event("scaling-actions", [(3, 9, d.as_bytes())]);
    let out = notifier
        .handle(Invocation::Kafka(event), Utc::now())
        .await
        .unwrap();
    assert_eq!(
        out,
        serde_json::json!({"batchItemFailures": [{"itemIdentifier": {"topic-partition": "scaling-actions-3", "offset": 9}}]})
    );
}
