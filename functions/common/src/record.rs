//! Kafka event-source records in, per-record failures out.
//!
//! An MSK or self-managed Kafka event source mapping delivers records
//! grouped by `topic-partition`, each value base64-encoded. With
//! `FunctionResponseTypes: ["ReportBatchItemFailures"]` on the mapping, the
//! function answers with the records to retry, identified by
//! `topic-partition` and offset (the shape AWS Powertools uses):
//!
//! ```json
//! {"batchItemFailures":[{"itemIdentifier":{"topic-partition":"scaling-decisions-0","offset":42}}]}
//! ```
//!
//! Lambda then retries from the lowest failed offset of each partition; the
//! scaler's idempotency makes the re-delivered successes harmless.

use std::fmt;

use aws_lambda_events::event::kafka::{KafkaEvent, KafkaRecord};
use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Where a record came from: topic, partition and offset.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RecordId {
    /// Kafka topic.
    pub topic: String,
    /// Partition number.
    pub partition: i64,
    /// Offset in the partition.
    pub offset: i64,
}

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}@{}", self.topic, self.partition, self.offset)
    }
}

/// Why a record could not be decoded. Never retryable: the same bytes will
/// fail the same way.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The record has no value (a tombstone).
    #[error("record has no value")]
    NoValue,
    /// The value is not valid base64.
    #[error("value is not base64: {0}")]
    Base64(String),
    /// The value is not the JSON the topic carries.
    #[error("value is not the topic's JSON: {0}")]
    Json(String),
}

/// Flattens an event's records, in topic-partition then offset order, each
/// with its [`RecordId`].
pub fn records(event: &KafkaEvent) -> Vec<(RecordId, &KafkaRecord)> {
    let mut out: Vec<(RecordId, &KafkaRecord)> = event
        .records
        .iter()
        .flat_map(|(key, recs)| {
            recs.iter().map(move |r| {
                let topic = r
                    .topic
                    .clone()
                    .unwrap_or_else(|| topic_of_key(key, r.partition));
                (
                    RecordId {
                        topic,
                        partition: r.partition,
                        offset: r.offset,
                    },
                    r,
                )
            })
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// `scaling-decisions-0` with partition 0 → `scaling-decisions`.
fn topic_of_key(key: &str, partition: i64) -> String {
    let suffix = format!("-{partition}");
    key.strip_suffix(&suffix).unwrap_or(key).to_string()
}

/// The bytes of one record's base64 value.
pub fn value_bytes(record: &KafkaRecord) -> Result<Vec<u8>, DecodeError> {
    let value = record.value.as_deref().ok_or(DecodeError::NoValue)?;
    base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .map_err(|e| DecodeError::Base64(e.to_string()))
}

/// Decodes one record's base64 JSON value (a
/// [`ScalingDecision`](prescient_contracts::decision::ScalingDecision), a
/// [`ScalingAction`](prescient_contracts::action::ScalingAction), ...).
pub fn decode<T: DeserializeOwned>(record: &KafkaRecord) -> Result<T, DecodeError> {
    let bytes = value_bytes(record)?;
    serde_json::from_slice(&bytes).map_err(|e| DecodeError::Json(e.to_string()))
}

/// Encodes bytes as MSK does for a record value (standard base64).
pub fn encode_value(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The identifier of one failed record in a [`KafkaBatchResponse`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KafkaItemIdentifier {
    /// `{topic}-{partition}`.
    #[serde(rename = "topic-partition")]
    pub topic_partition: String,
    /// Offset of the failed record.
    pub offset: i64,
}

/// One failed record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KafkaBatchItemFailure {
    /// Which record.
    pub item_identifier: KafkaItemIdentifier,
}

/// The partial-batch response of a Kafka-triggered function.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KafkaBatchResponse {
    /// Records Lambda should retry; empty when the batch succeeded.
    pub batch_item_failures: Vec<KafkaBatchItemFailure>,
}

impl KafkaBatchResponse {
    /// Adds a failed record (once).
    pub fn fail(&mut self, id: &RecordId) {
        let item = KafkaBatchItemFailure {
            item_identifier: KafkaItemIdentifier {
                topic_partition: format!("{}-{}", id.topic, id.partition),
                offset: id.offset,
            },
        };
        if !self.batch_item_failures.contains(&item) {
            self.batch_item_failures.push(item);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prescient_contracts::decision::ScalingDecision;

    const EVENT: &str = r#"{
      "eventSource": "aws:kafka",
      "eventSourceArn": "arn:aws:kafka:us-east-1:123456789012:cluster/prod/abc",
      "bootstrapServers": "b-1:9092",
      "records": {
        "scaling-decisions-1": [
          {"topic":"scaling-decisions","partition":1,"offset":7,"timestamp":1795255200000,
           "timestampType":"CREATE_TIME","key":"Y2hlY2tvdXQ=","value":"bm90IGpzb24=","headers":[]}
        ],
        "scaling-decisions-0": [
          {"partition":0,"offset":4,"timestamp":1795255200000,"timestampType":"CREATE_TIME",
           "value":null,"key":null,"headers":[]}
        ]
      }
    }"#;

    #[test]
    fn flattens_in_order_and_recovers_missing_topic() {
        let event: KafkaEvent = serde_json::from_str(EVENT).unwrap();
        let recs = records(&event);
        let ids: Vec<String> = recs.iter().map(|(id, _)| id.to_string()).collect();
        assert_eq!(ids, ["scaling-decisions-0@4", "scaling-decisions-1@7"]);
        assert_eq!(
            decode::<ScalingDecision>(recs[0].1),
            Err(DecodeError::NoValue)
        );
        assert!(matches!(
            decode::<ScalingDecision>(recs[1].1),
            Err(DecodeError::Json(_))
        ));
    }

    #[cfg(feature = "testkit")]
    #[test]
    fn built_events_round_trip() {
        let event = crate::testkit::kafka_event(
            "scaling-decisions",
            [(2, 10, &b"{}"[..]), (0, 3, &b"x"[..]), (2, 11, &b"y"[..])],
        );
        assert_eq!(event.records.len(), 2);
        let recs = records(&event);
        let ids: Vec<String> = recs.iter().map(|(id, _)| id.to_string()).collect();
        assert_eq!(
            ids,
            [
                "scaling-decisions-0@3",
                "scaling-decisions-2@10",
                "scaling-decisions-2@11"
            ]
        );
        assert_eq!(recs[0].1.value.as_deref(), Some("eA=="));
    }

    #[test]
    fn base64_errors_are_reported() {
        let mut event: KafkaEvent = serde_json::from_str(EVENT).unwrap();
        let rec = event.records.get_mut("scaling-decisions-1").unwrap();
        rec[0].value = Some("***".into());
        assert!(matches!(
            decode::<ScalingDecision>(&rec[0]),
            Err(DecodeError::Base64(_))
        ));
    }

    #[test]
    fn response_shape_and_dedup() {
        let mut r = KafkaBatchResponse::default();
        let id = RecordId {
            topic: "scaling-decisions".into(),
            partition: 3,
            offset: 42,
        };
        r.fail(&id);
        r.fail(&id);
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"batchItemFailures":[{"itemIdentifier":{"topic-partition":"scaling-decisions-3","offset":42}}]}"#
        );
        assert_eq!(
            serde_json::to_string(&KafkaBatchResponse::default()).unwrap(),
            r#"{"batchItemFailures":[]}"#
        );
    }
}
