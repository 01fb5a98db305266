//! What Prescient runs on when nothing else is given: a private PostgreSQL
//! started from the local server binaries, an embedded Kafka-protocol broker
//! (librdkafka's mock cluster), the database migrations, and the `/metrics`
//! endpoint every long-running subcommand serves.
//!
//! `prescient demo` and the integration tests use these; production points
//! the same binaries at a real broker and database instead.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use prescient_infra::{broker::EmbeddedBroker, postgres::PgInstance};
//!
//! let pg = PgInstance::start().await?;            // throwaway server, stopped on drop
//! let pool = sqlx::PgPool::connect(&pg.url()).await?;
//! prescient_infra::migrate::run(&pool).await?;    // every table Prescient uses
//!
//! let broker = EmbeddedBroker::start(1)?;          // Kafka protocol on 127.0.0.1
//! broker.create_topic("user-events", 8)?;
//! println!("bootstrap servers: {}", broker.bootstrap_servers());
//! # Ok(()) }
//! ```

pub mod broker;
pub mod metrics;
pub mod migrate;
pub mod postgres;
