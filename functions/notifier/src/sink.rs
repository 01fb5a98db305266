//! Where messages go: a Slack-compatible webhook (`POST {"text": …}`) and/or
//! an SNS topic with e-mail subscriptions. The webhook URL is a secret: it is
//! never logged, never in an error message, never in `Debug` output.

use aws_sdk_sns::error::DisplayErrorContext;
use tokio::sync::OnceCell;

/// A secret URL; `Debug` prints `SecretUrl(***)`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretUrl(String);

impl SecretUrl {
    /// Wraps a URL.
    pub fn new(url: impl Into<String>) -> SecretUrl {
        SecretUrl(url.into().trim().to_string())
    }

    /// The URL itself, for the request only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretUrl(***)")
    }
}

/// Why a message could not be delivered.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SinkError {
    /// The webhook secret could not be read or holds no URL.
    #[error("webhook secret: {0}")]
    Secret(String),
    /// The webhook refused the message or could not be reached.
    #[error("webhook{}: {message}", status.map(|s| format!(" answered HTTP {s}")).unwrap_or_default())]
    Webhook {
        /// HTTP status, when one came back.
        status: Option<u16>,
        /// What went wrong (never the URL).
        message: String,
    },
    /// Publishing to the e-mail topic failed.
    #[error("SNS e-mail topic: {0}")]
    Email(String),
}

/// Reads a webhook URL from a secret string: the URL itself, or JSON with
/// `url` or `webhook_url`.
pub(crate) fn parse_secret(secret: &str) -> Result<SecretUrl, SinkError> {
    let s = secret.trim();
    let url = if s.starts_with('{') {
        let v: serde_json::Value = serde_json::from_str(s)
            .map_err(|_| SinkError::Secret("secret is JSON but not valid".into()))?;
        ["url", "webhook_url"]
            .iter()
            .find_map(|k| v.get(*k).and_then(|u| u.as_str()).map(str::to_string))
            .ok_or_else(|| {
                SinkError::Secret("secret JSON has no \"url\" or \"webhook_url\"".into())
            })?
    } else {
        s.to_string()
    };
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(SinkError::Secret(
            "secret does not hold an http(s) URL".into(),
        ));
    }
    Ok(SecretUrl::new(url))
}

/// The configured destinations.
#[derive(Debug)]
pub(crate) struct Sinks {
    http: reqwest::Client,
    webhook: OnceCell<Option<SecretUrl>>,
    webhook_url: Option<SecretUrl>,
    webhook_secret_id: Option<String>,
    secrets: aws_sdk_secretsmanager::Client,
    sns: aws_sdk_sns::Client,
    email_topic_arn: Option<String>,
}

impl Sinks {
    /// Destinations from the configuration; the secret is read on first use
    /// and cached for the life of the function.
    pub(crate) fn new(
        secrets: aws_sdk_secretsmanager::Client,
        sns: aws_sdk_sns::Client,
        webhook_url: Option<SecretUrl>,
        webhook_secret_id: Option<String>,
        email_topic_arn: Option<String>,
    ) -> Sinks {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(5))
            .build()
            .expect("an HTTP client with default TLS");
        Sinks {
            http,
            webhook: OnceCell::new(),
            webhook_url,
            webhook_secret_id,
            secrets,
            sns,
            email_topic_arn,
        }
    }

    /// True when at least one destination is configured.
    pub(crate) fn any(&self) -> bool {
        self.webhook_url.is_some()
            || self.webhook_secret_id.is_some()
            || self.email_topic_arn.is_some()
    }

    async fn webhook(&self) -> Result<Option<&SecretUrl>, SinkError> {
        let url = self
            .webhook
            .get_or_try_init(|| async {
                if let Some(u) = &self.webhook_url {
                    return Ok(Some(u.clone()));
                }
                let Some(id) = &self.webhook_secret_id else {
                    return Ok(None);
                };
                let out = self
                    .secrets
                    .get_secret_value()
                    .secret_id(id)
                    .send()
                    .await
                    .map_err(|e| {
                        SinkError::Secret(format!(
                            "GetSecretValue {id}: {}",
                            DisplayErrorContext(&e)
                        ))
                    })?;
                let s = out
                    .secret_string()
                    .ok_or_else(|| SinkError::Secret(format!("secret {id} has no string")))?;
                parse_secret(s).map(Some)
            })
            .await?;
        Ok(url.as_ref())
    }

    /// Sends one message to every destination; the first error wins, after
    /// all were tried.
    pub(crate) async fn send(&self, subject: &str, text: &str) -> Result<(), SinkError> {
        let mut result = Ok(());
        match self.webhook().await {
            Ok(Some(url)) => {
                if let Err(e) = self.post(url, text).await {
                    result = Err(e);
                }
            }
            Ok(None) => {}
            Err(e) => result = Err(e),
        }
        if let Some(topic) = &self.email_topic_arn
            && let Err(e) = self
                .sns
                .publish()
                .topic_arn(topic)
                .subject(subject)
                .message(text)
                .send()
                .await
        {
            let e = SinkError::Email(DisplayErrorContext(&e).to_string());
            if result.is_ok() {
                result = Err(e);
            }
        }
        result
    }

    async fn post(&self, url: &SecretUrl, text: &str) -> Result<(), SinkError> {
        let body = serde_json::json!({ "text": text }).to_string();
        let resp = self
            .http
            .post(url.expose())
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| SinkError::Webhook {
                status: None,
                message: e.without_url().to_string(),
            })?;
        let status = resp.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(());
        }
        let body = resp.text().await.unwrap_or_default();
        let url = url.expose();
        let message: String = body.replace(url, "***").chars().take(200).collect();
        Err(SinkError::Webhook {
            status: Some(status),
            message,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_in_both_forms() {
        let plain = parse_secret(" https://hooks.slack.com/services/T0/B0/xyz\n").unwrap();
        assert_eq!(plain.expose(), "https://hooks.slack.com/services/T0/B0/xyz");
        let json = parse_secret(r#"{"webhook_url":"https://example.com/hook/abc"}"#).unwrap();
        assert_eq!(json.expose(), "https://example.com/hook/abc");
        assert_eq!(format!("{json:?}"), "SecretUrl(***)");
        let e = parse_secret("s3cr3t-token").unwrap_err().to_string();
        assert!(!e.contains("s3cr3t"), "{e}");
        assert!(parse_secret(r#"{"token":"x"}"#).is_err());
    }
}
