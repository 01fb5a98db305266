//! How every Prescient component connects to Kafka and PostgreSQL outside a
//! laptop: encrypted, authenticated, configured the same way everywhere.
//!
//! - **Kafka** ([`kafka`]): every client (the dataflow's consumer and
//!   dead-letter producer, the forecaster's decision producer and actions
//!   consumer, the scaler's outcome producer) is built from a
//!   [`KafkaSecurity`]: extra librdkafka properties (`security.protocol`,
//!   `ssl.ca.location`, `sasl.mechanism`, `sasl.username`, ...) passed through
//!   as given, and optionally Amazon MSK IAM authentication
//!   ([`KafkaSecurity::msk_iam_region`], SASL/OAUTHBEARER with tokens signed
//!   from the AWS default credential chain; needs the `msk-iam` feature).
//! - **PostgreSQL** ([`postgres`]): TLS is set in the database URL
//!   (`sslmode=verify-full&sslrootcert=/path/ca.pem`), as libpq does; the
//!   helpers here check a URL's TLS settings before the first connection so a
//!   typo fails at start with a clear message instead of silently connecting
//!   in plaintext.
//!
//! ```
//! use prescient_connect::KafkaSecurity;
//! use rdkafka::consumer::BaseConsumer;
//!
//! // What `--kafka-properties 'security.protocol=ssl;ssl.endpoint.identification.algorithm=https'` gives.
//! let security = KafkaSecurity::parse("security.protocol=ssl;ssl.endpoint.identification.algorithm=https", None)?;
//! let mut config = security.client_config("b-1.example:9094");
//! config.set("group.id", "prescient");
//! assert_eq!(config.get("security.protocol"), Some("ssl"));
//! let _consumer: BaseConsumer<_> = config.create_with_context(security.context()?)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Features: `kafka` and `postgres` (default) are the two client families;
//! `sigv4` signs presigned AWS URLs ([`sigv4`], also used by the scaler
//! Lambda for EKS tokens); `msk-iam` adds MSK IAM tokens. Without default
//! features only [`properties`] and [`ConnectError`] remain, free of
//! librdkafka and sqlx, which is what the Lambda functions use.

pub mod backoff;
mod error;
#[cfg(feature = "kafka")]
pub mod kafka;
#[cfg(feature = "msk-iam")]
mod msk_iam;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod properties;
#[cfg(feature = "sigv4")]
pub mod sigv4;

pub use error::ConnectError;
#[cfg(feature = "kafka")]
pub use kafka::{KafkaContext, KafkaSecurity, OAuth};
/// The librdkafka bindings the settings apply to (for [`oauth_token_hook!`]).
#[cfg(feature = "kafka")]
pub use rdkafka;
