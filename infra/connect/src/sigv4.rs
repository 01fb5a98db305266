//! SigV4 presigned GET URLs (feature `sigv4`): what both the MSK IAM token
//! (`kafka-cluster:Connect`) and the EKS bearer token (STS
//! `GetCallerIdentity`) are, signed with `aws-sigv4` in one place.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use aws_credential_types::Credentials;
//! use prescient_connect::sigv4::{Presign, presigned_url};
//!
//! let creds = Credentials::new("AKIDEXAMPLE", "secret", None, None, "example");
//! let url = presigned_url(
//!     &creds,
//!     &Presign {
//!         url: "https://sts.eu-west-1.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15",
//!         service: "sts",
//!         region: "eu-west-1",
//!         signed_headers: &[("x-k8s-aws-id", "prod")],
//!         expires_in: Duration::from_secs(60),
//!     },
//!     SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_255_200),
//! )?;
//! assert!(url.contains("&X-Amz-Expires=60&") && url.contains("X-Amz-SignedHeaders=host%3Bx-k8s-aws-id"));
//! # Ok::<(), prescient_connect::sigv4::SignError>(())
//! ```

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;

/// Signing failed (a malformed URL, region or header).
#[derive(Debug, thiserror::Error)]
#[error("SigV4 presigning: {0}")]
pub struct SignError(String);

/// What to presign.
#[derive(Debug, Clone, Copy)]
pub struct Presign<'a> {
    /// The GET URL, with its own query (`Action=...`).
    pub url: &'a str,
    /// The signing name of the service (`sts`, `kafka-cluster`).
    pub service: &'a str,
    /// AWS region.
    pub region: &'a str,
    /// Headers the verifier will see and must be signed (besides `host`).
    pub signed_headers: &'a [(&'a str, &'a str)],
    /// `X-Amz-Expires`.
    pub expires_in: Duration,
}

/// `what.url` with the SigV4 query parameters appended, signed with
/// `creds` at `now`.
pub fn presigned_url(
    creds: &Credentials,
    what: &Presign<'_>,
    now: SystemTime,
) -> Result<String, SignError> {
    let fail = |e: &dyn std::fmt::Display| SignError(e.to_string());
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(what.expires_in);
    let identity: Identity = creds.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(what.region)
        .name(what.service)
        .time(now)
        .settings(settings)
        .build()
        .map_err(|e| fail(&e))?
        .into();
    let request = SignableRequest::new(
        "GET",
        what.url,
        what.signed_headers.iter().copied(),
        SignableBody::Bytes(&[]),
    )
    .map_err(|e| fail(&e))?;
    let (instructions, _signature) = sign(request, &params).map_err(|e| fail(&e))?.into_parts();
    let mut url = what.url.to_string();
    for (name, value) in instructions.params() {
        push_query_param(&mut url, name, value);
    }
    Ok(url)
}

/// Appends `&name=value`, form-encoded, to a URL that already has a query.
pub(crate) fn push_query_param(url: &mut String, name: &str, value: &str) {
    url.push('&');
    url.extend(form_urlencoded::byte_serialize(name.as_bytes()));
    url.push('=');
    url.extend(form_urlencoded::byte_serialize(value.as_bytes()));
}
