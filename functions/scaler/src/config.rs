//! Configuration, from environment variables only.
//!
//! | variable | default | meaning |
//! | --- | --- | --- |
//! | `PRESCIENT_ACTIONS_TOPIC_ARN` | unset | SNS topic each outcome is published to; unset: outcomes are only logged |
//! | `PRESCIENT_FORCE_DRY_RUN` | `false` | `true`: handle every decision as `dry-run`, whatever its mode |
//! | `PRESCIENT_MAX_CONCURRENCY` | `16` | targets handled at the same time within one batch |
//! | `PRESCIENT_HTTP_TIMEOUT_MS` | `5000` | timeout of each Kubernetes API request |
//! | `PRESCIENT_STS_URL` | `https://sts.{region}.amazonaws.com/` | STS endpoint the EKS token is presigned for |
//! | `PRESCIENT_KAFKA_BROKERS` | unset | bootstrap servers; set: outcomes also go to Kafka (needs the `kafka` build feature) |
//! | `PRESCIENT_ACTIONS_KAFKA_TOPIC` | `scaling-actions` | topic for outcomes on Kafka |
//! | `PRESCIENT_KAFKA_PROPERTIES` | unset | extra librdkafka properties, `key=value;key=value` (e.g. `security.protocol=ssl`) |
//!
//! AWS clients take the standard SDK configuration (`AWS_REGION`,
//! `AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_EKS`, `AWS_ENDPOINT_URL_SNS`,
//! credentials), so the function can be pointed at an emulator unchanged.

use std::time::Duration;

pub use prescient_functions_common::config::ConfigError;
use prescient_functions_common::config::{
    is_secret_key, nonempty, parse_bool, parse_positive, parse_properties,
};

/// The scaler's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// SNS topic ARN for outcomes (`PRESCIENT_ACTIONS_TOPIC_ARN`).
    pub actions_topic_arn: Option<String>,
    /// Handle every decision as dry-run (`PRESCIENT_FORCE_DRY_RUN`).
    pub force_dry_run: bool,
    /// Targets handled concurrently (`PRESCIENT_MAX_CONCURRENCY`).
    pub max_concurrency: usize,
    /// Kubernetes API request timeout (`PRESCIENT_HTTP_TIMEOUT_MS`).
    pub http_timeout: Duration,
    /// STS endpoint override for the EKS token (`PRESCIENT_STS_URL`).
    pub sts_url: Option<String>,
    /// Kafka publishing of outcomes, when configured.
    pub kafka: Option<KafkaConfig>,
}

/// Where outcomes go on Kafka. `Debug` hides the values of properties
/// that look secret (`*password*`, `*secret*`, `*token*`, `*key*`).
#[derive(Clone, PartialEq, Eq)]
pub struct KafkaConfig {
    /// `bootstrap.servers` (`PRESCIENT_KAFKA_BROKERS`).
    pub brokers: String,
    /// Topic (`PRESCIENT_ACTIONS_KAFKA_TOPIC`, default `scaling-actions`).
    pub topic: String,
    /// Extra librdkafka properties (`PRESCIENT_KAFKA_PROPERTIES`).
    pub properties: Vec<(String, String)>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            actions_topic_arn: None,
            force_dry_run: false,
            max_concurrency: 16,
            http_timeout: Duration::from_millis(5000),
            sts_url: None,
            kafka: None,
        }
    }
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads settings through `get` (the environment, or a map in tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let d = Config::default();
        let nonempty = nonempty(get);
        Ok(Config {
            actions_topic_arn: nonempty("PRESCIENT_ACTIONS_TOPIC_ARN"),
            force_dry_run: match nonempty("PRESCIENT_FORCE_DRY_RUN") {
                None => d.force_dry_run,
                Some(v) => parse_bool("PRESCIENT_FORCE_DRY_RUN", &v)?,
            },
            max_concurrency: match nonempty("PRESCIENT_MAX_CONCURRENCY") {
                None => d.max_concurrency,
                Some(v) => parse_positive("PRESCIENT_MAX_CONCURRENCY", &v)? as usize,
            },
            http_timeout: match nonempty("PRESCIENT_HTTP_TIMEOUT_MS") {
                None => d.http_timeout,
                Some(v) => Duration::from_millis(parse_positive("PRESCIENT_HTTP_TIMEOUT_MS", &v)?),
            },
            sts_url: nonempty("PRESCIENT_STS_URL"),
            kafka: match nonempty("PRESCIENT_KAFKA_BROKERS") {
                None => None,
                Some(brokers) => Some(KafkaConfig {
                    brokers: check_kafka_feature(brokers)?,
                    topic: nonempty("PRESCIENT_ACTIONS_KAFKA_TOPIC")
                        .unwrap_or_else(|| prescient_contracts::SCALING_ACTIONS_TOPIC.to_string()),
                    properties: match nonempty("PRESCIENT_KAFKA_PROPERTIES") {
                        None => Vec::new(),
                        Some(v) => parse_properties(&v)?,
                    },
                }),
            },
        })
    }
}

impl std::fmt::Debug for KafkaConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let props: Vec<(&str, &str)> = self
            .properties
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str(),
                    if is_secret_key(k) { "***" } else { v.as_str() },
                )
            })
            .collect();
        f.debug_struct("KafkaConfig")
            .field("brokers", &self.brokers)
            .field("topic", &self.topic)
            .field("properties", &props)
            .finish()
    }
}

#[cfg(feature = "kafka")]
fn check_kafka_feature(brokers: String) -> Result<String, ConfigError> {
    Ok(brokers)
}

#[cfg(not(feature = "kafka"))]
fn check_kafka_feature(brokers: String) -> Result<String, ConfigError> {
    Err(ConfigError {
        name: "PRESCIENT_KAFKA_BROKERS",
        value: brokers,
        why: "this build has no Kafka support: build with --features kafka".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use prescient_functions_common::testkit::lookup_pairs;

    fn cfg(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_lookup(lookup_pairs(pairs))
    }

    #[test]
    fn defaults_and_overrides() {
        assert_eq!(cfg(&[]).unwrap(), Config::default());
        let c = cfg(&[
            (
                "PRESCIENT_ACTIONS_TOPIC_ARN",
                "arn:aws:sns:us-east-1:123456789012:actions",
            ),
            ("PRESCIENT_FORCE_DRY_RUN", "YES"),
            ("PRESCIENT_MAX_CONCURRENCY", "4"),
            ("PRESCIENT_HTTP_TIMEOUT_MS", "250"),
            ("PRESCIENT_STS_URL", ""),
        ])
        .unwrap();
        assert_eq!(
            c.actions_topic_arn.as_deref(),
            Some("arn:aws:sns:us-east-1:123456789012:actions")
        );
        assert!(c.force_dry_run);
        assert_eq!(c.max_concurrency, 4);
        assert_eq!(c.http_timeout, Duration::from_millis(250));
        assert_eq!(c.sts_url, None);
    }

    #[test]
    fn kafka_settings() {
        let props = parse_properties("security.protocol=ssl; client.id = scaler ;").unwrap();
        assert_eq!(
            props,
            [
                ("security.protocol".into(), "ssl".into()),
                ("client.id".into(), "scaler".into())
            ]
        );
        let e = parse_properties("sasl.password=hunter2;oops").unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let k = KafkaConfig {
            brokers: "b:9092".into(),
            topic: "t".into(),
            properties: parse_properties("sasl.password=hunter2;client.id=scaler").unwrap(),
        };
        let shown = format!("{k:?}");
        assert!(
            !shown.contains("hunter2") && shown.contains("scaler"),
            "{shown}"
        );
        let c = cfg(&[("PRESCIENT_KAFKA_BROKERS", "b-1:9092")]);
        if cfg!(feature = "kafka") {
            let k = c.unwrap().kafka.unwrap();
            assert_eq!(
                (k.brokers.as_str(), k.topic.as_str()),
                ("b-1:9092", "scaling-actions")
            );
        } else {
            assert!(c.unwrap_err().why.contains("--features kafka"));
        }
    }

    #[test]
    fn rejects_bad_values_naming_the_variable() {
        let e = cfg(&[("PRESCIENT_FORCE_DRY_RUN", "maybe")]).unwrap_err();
        assert_eq!(e.name, "PRESCIENT_FORCE_DRY_RUN");
        let e = cfg(&[("PRESCIENT_MAX_CONCURRENCY", "0")]).unwrap_err();
        assert!(e.to_string().contains("PRESCIENT_MAX_CONCURRENCY"));
    }
}
