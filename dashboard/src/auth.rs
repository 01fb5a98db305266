//! Access control: API tokens (stored as SHA-256 hashes), signed session
//! cookies, one-time login codes, roles, tenant scope, login rate limiting
//! and the audit trail.
//!
//! A token is `psk_` followed by 43 base64url characters (256 random bits).
//! Only its SHA-256 is stored; a presented token is hashed and looked up,
//! and the stored hash is compared again in constant time. Session cookies
//! are `v1.<token id>.<expiry ms>.<HMAC-SHA256>` signed with a key kept in
//! `dashboard_secrets`; every request re-checks that the token is still
//! valid, so revoking a token ends its sessions at once.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use subtle::ConstantTimeEq;
use utoipa::ToSchema;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "prescient_session";

/// Failures of the token store.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// A tenant name outside the event contract's charset.
    #[error("invalid tenant {0:?}: 1-64 of [A-Za-z0-9_.-]")]
    InvalidTenant(String),
    /// An empty or too long token name.
    #[error("a token name must have 1-128 characters")]
    InvalidName,
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[derive(strum::IntoStaticStr, strum::EnumString)]
#[strum(serialize_all = "lowercase")]
pub enum Role {
    /// Read-only.
    Viewer,
    /// Everything but token management.
    Operator,
    /// Everything, tokens and the audit log included.
    Admin,
}

impl Role {
    /// `admin`, `operator` or `viewer`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Whether `tenant` follows the event contract (1-64 of `[A-Za-z0-9_.-]`).
pub fn valid_tenant(tenant: &str) -> bool {
    (1..=64).contains(&tenant.len())
        && tenant
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Principal {
    /// Token id.
    pub token_id: i64,
    /// Token name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// The only tenant it may see, if bound to one.
    pub tenant: Option<String>,
    /// When the token expires.
    pub expires_at: Option<DateTime<Utc>>,
}

/// A token as listed (never the token itself).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TokenInfo {
    /// Id (`prescient token revoke ID`).
    pub id: i64,
    /// Name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Tenant it is bound to, or null for all.
    pub tenant: Option<String>,
    /// Created, epoch ms.
    pub created_at_ms: i64,
    /// Expiry, epoch ms, or null for never.
    pub expires_at_ms: Option<i64>,
    /// Revocation, epoch ms, or null while valid.
    pub revoked_at_ms: Option<i64>,
}

/// SHA-256 of a secret (token or login code).
pub fn hash_secret(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

fn random_secret(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

type TokenRow = (
    i64,
    String,
    String,
    Option<String>,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
);

fn token_info(row: TokenRow) -> TokenInfo {
    let (id, name, role, tenant, created_at, expires_at, revoked_at) = row;
    TokenInfo {
        id,
        name,
        role: role.parse().unwrap_or(Role::Viewer),
        tenant,
        created_at_ms: created_at.timestamp_millis(),
        expires_at_ms: expires_at.map(|t| t.timestamp_millis()),
        revoked_at_ms: revoked_at.map(|t| t.timestamp_millis()),
    }
}

/// Creates a token; returns its row and the token itself (shown once).
pub async fn create_token(
    pool: &PgPool,
    name: &str,
    role: Role,
    tenant: Option<&str>,
    expires_at: Option<DateTime<Utc>>,
) -> Result<(TokenInfo, String), AuthError> {
    if name.is_empty() || name.chars().count() > 128 {
        return Err(AuthError::InvalidName);
    }
    if let Some(t) = tenant
        && !valid_tenant(t)
    {
        return Err(AuthError::InvalidTenant(t.to_string()));
    }
    let token = random_secret("psk_");
    let row: TokenRow = sqlx::query_as(
        "INSERT INTO api_tokens (name, role, tenant, hash, expires_at) VALUES ($1, $2, $3, $4, $5)
         RETURNING id, name, role, tenant, created_at, expires_at, revoked_at",
    )
    .bind(name)
    .bind(role.as_str())
    .bind(tenant)
    .bind(&hash_secret(&token)[..])
    .bind(expires_at)
    .fetch_one(pool)
    .await?;
    Ok((token_info(row), token))
}

/// Every token, oldest first.
pub async fn list_tokens(pool: &PgPool) -> Result<Vec<TokenInfo>, AuthError> {
    let rows: Vec<TokenRow> = sqlx::query_as(
        "SELECT id, name, role, tenant, created_at, expires_at, revoked_at FROM api_tokens ORDER BY id",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(token_info).collect())
}

/// Revokes a token (and its unused login codes). `false` when no such
/// token exists; revoking twice keeps the first revocation time.
pub async fn revoke_token(pool: &PgPool, id: i64) -> Result<bool, AuthError> {
    let mut tx = pool.begin().await?;
    let found =
        sqlx::query("UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            == 1;
    sqlx::query("UPDATE login_codes SET used_at = now() WHERE token_id = $1 AND used_at IS NULL")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(found)
}

/// A one-time login code for a token, valid for `ttl` (used by
/// `GET /login?code=…`).
pub async fn create_login_code(
    pool: &PgPool,
    token_id: i64,
    ttl: Duration,
) -> Result<String, AuthError> {
    let code = random_secret("");
    sqlx::query(
        "INSERT INTO login_codes (hash, token_id, expires_at) VALUES ($1, $2, now() + make_interval(secs => $3))",
    )
    .bind(&hash_secret(&code)[..])
    .bind(token_id)
    .bind(ttl.as_secs_f64())
    .execute(pool)
    .await?;
    Ok(code)
}

/// Why a credential was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr)]
#[strum(serialize_all = "lowercase")]
pub enum Denial {
    /// Nothing presented.
    Missing,
    /// Unknown token, bad signature or malformed credential.
    Invalid,
    /// The token was revoked.
    Revoked,
    /// The token or session expired.
    Expired,
}

impl Denial {
    /// Label for metrics and the audit log.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

type PrincipalRow = (
    i64,
    String,
    String,
    Option<String>,
    Vec<u8>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
);

fn check_row(row: PrincipalRow, expected_hash: Option<&[u8; 32]>) -> Result<Principal, Denial> {
    let (id, name, role, tenant, hash, expires_at, revoked_at) = row;
    if let Some(expected) = expected_hash
        && !bool::from(hash.as_slice().ct_eq(expected.as_slice()))
    {
        return Err(Denial::Invalid);
    }
    if revoked_at.is_some() {
        return Err(Denial::Revoked);
    }
    if expires_at.is_some_and(|e| e <= Utc::now()) {
        return Err(Denial::Expired);
    }
    Ok(Principal {
        token_id: id,
        name,
        role: role.parse().map_err(|_| Denial::Invalid)?,
        tenant,
        expires_at,
    })
}

/// The principal of a bearer token, or why not.
pub async fn principal_for_token(
    pool: &PgPool,
    token: &str,
) -> Result<Result<Principal, Denial>, sqlx::Error> {
    // Malformed tokens never reach the database.
    if !token.starts_with("psk_") || token.len() != 47 {
        return Ok(Err(Denial::Invalid));
    }
    let hash = hash_secret(token);
    let row: Option<PrincipalRow> = sqlx::query_as(
        "SELECT id, name, role, tenant, hash, expires_at, revoked_at FROM api_tokens WHERE hash = $1",
    )
    .bind(&hash[..])
    .fetch_optional(pool)
    .await?;
    Ok(match row {
        Some(row) => check_row(row, Some(&hash)),
        None => Err(Denial::Invalid),
    })
}

/// The principal of a token id (a session), or why not.
pub async fn principal_by_id(
    pool: &PgPool,
    id: i64,
) -> Result<Result<Principal, Denial>, sqlx::Error> {
    let row: Option<PrincipalRow> = sqlx::query_as(
        "SELECT id, name, role, tenant, hash, expires_at, revoked_at FROM api_tokens WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?;
    Ok(match row {
        Some(row) => check_row(row, None),
        None => Err(Denial::Invalid),
    })
}

/// Coalesces concurrent credential look-ups without ever answering from a
/// read older than the request.
///
/// A request is answered by a database read that *started after the request
/// arrived*: while one read for a credential is in flight, the requests for
/// it that arrive meanwhile queue, and the first of them starts the next read,
/// whose answer the others share. So 200 clients polling with one token cost
/// about one query per database round trip instead of one each, and a token
/// revoked (or expired) before a request arrives is refused, as without the
/// coalescing, with no cache to invalidate across replicas.
#[derive(Debug, Default)]
pub struct Lookups {
    slots: Mutex<HashMap<LookupKey, Arc<LookupSlot>>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum LookupKey {
    Token([u8; 32]),
    Session(i64),
}

#[derive(Debug, Default)]
struct LookupSlot {
    flight: tokio::sync::Mutex<()>,
    /// The latest answer and when its read started.
    last: Mutex<Option<(Instant, Result<Principal, Denial>)>>,
}

impl LookupSlot {
    fn answer_since(&self, arrived: Instant) -> Option<Result<Principal, Denial>> {
        self.last
            .lock()
            .expect("lookup lock")
            .as_ref()
            .filter(|(started, _)| *started >= arrived)
            .map(|(_, answer)| answer.clone())
    }
}

/// Most credentials whose look-up state is kept (the map is emptied beyond).
const MAX_LOOKUP_SLOTS: usize = 10_000;

impl Lookups {
    /// [`principal_for_token`], coalesced.
    pub async fn token(
        &self,
        pool: &PgPool,
        token: &str,
    ) -> Result<Result<Principal, Denial>, sqlx::Error> {
        if !token.starts_with("psk_") || token.len() != 47 {
            return Ok(Err(Denial::Invalid));
        }
        let key = LookupKey::Token(hash_secret(token));
        self.fresh(key, || principal_for_token(pool, token)).await
    }

    /// [`principal_by_id`] (a session's token), coalesced.
    pub async fn session(
        &self,
        pool: &PgPool,
        id: i64,
    ) -> Result<Result<Principal, Denial>, sqlx::Error> {
        self.fresh(LookupKey::Session(id), || principal_by_id(pool, id))
            .await
    }

    async fn fresh<F, Fut>(
        &self,
        key: LookupKey,
        read: F,
    ) -> Result<Result<Principal, Denial>, sqlx::Error>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Result<Principal, Denial>, sqlx::Error>>,
    {
        let arrived = Instant::now();
        let slot = {
            let mut slots = self.slots.lock().expect("lookup lock");
            if slots.len() >= MAX_LOOKUP_SLOTS && !slots.contains_key(&key) {
                slots.clear();
            }
            slots.entry(key).or_default().clone()
        };
        let _turn = slot.flight.lock().await;
        // A read that started after we arrived answered while we queued.
        if let Some(answer) = slot.answer_since(arrived) {
            return Ok(answer);
        }
        let started = Instant::now();
        let answer = read().await?;
        *slot.last.lock().expect("lookup lock") = Some((started, answer.clone()));
        Ok(answer)
    }
}

/// Redeems a one-time login code: marks it used and returns its token id.
pub async fn redeem_login_code(pool: &PgPool, code: &str) -> Result<Option<i64>, sqlx::Error> {
    if code.is_empty() || code.len() > 128 {
        return Ok(None);
    }
    sqlx::query_scalar(
        "UPDATE login_codes SET used_at = now()
         WHERE hash = $1 AND used_at IS NULL AND expires_at > now() RETURNING token_id",
    )
    .bind(&hash_secret(code)[..])
    .fetch_optional(pool)
    .await
}

/// The key that signs session cookies (HMAC-SHA256), shared by replicas
/// through `dashboard_secrets`.
#[derive(Clone)]
pub struct SessionKey([u8; 32]);

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey(..)")
    }
}

impl SessionKey {
    /// Loads the key, creating it on first start.
    pub async fn load_or_create(pool: &PgPool) -> Result<SessionKey, sqlx::Error> {
        let mut fresh = [0u8; 32];
        rand::rng().fill_bytes(&mut fresh);
        sqlx::query(
            "INSERT INTO dashboard_secrets (name, value) VALUES ('session-key', $1) ON CONFLICT (name) DO NOTHING",
        )
        .bind(&fresh[..])
        .execute(pool)
        .await?;
        let value: Vec<u8> =
            sqlx::query_scalar("SELECT value FROM dashboard_secrets WHERE name = 'session-key'")
                .fetch_one(pool)
                .await?;
        let mut key = [0u8; 32];
        let n = value.len().min(32);
        key[..n].copy_from_slice(&value[..n]);
        Ok(SessionKey(key))
    }

    /// A key from bytes (tests).
    pub fn from_bytes(key: [u8; 32]) -> SessionKey {
        SessionKey(key)
    }

    fn mac(&self, payload: &str) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0)
            .expect("HMAC takes keys of any length");
        mac.update(payload.as_bytes());
        mac
    }

    /// The cookie value for a session of `token_id` until `expires_ms`.
    pub fn sign(&self, token_id: i64, expires_ms: i64) -> String {
        let payload = format!("v1.{token_id}.{expires_ms}");
        let tag = self.mac(&payload).finalize().into_bytes();
        format!("{payload}.{}", URL_SAFE_NO_PAD.encode(tag))
    }

    /// The token id of a cookie value whose signature is good (checked in
    /// constant time) and which has not expired at `now_ms`.
    pub fn verify(&self, value: &str, now_ms: i64) -> Result<i64, Denial> {
        let (payload, tag) = value.rsplit_once('.').ok_or(Denial::Invalid)?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| Denial::Invalid)?;
        self.mac(payload)
            .verify_slice(&tag)
            .map_err(|_| Denial::Invalid)?;
        let mut parts = payload.split('.');
        let (Some("v1"), Some(id), Some(exp), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Denial::Invalid);
        };
        let id: i64 = id.parse().map_err(|_| Denial::Invalid)?;
        let exp: i64 = exp.parse().map_err(|_| Denial::Invalid)?;
        if exp <= now_ms {
            return Err(Denial::Expired);
        }
        Ok(id)
    }
}

/// Counts failed logins per client and refuses more than `max` within `window`.
#[derive(Debug)]
pub struct LoginLimiter {
    max: usize,
    window: Duration,
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl LoginLimiter {
    /// `max` failures per client address within `window`.
    pub fn new(max: usize, window: Duration) -> LoginLimiter {
        LoginLimiter {
            max,
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(seconds to wait)` when `client` has failed too often lately.
    pub fn check(&self, client: &str) -> Result<(), u64> {
        let now = Instant::now();
        let mut failures = self.failures.lock().expect("limiter lock");
        let Some(q) = failures.get_mut(client) else {
            return Ok(());
        };
        while q
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            q.pop_front();
        }
        if q.len() >= self.max {
            let oldest = *q.front().expect("non-empty");
            let wait = self.window.saturating_sub(now.duration_since(oldest));
            return Err(wait.as_secs().max(1));
        }
        Ok(())
    }

    /// Records a failed attempt by `client`.
    pub fn fail(&self, client: &str) {
        let mut failures = self.failures.lock().expect("limiter lock");
        if failures.len() > 100_000 {
            // Bounded memory under a spray of addresses: forget the oldest state.
            failures.clear();
        }
        failures
            .entry(client.to_string())
            .or_default()
            .push_back(Instant::now());
    }
}

/// One audit-log entry as served by `GET /api/v1/audit`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntry {
    /// Id, increasing.
    pub id: i64,
    /// When, epoch ms.
    pub at_ms: i64,
    /// Token name, when known.
    pub actor: Option<String>,
    /// login, logout, token-create, token-revoke, request.
    pub action: String,
    /// `ok` or `denied`.
    pub outcome: String,
    /// What (route, token id, reason). Never a secret.
    pub detail: String,
    /// Client address.
    pub client: Option<String>,
}

/// Writes an audit row.
pub async fn audit(
    pool: &PgPool,
    who: Option<&Principal>,
    action: &str,
    ok: bool,
    detail: &str,
    client: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO audit_log (token_id, actor, action, outcome, detail, client) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(who.map(|p| p.token_id))
    .bind(who.map(|p| p.name.as_str()))
    .bind(action)
    .bind(if ok { "ok" } else { "denied" })
    .bind(detail)
    .bind(client)
    .execute(pool)
    .await?;
    Ok(())
}

type AuditRow = (
    i64,
    DateTime<Utc>,
    Option<String>,
    String,
    String,
    String,
    Option<String>,
);

/// The newest `limit` audit rows.
pub async fn audit_entries(pool: &PgPool, limit: i64) -> Result<Vec<AuditEntry>, sqlx::Error> {
    let rows: Vec<AuditRow> =
        sqlx::query_as(
            "SELECT id, at, actor, action, outcome, detail, client FROM audit_log ORDER BY id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(pool)
        .await?;
    Ok(rows
        .into_iter()
        .map(
            |(id, at, actor, action, outcome, detail, client)| AuditEntry {
                id,
                at_ms: at.timestamp_millis(),
                actor,
                action,
                outcome,
                detail,
                client,
            },
        )
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_cookies_verify_only_when_untampered_and_unexpired() {
        let key = SessionKey::from_bytes([7; 32]);
        let v = key.sign(42, 2_000);
        assert_eq!(key.verify(&v, 1_000), Ok(42));
        assert_eq!(key.verify(&v, 2_000), Err(Denial::Expired));
        let forged = v.replacen("v1.42.", "v1.43.", 1);
        assert_eq!(key.verify(&forged, 1_000), Err(Denial::Invalid));
        let other = SessionKey::from_bytes([8; 32]);
        assert_eq!(other.verify(&v, 1_000), Err(Denial::Invalid));
        assert_eq!(key.verify("garbage", 0), Err(Denial::Invalid));
    }

    #[test]
    fn limiter_refuses_after_max_failures() {
        let l = LoginLimiter::new(2, Duration::from_secs(60));
        assert!(l.check("a").is_ok());
        l.fail("a");
        l.fail("a");
        assert!(l.check("a").is_err());
        assert!(l.check("b").is_ok());
    }

    fn someone() -> Principal {
        Principal {
            token_id: 1,
            name: "x".into(),
            role: Role::Viewer,
            tenant: None,
            expires_at: None,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn lookups_share_reads_but_never_answer_from_one_older_than_the_request() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let lookups = Arc::new(Lookups::default());
        let reads = Arc::new(AtomicUsize::new(0));
        let read = |reads: Arc<AtomicUsize>| async move {
            reads.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok::<_, sqlx::Error>(Ok(someone()))
        };
        // 40 concurrent requests for one credential: a few reads, not 40.
        let mut tasks = Vec::new();
        for _ in 0..40 {
            let (l, r) = (lookups.clone(), reads.clone());
            tasks.push(tokio::spawn(async move {
                l.fresh(LookupKey::Session(1), || read(r)).await
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap().unwrap().token_id, 1);
        }
        let shared = reads.load(Ordering::SeqCst);
        assert!((1..=3).contains(&shared), "{shared} reads for 40 requests");
        // A request after those reads were done gets a read of its own
        // (a revocation in between is seen), and so does another credential.
        lookups
            .fresh(LookupKey::Session(1), || read(reads.clone()))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(reads.load(Ordering::SeqCst), shared + 1);
        let denied = lookups
            .fresh(LookupKey::Session(2), || async {
                Ok::<_, sqlx::Error>(Err(Denial::Revoked))
            })
            .await
            .unwrap();
        assert_eq!(denied.unwrap_err(), Denial::Revoked);
    }

    #[test]
    fn tenants_follow_the_event_contract() {
        assert!(valid_tenant("acme-1.eu_x"));
        assert!(!valid_tenant(""));
        assert!(!valid_tenant("a b"));
        assert!(!valid_tenant("x'; --"));
        assert!(!valid_tenant(&"a".repeat(65)));
    }
}
