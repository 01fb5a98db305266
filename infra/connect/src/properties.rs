//! The `key=value;key=value` list operators give librdkafka properties in
//! (`--kafka-properties`, `PRESCIENT_KAFKA_PROPERTIES`), parsed the same way
//! by every component, the Lambda functions included (no librdkafka needed
//! for this module).
//!
//! ```
//! let props = prescient_connect::properties::parse("security.protocol=ssl; sasl.password=a=b;")?;
//! assert_eq!(props[1], ("sasl.password".to_string(), "a=b".to_string()));
//! # Ok::<(), prescient_connect::ConnectError>(())
//! ```

use crate::ConnectError;

/// Parses `key=value;key=value`: values may contain `=`, blank entries are
/// skipped, and an entry that is not `key=value` is reported by position
/// only (its value may be a password).
pub fn parse(value: &str) -> Result<Vec<(String, String)>, ConnectError> {
    value
        .split(';')
        .map(str::trim)
        .filter(|kv| !kv.is_empty())
        .enumerate()
        .map(|(i, kv)| match kv.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                Ok((k.trim().to_string(), v.trim().to_string()))
            }
            _ => Err(ConnectError::Property { index: i + 1 }),
        })
        .collect()
}
