//! Environment configuration helpers both functions use: the error type,
//! value parsers, and reading through a lookup function so tests need no
//! process environment.
//!
//! ```
//! use prescient_functions_common::config::{nonempty, parse_positive};
//!
//! let env = |k: &str| (k == "PRESCIENT_MAX_CONCURRENCY").then(|| " 8 ".to_string());
//! let get = nonempty(env);
//! let n = get("PRESCIENT_MAX_CONCURRENCY").map(|v| parse_positive("PRESCIENT_MAX_CONCURRENCY", &v));
//! assert_eq!(n, Some(Ok(8)));
//! assert_eq!(get("PRESCIENT_UNSET"), None);
//! ```

/// A configuration value that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("environment variable {name}={value:?}: {why}")]
pub struct ConfigError {
    /// Variable name.
    pub name: &'static str,
    /// Its value.
    pub value: String,
    /// What is wrong.
    pub why: String,
}

/// `get`, with unset and blank values alike read as unset.
pub fn nonempty(get: impl Fn(&str) -> Option<String>) -> impl Fn(&str) -> Option<String> {
    move |k| get(k).filter(|v| !v.trim().is_empty())
}

/// Whether a property's value must not be shown (`*password*`, `*secret*`,
/// `*token*`, `*key*`, any case).
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["password", "secret", "token", "key"]
        .iter()
        .any(|s| k.contains(s))
}

/// `key=value;key=value` librdkafka properties
/// ([`prescient_connect::properties::parse`], the rule every component
/// uses), read from `PRESCIENT_KAFKA_PROPERTIES`.
pub fn parse_properties(value: &str) -> Result<Vec<(String, String)>, ConfigError> {
    prescient_connect::properties::parse(value).map_err(|e| ConfigError {
        name: "PRESCIENT_KAFKA_PROPERTIES",
        // The value may hold credentials: never echo it.
        value: "(not shown)".into(),
        why: e.to_string(),
    })
}

/// `true`/`false`, `1`/`0`, `yes`/`no` (any case).
pub fn parse_bool(name: &'static str, value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(ConfigError {
            name,
            value: value.into(),
            why: "expected true or false".into(),
        }),
    }
}

/// A whole number ≥ 1.
pub fn parse_positive(name: &'static str, value: &str) -> Result<u64, ConfigError> {
    match value.trim().parse::<u64>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(ConfigError {
            name,
            value: value.into(),
            why: "expected a whole number >= 1".into(),
        }),
    }
}
