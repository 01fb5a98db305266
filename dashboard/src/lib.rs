//! Prescient's dashboard server: a JSON API over the PostgreSQL tables the
//! pipeline writes, live updates as server-sent events driven by
//! LISTEN/NOTIFY, token-based access control with roles and tenant scope,
//! and the web app in `dashboard/web`.
//!
//! The routes are listed in `dashboard/API.md`; the OpenAPI document is
//! generated from this crate (see [`ApiDoc`]) and served at
//! `/api/openapi.json`.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use prescient_dashboard::{DashboardConfig, Dashboard};
//!
//! let pool = sqlx::PgPool::connect("postgres://localhost/prescient").await?;
//! let config = DashboardConfig::new("127.0.0.1:8080".parse()?);
//! let dashboard = Dashboard::start(config, pool, prometheus::Registry::new()).await?;
//! println!("dashboard at http://{}", dashboard.addr());
//! dashboard.wait().await?;
//! # Ok(()) }
//! ```

mod api;
pub mod auth;
mod error;
mod metrics;
mod range;
mod rollup;
mod session;
mod sse;
mod web;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use futures_util::Stream;
use futures_util::StreamExt;
use sqlx::PgPool;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use utoipa::OpenApi;

use crate::auth::{LoginLimiter, Principal, SessionKey};
use crate::error::ApiError;
use crate::metrics::Metrics;
pub use crate::rollup::{Rolled, roll_up};
use crate::sse::Hub;

/// Failures to start the server.
#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The database failed while starting.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Metrics could not be registered.
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// The server stopped with an error.
    #[error("serving: {0}")]
    Serve(std::io::Error),
}

/// Settings of the dashboard server.
#[derive(Debug, Clone)]
pub struct DashboardConfig {
    /// Where to listen (default `127.0.0.1:8080`).
    pub listen: SocketAddr,
    /// The built web app (default [`default_web_dir`]).
    pub web_dir: PathBuf,
    /// Lifetime of a session cookie (default 12 h; never past the token's expiry).
    pub session_ttl: chrono::Duration,
    /// Mark cookies `Secure` (serve behind HTTPS). Default false: the
    /// default listener is plain HTTP on loopback.
    pub secure_cookies: bool,
    /// Failed logins allowed per client address per `login_window` (default 10).
    pub login_attempts: usize,
    /// Window of the login limiter (default 5 min).
    pub login_window: Duration,
    /// How long an overview stays cached when no notification arrives (default 1 s).
    pub overview_ttl: Duration,
    /// Interval of SSE keep-alive comments (default 15 s).
    pub keep_alive: Duration,
    /// How often to roll final hours of `metrics_minute` into
    /// `tenant_service_hour` (default 60 s; `None`: never, tenant views then
    /// read raw minutes).
    pub rollup_interval: Option<Duration>,
}

/// `dashboard/web/dist` of the source tree this crate was built from, when
/// it exists; else `dashboard/web/dist` relative to the working directory.
pub fn default_web_dir() -> PathBuf {
    let built = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("web/dist");
    if built.exists() {
        built
    } else {
        PathBuf::from("dashboard/web/dist")
    }
}

impl DashboardConfig {
    /// Defaults, listening on `listen`.
    pub fn new(listen: SocketAddr) -> DashboardConfig {
        DashboardConfig {
            listen,
            web_dir: default_web_dir(),
            session_ttl: chrono::Duration::hours(12),
            secure_cookies: false,
            login_attempts: 10,
            login_window: Duration::from_secs(300),
            overview_ttl: Duration::from_secs(1),
            keep_alive: Duration::from_secs(15),
            rollup_interval: Some(Duration::from_secs(60)),
        }
    }
}

#[derive(Debug)]
struct ResponseSlot {
    entry: Option<CachedEntry>,
    flight: Arc<tokio::sync::Mutex<()>>,
}

#[derive(Debug)]
struct CachedEntry {
    at: Instant,
    /// The notification count it was computed after.
    generation: u64,
    json: CachedJson,
}

/// A cached JSON answer, with its gzip encoding when it is worth one.
#[derive(Debug, Clone)]
pub struct CachedJson {
    /// The JSON.
    pub body: Bytes,
    /// The same, gzip-compressed (answers of 1 KiB and more).
    pub gzip: Option<Bytes>,
}

impl CachedJson {
    /// Wraps `body`, compressing it once (gzip level 1: the overview's
    /// 350 KB for 100 services takes about a millisecond and shrinks ten-fold)
    /// so every client that accepts gzip gets the small answer at no cost.
    pub fn new(body: Bytes) -> CachedJson {
        use std::io::Write;
        let gzip = (body.len() >= 1024).then(|| {
            let mut enc = flate2::write::GzEncoder::new(
                Vec::with_capacity(body.len() / 4),
                flate2::Compression::fast(),
            );
            enc.write_all(&body).expect("gzip into memory");
            Bytes::from(enc.finish().expect("gzip into memory"))
        });
        CachedJson { body, gzip }
    }

    /// The answer as a response: gzip-encoded when the request accepts it.
    pub fn response(&self, request: &HeaderMap) -> Response {
        let accepts_gzip = request
            .get_all(header::ACCEPT_ENCODING)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|c| {
                let mut parts = c.split(';');
                let name = parts.next().unwrap_or("").trim();
                let refused = parts.any(|q| {
                    q.trim()
                        .strip_prefix("q=")
                        .and_then(|v| v.trim().parse::<f32>().ok())
                        == Some(0.0)
                });
                name.eq_ignore_ascii_case("gzip") && !refused
            });
        let vary = (header::VARY, "accept-encoding");
        let json = (header::CONTENT_TYPE, "application/json");
        match &self.gzip {
            Some(gz) if accepts_gzip => {
                ([json, vary, (header::CONTENT_ENCODING, "gzip")], gz.clone()).into_response()
            }
            _ => ([json, vary], self.body.clone()).into_response(),
        }
    }
}

/// How fresh a cached answer must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Freshness {
    /// Recomputed after every notification, and at least every `overview_ttl`.
    Live,
    /// Recomputed when older than this (notifications ignored): for views
    /// whose buckets are much longer than a notification's interval.
    AtMost(Duration),
}

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The database.
    pub pool: PgPool,
    /// Settings.
    pub config: Arc<DashboardConfig>,
    /// Signs session cookies.
    pub session_key: SessionKey,
    /// Failed-login limiter.
    pub login_limiter: Arc<LoginLimiter>,
    /// Live events.
    pub hub: Arc<Hub>,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// Coalesced credential look-ups.
    pub lookups: Arc<crate::auth::Lookups>,
    /// Notifications received so far: a cached answer computed before the
    /// latest one is stale.
    generation: Arc<AtomicU64>,
    response_cache: Arc<Mutex<HashMap<String, ResponseSlot>>>,
}

impl AppState {
    /// Loads the session key and starts listening for notifications.
    pub async fn new(
        config: DashboardConfig,
        pool: PgPool,
        registry: prometheus::Registry,
    ) -> Result<AppState, DashboardError> {
        let session_key = SessionKey::load_or_create(&pool).await?;
        let metrics = Metrics::new(registry)?;
        let state = AppState {
            login_limiter: Arc::new(LoginLimiter::new(
                config.login_attempts,
                config.login_window,
            )),
            config: Arc::new(config),
            session_key,
            hub: Hub::new(),
            metrics,
            pool,
            lookups: Arc::default(),
            generation: Arc::default(),
            response_cache: Arc::default(),
        };
        let (generation, events) = (state.generation.clone(), state.metrics.sse_events.clone());
        state
            .hub
            .spawn_listener(state.pool.clone(), move |kind: &'static str| {
                events.with_label_values(&[kind]).inc();
                // Every cached overview is stale from here on.
                generation.fetch_add(1, Ordering::SeqCst);
            });
        Ok(state)
    }

    /// A JSON answer under `key`, computed by `compute` when the cached one
    /// is older than `overview_ttl` or a notification arrived since; while
    /// one request recomputes a stale answer, the others get the previous one,
    /// so a burst of clients costs one query set, never a pile-up. Waiters on
    /// a first computation take its result.
    pub(crate) async fn cached(
        &self,
        key: String,
        compute: impl std::future::Future<Output = Result<Bytes, ApiError>> + Send + 'static,
    ) -> Result<CachedJson, ApiError> {
        self.cached_for(key, Freshness::Live, compute).await
    }

    /// [`AppState::cached`] with an explicit [`Freshness`].
    pub(crate) async fn cached_for(
        &self,
        key: String,
        freshness: Freshness,
        compute: impl std::future::Future<Output = Result<Bytes, ApiError>> + Send + 'static,
    ) -> Result<CachedJson, ApiError> {
        let generation = self.generation.load(Ordering::SeqCst);
        let (ttl, follow) = match freshness {
            Freshness::Live => (self.config.overview_ttl, true),
            Freshness::AtMost(age) => (age.max(self.config.overview_ttl), false),
        };
        let fresh =
            |e: &CachedEntry| (!follow || e.generation == generation) && e.at.elapsed() < ttl;
        let (entry, flight) = {
            let mut cache = self.response_cache.lock().expect("cache lock");
            if cache.len() > 10_000 {
                cache.clear();
            }
            let slot = cache.entry(key.clone()).or_insert_with(|| ResponseSlot {
                entry: None,
                flight: Arc::new(tokio::sync::Mutex::new(())),
            });
            (
                slot.entry.as_ref().map(|e| (fresh(e), e.json.clone())),
                slot.flight.clone(),
            )
        };
        let guard = match entry {
            Some((true, json)) => return Ok(json),
            Some((false, json)) => match flight.try_lock_owned() {
                Ok(g) => g,
                // Someone is already refreshing it.
                Err(_) => return Ok(json),
            },
            None => flight.lock_owned().await,
        };
        let done = self
            .response_cache
            .lock()
            .expect("cache lock")
            .get(&key)
            .and_then(|slot| slot.entry.as_ref())
            .filter(|e| fresh(e))
            .map(|e| e.json.clone());
        if let Some(json) = done {
            return Ok(json);
        }
        // The computation runs on its own task, holding the flight lock, and
        // stores its answer itself: a client that gives up (a timeout, a
        // closed tab) must not cancel a slow query that every other waiter
        // needs, or a query slower than the clients' patience would be
        // restarted forever and never answered.
        let cache = self.response_cache.clone();
        let task = tokio::spawn(async move {
            let _flight = guard;
            let json = CachedJson::new(compute.await?);
            if let Some(slot) = cache.lock().expect("cache lock").get_mut(&key) {
                slot.entry = Some(CachedEntry {
                    at: Instant::now(),
                    generation,
                    json: json.clone(),
                });
            }
            Ok(json)
        });
        task.await
            .map_err(|e| ApiError::Internal(format!("cached computation: {e}")))?
    }

    /// Records a denied request (audit row written in the background,
    /// metric counted). Never given a secret.
    pub fn deny(&self, who: Option<&Principal>, route: &str, reason: &str, client: Option<&str>) {
        self.metrics
            .auth_denied
            .with_label_values(&[if who.is_some() { "forbidden" } else { reason }])
            .inc();
        self.audit(who, "request", false, &format!("{route}: {reason}"), client);
    }

    /// Records a successful audited action by `who`.
    pub fn audit_ok(&self, who: &Principal, action: &str, detail: &str) {
        self.audit(Some(who), action, true, detail, None);
    }

    /// Writes an audit row in the background.
    pub fn audit(
        &self,
        who: Option<&Principal>,
        action: &str,
        ok: bool,
        detail: &str,
        client: Option<&str>,
    ) {
        let (pool, who, action, detail, client) = (
            self.pool.clone(),
            who.cloned(),
            action.to_string(),
            detail.to_string(),
            client.map(str::to_string),
        );
        tokio::spawn(async move {
            if let Err(e) =
                auth::audit(&pool, who.as_ref(), &action, ok, &detail, client.as_deref()).await
            {
                tracing::warn!(error = %e, "writing the audit log");
            }
        });
    }
}

/// The OpenAPI document, generated from the handlers.
#[derive(OpenApi)]
#[openapi(
    info(title = "Prescient dashboard API", description = "JSON API of `prescient dashboard`; see dashboard/API.md."),
    paths(
        session::login, session::logout, session::login_page_or_code, api::me,
        api::overview, api::services, api::series, api::forecast, api::forecast_history,
        api::replicas, api::decisions, api::pipeline, stream,
        api::list_tokens, api::create_token, api::revoke_token, api::audit,
        healthz, readyz
    ),
    modifiers(&SecurityAddon)
)]
pub struct ApiDoc;

struct SecurityAddon;

impl utoipa::Modify for SecurityAddon {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme,
        };
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(auth::SESSION_COOKIE))),
        );
    }
}

async fn openapi_json() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        ApiDoc::openapi()
            .to_json()
            .expect("the OpenAPI document serialises"),
    )
        .into_response()
}

/// Liveness.
#[utoipa::path(get, path = "/healthz", tag = "ops",
    responses((status = 200, description = "alive", content_type = "text/plain", body = String)))]
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// Readiness: the database answers.
#[utoipa::path(get, path = "/readyz", tag = "ops",
    responses((status = 200, description = "ready", content_type = "text/plain", body = String),
              (status = 503, description = "database unreachable", content_type = "text/plain", body = String)))]
pub async fn readyz(State(state): State<AppState>) -> Response {
    let ping = tokio::time::timeout(
        Duration::from_secs(2),
        sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(&state.pool),
    )
    .await;
    match ping {
        Ok(Ok(_)) => (StatusCode::OK, "ready\n").into_response(),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "database unreachable\n").into_response(),
    }
}

async fn metrics_text(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        prescient_infra_render(&state.metrics.registry),
    )
        .into_response()
}

fn prescient_infra_render(registry: &prometheus::Registry) -> String {
    use prometheus::Encoder;
    let mut buf = Vec::new();
    prometheus::TextEncoder::new()
        .encode(&registry.gather(), &mut buf)
        .expect("text encoding of gathered metrics cannot fail");
    String::from_utf8(buf).expect("Prometheus text format is UTF-8")
}

/// Live updates as server-sent events (see API.md): `frontier`, `rows`,
/// `forecast`, `decision`, `action`, plus `hello` and `reset`.
#[utoipa::path(get, path = "/api/v1/stream", tag = "data",
    params(("Last-Event-ID" = Option<String>, Header, description = "resume after this event id")),
    responses((status = 200, description = "an event stream", content_type = "text/event-stream", body = String),
              (status = 401, body = error::ErrorBody)),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn stream(
    State(state): State<AppState>,
    p: Principal,
    headers: HeaderMap,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let sub = state.hub.subscribe(last);
    let tenant_scoped = p.tenant.is_some();
    let visible = move |e: &sse::Event| !tenant_scoped || e.tenant_visible();
    let to_sse = |e: &sse::Event| {
        Ok(SseEvent::default()
            .id(e.id.to_string())
            .event(e.kind)
            .data(&*e.data))
    };
    let mut first = vec![Ok(SseEvent::default()
        .event("hello")
        .data(format!("{{\"last_id\":{}}}", sub.last_id)))];
    if sub.reset {
        first.push(Ok(SseEvent::default().event("reset").data("{}")));
    }
    let replayed_up_to = sub.replay.last().map(|e| e.id).unwrap_or(0);
    first.extend(sub.replay.iter().filter(|e| visible(e)).map(to_sse));
    let live = BroadcastStream::new(sub.rx).filter_map(move |r| {
        let item = match r {
            Ok(e) if e.id > replayed_up_to && visible(&e) => Some(to_sse(&e)),
            Ok(_) => None,
            // This client fell behind the channel: it must refetch.
            Err(BroadcastStreamRecvError::Lagged(_)) => {
                Some(Ok(SseEvent::default().event("reset").data("{}")))
            }
        };
        std::future::ready(item)
    });
    let gauge = state.metrics.sse_clients.clone();
    gauge.inc();
    let guard = GaugeGuard(gauge);
    let stream = futures_util::stream::iter(first)
        .chain(live)
        .map(move |item| {
            let _held = &guard;
            item
        });
    Sse::new(stream).keep_alive(
        KeepAlive::new()
            .interval(state.config.keep_alive)
            .text("keep-alive"),
    )
}

struct GaugeGuard(prometheus::IntGauge);

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

async fn api_not_found() -> ApiError {
    ApiError::NotFound("no such API route".into(), None)
}

/// The whole application.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/api/openapi.json", get(openapi_json))
        .route("/api/v1/login", post(session::login))
        .route("/api/v1/logout", post(session::logout))
        .route("/api/v1/me", get(api::me))
        .route("/api/v1/overview", get(api::overview))
        .route("/api/v1/services", get(api::services))
        .route("/api/v1/services/{service}/series", get(api::series))
        .route("/api/v1/services/{service}/forecast", get(api::forecast))
        .route(
            "/api/v1/services/{service}/forecast-history",
            get(api::forecast_history),
        )
        .route("/api/v1/services/{service}/replicas", get(api::replicas))
        .route("/api/v1/decisions", get(api::decisions))
        .route("/api/v1/pipeline", get(api::pipeline))
        .route("/api/v1/stream", get(stream))
        .route(
            "/api/v1/tokens",
            get(api::list_tokens).post(api::create_token),
        )
        .route("/api/v1/tokens/{id}", delete(api::revoke_token))
        .route("/api/v1/audit", get(api::audit))
        .route("/api", get(api_not_found))
        .route("/api/{*rest}", get(api_not_found).post(api_not_found))
        .route("/login", get(session::login_page_or_code))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text));
    api.fallback_service(web::service(&state.config.web_dir))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .with_state(state)
}

/// A running dashboard server.
#[derive(Debug)]
pub struct Dashboard {
    addr: SocketAddr,
    /// Shared state (pool, hub, metrics).
    pub state: AppState,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    /// The background rollup (see [`roll_up`]), when enabled.
    rollup: Option<tokio::task::JoinHandle<()>>,
}

impl Dashboard {
    /// Binds `config.listen` and serves on the current tokio runtime.
    pub async fn start(
        config: DashboardConfig,
        pool: PgPool,
        registry: prometheus::Registry,
    ) -> Result<Dashboard, DashboardError> {
        let addr = config.listen;
        let rollup_interval = config.rollup_interval;
        if !config.web_dir.join("index.html").exists() {
            tracing::warn!(
                web_dir = %config.web_dir.display(),
                "the web app is not built: the API works, the page says how to build it \
                 (cd dashboard/web && npm ci && npx vite build)"
            );
        }
        let state = AppState::new(config, pool, registry).await?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| DashboardError::Bind { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| DashboardError::Bind { addr, source })?;
        let app = router(state.clone());
        let task = tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
        });
        tracing::info!(%addr, "dashboard listening");
        let rollup = rollup_interval.map(|every| {
            tokio::spawn(rollup::run(
                state.pool.clone(),
                state.metrics.clone(),
                every,
            ))
        });
        Ok(Dashboard {
            addr,
            state,
            task: Some(task),
            rollup,
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Waits until the server stops.
    pub async fn wait(mut self) -> Result<(), DashboardError> {
        let Some(task) = self.task.take() else {
            return Ok(());
        };
        match task.await {
            Ok(r) => r.map_err(DashboardError::Serve),
            Err(e) => Err(DashboardError::Serve(std::io::Error::other(e))),
        }
    }

    /// Stops serving.
    pub fn abort(&self) {
        if let Some(t) = &self.task {
            t.abort();
        }
        if let Some(t) = &self.rollup {
            t.abort();
        }
    }
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        self.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// A state whose pool never connects: the cache is all that runs.
    fn offline_state() -> AppState {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .connect_lazy("postgres://prescient@127.0.0.1:1/none")
            .expect("a lazy pool");
        let config = DashboardConfig::new("127.0.0.1:0".parse().expect("an address"));
        AppState {
            login_limiter: Arc::new(LoginLimiter::new(
                config.login_attempts,
                config.login_window,
            )),
            config: Arc::new(config),
            session_key: SessionKey::from_bytes([7; 32]),
            hub: Hub::new(),
            metrics: Metrics::new(prometheus::Registry::new()).expect("metrics"),
            pool,
            lookups: Arc::default(),
            generation: Arc::default(),
            response_cache: Arc::default(),
        }
    }

    async fn slow_answer(runs: Arc<AtomicUsize>) -> Result<Bytes, ApiError> {
        runs.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(300)).await;
        Ok(Bytes::from_static(b"{\"ok\":true}"))
    }

    /// A client that gives up while the answer is computed must not cancel
    /// the computation the next client waits for: with a query slower than
    /// every client's timeout, nothing was ever answered.
    #[tokio::test]
    async fn a_client_that_gives_up_does_not_cancel_the_computation() {
        let state = offline_state();
        let runs = Arc::new(AtomicUsize::new(0));
        let gave_up = tokio::time::timeout(
            Duration::from_millis(50),
            state.cached("k".into(), slow_answer(runs.clone())),
        )
        .await;
        assert!(gave_up.is_err(), "the first client times out");
        let answer = state
            .cached("k".into(), slow_answer(runs.clone()))
            .await
            .expect("an answer");
        assert_eq!(&answer.body[..], b"{\"ok\":true}");
        assert_eq!(
            runs.load(Ordering::SeqCst),
            1,
            "the first computation finished and was shared, not restarted"
        );
    }
}
