//! Amazon MSK IAM authentication: SASL/OAUTHBEARER tokens that are SigV4
//! presigned `kafka-cluster:Connect` URLs, the same tokens AWS's own signer
//! libraries (`aws-msk-iam-sasl-signer-*`) produce.
//!
//! A token is `base64url(no padding)` of
//! `https://kafka.{region}.amazonaws.com/?Action=kafka-cluster%3AConnect&X-Amz-…`
//! signed for service `kafka-cluster`, valid 900 s, with a `User-Agent`
//! parameter appended after signing. Credentials come from the AWS default
//! chain (environment, web identity / IRSA, pod identity, instance profile),
//! fetched again for every token so rotated credentials are picked up.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use base64::Engine as _;
use rdkafka::client::OAuthToken;

use crate::sigv4::{Presign, presigned_url, push_query_param};

/// How long a token is valid (what AWS's signers use).
pub(crate) const TOKEN_LIFETIME: Duration = Duration::from_secs(900);

/// The `User-Agent` query parameter MSK logs for our connections.
const USER_AGENT: &str = concat!("prescient/", env!("CARGO_PKG_VERSION"));

/// Why no token could be made.
#[derive(Debug, thiserror::Error)]
pub(crate) enum MskIamError {
    /// The default credential chain found nothing.
    #[error("no AWS credentials for MSK IAM: {0}")]
    Credentials(String),
    /// Signing failed (bad region or credentials).
    #[error("signing the MSK IAM token: {0}")]
    Sign(String),
}

/// Signs tokens for one region with the AWS default credential chain.
pub(crate) struct MskIamSigner {
    region: String,
    provider: OnceLock<SharedCredentialsProvider>,
    runtime: tokio::runtime::Runtime,
}

impl MskIamSigner {
    /// A signer for an MSK cluster in `region`. Nothing is fetched until the
    /// first token.
    pub(crate) fn new(region: &str) -> MskIamSigner {
        MskIamSigner {
            region: region.to_string(),
            provider: OnceLock::new(),
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a current-thread tokio runtime"),
        }
    }

    /// A fresh token. librdkafka calls this from its own threads, which may
    /// sit inside another tokio runtime, so the credential lookup runs on a
    /// short-lived thread of its own.
    pub(crate) fn token(&self) -> Result<OAuthToken, MskIamError> {
        let creds = std::thread::scope(|s| {
            s.spawn(|| self.runtime.block_on(self.credentials()))
                .join()
                .unwrap_or_else(|_| Err(MskIamError::Credentials("lookup panicked".into())))
        })?;
        let now = SystemTime::now();
        let token = presign(&creds, &self.region, now)?;
        let expires = now + TOKEN_LIFETIME;
        Ok(OAuthToken {
            token,
            principal_name: creds.access_key_id().to_string(),
            lifetime_ms: expires
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis() as i64,
        })
    }

    async fn credentials(&self) -> Result<Credentials, MskIamError> {
        let provider = match self.provider.get() {
            Some(p) => p.clone(),
            None => {
                let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
                    .region(aws_config::Region::new(self.region.clone()))
                    .load()
                    .await;
                let p = sdk.credentials_provider().ok_or_else(|| {
                    MskIamError::Credentials("no credentials provider configured".into())
                })?;
                self.provider.get_or_init(|| p).clone()
            }
        };
        provider
            .provide_credentials()
            .await
            .map_err(|e| MskIamError::Credentials(format!("{e}")))
    }
}

/// The token for `creds` in `region` at `now`: the presigned URL, base64url
/// without padding.
pub(crate) fn presign(
    creds: &Credentials,
    region: &str,
    now: SystemTime,
) -> Result<String, MskIamError> {
    let base = format!("https://kafka.{region}.amazonaws.com/?Action=kafka-cluster%3AConnect");
    let mut url = presigned_url(
        creds,
        &Presign {
            url: &base,
            service: "kafka-cluster",
            region,
            signed_headers: &[],
            expires_in: TOKEN_LIFETIME,
        },
        now,
    )
    .map_err(|e| MskIamError::Sign(e.to_string()))?;
    push_query_param(&mut url, "User-Agent", USER_AGENT);
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(url))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(token: &str) -> String {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token)
            .unwrap();
        String::from_utf8(bytes).unwrap()
    }

    /// The reference values come from botocore's `SigV4QueryAuth` (what
    /// `aws-msk-iam-sasl-signer-python` uses) with the same credentials and
    /// clock; `scripts/msk-iam-reference.py` regenerates them.
    #[test]
    fn token_matches_botocore_signature() {
        let creds = Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            Some("session+/=token".into()),
            None,
            "test",
        );
        let now = UNIX_EPOCH + Duration::from_secs(1_795_255_200); // 2026-11-21T10:00:00Z
        let token = presign(&creds, "eu-west-1", now).unwrap();
        assert!(!token.contains('='), "no padding");
        let url = decode(&token);
        assert!(
            url.starts_with(
                "https://kafka.eu-west-1.amazonaws.com/?Action=kafka-cluster%3AConnect&"
            ),
            "{url}"
        );
        for part in [
            "X-Amz-Algorithm=AWS4-HMAC-SHA256",
            "X-Amz-Credential=AKIDEXAMPLE%2F20261121%2Feu-west-1%2Fkafka-cluster%2Faws4_request",
            "X-Amz-Date=20261121T100000Z",
            "X-Amz-Expires=900",
            "X-Amz-SignedHeaders=host",
            "X-Amz-Security-Token=session%2B%2F%3Dtoken",
            concat!("User-Agent=prescient%2F", env!("CARGO_PKG_VERSION")),
            REFERENCE_SIGNATURE,
        ] {
            assert!(url.contains(part), "{part} missing in {url}");
        }
        let other = presign(&creds, "us-east-1", now).unwrap();
        assert!(
            !decode(&other).contains(REFERENCE_SIGNATURE),
            "the region is signed"
        );
    }

    const REFERENCE_SIGNATURE: &str =
        "X-Amz-Signature=9d61084d0bde80814091f8d244e42775ef1dfd93799a7204d3a27326e0f7191d";
}
