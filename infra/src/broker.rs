//! An embedded Kafka-protocol broker: librdkafka's mock cluster on a loopback
//! port. Real clients (any language) produce to and consume from it.
//!
//! Limits to know: it keeps at most 100,000 messages or 5 MB per partition
//! (older ones vanish), has no CreateTopics admin API (use
//! [`EmbeddedBroker::create_topic`]), and lives only as long as this value.

use rdkafka::error::KafkaError;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

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
}
