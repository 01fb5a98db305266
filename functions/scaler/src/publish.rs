//! Publishing outcomes: one SNS message per [`ScalingAction`], sent in
//! `PublishBatch` calls of ten. Each message carries the action as JSON and
//! the message attributes `outcome`, `service` and `target` (for
//! subscription filter policies, e.g. only `failed`).
//!
//! With the `kafka` feature and `PRESCIENT_KAFKA_BROKERS` set, each action
//! also goes to the `scaling-actions` topic, keyed by its target (so one
//! target's actions stay in order on one partition).

use aws_sdk_sns::types::{MessageAttributeValue, PublishBatchRequestEntry};
use futures_util::future::join_all;
use prescient_contracts::action::ScalingAction;

use crate::error::{ScalerError, sdk_error_is_retryable};

/// Most entries SNS accepts in one `PublishBatch`.
const SNS_BATCH: usize = 10;

/// Where outcomes go.
#[derive(Clone)]
pub(crate) struct Publisher {
    sns: aws_sdk_sns::Client,
    topic_arn: Option<String>,
    #[cfg(feature = "kafka")]
    kafka: Option<(rdkafka::producer::FutureProducer, String)>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("Publisher");
        d.field("topic_arn", &self.topic_arn);
        #[cfg(feature = "kafka")]
        d.field("kafka_topic", &self.kafka.as_ref().map(|(_, t)| t));
        d.finish()
    }
}

impl Publisher {
    /// Publishes to `topic_arn` with `sns`; with no topic, outcomes are only
    /// logged.
    pub(crate) fn new(sns: aws_sdk_sns::Client, topic_arn: Option<String>) -> Publisher {
        Publisher {
            sns,
            topic_arn,
            #[cfg(feature = "kafka")]
            kafka: None,
        }
    }

    /// Also publishes to Kafka as `config` says.
    #[cfg(feature = "kafka")]
    pub(crate) fn with_kafka(
        mut self,
        config: &crate::config::KafkaConfig,
    ) -> Result<Publisher, ScalerError> {
        let mut client = rdkafka::ClientConfig::new();
        client
            .set("bootstrap.servers", &config.brokers)
            .set("message.timeout.ms", "5000")
            .set("acks", "all");
        for (k, v) in &config.properties {
            client.set(k, v);
        }
        let producer = client
            .create()
            .map_err(|e| ScalerError::Config(format!("Kafka producer: {e}")))?;
        self.kafka = Some((producer, config.topic.clone()));
        Ok(self)
    }

    /// Publishes every action; the result at index `i` is that of
    /// `actions[i]`.
    pub(crate) async fn publish(&self, actions: &[ScalingAction]) -> Vec<Result<(), ScalerError>> {
        for a in actions {
            tracing::info!(
                decision_id = %a.decision_id,
                service = %a.service,
                target = %a.target_key(),
                outcome = %a.outcome,
                previous = ?a.previous,
                applied = ?a.applied,
                retryable = a.retryable,
                reason = %a.reason,
                "scaling action"
            );
        }
        let results: Vec<Result<(), ScalerError>> = match &self.topic_arn {
            None => actions.iter().map(|_| Ok(())).collect(),
            Some(topic) => {
                let calls = actions
                    .chunks(SNS_BATCH)
                    .map(|chunk| self.publish_chunk(topic, chunk));
                join_all(calls).await.into_iter().flatten().collect()
            }
        };
        #[cfg(feature = "kafka")]
        let results = self.publish_kafka(actions, results).await;
        results
    }

    /// Sends each action to Kafka too; a delivery failure marks its slot.
    #[cfg(feature = "kafka")]
    async fn publish_kafka(
        &self,
        actions: &[ScalingAction],
        mut results: Vec<Result<(), ScalerError>>,
    ) -> Vec<Result<(), ScalerError>> {
        if let Some((producer, topic)) = &self.kafka {
            let sent = join_all(actions.iter().map(|a| send_kafka(producer, topic, a))).await;
            for (slot, r) in results.iter_mut().zip(sent) {
                if slot.is_ok() {
                    *slot = r;
                }
            }
        }
        results
    }

    async fn publish_chunk(
        &self,
        topic: &str,
        chunk: &[ScalingAction],
    ) -> Vec<Result<(), ScalerError>> {
        let entries: Vec<PublishBatchRequestEntry> =
            chunk.iter().enumerate().map(|(i, a)| entry(i, a)).collect();
        match self
            .sns
            .publish_batch()
            .topic_arn(topic)
            .set_publish_batch_request_entries(Some(entries))
            .send()
            .await
        {
            Err(e) => {
                let retryable = sdk_error_is_retryable(&e);
                let message = aws_sdk_sns::error::DisplayErrorContext(&e).to_string();
                tracing::error!(%message, retryable, "SNS PublishBatch failed");
                chunk
                    .iter()
                    .map(|_| Err(ScalerError::Publish(message.clone())))
                    .collect()
            }
            Ok(out) => {
                let mut results: Vec<Result<(), ScalerError>> =
                    chunk.iter().map(|_| Ok(())).collect();
                for f in out.failed() {
                    let message = format!(
                        "SNS entry {}: {} {}",
                        f.id(),
                        f.code(),
                        f.message().unwrap_or("")
                    );
                    tracing::error!(%message, "SNS PublishBatch entry failed");
                    if let Some(slot) = f
                        .id()
                        .parse::<usize>()
                        .ok()
                        .and_then(|i| results.get_mut(i))
                    {
                        *slot = Err(ScalerError::Publish(message));
                    }
                }
                results
            }
        }
    }
}

#[cfg(feature = "kafka")]
async fn send_kafka(
    producer: &rdkafka::producer::FutureProducer,
    topic: &str,
    a: &ScalingAction,
) -> Result<(), ScalerError> {
    let key = a.target_key();
    let payload = serde_json::to_vec(a).expect("an action always serializes");
    let record = rdkafka::producer::FutureRecord::to(topic)
        .key(&key)
        .payload(&payload);
    producer
        .send(record, std::time::Duration::from_secs(5))
        .await
        .map(|_| ())
        .map_err(|(e, _)| {
            tracing::error!(error = %e, "Kafka delivery of a scaling action failed");
            ScalerError::Publish(format!("Kafka {topic}: {e}"))
        })
}

fn attr(value: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .expect("data type is set")
}

fn entry(index: usize, a: &ScalingAction) -> PublishBatchRequestEntry {
    PublishBatchRequestEntry::builder()
        .id(index.to_string())
        .message(serde_json::to_string(a).expect("an action always serializes"))
        .subject(subject(a))
        .message_attributes("outcome", attr(a.outcome.as_str()))
        .message_attributes("service", attr(&a.service))
        .message_attributes("target", attr(&a.target_key()))
        .build()
        .expect("id and message are set")
}

/// An SNS subject (ASCII, one line, under 100 characters), e.g.
/// `prescient checkout: clamped nodegroup/prod/web`.
pub(crate) fn subject(a: &ScalingAction) -> String {
    prescient_contracts::action::sns_subject(&format!(
        "prescient {}: {} {}",
        a.service,
        a.outcome,
        a.target_key()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use prescient_contracts::action::Outcome;
    use prescient_contracts::decision::{Mode, Target};

    #[test]
    fn entries_carry_json_and_attributes() {
        let a = ScalingAction {
            decision_id: uuid::Uuid::from_u128(1),
            service: "chéckout".into(),
            target: Target::Nodegroup {
                cluster: "prod".into(),
                nodegroup: "web".into(),
            },
            outcome: Outcome::Clamped,
            previous: Some(2),
            requested: 50,
            applied: Some(10),
            reason: "r".into(),
            mode: Mode::Apply,
            retryable: false,
            at: chrono::Utc::now(),
        };
        assert_eq!(
            subject(&a),
            "prescient ch?ckout: clamped nodegroup/prod/web"
        );
        let e = entry(3, &a);
        assert_eq!(e.id(), "3");
        let back: ScalingAction = serde_json::from_str(e.message()).unwrap();
        assert_eq!(back, a);
        let attrs = e.message_attributes().unwrap();
        assert_eq!(attrs["outcome"].string_value(), Some("clamped"));
        assert_eq!(attrs["target"].string_value(), Some("nodegroup/prod/web"));
    }
}
