//! The notifier end to end: a local Slack-compatible webhook receiver, the
//! webhook URL in Secrets Manager and an e-mail SNS topic (read through an
//! SQS subscription), both in a real `moto_server`.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use common::{action, json, start_hook};
use prescient_contracts::action::Outcome;
use prescient_functions_common::testkit::{MotoServer, drain_queue, subscribe_queue};
use prescient_notifier::{Config, Invocation, Notifier};

/// Everything logged, to check no secret ever is.
#[derive(Clone, Default)]
struct LogBuf(Arc<Mutex<Vec<u8>>>);

impl Write for LogBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn sns(messages: &[String]) -> Invocation {
    let records: Vec<serde_json::Value> = messages
        .iter()
        .map(|m| {
            serde_json::json!({
                "EventSource": "aws:sns", "EventVersion": "1.0",
                "EventSubscriptionArn": "arn:aws:sns:us-east-1:123456789012:scaling-actions:sub",
                "Sns": {
                    "Type": "Notification", "MessageId": uuid::Uuid::new_v4().to_string(),
                    "TopicArn": "arn:aws:sns:us-east-1:123456789012:scaling-actions",
                    "Subject": null, "Message": m, "Timestamp": "2026-11-21T10:00:00.000Z",
                    "SignatureVersion": "1", "Signature": "x", "SigningCertUrl": "https://x", "UnsubscribeUrl": "https://x",
                    "MessageAttributes": {}
                }
            })
        })
        .collect();
    Invocation::from_json(serde_json::json!({ "Records": records })).expect("an SNS event")
}

#[tokio::test]
async fn bursts_collapse_per_target_and_secrets_stay_secret() {
    let logs = LogBuf::default();
    let writer = logs.clone();
    let _guard = tracing::subscriber::set_default(
        tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(move || writer.clone())
            .finish(),
    );
    let (hook, url) = start_hook().await;
    let moto = MotoServer::start();
    let sdk = moto.sdk_config();
    aws_sdk_secretsmanager::Client::new(&sdk)
        .create_secret()
        .name("prescient/webhook")
        .secret_string(serde_json::json!({ "url": url }).to_string())
        .send()
        .await
        .unwrap();
    let topic = aws_sdk_sns::Client::new(&sdk)
        .create_topic()
        .name("ops-email")
        .send()
        .await
        .unwrap()
        .topic_arn
        .unwrap();
    let inbox = subscribe_queue(&sdk, &topic, "ops-inbox").await;
    let config = Config {
        webhook_secret_id: Some("prescient/webhook".into()),
        email_topic_arn: Some(topic),
        window: chrono::Duration::seconds(60),
        ..Config::default()
    };
    let notifier = Notifier::new(&sdk, config);
    let t0: DateTime<Utc> = Utc::now();

    // First action for web: sent to the webhook and by e-mail.
    notifier
        .handle(sns(&[json(&action(Outcome::Applied, "web"))]), t0)
        .await
        .unwrap();
    assert_eq!(hook.texts().len(), 1);
    assert!(
        hook.texts()[0]
            .starts_with(":white_check_mark: *checkout*: node group prod/web scaled 2 → 5")
    );
    // A burst of four more within the window: held back.
    for i in 1..=4 {
        notifier
            .handle(
                sns(&[json(&action(Outcome::Applied, "web"))]),
                t0 + chrono::Duration::seconds(i),
            )
            .await
            .unwrap();
    }
    assert_eq!(hook.texts().len(), 1, "burst collapsed");
    // A failure for the same target is not hidden by the successes; another
    // target is independent; a routine outcome is filtered out.
    let mixed = [
        json(&action(Outcome::Failed, "web")),
        json(&action(Outcome::Clamped, "batch")),
        json(&action(Outcome::Unchanged, "web")),
    ];
    notifier
        .handle(sns(&mixed), t0 + chrono::Duration::seconds(5))
        .await
        .unwrap();
    let texts = hook.texts();
    assert_eq!(texts.len(), 3);
    assert!(
        texts[1].starts_with(
            ":x: *checkout*: scaling node group prod/web to 5 failed (will be retried)"
        ),
        "{}",
        texts[1]
    );
    assert!(texts[2].starts_with(":warning:"));
    // After the window: the next one carries the count of the collapsed ones.
    notifier
        .handle(
            sns(&[json(&action(Outcome::Applied, "web"))]),
            t0 + chrono::Duration::seconds(61),
        )
        .await
        .unwrap();
    let last = hook.texts().pop().unwrap();
    assert!(last.ends_with("(+4 similar messages collapsed)"), "{last}");
    // Forecaster alerts are announced too.
    let alert = r#"{"alert":"fallback-reactive","service":"checkout","message":"forecast 12 min stale","at":"2026-11-21T10:00:00Z"}"#;
    notifier
        .handle(
            sns(&[alert.to_string()]),
            t0 + chrono::Duration::seconds(62),
        )
        .await
        .unwrap();
    assert_eq!(
        hook.texts().pop().unwrap(),
        ":arrows_counterclockwise: *checkout*: fell back to reactive scaling: forecast 12 min stale"
    );

    let emails = drain_queue(&sdk, &inbox, 5, Duration::from_secs(5)).await;
    assert_eq!(emails.len(), 5, "each webhook message is e-mailed too");
    assert!(
        emails
            .iter()
            .any(|e| e.contains("fell back to reactive scaling"))
    );

    // The webhook fails: the SNS invocation fails (Lambda retries it), the
    // error names no secret, and the failed message is not rate-limited away.
    *hook.fail.lock().unwrap() = true;
    let err = notifier
        .handle(
            sns(&[json(&action(Outcome::Applied, "api"))]),
            t0 + chrono::Duration::seconds(70),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("HTTP 500"), "{err}");
    assert!(!err.to_string().contains("s3cr3t"), "{err}");
    *hook.fail.lock().unwrap() = false;
    notifier
        .handle(
            sns(&[json(&action(Outcome::Applied, "api"))]),
            t0 + chrono::Duration::seconds(71),
        )
        .await
        .unwrap();
    assert!(hook.texts().last().unwrap().contains("prod/api"));

    let logged = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    assert!(
        logged.contains("notification sent"),
        "logging works: {logged}"
    );
    assert!(
        !logged.contains("s3cr3t"),
        "the webhook URL leaked into the logs"
    );
}
