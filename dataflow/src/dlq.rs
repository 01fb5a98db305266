//! Dead letters: every rejected record goes to the dead-letter topic with
//! its original key and bytes, and its reason in headers:
//!
//! | header | value |
//! | --- | --- |
//! | `prescient-reason` | reason label, e.g. `invalid_json`, `too_late` |
//! | `prescient-detail` | what exactly was wrong |
//! | `prescient-source-topic` | topic it came from |
//! | `prescient-source-partition` | partition it came from |
//! | `prescient-source-offset` | offset it had there |

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use prescient_contracts::event::Rejection;

/// Dead-letter failures.
#[derive(Debug, thiserror::Error)]
pub enum DlqError {
    /// The producer could not be created.
    #[error("creating the dead-letter producer: {0}")]
    Create(KafkaError),
}

/// A producer of dead letters for one worker.
pub struct DeadLetters {
    producer: BaseProducer,
    topic: String,
    source_topic: String,
    unflushed: bool,
}

impl DeadLetters {
    /// A producer to `topic` on `brokers`; records say they came from `source_topic`.
    pub fn new(brokers: &str, topic: &str, source_topic: &str) -> Result<Self, DlqError> {
        let producer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("linger.ms", "5")
            .set("message.timeout.ms", "0") // retry until delivered
            .set("enable.idempotence", "false")
            .create()
            .map_err(DlqError::Create)?;
        Ok(DeadLetters {
            producer,
            topic: topic.into(),
            source_topic: source_topic.into(),
            unflushed: false,
        })
    }

    /// Queues a dead letter for `payload` (from `partition`/`offset`).
    pub fn send(
        &mut self,
        key: Option<&[u8]>,
        payload: &[u8],
        partition: i32,
        offset: i64,
        why: &Rejection,
    ) {
        let partition_s = partition.to_string();
        let offset_s = offset.to_string();
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "prescient-reason",
                value: Some(why.reason.as_str()),
            })
            .insert(Header {
                key: "prescient-detail",
                value: Some(why.detail.as_str()),
            })
            .insert(Header {
                key: "prescient-source-topic",
                value: Some(self.source_topic.as_str()),
            })
            .insert(Header {
                key: "prescient-source-partition",
                value: Some(partition_s.as_str()),
            })
            .insert(Header {
                key: "prescient-source-offset",
                value: Some(offset_s.as_str()),
            });
        let mut record = BaseRecord::<[u8], [u8]>::to(&self.topic)
            .payload(payload)
            .headers(headers);
        if let Some(k) = key {
            record = record.key(k);
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    self.producer.poll(Duration::from_millis(10));
                }
                Err((e, _)) => {
                    tracing::error!(error = %e, partition, offset, "cannot queue a dead letter");
                    break;
                }
            }
        }
        self.unflushed = true;
        self.producer.poll(Duration::ZERO);
    }

    /// Waits until every queued dead letter is acknowledged, retrying while
    /// the broker is away, so that offsets are only committed past records
    /// whose dead letters are safe.
    pub fn flush(&mut self) {
        if !self.unflushed {
            return;
        }
        let mut warned = false;
        while let Err(e) = self.producer.flush(Duration::from_secs(5)) {
            if !warned {
                tracing::warn!(error = %e, topic = %self.topic, "dead letters not acknowledged yet; waiting for the broker");
                warned = true;
            }
        }
        if warned {
            tracing::info!(topic = %self.topic, "dead letters acknowledged; resuming");
        }
        self.unflushed = false;
    }
}
