//! Kafka client settings shared by every component: librdkafka property
//! passthrough and SASL/OAUTHBEARER for Amazon MSK IAM.
//!
//! Properties are applied *after* a component's own settings, so an operator
//! can override anything (e.g. `message.max.bytes`), and they are never
//! logged or echoed in errors (they may hold `sasl.password`).

use std::error::Error;

use rdkafka::ClientConfig;
use rdkafka::client::{ClientContext, OAuthToken};
use rdkafka::consumer::ConsumerContext;
use rdkafka::producer::{DeliveryResult, ProducerContext};

use crate::ConnectError;

/// Security settings for every Kafka client of one process.
///
/// `Default` is plaintext without authentication: the embedded broker of
/// `prescient demo` and the tests.
#[derive(Clone, Debug, Default)]
pub struct KafkaSecurity {
    /// librdkafka properties applied to every client after Prescient's own,
    /// e.g. `security.protocol=ssl`, `sasl.mechanism=SCRAM-SHA-512`.
    pub properties: Vec<(String, String)>,
    /// AWS region of an Amazon MSK cluster with IAM authentication. `Some`
    /// sets `security.protocol=SASL_SSL` and `sasl.mechanism=OAUTHBEARER`
    /// (unless `properties` say otherwise) and signs tokens with the AWS
    /// default credential chain (IRSA / pod identity on EKS).
    pub msk_iam_region: Option<String>,
}

impl KafkaSecurity {
    /// Parses `key=value;key=value` (the format of `--kafka-properties` and
    /// `PRESCIENT_KAFKA_PROPERTIES`; blank entries are skipped) and an
    /// optional MSK IAM region (blank means none).
    pub fn parse(properties: &str, msk_iam_region: Option<&str>) -> Result<Self, ConnectError> {
        Ok(KafkaSecurity {
            properties: crate::properties::parse(properties)?,
            msk_iam_region: msk_iam_region
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(String::from),
        })
    }

    /// Whether anything beyond plaintext is configured.
    pub fn is_plaintext(&self) -> bool {
        self.properties.is_empty() && self.msk_iam_region.is_none()
    }

    /// Applies the settings to `config` (call after the component's own
    /// `set`s, so these win).
    pub fn apply<'a>(&self, config: &'a mut ClientConfig) -> &'a mut ClientConfig {
        if self.msk_iam_region.is_some() {
            config
                .set("security.protocol", "SASL_SSL")
                .set("sasl.mechanism", "OAUTHBEARER");
        }
        for (k, v) in &self.properties {
            config.set(k, v);
        }
        config
    }

    /// A client configuration for `brokers` with these settings applied.
    /// Component settings `set` on the result after this call override the
    /// operator's properties; set them before [`KafkaSecurity::apply`] where
    /// the operator must win.
    pub fn client_config(&self, brokers: &str) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", brokers);
        self.apply(&mut config);
        config
    }

    /// The OAUTHBEARER token source these settings call for (for components
    /// with their own client context; see [`OAuth::token`]).
    pub fn oauth(&self) -> Result<OAuth, ConnectError> {
        match &self.msk_iam_region {
            None => Ok(OAuth::default()),
            #[cfg(feature = "msk-iam")]
            Some(region) => Ok(OAuth {
                signer: Some(std::sync::Arc::new(crate::msk_iam::MskIamSigner::new(
                    region,
                ))),
            }),
            #[cfg(not(feature = "msk-iam"))]
            Some(_) => Err(ConnectError::MskIamNotBuilt),
        }
    }

    /// A client context that supplies OAUTHBEARER tokens when configured.
    pub fn context(&self) -> Result<KafkaContext, ConnectError> {
        Ok(KafkaContext {
            oauth: self.oauth()?,
        })
    }
}

/// Where SASL/OAUTHBEARER tokens come from. The default has none: a client
/// configured for OAUTHBEARER without MSK IAM fails its authentication with a
/// message saying so.
#[derive(Clone, Default)]
pub struct OAuth {
    #[cfg(feature = "msk-iam")]
    signer: Option<std::sync::Arc<crate::msk_iam::MskIamSigner>>,
}

impl std::fmt::Debug for OAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        #[cfg(feature = "msk-iam")]
        let msk = self.signer.is_some();
        #[cfg(not(feature = "msk-iam"))]
        let msk = false;
        f.debug_struct("OAuth").field("msk_iam", &msk).finish()
    }
}

impl OAuth {
    /// A fresh token, for [`ClientContext::generate_oauth_token`] (librdkafka
    /// calls it before the first connection and again before each token
    /// expires).
    pub fn token(&self) -> Result<OAuthToken, Box<dyn Error>> {
        #[cfg(feature = "msk-iam")]
        if let Some(signer) = &self.signer {
            return signer.token().map_err(|e| {
                tracing::error!(error = %e, "MSK IAM token");
                e.into()
            });
        }
        Err(
            "sasl.mechanism=OAUTHBEARER needs MSK IAM (--kafka-msk-iam-region); \
             no other token source is supported"
                .into(),
        )
    }
}

/// A client context for consumers and producers that need nothing else:
/// supplies OAUTHBEARER tokens as [`OAuth`] says, logs like the default.
#[derive(Clone, Debug, Default)]
pub struct KafkaContext {
    oauth: OAuth,
}

impl ClientContext for KafkaContext {
    crate::oauth_token_hook!(oauth);
}

/// Inside an `impl rdkafka::ClientContext for T` block: turns on librdkafka's
/// OAUTHBEARER refresh callback and answers it from the [`OAuth`] field
/// `$field` of `T`. For client contexts that need callbacks of their own
/// (the dataflow's source and dead-letter producer); others use
/// [`KafkaContext`].
#[macro_export]
macro_rules! oauth_token_hook {
    ($field:ident) => {
        const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

        fn generate_oauth_token(
            &self,
            _oauthbearer_config: ::std::option::Option<&str>,
        ) -> ::std::result::Result<
            $crate::rdkafka::client::OAuthToken,
            ::std::boxed::Box<dyn ::std::error::Error>,
        > {
            self.$field.token()
        }
    };
}

impl ConsumerContext for KafkaContext {}

impl ProducerContext for KafkaContext {
    type DeliveryOpaque = ();
    fn delivery(&self, _result: &DeliveryResult<'_>, _opaque: ()) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_parse_and_never_echo_values() {
        let s = KafkaSecurity::parse(
            " security.protocol=SASL_SSL ; sasl.password=a=b;; sasl.mechanism=SCRAM-SHA-512",
            Some("  "),
        )
        .unwrap();
        assert_eq!(
            s.properties,
            vec![
                ("security.protocol".into(), "SASL_SSL".into()),
                ("sasl.password".into(), "a=b".into()),
                ("sasl.mechanism".into(), "SCRAM-SHA-512".into()),
            ]
        );
        assert_eq!(s.msk_iam_region, None);
        let e = KafkaSecurity::parse("a=1;sasl.password", None).unwrap_err();
        assert_eq!(e.to_string(), "Kafka properties: entry 2 is not key=value");
        assert!(KafkaSecurity::parse("=x", None).is_err());
        assert!(KafkaSecurity::default().is_plaintext());
    }

    #[test]
    fn operator_properties_override_and_msk_iam_sets_sasl() {
        let s = KafkaSecurity::parse("security.protocol=SSL", Some("eu-west-1")).unwrap();
        let mut c = ClientConfig::new();
        c.set("security.protocol", "plaintext")
            .set("linger.ms", "5");
        s.apply(&mut c);
        assert_eq!(c.get("security.protocol"), Some("SSL"), "operator wins");
        assert_eq!(c.get("sasl.mechanism"), Some("OAUTHBEARER"));
        assert_eq!(c.get("linger.ms"), Some("5"));
        let c = s.client_config("b:9098");
        assert_eq!(c.get("bootstrap.servers"), Some("b:9098"));
    }

    #[test]
    fn oauthbearer_without_a_source_is_a_clear_error() {
        let Err(e) = OAuth::default().token() else {
            panic!("a token without a source")
        };
        assert!(e.to_string().contains("--kafka-msk-iam-region"), "{e}");
        #[cfg(not(feature = "msk-iam"))]
        assert!(matches!(
            KafkaSecurity::parse("", Some("eu-west-1"))
                .unwrap()
                .context(),
            Err(ConnectError::MskIamNotBuilt)
        ));
    }

    #[test]
    fn a_tls_client_is_created_with_this_build_of_librdkafka() {
        // Fails at create() if librdkafka was built without OpenSSL.
        let s = KafkaSecurity::parse("security.protocol=ssl", None).unwrap();
        let consumer: Result<rdkafka::consumer::BaseConsumer<KafkaContext>, _> = s
            .client_config("127.0.0.1:1")
            .set("group.id", "t")
            .create_with_context(s.context().unwrap());
        assert!(consumer.is_ok(), "{:?}", consumer.err());
        let s = KafkaSecurity::parse("security.protocol=sasl_ssl;sasl.mechanism=SCRAM-SHA-512;sasl.username=u;sasl.password=p", None).unwrap();
        let producer: Result<rdkafka::producer::BaseProducer<KafkaContext>, _> = s
            .client_config("127.0.0.1:1")
            .create_with_context(s.context().unwrap());
        assert!(producer.is_ok(), "{:?}", producer.err());
    }
}
