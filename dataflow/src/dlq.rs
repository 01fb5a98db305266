//! Dead letters: every rejected record goes to the dead-letter topic with
//! its original key and bytes, and its reason in headers:
//!
//! | header | value |
//! | --- | --- |
//! | `prescient-reason` | reason label, e.g. `invalid_json`, `too_late` |
//! | `prescient-detail` | what exactly was wrong (at most 1,000 bytes) |
//! | `prescient-source-topic` | topic it came from |
//! | `prescient-source-partition` | partition it came from |
//! | `prescient-source-offset` | offset it had there |
//! | `prescient-truncated` | `true` when the payload was cut to fit (absent otherwise) |
//! | `prescient-original-size` | the payload's size in bytes before it was cut (only when truncated) |
//!
//! A dead letter must fit the broker's message limit: the original record
//! may be close to it, and the headers add to it. Payloads that would not
//! fit in [`MAX_DEAD_LETTER_BYTES`] are cut to fit and say so.
//!
//! Every dead letter is confirmed: the delivery report of each one is
//! checked, and refused ones are sent again, until all are acknowledged.
//! [`DeadLetters::flush`] returns only then, so offsets are never committed
//! past a record whose dead letter is not safe; a dead-letter topic outage
//! pauses progress, like a PostgreSQL outage.

use prescient_connect::backoff;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientConfig, ClientContext};
use rustc_hash::FxHashMap;

use prescient_contracts::event::Rejection;

use crate::metrics::Metrics;

/// The producer's `message.max.bytes` (librdkafka's default, below the
/// usual broker limit of 1 MiB).
pub(crate) const PRODUCER_MAX_BYTES: usize = 1_000_000;
/// Largest dead letter (key + payload + headers) sent: the producer's limit
/// less room for the record's framing.
pub(crate) const MAX_DEAD_LETTER_BYTES: usize = PRODUCER_MAX_BYTES - 4_096;
/// Longest `prescient-detail` header, in bytes.
pub(crate) const MAX_DETAIL_BYTES: usize = 1_000;

/// Dead-letter failures.
#[derive(Debug, thiserror::Error)]
pub enum DlqError {
    /// The producer could not be created.
    #[error("creating the dead-letter producer: {0}")]
    Create(KafkaError),
    /// The Kafka security settings cannot be used.
    #[error("dead-letter producer: {0}")]
    Connect(prescient_connect::ConnectError),
}

/// A dead letter as sent: key, payload and headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Letter {
    /// Original key (cut only when it alone would not fit).
    pub key: Option<Vec<u8>>,
    /// Original payload, or its first bytes when truncated.
    pub payload: Vec<u8>,
    /// Header names and values.
    pub headers: Vec<(&'static str, String)>,
}

impl Letter {
    /// Builds the dead letter of a record, cutting it to fit `max_bytes`.
    pub(crate) fn new(
        key: Option<&[u8]>,
        payload: &[u8],
        source_topic: &str,
        partition: i32,
        offset: i64,
        why: &Rejection,
        max_bytes: usize,
    ) -> Letter {
        let mut detail = why.detail.clone();
        if detail.len() > MAX_DETAIL_BYTES {
            let mut cut = MAX_DETAIL_BYTES;
            while !detail.is_char_boundary(cut) {
                cut -= 1;
            }
            detail.truncate(cut);
        }
        let mut headers = vec![
            ("prescient-reason", why.reason.as_str().to_string()),
            ("prescient-detail", detail),
            ("prescient-source-topic", source_topic.to_string()),
            ("prescient-source-partition", partition.to_string()),
            ("prescient-source-offset", offset.to_string()),
        ];
        let header_bytes = |h: &[(&str, String)]| -> usize {
            h.iter().map(|(k, v)| k.len() + v.len() + 8).sum::<usize>()
        };
        let mut key = key.map(<[u8]>::to_vec);
        let size = key.as_ref().map_or(0, Vec::len) + payload.len() + header_bytes(&headers);
        if size <= max_bytes {
            return Letter {
                key,
                payload: payload.to_vec(),
                headers,
            };
        }
        headers.push(("prescient-truncated", "true".to_string()));
        headers.push(("prescient-original-size", payload.len().to_string()));
        let room = max_bytes.saturating_sub(header_bytes(&headers));
        if let Some(k) = &mut key {
            k.truncate(room / 2);
        }
        let room = room.saturating_sub(key.as_ref().map_or(0, Vec::len));
        Letter {
            key,
            payload: payload[..payload.len().min(room)].to_vec(),
            headers,
        }
    }

    /// Bytes of key, payload and headers.
    #[cfg(test)]
    fn size(&self) -> usize {
        self.key.as_ref().map_or(0, Vec::len)
            + self.payload.len()
            + self
                .headers
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>()
    }
}

/// Collects delivery reports: (letter id, delivered?).
#[derive(Default)]
pub(crate) struct Deliveries {
    reports: Mutex<Vec<(u64, Result<(), KafkaError>)>>,
    oauth: prescient_connect::OAuth,
}

impl ClientContext for Deliveries {
    prescient_connect::oauth_token_hook!(oauth);
}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, id: usize) {
        let outcome = match result {
            Ok(_) => Ok(()),
            Err((e, _)) => Err(e.clone()),
        };
        self.reports
            .lock()
            .expect("deliveries lock")
            .push((id as u64, outcome));
    }
}

/// A producer of dead letters for one worker.
pub(crate) struct DeadLetters {
    producer: BaseProducer<Deliveries>,
    topic: String,
    source_topic: String,
    /// Sent, not yet acknowledged, by id.
    pending: FxHashMap<u64, Letter>,
    /// Could not be queued (or were refused): to send again.
    resend: Vec<u64>,
    next_id: u64,
    metrics: Arc<Metrics>,
}

impl DeadLetters {
    /// A producer to `topic` on `brokers`; records say they came from `source_topic`.
    pub(crate) fn new(
        brokers: &str,
        security: &prescient_connect::KafkaSecurity,
        topic: &str,
        source_topic: &str,
        metrics: Arc<Metrics>,
    ) -> Result<Self, DlqError> {
        let deliveries = Deliveries {
            reports: Mutex::default(),
            oauth: security.oauth().map_err(DlqError::Connect)?,
        };
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", brokers)
            .set("linger.ms", "5")
            .set("message.max.bytes", PRODUCER_MAX_BYTES.to_string())
            .set("message.timeout.ms", "0") // retry transient errors until delivered
            .set("enable.idempotence", "false");
        let producer = security
            .apply(&mut config)
            .create_with_context(deliveries)
            .map_err(DlqError::Create)?;
        Ok(DeadLetters {
            producer,
            topic: topic.into(),
            source_topic: source_topic.into(),
            pending: FxHashMap::default(),
            resend: Vec::new(),
            next_id: 0,
            metrics,
        })
    }

    /// Queues a dead letter for `payload` (from `partition`/`offset`).
    pub(crate) fn send(
        &mut self,
        key: Option<&[u8]>,
        payload: &[u8],
        partition: i32,
        offset: i64,
        why: &Rejection,
    ) {
        let letter = Letter::new(
            key,
            payload,
            &self.source_topic,
            partition,
            offset,
            why,
            MAX_DEAD_LETTER_BYTES,
        );
        if letter
            .headers
            .iter()
            .any(|(k, _)| *k == "prescient-truncated")
        {
            tracing::warn!(
                partition,
                offset,
                original = payload.len(),
                "dead letter too large for the topic; payload truncated"
            );
            self.metrics.dead_letters_truncated.inc();
        }
        let id = self.next_id;
        self.next_id += 1;
        self.pending.insert(id, letter);
        if !self.enqueue(id) {
            self.resend.push(id);
        }
        self.producer.poll(Duration::ZERO);
    }

    /// Hands letter `id` to librdkafka; false if it refused.
    fn enqueue(&mut self, id: u64) -> bool {
        let letter = &self.pending[&id];
        let mut headers = OwnedHeaders::new_with_capacity(letter.headers.len());
        for (k, v) in &letter.headers {
            headers = headers.insert(Header {
                key: k,
                value: Some(v.as_str()),
            });
        }
        let mut record = BaseRecord::<[u8], [u8], usize>::with_opaque_to(&self.topic, id as usize)
            .payload(&letter.payload)
            .headers(headers);
        if let Some(k) = &letter.key {
            record = record.key(k);
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => return true,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    self.producer.poll(Duration::from_millis(10));
                }
                Err((e, _)) => {
                    tracing::warn!(error = %e, id, "cannot queue a dead letter; will retry");
                    return false;
                }
            }
        }
    }

    /// Waits until every queued dead letter is acknowledged, re-sending the
    /// ones the broker refused and waiting while it is away, so that
    /// offsets are only committed past records whose dead letters are safe.
    pub(crate) fn flush(&mut self) {
        let mut warned: Option<Instant> = None;
        let mut delays = backoff::exponential(Duration::from_millis(50), Duration::from_secs(2));
        while !self.pending.is_empty() {
            if !self.resend.is_empty() {
                std::thread::sleep(delays.next().unwrap_or_default());
                for id in std::mem::take(&mut self.resend) {
                    self.metrics.dead_letter_retries.inc();
                    if !self.enqueue(id) {
                        self.resend.push(id);
                    }
                }
            }
            let _ = self.producer.flush(Duration::from_millis(500));
            let reports = std::mem::take(
                &mut *self
                    .producer
                    .context()
                    .reports
                    .lock()
                    .expect("deliveries lock"),
            );
            for (id, outcome) in reports {
                match outcome {
                    Ok(()) => {
                        self.pending.remove(&id);
                    }
                    Err(e) => {
                        if warned.is_none() {
                            tracing::warn!(error = %e, topic = %self.topic, "dead letter refused; pausing and sending it again until the topic takes it");
                            warned = Some(Instant::now());
                        }
                        self.resend.push(id);
                    }
                }
            }
            if warned.is_none() && !self.pending.is_empty() && self.resend.is_empty() {
                // Still in librdkafka's queue (broker away): keep waiting.
                warned = Some(Instant::now());
                tracing::warn!(topic = %self.topic, pending = self.pending.len(), "dead letters not acknowledged yet; waiting for the broker");
            }
        }
        if let Some(since) = warned {
            tracing::info!(topic = %self.topic, paused_ms = since.elapsed().as_millis() as u64, "dead letters acknowledged; resuming");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prescient_contracts::event::Reason;

    #[test]
    fn small_letters_are_kept_whole_and_big_ones_cut_to_fit() {
        let why = Rejection::new(Reason::InvalidJson, "x".repeat(5_000));
        let small = Letter::new(Some(b"k"), b"{", "t", 3, 9, &why, 10_000);
        assert_eq!(small.payload, b"{");
        assert!(
            small
                .headers
                .iter()
                .all(|(k, _)| *k != "prescient-truncated")
        );
        assert!(small.headers[1].1.len() <= MAX_DETAIL_BYTES);
        let payload = vec![b'a'; 1_048_000];
        let big = Letter::new(Some(b"k"), &payload, "t", 3, 9, &why, MAX_DEAD_LETTER_BYTES);
        assert!(big.size() <= MAX_DEAD_LETTER_BYTES, "{}", big.size());
        assert!(payload.starts_with(&big.payload));
        assert!(big.payload.len() > 900_000);
        let get = |k: &str| {
            big.headers
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(get("prescient-truncated").as_deref(), Some("true"));
        assert_eq!(get("prescient-original-size"), Some("1048000".to_string()));
        let huge_key = vec![b'k'; 2_000_000];
        let both = Letter::new(
            Some(&huge_key),
            &payload,
            "t",
            0,
            0,
            &why,
            MAX_DEAD_LETTER_BYTES,
        );
        assert!(both.size() <= MAX_DEAD_LETTER_BYTES);
    }
}
