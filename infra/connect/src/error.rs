//! The error of this crate's settings checks.

/// Invalid connection settings.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// An entry of the properties list is not `key=value` (the value is not
    /// shown: it may be a password).
    #[error("Kafka properties: entry {index} is not key=value")]
    Property {
        /// 1-based position in the list.
        index: usize,
    },
    /// MSK IAM was asked for but this binary was built without it.
    #[error(
        "MSK IAM authentication needs a build with the `msk-iam` feature \
         (the container image has it: cargo build --release --features msk-iam)"
    )]
    MskIamNotBuilt,
    /// A PostgreSQL URL's TLS settings are invalid.
    #[error("database URL: {0}")]
    Postgres(String),
}
