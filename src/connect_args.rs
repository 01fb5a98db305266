//! Connection-security flags shared by every command that talks to Kafka or
//! PostgreSQL outside the embedded demo (see `prescient_connect` and
//! docs/deploy.md "Connections").

use prescient_connect::KafkaSecurity;

/// Kafka TLS/SASL flags, flattened into `dataflow`, `forecaster` and
/// `produce`. Both default to plaintext (the embedded broker).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct KafkaSecurityArgs {
    /// Extra librdkafka properties for every Kafka client, `key=value;key=value`,
    /// e.g. `security.protocol=SSL` or `security.protocol=SASL_SSL;sasl.mechanism=SCRAM-SHA-512;sasl.username=u;sasl.password=p`
    /// [default: none: plaintext].
    #[arg(long, env = "PRESCIENT_KAFKA_PROPERTIES", hide_env_values = true, value_parser = properties)]
    pub kafka_properties: Option<Properties>,
    /// AWS region of an Amazon MSK cluster with IAM authentication: sets
    /// SASL_SSL + OAUTHBEARER and signs tokens with the AWS default credential
    /// chain (IRSA / pod identity); needs a build with `--features msk-iam`.
    #[arg(long, env = "PRESCIENT_KAFKA_MSK_IAM_REGION")]
    pub kafka_msk_iam_region: Option<String>,
}

/// Parsed `--kafka-properties` (the values are never printed).
#[derive(Clone)]
pub struct Properties(Vec<(String, String)>);

impl std::fmt::Debug for Properties {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(k, _)| k))
            .finish()
    }
}

fn properties(s: &str) -> Result<Properties, String> {
    prescient_connect::properties::parse(s)
        .map(Properties)
        .map_err(|e| e.to_string())
}

impl KafkaSecurityArgs {
    /// The settings these flags give.
    pub fn security(&self) -> KafkaSecurity {
        KafkaSecurity {
            properties: self
                .kafka_properties
                .as_ref()
                .map(|p| p.0.clone())
                .unwrap_or_default(),
            msk_iam_region: self
                .kafka_msk_iam_region
                .as_deref()
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(String::from),
        }
    }
}

/// Checks a database URL's TLS parameters before the first connection, so a
/// misspelt `sslmode` or a missing CA bundle fails at start, by name.
pub fn check_database_url(url: &str) -> anyhow::Result<()> {
    prescient_connect::postgres::check_url(url)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        kafka: KafkaSecurityArgs,
    }

    #[test]
    fn flags_parse_into_settings() {
        let t = T::try_parse_from([
            "t",
            "--kafka-properties",
            "security.protocol=SSL;ssl.ca.location=/ca.pem",
            "--kafka-msk-iam-region",
            "eu-west-1",
        ])
        .unwrap();
        let s = t.kafka.security();
        assert_eq!(s.properties.len(), 2);
        assert_eq!(s.msk_iam_region.as_deref(), Some("eu-west-1"));
        let e = T::try_parse_from(["t", "--kafka-properties", "sasl.password"])
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("not key=value"), "{e}");
        assert!(
            T::try_parse_from(["t"])
                .unwrap()
                .kafka
                .security()
                .is_plaintext()
        );
    }
}
