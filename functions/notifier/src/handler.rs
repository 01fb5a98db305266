//! The notifier's handler: notices in, collapsed human messages out.

use std::sync::Mutex;

use aws_config::SdkConfig;
use aws_lambda_events::event::kafka::KafkaEvent;
use aws_lambda_events::event::sns::SnsEvent;
use chrono::{DateTime, Utc};
use prescient_functions_common::record::{KafkaBatchResponse, RecordId, records, value_bytes};

use crate::config::Config;
use crate::limiter::{Limiter, Verdict};
use crate::notice::Notice;
use crate::sink::Sinks;

/// What an invocation carries.
#[derive(Debug, Clone, PartialEq)]
pub enum Invocation {
    /// An SNS notification (the scaler's actions topic, or alerts).
    Sns(SnsEvent),
    /// A batch from the `scaling-actions` Kafka topic.
    Kafka(KafkaEvent),
}

/// A payload that is neither an SNS nor a Kafka event.
#[derive(Debug, thiserror::Error)]
#[error("payload is neither an SNS nor a Kafka event: {0}")]
pub struct InvocationError(String);

impl Invocation {
    /// Tells the two event shapes apart.
    pub fn from_json(value: serde_json::Value) -> Result<Invocation, InvocationError> {
        if value.get("Records").is_some() {
            serde_json::from_value(value)
                .map(Invocation::Sns)
                .map_err(|e| InvocationError(e.to_string()))
        } else if value.get("records").is_some() {
            serde_json::from_value(value)
                .map(Invocation::Kafka)
                .map_err(|e| InvocationError(e.to_string()))
        } else {
            Err(InvocationError(
                "no Records (SNS) or records (Kafka)".into(),
            ))
        }
    }
}

/// What one invocation did.
#[derive(Debug, Default)]
pub struct Report {
    /// Messages sent, as rendered.
    pub sent: Vec<String>,
    /// Notices held back by the rate limit (counted in a later message).
    pub collapsed: usize,
    /// Notices not worth a message (outcomes not in `PRESCIENT_NOTIFY_OUTCOMES`).
    pub filtered: usize,
    /// Delivery failures, by burst key.
    pub failed: Vec<(String, String)>,
    /// For a Kafka batch: records to retry.
    pub response: KafkaBatchResponse,
}

/// The notifier: destinations built once, and the burst state.
#[derive(Debug)]
pub struct Notifier {
    config: Config,
    sinks: Sinks,
    limiter: Mutex<Limiter>,
}

impl Notifier {
    /// Builds the clients from an SDK configuration and the [`Config`].
    pub fn new(sdk: &SdkConfig, config: Config) -> Notifier {
        let sinks = Sinks::new(
            aws_sdk_secretsmanager::Client::new(sdk),
            aws_sdk_sns::Client::new(sdk),
            config.webhook_url.clone(),
            config.webhook_secret_id.clone(),
            config.email_topic_arn.clone(),
        );
        if !sinks.any() {
            tracing::warn!("no webhook and no e-mail topic configured: messages are only logged");
        }
        Notifier {
            limiter: Mutex::new(Limiter::new(config.window)),
            config,
            sinks,
        }
    }

    /// Handles any invocation. An SNS invocation fails (so Lambda retries
    /// it) when a message could not be delivered; a Kafka batch reports the
    /// records concerned instead.
    pub async fn handle(
        &self,
        invocation: Invocation,
        now: DateTime<Utc>,
    ) -> Result<serde_json::Value, SinkErrorSummary> {
        match invocation {
            Invocation::Sns(event) => {
                let report = self.handle_sns(&event, now).await;
                if report.failed.is_empty() {
                    Ok(
                        serde_json::json!({ "sent": report.sent.len(), "collapsed": report.collapsed }),
                    )
                } else {
                    Err(SinkErrorSummary(
                        report
                            .failed
                            .iter()
                            .map(|(_, e)| e.clone())
                            .collect::<Vec<_>>()
                            .join("; "),
                    ))
                }
            }
            Invocation::Kafka(event) => {
                let report = self.handle_kafka(&event, now).await;
                Ok(serde_json::to_value(report.response).expect("response serializes"))
            }
        }
    }

    /// Handles an SNS event.
    pub async fn handle_sns(&self, event: &SnsEvent, now: DateTime<Utc>) -> Report {
        let notices = event
            .records
            .iter()
            .map(|r| {
                (
                    None,
                    Notice::parse(r.sns.subject.as_deref(), &r.sns.message),
                )
            })
            .collect();
        self.notify(notices, now).await
    }

    /// Handles a batch from the `scaling-actions` topic.
    pub async fn handle_kafka(&self, event: &KafkaEvent, now: DateTime<Utc>) -> Report {
        let mut notices = Vec::new();
        for (id, record) in records(event) {
            match value_bytes(record) {
                Ok(bytes) => notices.push((
                    Some(id),
                    Notice::parse(None, &String::from_utf8_lossy(&bytes)),
                )),
                Err(e) => tracing::error!(record = %id, error = %e, "undecodable record: skipped"),
            }
        }
        self.notify(notices, now).await
    }

    /// Filters, collapses and sends notices: per burst key, the latest
    /// notice of the batch is sent with a count of the others, unless a
    /// message for that key went out less than a window ago.
    pub async fn notify(
        &self,
        notices: Vec<(Option<RecordId>, Notice)>,
        now: DateTime<Utc>,
    ) -> Report {
        let mut report = Report::default();
        // key → (latest notice, how many, records)
        let mut groups: Vec<(String, Notice, u32, Vec<RecordId>)> = Vec::new();
        for (id, notice) in notices {
            if let Notice::Action(a) = &notice
                && !self.config.outcomes.contains(&a.outcome)
            {
                report.filtered += 1;
                continue;
            }
            let key = notice.burst_key();
            match groups.iter_mut().find(|g| g.0 == key) {
                Some(g) => {
                    g.1 = notice;
                    g.2 += 1;
                    g.3.extend(id);
                }
                None => groups.push((key, notice, 1, id.into_iter().collect())),
            }
        }
        for (key, notice, count, ids) in groups {
            let verdict = self.limiter.lock().expect("limiter").check(&key, now);
            let collapsed = match verdict {
                Verdict::Suppress => {
                    self.limiter.lock().expect("limiter").collapsed(&key, count);
                    report.collapsed += count as usize;
                    tracing::info!(key = %key, count, "notice collapsed (rate limit)");
                    continue;
                }
                Verdict::Send { collapsed } => collapsed + count - 1,
            };
            let mut text = notice.render();
            if collapsed > 0 {
                text.push_str(&format!(
                    "\n(+{collapsed} similar message{} collapsed)",
                    if collapsed == 1 { "" } else { "s" }
                ));
            }
            // Boxed: the SDK futures are deep enough to overflow the layout query depth.
            match Box::pin(self.sinks.send(&notice.subject(), &text)).await {
                Ok(()) => {
                    self.limiter.lock().expect("limiter").sent(&key, now);
                    tracing::info!(key = %key, collapsed, "notification sent");
                    report.sent.push(text);
                }
                Err(e) => {
                    tracing::error!(key = %key, error = %e, "notification failed");
                    for id in &ids {
                        report.response.fail(id);
                    }
                    report.failed.push((key, e.to_string()));
                }
            }
        }
        report
    }
}

/// Delivery failures of an SNS invocation, joined (never holds a secret).
#[derive(Debug, thiserror::Error)]
#[error("notification delivery failed: {0}")]
pub struct SinkErrorSummary(pub String);
