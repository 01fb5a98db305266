//! Errors of the scaler, each classified retryable or not.
//!
//! Retryable: throttling, timeouts, connection failures, 5xx, an update
//! already in progress on the node group, a 401/409/429 from the Kubernetes
//! API. Lambda retries the record. Not retryable: missing node group or
//! Deployment, access denied, invalid parameters: retrying cannot help, so
//! the record is reported `failed` and not retried.

use aws_sdk_eks::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::http::Response;

/// Why applying a decision failed.
#[derive(Debug, thiserror::Error)]
pub enum ScalerError {
    /// An EKS API call failed.
    #[error("EKS {operation} failed: {message}")]
    Eks {
        /// The operation, e.g. `UpdateNodegroupConfig`.
        operation: &'static str,
        /// Error code and message from the SDK.
        message: String,
        /// Whether retrying can help.
        retryable: bool,
    },
    /// A Kubernetes API call failed.
    #[error("Kubernetes API {operation} failed{}: {message}", status.map(|s| format!(" (HTTP {s})")).unwrap_or_default())]
    Kube {
        /// What was attempted, e.g. `PATCH deployments/scale`.
        operation: &'static str,
        /// HTTP status, when a response came back.
        status: Option<u16>,
        /// What went wrong.
        message: String,
        /// Whether retrying can help.
        retryable: bool,
    },
    /// The cluster's endpoint or CA from `DescribeCluster` is unusable.
    #[error("cluster {cluster}: {message}")]
    ClusterAccess {
        /// EKS cluster name.
        cluster: String,
        /// What is wrong with it.
        message: String,
    },
    /// The AWS credentials to sign the Kubernetes token with could not be
    /// loaded (a transient failure of the provider: retryable).
    #[error("signing the EKS token failed: {0}")]
    Token(String),
    /// No AWS credentials provider is configured at all: a deployment
    /// mistake that no retry can fix.
    #[error("signing the EKS token failed: no AWS credentials provider configured")]
    NoCredentialsProvider,
    /// The configuration cannot work (e.g. invalid Kafka properties).
    #[error("configuration: {0}")]
    Config(String),
    /// Publishing an outcome to SNS or Kafka failed.
    #[error("publishing outcomes failed: {0}")]
    Publish(String),
}

impl ScalerError {
    /// True when retrying the same decision later can succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            ScalerError::Eks { retryable, .. } | ScalerError::Kube { retryable, .. } => *retryable,
            ScalerError::ClusterAccess { .. }
            | ScalerError::Config(_)
            | ScalerError::NoCredentialsProvider => false,
            ScalerError::Token(_) | ScalerError::Publish(_) => true,
        }
    }

    /// Wraps an AWS SDK error of `operation`, classifying it.
    pub fn from_sdk<E>(operation: &'static str, err: SdkError<E, Response>) -> ScalerError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let retryable = sdk_error_is_retryable(&err);
        ScalerError::Eks {
            operation,
            message: DisplayErrorContext(&err).to_string(),
            retryable,
        }
    }
}

/// Error codes of AWS services that mean "try again later".
const RETRYABLE_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "ResourceInUseException",
    "ServerException",
    "ServiceUnavailableException",
    "InternalFailure",
    "InternalServerError",
];

/// Classifies any AWS SDK error: transport failures, timeouts, 429, 5xx and
/// throttling or in-use codes are retryable; other service errors are not.
pub(crate) fn sdk_error_is_retryable<E: ProvideErrorMetadata>(err: &SdkError<E, Response>) -> bool {
    match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(ctx) => {
            let status = ctx.raw().status().as_u16();
            status == 429
                || status >= 500
                || ctx
                    .err()
                    .code()
                    .is_some_and(|c| RETRYABLE_CODES.contains(&c))
        }
        SdkError::ConstructionFailure(_) => false,
        _ => true,
    }
}

/// Classifies a Kubernetes API status: 401 (token expired or clock skew),
/// 408, 409 (conflict), 429 and 5xx are retryable.
pub(crate) fn kube_status_is_retryable(status: u16) -> bool {
    matches!(status, 401 | 408 | 409 | 429) || status >= 500
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kube_statuses() {
        for s in [401, 409, 429, 500, 503] {
            assert!(kube_status_is_retryable(s), "{s}");
        }
        for s in [400, 403, 404, 422] {
            assert!(!kube_status_is_retryable(s), "{s}");
        }
    }

    #[test]
    fn classification_of_variants() {
        let e = ScalerError::ClusterAccess {
            cluster: "c".into(),
            message: "bad CA".into(),
        };
        assert!(!e.is_retryable());
        assert!(ScalerError::Publish("down".into()).is_retryable());
        let e = ScalerError::Kube {
            operation: "GET",
            status: Some(404),
            message: "nope".into(),
            retryable: false,
        };
        assert_eq!(e.to_string(), "Kubernetes API GET failed (HTTP 404): nope");
        assert!(!e.is_retryable());
    }
}
