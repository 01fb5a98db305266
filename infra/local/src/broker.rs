//! An embedded Kafka-protocol broker: librdkafka's mock cluster on a loopback
//! port. Real clients (any language) produce to and consume from it.
//!
//! Limits to know: it keeps at most 100,000 messages or 5 MB per partition
//! (older ones vanish), has no CreateTopics admin API (use
//! [`EmbeddedBroker::create_topic`]), and lives only as long as this value.

use rdkafka::error::KafkaError;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

/// Broker failures.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// librdkafka refused.
    #[error("embedded broker: {0}")]
    Kafka(#[from] KafkaError),
}

/// A running mock cluster. Not `Send`: keep it on the thread that made it.
pub struct EmbeddedBroker {
    cluster: MockCluster<'static, DefaultProducerContext>,
}

impl EmbeddedBroker {
    /// Starts a cluster of `brokers` brokers on loopback ports.
    pub fn start(brokers: i32) -> Result<Self, BrokerError> {
        Ok(EmbeddedBroker {
            cluster: MockCluster::new(brokers)?,
        })
    }

    /// The `bootstrap.servers` string clients connect with.
    pub fn bootstrap_servers(&self) -> String {
        self.cluster.bootstrap_servers()
    }

    /// Creates `topic` with `partitions` partitions (replication factor 1).
    pub fn create_topic(&self, topic: &str, partitions: i32) -> Result<(), BrokerError> {
        self.cluster.create_topic(topic, partitions, 1)?;
        Ok(())
    }

    /// Makes `broker_id` (1-based) lead `partition` of `topic`.
    pub fn partition_leader(
        &self,
        topic: &str,
        partition: i32,
        broker_id: i32,
    ) -> Result<(), BrokerError> {
        self.cluster
            .partition_leader(topic, partition, Some(broker_id))?;
        Ok(())
    }

    /// Takes broker `broker_id` down: its connections close and new ones
    /// are refused until [`EmbeddedBroker::broker_up`] (an outage of
    /// whatever it leads).
    pub fn broker_down(&self, broker_id: i32) -> Result<(), BrokerError> {
        self.cluster.broker_down(broker_id)?;
        Ok(())
    }

    /// Brings broker `broker_id` back.
    pub fn broker_up(&self, broker_id: i32) -> Result<(), BrokerError> {
        self.cluster.broker_up(broker_id)?;
        Ok(())
    }

    /// Makes the next `count` Produce requests (from any client) fail with
    /// `error` (see [`produce_error`] for the names understood).
    pub fn fail_produce_requests(&self, count: usize, error: RDKafkaRespErr) {
        self.cluster
            .request_errors(RDKafkaApiKey::Produce, &vec![error; count]);
    }
}

/// Broker error codes by name, for injected failures: `topic_authorization_failed`
/// and `message_too_large` are permanent (a producer gives the record up),
/// `not_enough_replicas` is retried by producers.
pub fn produce_error(name: &str) -> Option<RDKafkaRespErr> {
    Some(match name {
        "topic_authorization_failed" => {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED
        }
        "message_too_large" => RDKafkaRespErr::RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE,
        "not_enough_replicas" => RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
        _ => return None,
    })
}
