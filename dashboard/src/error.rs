//! The API's error type: every failure becomes a JSON `{"error": …}` body
//! with the right status code.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// The body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ErrorBody {
    /// What went wrong, in words.
    pub error: String,
    /// Why, when there is more to say (e.g. why a service has no forecast yet).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A parameter is malformed or out of range (400).
    #[error("{0}")]
    BadRequest(String),
    /// No token, or a wrong, revoked or expired one (401).
    #[error("{0}")]
    Unauthorized(&'static str),
    /// The token's role or tenant scope does not allow this (403).
    #[error("{0}")]
    Forbidden(String),
    /// Nothing there (404), with an optional reason.
    #[error("{0}")]
    NotFound(String, Option<String>),
    /// Too many failed logins from this client (429).
    #[error("too many login attempts; retry in {0} s")]
    TooManyAttempts(u64),
    /// The database failed (503 when unreachable, else 500).
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A background computation failed unexpectedly (500).
    #[error("internal error")]
    Internal(String),
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::BadRequest(r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::BadRequest(r.body_text())
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        ApiError::BadRequest(r.body_text())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(..) => StatusCode::NOT_FOUND,
            ApiError::TooManyAttempts(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal(e) => {
                tracing::error!(error = %e, "internal error");
                StatusCode::INTERNAL_SERVER_ERROR
            }
            ApiError::Database(e) => {
                tracing::error!(error = %e, "database error");
                match e {
                    sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                        StatusCode::SERVICE_UNAVAILABLE
                    }
                    _ => StatusCode::INTERNAL_SERVER_ERROR,
                }
            }
        };
        let body = ErrorBody {
            error: match &self {
                // Details of database errors go to the log, not to clients.
                ApiError::Database(_) => "database error".to_string(),
                other => other.to_string(),
            },
            reason: match &self {
                ApiError::NotFound(_, reason) => reason.clone(),
                _ => None,
            },
        };
        let mut response = (status, Json(body)).into_response();
        if let ApiError::TooManyAttempts(secs) = self {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_str(&secs.to_string()).expect("digits are a valid header"),
            );
        }
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
