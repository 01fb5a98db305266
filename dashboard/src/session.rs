//! Logging in and out: `POST /api/v1/login`, `GET /login` (form, or a
//! one-time `?code=`), `POST /api/v1/logout`, and the extractor that turns
//! a bearer token or session cookie into a [`Principal`].

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::api::Q;
use crate::auth::{self, Denial, Principal, SESSION_COOKIE};
use crate::error::{ApiError, ErrorBody};

/// The client's address, for the audit log and the login limiter.
pub(crate) fn client_of(parts: &Parts) -> Option<String> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
}

fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(p) = parts.extensions.get::<Principal>() {
            return Ok(p.clone());
        }
        let client = client_of(parts);
        let route = parts.uri.path().to_string();
        let result = if let Some(h) = parts.headers.get(header::AUTHORIZATION) {
            match h
                .to_str()
                .ok()
                .and_then(|v| v.strip_prefix("Bearer ").map(str::trim))
            {
                Some(token) => state.lookups.token(&state.pool, token).await?,
                None => Err(Denial::Invalid),
            }
        } else if let Some(cookie) = cookie_value(&parts.headers, SESSION_COOKIE) {
            match state
                .session_key
                .verify(cookie, chrono::Utc::now().timestamp_millis())
            {
                Ok(id) => state.lookups.session(&state.pool, id).await?,
                Err(d) => Err(d),
            }
        } else {
            Err(Denial::Missing)
        };
        match result {
            Ok(p) => {
                parts.extensions.insert(p.clone());
                Ok(p)
            }
            Err(d) => {
                state.deny(None, &route, d.as_str(), client.as_deref());
                Err(ApiError::Unauthorized(match d {
                    Denial::Missing => {
                        "a token is needed: Authorization: Bearer <token>, or log in"
                    }
                    Denial::Invalid => "invalid token or session",
                    Denial::Revoked => "the token was revoked",
                    Denial::Expired => "the token or session expired",
                }))
            }
        }
    }
}

/// Body of `POST /api/v1/login` (JSON or form).
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct LoginRequest {
    /// An API token (`psk_…`).
    pub token: String,
}

fn session_cookie(state: &AppState, p: &Principal) -> HeaderValue {
    let now = chrono::Utc::now();
    let mut expires = now + state.config.session_ttl;
    if let Some(e) = p.expires_at {
        expires = expires.min(e);
    }
    let value = state
        .session_key
        .sign(p.token_id, expires.timestamp_millis());
    let max_age = (expires - now).num_seconds().max(1);
    let secure = if state.config.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    ))
    .expect("cookie is ASCII")
}

fn limited(state: &AppState, client: &str) -> Result<(), ApiError> {
    state.login_limiter.check(client).map_err(|wait| {
        state
            .metrics
            .auth_denied
            .with_label_values(&["rate-limited"])
            .inc();
        ApiError::TooManyAttempts(wait)
    })
}

/// Exchanges a token for a session cookie.
#[utoipa::path(post, path = "/api/v1/login", tag = "auth",
    request_body(content(
        (LoginRequest = "application/json"),
        (LoginRequest = "application/x-www-form-urlencoded"))),
    responses(
        (status = 204, description = "logged in (JSON body); the session cookie is set"),
        (status = 303, description = "logged in (form body); redirect to /"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub(crate) async fn login(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let client = addr.ip().to_string();
    limited(&state, &client)?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let form = content_type.starts_with("application/x-www-form-urlencoded");
    let request: LoginRequest = if form {
        serde_urlencoded_token(&body)?
    } else if content_type.starts_with("application/json") {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::BadRequest(format!("expected {{\"token\": \"…\"}}: {e}")))?
    } else {
        return Err(ApiError::BadRequest(
            "send JSON {\"token\": \"…\"} or a form with a `token` field".into(),
        ));
    };
    let principal = match auth::principal_for_token(&state.pool, request.token.trim()).await? {
        Ok(p) => p,
        Err(d) => {
            deny_login(&state, &client, d, d.as_str());
            return Err(ApiError::Unauthorized("invalid token"));
        }
    };
    state.audit(Some(&principal), "login", true, "token", Some(&client));
    let cookie = session_cookie(&state, &principal);
    let mut response = if form {
        (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response()
    } else {
        StatusCode::NO_CONTENT.into_response()
    };
    response.headers_mut().insert(header::SET_COOKIE, cookie);
    Ok(response)
}

fn serde_urlencoded_token(body: &[u8]) -> Result<LoginRequest, ApiError> {
    serde_urlencoded::from_bytes(body)
        .map_err(|e| ApiError::BadRequest(format!("the form needs a `token` field: {e}")))
}

/// Parameters of `GET /login`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct LoginPageQuery {
    /// A one-time login code.
    pub code: Option<String>,
}

const LOGIN_FORM: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Prescient: log in</title>
<style>body{font-family:system-ui,sans-serif;max-width:28rem;margin:4rem auto;padding:0 1rem}
input{width:100%;padding:.5rem;margin:.5rem 0;box-sizing:border-box}button{padding:.5rem 1rem}</style></head>
<body><main><h1>Prescient</h1><p>{message}</p>
<form method="post" action="/api/v1/login"><label for="token">API token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required>
<button type="submit">Log in</button></form>
<p>Create a token with <code>prescient token create --name me --role viewer</code>.</p></main></body></html>"#;

fn login_page(status: StatusCode, message: &str) -> Response {
    (status, Html(LOGIN_FORM.replace("{message}", message))).into_response()
}

/// The login form, or (with `?code=`) a one-time login that sets the session
/// cookie and redirects to `/`.
#[utoipa::path(get, path = "/login", tag = "auth",
    params(LoginPageQuery),
    responses(
        (status = 200, description = "the login form", content_type = "text/html", body = String),
        (status = 303, description = "logged in; redirect to /"),
        (status = 400, body = ErrorBody),
        (status = 401, description = "unknown, used or expired code", content_type = "text/html", body = String),
        (status = 429, body = ErrorBody)))]
pub(crate) async fn login_page_or_code(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Q(q): Q<LoginPageQuery>,
) -> Result<Response, ApiError> {
    let Some(code) = q.code else {
        return Ok(login_page(StatusCode::OK, "Log in with an API token."));
    };
    let client = addr.ip().to_string();
    limited(&state, &client)?;
    let principal = match auth::redeem_login_code(&state.pool, &code).await? {
        Some(id) => auth::principal_by_id(&state.pool, id).await?,
        None => Err(Denial::Invalid),
    };
    match principal {
        Ok(p) => {
            state.audit(Some(&p), "login", true, "one-time code", Some(&client));
            let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response();
            response
                .headers_mut()
                .insert(header::SET_COOKIE, session_cookie(&state, &p));
            Ok(response)
        }
        Err(d) => {
            deny_login(&state, &client, d, &format!("one-time code {}", d.as_str()));
            Ok(login_page(
                StatusCode::UNAUTHORIZED,
                "That login link is unknown, already used or expired. Log in with an API token instead.",
            ))
        }
    }
}

/// Ends the session (clears the cookie).
#[utoipa::path(post, path = "/api/v1/logout", tag = "auth",
    responses((status = 204, description = "the session cookie is cleared")))]
pub(crate) async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(cookie) = cookie_value(&headers, SESSION_COOKIE)
        && let Ok(id) = state
            .session_key
            .verify(cookie, chrono::Utc::now().timestamp_millis())
        && let Ok(Ok(p)) = auth::principal_by_id(&state.pool, id).await
    {
        state.audit(Some(&p), "logout", true, "", None);
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "prescient_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0",
        ),
    );
    response
}

/// A refused login: counts it against the client's rate limit and in
/// `prescient_dashboard_auth_denied_total`, and writes the audit row.
fn deny_login(state: &AppState, client: &str, d: Denial, detail: &str) {
    state.login_limiter.fail(client);
    state
        .metrics
        .auth_denied
        .with_label_values(&[d.as_str()])
        .inc();
    state.audit(None, "login", false, detail, Some(client));
}
