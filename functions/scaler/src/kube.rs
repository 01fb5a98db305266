//! Scaling a Deployment through the cluster's Kubernetes API, the way
//! `kubectl scale` does with an EKS token.
//!
//! * endpoint and CA come from `DescribeCluster` ([`crate::eks::Eks::cluster_access`]);
//! * the bearer token is what `aws-iam-authenticator` / `aws eks get-token`
//!   produce: a presigned STS `GetCallerIdentity` URL (signed header
//!   `x-k8s-aws-id: {cluster}`, valid 60 s), base64url-encoded without
//!   padding behind `k8s-aws-v1.`;
//! * the size is read with `GET` and set with a merge `PATCH` of
//!   `/apis/apps/v1/namespaces/{ns}/deployments/{name}/scale`.
//!
//! The function's IAM role must be mapped to a Kubernetes identity allowed
//! to `get` and `patch` `deployments/scale` (an EKS access entry or
//! `aws-auth`), see `docs/functions.md`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use aws_config::SdkConfig;
use aws_credential_types::Credentials;
use aws_credential_types::provider::ProvideCredentials;
use base64::Engine as _;
use prescient_connect::sigv4::{Presign, presigned_url};

use crate::error::{ScalerError, kube_status_is_retryable};

/// Prefix of an EKS bearer token.
pub(crate) const TOKEN_PREFIX: &str = "k8s-aws-v1.";

/// How long a token is reused before a fresh one is signed (EKS accepts
/// them for 15 minutes).
const TOKEN_REUSE: Duration = Duration::from_secs(10 * 60);

/// Where a cluster's Kubernetes API is and how to trust it.
#[derive(Clone, PartialEq, Eq)]
pub struct ClusterAccess {
    /// `https://…` API server endpoint.
    pub endpoint: String,
    /// The cluster CA bundle, PEM.
    pub ca_pem: Vec<u8>,
}

impl std::fmt::Debug for ClusterAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterAccess")
            .field("endpoint", &self.endpoint)
            .field("ca_pem", &format_args!("{} bytes", self.ca_pem.len()))
            .finish()
    }
}

struct KubeCluster {
    base: String,
    http: reqwest::Client,
}

/// Kubernetes API client for any number of EKS clusters: one HTTPS client
/// per cluster (trusting only that cluster's CA) and a token cache.
pub struct Kube {
    sdk: SdkConfig,
    sts_url: String,
    timeout: Duration,
    clusters: Mutex<HashMap<String, Arc<KubeCluster>>>,
    tokens: Mutex<HashMap<String, (String, Instant)>>,
}

impl std::fmt::Debug for Kube {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kube")
            .field("sts_url", &self.sts_url)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Kube {
    /// A client signing tokens with `sdk`'s credentials and region, for the
    /// STS endpoint `sts_url` (default `https://sts.{region}.amazonaws.com/`).
    pub fn new(sdk: &SdkConfig, sts_url: Option<String>, timeout: Duration) -> Kube {
        let region = sdk
            .region()
            .map(|r| r.to_string())
            .unwrap_or_else(|| "us-east-1".into());
        Kube {
            sdk: sdk.clone(),
            sts_url: sts_url.unwrap_or_else(|| format!("https://sts.{region}.amazonaws.com/")),
            timeout,
            clusters: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
        }
    }

    /// True once [`Kube::add_cluster`] was called for `cluster`.
    pub fn knows(&self, cluster: &str) -> bool {
        self.clusters
            .lock()
            .expect("cluster map")
            .contains_key(cluster)
    }

    /// Registers how to reach `cluster` (from `DescribeCluster`, or a test).
    pub fn add_cluster(&self, cluster: &str, access: ClusterAccess) -> Result<(), ScalerError> {
        let bad = |message: String| ScalerError::ClusterAccess {
            cluster: cluster.into(),
            message,
        };
        if !access.endpoint.starts_with("https://") {
            return Err(bad(format!("endpoint {:?} is not https", access.endpoint)));
        }
        let certs = reqwest::Certificate::from_pem_bundle(&access.ca_pem)
            .map_err(|e| bad(format!("CA is not a PEM bundle: {e}")))?;
        if certs.is_empty() {
            return Err(bad("CA bundle holds no certificate".into()));
        }
        let http = reqwest::Client::builder()
            .tls_certs_only(certs)
            .timeout(self.timeout)
            .build()
            .map_err(|e| bad(format!("building the HTTPS client: {e}")))?;
        let base = access.endpoint.trim_end_matches('/').to_string();
        self.clusters
            .lock()
            .expect("cluster map")
            .insert(cluster.into(), Arc::new(KubeCluster { base, http }));
        Ok(())
    }

    fn cluster(&self, cluster: &str) -> Result<Arc<KubeCluster>, ScalerError> {
        self.clusters
            .lock()
            .expect("cluster map")
            .get(cluster)
            .cloned()
            .ok_or_else(|| ScalerError::ClusterAccess {
                cluster: cluster.into(),
                message: "cluster endpoint unknown".into(),
            })
    }

    /// A bearer token for `cluster`, reused for 10 minutes.
    pub async fn token(&self, cluster: &str) -> Result<String, ScalerError> {
        if let Some((token, at)) = self.tokens.lock().expect("token cache").get(cluster)
            && at.elapsed() < TOKEN_REUSE
        {
            return Ok(token.clone());
        }
        let provider = self
            .sdk
            .credentials_provider()
            .ok_or(ScalerError::NoCredentialsProvider)?;
        let creds = provider
            .provide_credentials()
            .await
            .map_err(|e| ScalerError::Token(e.to_string()))?;
        let region = self
            .sdk
            .region()
            .map(|r| r.to_string())
            .unwrap_or_else(|| "us-east-1".into());
        let token = presign_token(&creds, &region, cluster, &self.sts_url, SystemTime::now())?;
        self.tokens
            .lock()
            .expect("token cache")
            .insert(cluster.into(), (token.clone(), Instant::now()));
        Ok(token)
    }

    fn forget_token(&self, cluster: &str) {
        self.tokens.lock().expect("token cache").remove(cluster);
    }

    /// `GET …/deployments/{name}/scale`: the Deployment's desired replicas.
    pub async fn replicas(
        &self,
        cluster: &str,
        namespace: &str,
        name: &str,
    ) -> Result<u32, ScalerError> {
        const OP: &str = "GET deployments/scale";
        let c = self.cluster(cluster)?;
        let url = scale_url(&c.base, namespace, name)?;
        let token = self.token(cluster).await?;
        let resp = c
            .http
            .get(&url)
            .bearer_auth(&token)
            .header("accept", "application/json")
            .send()
            .await;
        let body = self.check(cluster, OP, resp).await?;
        parse_scale(&body).map_err(|message| ScalerError::Kube {
            operation: OP,
            status: None,
            message,
            retryable: false,
        })
    }

    /// Merge-`PATCH …/deployments/{name}/scale` with `{"spec":{"replicas":n}}`.
    pub async fn set_replicas(
        &self,
        cluster: &str,
        namespace: &str,
        name: &str,
        replicas: u32,
    ) -> Result<(), ScalerError> {
        const OP: &str = "PATCH deployments/scale";
        let c = self.cluster(cluster)?;
        let url = scale_url(&c.base, namespace, name)?;
        let token = self.token(cluster).await?;
        let body = serde_json::json!({ "spec": { "replicas": replicas } }).to_string();
        let resp = c
            .http
            .patch(&url)
            .bearer_auth(&token)
            .header("content-type", "application/merge-patch+json")
            .header("accept", "application/json")
            .body(body)
            .send()
            .await;
        self.check(cluster, OP, resp).await.map(|_| ())
    }

    async fn check(
        &self,
        cluster: &str,
        operation: &'static str,
        resp: Result<reqwest::Response, reqwest::Error>,
    ) -> Result<Vec<u8>, ScalerError> {
        let resp = resp.map_err(|e| ScalerError::Kube {
            operation,
            status: None,
            message: e.without_url().to_string(),
            retryable: true,
        })?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map_err(|e| ScalerError::Kube {
            operation,
            status: Some(status),
            message: e.without_url().to_string(),
            retryable: true,
        })?;
        if (200..300).contains(&status) {
            return Ok(body.to_vec());
        }
        if status == 401 {
            self.forget_token(cluster);
        }
        let message = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| {
                v.get("message")
                    .and_then(|m| m.as_str())
                    .map(str::to_string)
            })
            .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned());
        Err(ScalerError::Kube {
            operation,
            status: Some(status),
            message,
            retryable: kube_status_is_retryable(status),
        })
    }
}

/// True for a Kubernetes object name or namespace (RFC 1123 subdomain):
/// lowercase alphanumerics, `-` and `.`, at most 253 characters.
pub(crate) fn is_valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && s.as_bytes()[0].is_ascii_alphanumeric()
        && s.as_bytes()[s.len() - 1].is_ascii_alphanumeric()
}

/// `{base}/apis/apps/v1/namespaces/{ns}/deployments/{name}/scale`, refusing
/// names that are not valid Kubernetes names.
pub(crate) fn scale_url(base: &str, namespace: &str, name: &str) -> Result<String, ScalerError> {
    for (what, v) in [("namespace", namespace), ("name", name)] {
        if !is_valid_name(v) {
            return Err(ScalerError::Kube {
                operation: "scale",
                status: None,
                message: format!("{what} {v:?} is not a valid Kubernetes name"),
                retryable: false,
            });
        }
    }
    Ok(format!(
        "{base}/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"
    ))
}

/// `spec.replicas` of an `autoscaling/v1` `Scale` (absent means 0).
pub(crate) fn parse_scale(body: &[u8]) -> Result<u32, String> {
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("Scale is not JSON: {e}"))?;
    match v.pointer("/spec/replicas") {
        None | Some(serde_json::Value::Null) => Ok(0),
        Some(n) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| format!("spec.replicas is not a count: {n}")),
    }
}

/// Signs an EKS bearer token for `cluster`: a presigned STS
/// `GetCallerIdentity` GET on `sts_url`, with `x-k8s-aws-id` signed and
/// `X-Amz-Expires=60`, base64url (no padding) behind [`TOKEN_PREFIX`].
pub(crate) fn presign_token(
    creds: &Credentials,
    region: &str,
    cluster: &str,
    sts_url: &str,
    now: SystemTime,
) -> Result<String, ScalerError> {
    let base = format!(
        "{}?Action=GetCallerIdentity&Version=2011-06-15",
        ensure_slash(sts_url)
    );
    let url = presigned_url(
        creds,
        &Presign {
            url: &base,
            service: "sts",
            region,
            signed_headers: &[("x-k8s-aws-id", cluster)],
            expires_in: Duration::from_secs(60),
        },
        now,
    )
    .map_err(|e| ScalerError::Token(e.to_string()))?;
    Ok(format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(url)
    ))
}

fn ensure_slash(url: &str) -> String {
    let after_scheme = url.split_once("://").map(|(_, rest)| rest).unwrap_or(url);
    if after_scheme.contains('/') {
        url.to_string()
    } else {
        format!("{url}/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes a token back into its presigned URL (for tests and debugging).
    fn token_url(token: &str) -> Option<String> {
        let b64 = token.strip_prefix(TOKEN_PREFIX)?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(b64)
            .ok()?;
        String::from_utf8(bytes).ok()
    }

    #[test]
    fn token_is_a_presigned_get_caller_identity() {
        let creds = Credentials::new(
            "AKIDEXAMPLE",
            "secret",
            Some("session+/=".into()),
            None,
            "test",
        );
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_255_200);
        let token = presign_token(
            &creds,
            "eu-west-1",
            "prod",
            "https://sts.eu-west-1.amazonaws.com",
            now,
        )
        .unwrap();
        assert!(token.starts_with(TOKEN_PREFIX));
        assert!(!token.contains('='), "no padding");
        let url = token_url(&token).unwrap();
        assert!(
            url.starts_with(
                "https://sts.eu-west-1.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15&"
            ),
            "{url}"
        );
        for part in [
            "X-Amz-Algorithm=AWS4-HMAC-SHA256",
            "X-Amz-Credential=AKIDEXAMPLE%2F20261121%2Feu-west-1%2Fsts%2Faws4_request",
            "X-Amz-Date=20261121T100000Z",
            "X-Amz-Expires=60",
            "X-Amz-SignedHeaders=host%3Bx-k8s-aws-id",
            "X-Amz-Security-Token=session%2B%2F%3D",
            "X-Amz-Signature=",
        ] {
            assert!(url.contains(part), "{part} missing in {url}");
        }
        let other = presign_token(
            &creds,
            "eu-west-1",
            "staging",
            "https://sts.eu-west-1.amazonaws.com/",
            now,
        )
        .unwrap();
        assert_ne!(token, other, "the cluster name is signed");
    }

    #[test]
    fn names_and_urls() {
        assert!(is_valid_name("shop"));
        assert!(is_valid_name("api-v2.internal"));
        for bad in ["", "Shop", "a/b", "-x", "x-", "../etc", "a b"] {
            assert!(!is_valid_name(bad), "{bad:?}");
        }
        assert_eq!(
            scale_url("https://k", "shop", "api").unwrap(),
            "https://k/apis/apps/v1/namespaces/shop/deployments/api/scale"
        );
        let e = scale_url("https://k", "shop", "../../x").unwrap_err();
        assert!(!e.is_retryable());
    }

    #[test]
    fn scale_bodies() {
        assert_eq!(
            parse_scale(br#"{"kind":"Scale","spec":{"replicas":3},"status":{"replicas":2}}"#),
            Ok(3)
        );
        assert_eq!(parse_scale(br#"{"kind":"Scale","spec":{}}"#), Ok(0));
        assert!(parse_scale(br#"{"spec":{"replicas":-1}}"#).is_err());
        assert!(parse_scale(b"<html>").is_err());
    }

    #[test]
    fn rejects_unusable_cluster_access() {
        let sdk = SdkConfig::builder().build();
        let kube = Kube::new(&sdk, None, Duration::from_secs(1));
        let e = kube
            .add_cluster(
                "c",
                ClusterAccess {
                    endpoint: "http://x".into(),
                    ca_pem: b"pem".to_vec(),
                },
            )
            .unwrap_err();
        assert!(e.to_string().contains("not https"));
        let e = kube
            .add_cluster(
                "c",
                ClusterAccess {
                    endpoint: "https://x".into(),
                    ca_pem: b"not a pem".to_vec(),
                },
            )
            .unwrap_err();
        assert!(!e.is_retryable());
        assert!(!kube.knows("c"));
    }

    #[tokio::test]
    async fn no_credentials_provider_is_not_retried() {
        // A Lambda deployed without any credentials source: retrying the
        // record can never succeed, so it must be reported, not retried.
        let sdk = SdkConfig::builder()
            .region(aws_config::Region::new("eu-west-1"))
            .build();
        let kube = Kube::new(&sdk, None, Duration::from_secs(1));
        let e = kube.token("prod").await.unwrap_err();
        assert!(matches!(e, ScalerError::NoCredentialsProvider), "{e:?}");
        assert!(!e.is_retryable(), "{e}");
    }
}
