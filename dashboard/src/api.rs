//! The JSON routes under `/api/v1` (see `dashboard/API.md`). Every query
//! binds its parameters; the tenant scope comes from the token only.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody};
use crate::range::{RangeQuery, TimeRange};

/// `Query` whose rejection is a JSON 400.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub(crate) struct Q<T>(pub T);

/// `Path` whose rejection is a JSON 400.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub(crate) struct P<T>(pub T);

/// `Json` whose rejection is a JSON 400.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub(crate) struct J<T>(pub T);

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

fn now_ms() -> i64 {
    ms(Utc::now())
}

/// Service names follow the event contract; anything else cannot have data.
/// A numeric query parameter: `default` when absent, else within `allowed`.
fn bounded<T>(
    name: &str,
    value: Option<T>,
    default: T,
    allowed: std::ops::RangeInclusive<T>,
) -> Result<T, ApiError>
where
    T: PartialOrd + std::fmt::Display + Copy,
{
    let v = value.unwrap_or(default);
    if allowed.contains(&v) {
        Ok(v)
    } else {
        Err(ApiError::BadRequest(format!(
            "{name} must be {}-{}",
            allowed.start(),
            allowed.end()
        )))
    }
}

fn check_service(service: &str) -> Result<(), ApiError> {
    if crate::auth::valid_tenant(service) {
        Ok(())
    } else {
        Err(ApiError::BadRequest(
            "a service name has 1-64 of [A-Za-z0-9_.-]".into(),
        ))
    }
}

/// Refuses tenant-scoped tokens on routes whose data spans tenants.
pub(crate) fn require_all_tenants(
    state: &AppState,
    p: &Principal,
    route: &str,
) -> Result<(), ApiError> {
    if p.tenant.is_some() {
        state.deny(
            Some(p),
            route,
            "tenant-scoped token on a cross-tenant route",
            None,
        );
        return Err(ApiError::Forbidden(
            "this data spans tenants; a tenant-scoped token cannot read it".into(),
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------- me

/// Who the caller is.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Me {
    /// Token id.
    pub id: i64,
    /// Token name.
    pub name: String,
    /// Role.
    pub role: crate::auth::Role,
    /// Tenant the token is bound to, or null.
    pub tenant: Option<String>,
    /// Token expiry, epoch ms, or null.
    pub expires_at_ms: Option<i64>,
}

/// The caller's token: name, role, tenant.
#[utoipa::path(get, path = "/api/v1/me", tag = "auth",
    responses((status = 200, body = Me), (status = 401, body = ErrorBody)),
    security(("bearer" = []), ("cookie" = [])))]
pub(crate) async fn me(p: Principal) -> Json<Me> {
    Json(Me {
        id: p.token_id,
        name: p.name,
        role: p.role,
        tenant: p.tenant,
        expires_at_ms: p.expires_at.map(ms),
    })
}

// ---------------------------------------------------------------- overview

/// A forecast band.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct Band {
    /// Target minute starts, epoch ms.
    pub t: Vec<i64>,
    /// 10th percentile, requests/min (overview tiles: rounded to 0.1).
    pub p10: Vec<f64>,
    /// Median, requests/min (overview tiles: rounded to 0.1).
    pub p50: Vec<f64>,
    /// 90th percentile, requests/min (overview tiles: rounded to 0.1).
    pub p90: Vec<f64>,
}

/// Requests per minute over the last hour.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct Spark {
    /// Minute starts, epoch ms.
    pub t: Vec<i64>,
    /// Requests in the minute, null when none arrived.
    pub requests: Vec<Option<f64>>,
}

/// One service's tile.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct ServiceTile {
    /// Service name.
    pub service: String,
    /// Requests in the overview's minute.
    pub requests_per_min: i64,
    /// Errors / requests in that minute, null without requests.
    pub error_rate: Option<f64>,
    /// Last 60 minutes.
    pub spark: Spark,
    /// The latest forecast, null when none (or tenant-scoped).
    pub forecast: Option<Band>,
    /// Why there is no forecast.
    pub no_forecast_reason: Option<String>,
    /// Desired size of the latest decision.
    pub desired: Option<i64>,
    /// Current size (the scaler's applied size when known).
    pub current: Option<i64>,
}

/// The overview page.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct Overview {
    /// Server time, epoch ms.
    pub now_ms: i64,
    /// The ingest frontier (event time), epoch ms.
    pub frontier_ms: Option<i64>,
    /// The minute the figures are for, epoch ms (null without data).
    pub minute_ms: Option<i64>,
    /// Requests per second in that minute.
    pub events_per_s: Option<f64>,
    /// Errors / requests.
    pub error_rate: Option<f64>,
    /// Distinct users (summed over services).
    pub active_users: Option<i64>,
    /// Requests-weighted mean of the services' p95 latency.
    pub latency_p95_ms: Option<f64>,
    /// Event → row freshness, median of the latest minute.
    pub freshness_p50_ms: Option<f64>,
    /// Event → row freshness, 99th percentile of the latest minute.
    pub freshness_p99_ms: Option<f64>,
    /// One tile per service, busiest first.
    pub services: Vec<ServiceTile>,
}

type MinuteRow = (String, DateTime<Utc>, i64, i64, Option<f64>, i64);
type ForecastRow = (DateTime<Utc>, String, DateTime<Utc>, f64, f64, f64);
type BandRow = (DateTime<Utc>, Option<f64>, Option<f64>, Option<f64>);
type PartitionRow = (String, i32, i64, Option<i64>, Option<i64>);
type StatsRow = (DateTime<Utc>, Option<f64>, Option<f64>, i64);
type AccuracyRow = (
    String,
    DateTime<Utc>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    i32,
    String,
);

async fn frontier(pool: &sqlx::PgPool) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT max(frontier_ms) FROM ingest_frontier")
        .fetch_one(pool)
        .await
}

/// Builds the overview for a scope (None = every tenant).
pub(crate) async fn build_overview(
    state: &AppState,
    tenant: Option<&str>,
) -> Result<Overview, ApiError> {
    let pool = &state.pool;
    let now = now_ms();
    let frontier_ms = frontier(pool).await?;
    let cutoff = frontier_ms.map(|f| at(f - 60_000));
    let minute: Option<DateTime<Utc>> = match tenant {
        None => {
            sqlx::query_scalar(
                "SELECT max(minute) FROM service_minute WHERE ($1::timestamptz IS NULL OR minute <= $1)",
            )
            .bind(cutoff)
            .fetch_one(pool)
            .await?
        }
        Some(t) => {
            sqlx::query_scalar(
                "SELECT max(minute) FROM metrics_minute WHERE tenant = $1 AND ($2::timestamptz IS NULL OR minute <= $2)",
            )
            .bind(t)
            .bind(cutoff)
            .fetch_one(pool)
            .await?
        }
    };
    let mut overview = Overview {
        now_ms: now,
        frontier_ms,
        minute_ms: minute.map(ms),
        events_per_s: None,
        error_rate: None,
        active_users: None,
        latency_p95_ms: None,
        freshness_p50_ms: None,
        freshness_p99_ms: None,
        services: Vec::new(),
    };
    let Some(minute) = minute else {
        return Ok(overview);
    };
    let start = minute - chrono::Duration::minutes(59);
    let rows: Vec<MinuteRow> = match tenant {
        None => {
            sqlx::query_as(
                "SELECT service, minute, requests, errors, latency_p95_ms, active_users FROM service_minute
                 WHERE minute >= $1 AND minute <= $2 ORDER BY service, minute",
            )
            .bind(start)
            .bind(minute)
            .fetch_all(pool)
            .await?
        }
        Some(t) => {
            sqlx::query_as(
                "SELECT service, minute, sum(requests)::bigint, sum(errors)::bigint,
                        (sum(latency_p95_ms * requests)
                           / nullif(sum(requests) FILTER (WHERE latency_p95_ms IS NOT NULL), 0)::float8),
                        sum(active_users)::bigint
                 FROM metrics_minute WHERE tenant = $3 AND minute >= $1 AND minute <= $2
                 GROUP BY service, minute ORDER BY service, minute",
            )
            .bind(start)
            .bind(minute)
            .bind(t)
            .fetch_all(pool)
            .await?
        }
    };
    let spark_t: Vec<i64> = (0..60).map(|i| ms(start) + i * 60_000).collect();
    let (mut requests, mut errors, mut users) = (0i64, 0i64, 0i64);
    let (mut p95_weighted, mut p95_weight) = (0f64, 0f64);
    let mut tiles: Vec<ServiceTile> = Vec::new();
    let mut history: Vec<usize> = Vec::new();
    for (service, m, req, err, p95, au) in rows {
        if tiles.last().is_none_or(|t| t.service != service) {
            tiles.push(ServiceTile {
                service: service.clone(),
                requests_per_min: 0,
                error_rate: None,
                spark: Spark {
                    t: spark_t.clone(),
                    requests: vec![None; 60],
                },
                forecast: None,
                no_forecast_reason: None,
                desired: None,
                current: None,
            });
            history.push(0);
        }
        let tile = tiles.last_mut().expect("pushed");
        *history.last_mut().expect("pushed") += 1;
        let i = ((ms(m) - ms(start)) / 60_000) as usize;
        if i < 60 {
            tile.spark.requests[i] = Some(req as f64);
        }
        if m == minute {
            tile.requests_per_min = req;
            tile.error_rate = (req > 0).then(|| err as f64 / req as f64);
            requests += req;
            errors += err;
            users += au;
            if let Some(p) = p95 {
                p95_weighted += p * req as f64;
                p95_weight += req as f64;
            }
        }
    }
    overview.events_per_s = Some(requests as f64 / 60.0);
    overview.error_rate = (requests > 0).then(|| errors as f64 / requests as f64);
    overview.active_users = Some(users);
    overview.latency_p95_ms = (p95_weight > 0.0).then(|| p95_weighted / p95_weight);

    if tenant.is_none() {
        let fresh: Option<(Option<f64>, Option<f64>)> = sqlx::query_as(
            "SELECT freshness_p50_ms, freshness_p99_ms FROM ingest_stats_minute ORDER BY minute DESC, topic LIMIT 1",
        )
        .fetch_optional(pool)
        .await?;
        if let Some((p50, p99)) = fresh {
            overview.freshness_p50_ms = p50;
            overview.freshness_p99_ms = p99;
        }
        let names: Vec<String> = tiles.iter().map(|t| t.service.clone()).collect();
        let forecasts: Vec<(String, DateTime<Utc>, f64, f64, f64)> = sqlx::query_as(
            // Each service's rows through the primary key (service,
            // issued_at, horizon_min): a plain join on issued_at let the
            // planner scan every service's forecasts of that instant (100
            // services: 120-240 ms against 20 ms, EXPLAIN ANALYZE).
            "SELECT s.service, f.target_minute, f.p10, f.p50, f.p90
             FROM unnest($1::text[]) AS s(service)
             CROSS JOIN LATERAL (SELECT issued_at FROM forecasts WHERE service = s.service
                                 ORDER BY issued_at DESC LIMIT 1) AS latest
             CROSS JOIN LATERAL (SELECT target_minute, p10, p50, p90 FROM forecasts
                                 WHERE service = s.service AND issued_at = latest.issued_at
                                   AND horizon_min > 0
                                 ORDER BY service, issued_at, horizon_min) AS f
             ORDER BY s.service, f.target_minute",
        )
        .bind(&names)
        .fetch_all(pool)
        .await?;
        let mut bands: BTreeMap<String, Band> = BTreeMap::new();
        for (service, t, p10, p50, p90) in forecasts {
            let b = bands.entry(service).or_insert_with(|| Band {
                t: Vec::new(),
                p10: Vec::new(),
                p50: Vec::new(),
                p90: Vec::new(),
            });
            b.t.push(ms(t));
            b.p10.push(tile_value(p10));
            b.p50.push(tile_value(p50));
            b.p90.push(tile_value(p90));
        }
        let sizes: Vec<(String, i32, i32, Option<i32>)> = sqlx::query_as(
            "SELECT s.service, d.desired, d.current_size, a.applied
             FROM unnest($1::text[]) AS s(service)
             CROSS JOIN LATERAL (SELECT id, desired, current_size FROM scaling_decisions
                                 WHERE service = s.service ORDER BY issued_at DESC LIMIT 1) AS d
             LEFT JOIN scaling_actions a ON a.decision_id = d.id",
        )
        .bind(&names)
        .fetch_all(pool)
        .await?;
        let sizes: BTreeMap<String, (i32, i32, Option<i32>)> = sizes
            .into_iter()
            .map(|(s, d, c, a)| (s, (d, c, a)))
            .collect();
        for (tile, minutes) in tiles.iter_mut().zip(&history) {
            tile.forecast = bands.remove(&tile.service);
            if tile.forecast.is_none() {
                tile.no_forecast_reason = Some(if *minutes < 60 {
                    format!("no forecast yet: {minutes} minutes of history so far")
                } else {
                    "no forecast yet (is the forecaster running?)".to_string()
                });
            }
            if let Some((desired, current, applied)) = sizes.get(&tile.service) {
                tile.desired = Some(*desired as i64);
                tile.current = Some(applied.unwrap_or(*current) as i64);
            }
        }
    } else {
        for tile in &mut tiles {
            tile.no_forecast_reason = Some("forecasts span tenants".to_string());
        }
    }
    tiles.sort_by(|a, b| {
        b.requests_per_min
            .cmp(&a.requests_per_min)
            .then_with(|| a.service.cmp(&b.service))
    });
    overview.services = tiles;
    Ok(overview)
}

/// Headline numbers and a tile per service (cached for a second, and
/// refreshed as soon as PostgreSQL notifies new rows).
#[utoipa::path(get, path = "/api/v1/overview", tag = "data",
    responses((status = 200, body = Overview), (status = 401, body = ErrorBody)),
    security(("bearer" = []), ("cookie" = [])))]
pub(crate) async fn overview(
    State(state): State<AppState>,
    p: Principal,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let tenant = p.tenant.as_deref();
    let key = format!("overview|{}", tenant.unwrap_or(""));
    let (compute_state, tenant) = (state.clone(), p.tenant.clone());
    let json = state
        .cached(key, async move {
            Ok(overview_bytes(
                &build_overview(&compute_state, tenant.as_deref()).await?,
            ))
        })
        .await?;
    Ok(json.response(&headers))
}

/// A forecast value as a tile shows it: rounded to 0.1 requests/min.
///
/// The models' full-precision numbers (`1234.5678901234567`) were most of
/// the overview's bytes and compress badly; a sparkline cannot show more
/// than three digits. The service view's `/forecast` keeps full precision.
fn tile_value(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// Serialises an overview (for the cache).
pub(crate) fn overview_bytes(o: &Overview) -> Bytes {
    Bytes::from(serde_json::to_vec(o).expect("an overview serialises"))
}

// ---------------------------------------------------------------- services

/// A service and its newest minute.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ServiceSummary {
    /// Service name.
    pub service: String,
    /// Its newest minute with data, epoch ms.
    pub last_minute_ms: i64,
    /// Requests in that minute.
    pub requests_per_min: i64,
}

/// Every service with data (the last 7 days for tenant-scoped tokens).
#[utoipa::path(get, path = "/api/v1/services", tag = "data",
    responses((status = 200, body = Vec<ServiceSummary>), (status = 401, body = ErrorBody)),
    security(("bearer" = []), ("cookie" = [])))]
pub(crate) async fn services(
    State(state): State<AppState>,
    p: Principal,
) -> Result<Json<Vec<ServiceSummary>>, ApiError> {
    let rows: Vec<(String, DateTime<Utc>, i64)> = match &p.tenant {
        // Skip scan over the primary key: one index probe per service.
        None => {
            sqlx::query_as(
                "WITH RECURSIVE s AS (
                   (SELECT service FROM service_minute ORDER BY service LIMIT 1)
                   UNION ALL
                   SELECT (SELECT service FROM service_minute WHERE service > s.service ORDER BY service LIMIT 1)
                   FROM s WHERE s.service IS NOT NULL)
                 SELECT s.service, l.minute, l.requests FROM s
                 CROSS JOIN LATERAL (SELECT minute, requests FROM service_minute
                                     WHERE service = s.service ORDER BY minute DESC LIMIT 1) AS l
                 WHERE s.service IS NOT NULL ORDER BY s.service",
            )
            .fetch_all(&state.pool)
            .await?
        }
        Some(t) => {
            sqlx::query_as(
                "SELECT DISTINCT ON (service) service, minute, requests FROM (
                   SELECT service, minute, sum(requests)::bigint AS requests FROM metrics_minute
                   WHERE tenant = $1 AND minute >= now() - interval '7 days'
                   GROUP BY service, minute) AS m
                 ORDER BY service, minute DESC",
            )
            .bind(t)
            .fetch_all(&state.pool)
            .await?
        }
    };
    Ok(Json(
        rows.into_iter()
            .map(|(service, minute, requests)| ServiceSummary {
                service,
                last_minute_ms: ms(minute),
                requests_per_min: requests,
            })
            .collect(),
    ))
}

// ---------------------------------------------------------------- series

/// A service's metrics over a range.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Series {
    /// Service name.
    pub service: String,
    /// Range start, epoch ms.
    pub from_ms: i64,
    /// Range end (exclusive), epoch ms.
    pub to_ms: i64,
    /// Bucket size: 60, 300 or 3600.
    pub bucket_s: i64,
    /// Bucket starts, epoch ms.
    pub t: Vec<i64>,
    /// Requests per minute (mean over the bucket's minutes).
    pub requests: Vec<Option<f64>>,
    /// Errors per minute (mean over the bucket's minutes).
    pub errors: Vec<Option<f64>>,
    /// Median latency (requests-weighted mean).
    pub latency_p50_ms: Vec<Option<f64>>,
    /// p95 latency (max over the bucket).
    pub latency_p95_ms: Vec<Option<f64>>,
    /// p99 latency (max over the bucket).
    pub latency_p99_ms: Vec<Option<f64>>,
    /// Distinct users (max over the bucket's minutes).
    pub active_users: Vec<Option<f64>>,
}

type SeriesRow = (
    DateTime<Utc>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
);

/// A service's requests, errors, latency and users over a range.
#[utoipa::path(get, path = "/api/v1/services/{service}/series", tag = "data",
    params(("service" = String, Path, description = "service name"), RangeQuery),
    responses((status = 200, body = Series), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("bearer" = []), ("cookie" = [])))]
pub(crate) async fn series(
    State(state): State<AppState>,
    p: Principal,
    P(service): P<String>,
    Q(q): Q<RangeQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    check_service(&service)?;
    let mut range = TimeRange::parse(&q, now_ms())?;
    if q.from.is_none() {
        // A range ending now ends at the end of the current bucket, so the
        // answer (same buckets) is shared by every request of that bucket.
        range.to_ms = (range.to_ms.div_euclid(range.bucket_ms()) + 1) * range.bucket_ms();
        range.from_ms = range.to_ms
            - (q.range.as_deref().and_then(crate::range::named_span)).unwrap_or(3_600_000);
    }
    let key = format!(
        "series|{}|{service}|{}|{}",
        p.tenant.as_deref().unwrap_or(""),
        range.from_ms,
        range.to_ms
    );
    // 1-minute buckets follow every notification; coarser ones (5 minutes up
    // to 3 days, 1 hour beyond) are recomputed at most every bucket/60 (5 s,
    // 60 s): a 7-day view reads ~10,000 minutes per service, up to 100,000
    // rows for a tenant, and its last hour moves by a sixtieth a minute.
    let freshness = if range.bucket_s <= 60 {
        crate::Freshness::Live
    } else {
        crate::Freshness::AtMost(std::time::Duration::from_secs(range.bucket_s as u64 / 60))
    };
    let json = state
        .cached_for(key, freshness, {
            let (pool, tenant) = (state.pool.clone(), p.tenant.clone());
            async move {
                let s = series_of(&pool, tenant.as_deref(), service, range).await?;
                Ok(Bytes::from(
                    serde_json::to_vec(&s).expect("a series serialises"),
                ))
            }
        })
        .await?;
    Ok(json.response(&headers))
}

async fn series_of(
    pool: &sqlx::PgPool,
    tenant: Option<&str>,
    service: String,
    range: TimeRange,
) -> Result<Series, ApiError> {
    let rows: Vec<SeriesRow> = match tenant {
        None => {
            sqlx::query_as(
                "SELECT date_bin(make_interval(secs => $4), minute, TIMESTAMPTZ '1970-01-01 00:00:00+00') AS b,
                        avg(requests)::float8, avg(errors)::float8,
                        sum(latency_p50_ms * requests)
                          / nullif(sum(requests) FILTER (WHERE latency_p50_ms IS NOT NULL), 0)::float8,
                        max(latency_p95_ms), max(latency_p99_ms), max(active_users)::float8
                 FROM service_minute WHERE service = $1 AND minute >= $2 AND minute < $3
                 GROUP BY b ORDER BY b",
            )
            .bind(&service)
            .bind(at(range.first_bucket_ms()))
            .bind(at(range.to_ms))
            .bind(range.bucket_s as f64)
            .fetch_all(pool)
            .await?
        }
        Some(t) => {
            // Whole-hour buckets read the hourly rollup up to where it has
            // got and the raw minutes after; other buckets read raw minutes
            // only. Both give the same partial sums (see `rollup`).
            // `$6`: the rollup's state row, or NULL (no row: read raw minutes only).
            let rollup = (range.bucket_s.rem_euclid(3600) == 0).then_some(crate::rollup::STATE);
            sqlx::query_as(concat!(
                "WITH RECURSIVE e AS (",
                crate::rollup::endpoints_of!(),
                "),
                 r AS (
                   SELECT coalesce((SELECT rolled_until FROM dashboard_rollup_state WHERE name = $6),
                                   '-infinity') AS until),
                 m AS (
                   SELECT minute, ",
                crate::rollup::minute_sums!(),
                " FROM e CROSS JOIN LATERAL (
                     SELECT * FROM metrics_minute
                     WHERE tenant = $5 AND service = $1 AND endpoint = e.endpoint
                       AND minute >= greatest($2, (SELECT until FROM r)) AND minute < $3
                     OFFSET 0) AS x
                   GROUP BY minute),
                 p AS (
                   SELECT date_bin(make_interval(secs => $4), minute, TIMESTAMPTZ '1970-01-01 00:00:00+00') AS b, ",
                crate::rollup::bucket_partials!(),
                " FROM m GROUP BY b
                   UNION ALL
                   SELECT date_bin(make_interval(secs => $4), hour, TIMESTAMPTZ '1970-01-01 00:00:00+00'),
                          minutes, requests, errors, p50_num, p50_den, latency_p95_ms, latency_p99_ms, active_users
                   FROM tenant_service_hour
                   WHERE tenant = $5 AND service = $1 AND hour >= $2 AND hour < least($3, (SELECT until FROM r)))
                 SELECT b, sum(requests) / sum(minutes), sum(errors) / sum(minutes),
                        sum(p50_num) / nullif(sum(p50_den), 0),
                        max(p95), max(p99), max(users)
                 FROM p GROUP BY b ORDER BY b"
            ))
            .bind(&service)
            .bind(at(range.first_bucket_ms()))
            .bind(at(range.to_ms))
            .bind(range.bucket_s as f64)
            .bind(t)
            .bind(rollup)
            .fetch_all(pool)
            .await?
        }
    };
    let t = range.buckets();
    let n = t.len();
    let mut s = Series {
        service,
        from_ms: range.from_ms,
        to_ms: range.to_ms,
        bucket_s: range.bucket_s,
        t,
        requests: vec![None; n],
        errors: vec![None; n],
        latency_p50_ms: vec![None; n],
        latency_p95_ms: vec![None; n],
        latency_p99_ms: vec![None; n],
        active_users: vec![None; n],
    };
    for (b, req, err, p50, p95, p99, users) in rows {
        if let Some(i) = range.index_of(ms(b)) {
            s.requests[i] = req;
            s.errors[i] = err;
            s.latency_p50_ms[i] = p50;
            s.latency_p95_ms[i] = p95;
            s.latency_p99_ms[i] = p99;
            s.active_users[i] = users;
        }
    }
    Ok(s)
}

// ---------------------------------------------------------------- forecasts

/// The latest forecast of a service.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ServiceForecast {
    /// Service name.
    pub service: String,
    /// When it was issued, epoch ms.
    pub issued_at_ms: i64,
    /// The model that made it.
    pub model: String,
    /// Target minute starts, epoch ms.
    pub t: Vec<i64>,
    /// 10th percentile, requests/min.
    pub p10: Vec<f64>,
    /// Median, requests/min.
    pub p50: Vec<f64>,
    /// 90th percentile, requests/min.
    pub p90: Vec<f64>,
}

/// The service's latest forecast (every horizon).
#[utoipa::path(get, path = "/api/v1/services/{service}/forecast", tag = "data",
    params(("service" = String, Path, description = "service name")),
    responses((status = 200, body = ServiceForecast), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("cookie" = [])))]
pub(crate) async fn forecast(
    State(state): State<AppState>,
    p: Principal,
    P(service): P<String>,
) -> Result<Json<ServiceForecast>, ApiError> {
    require_all_tenants(&state, &p, "/api/v1/services/{service}/forecast")?;
    check_service(&service)?;
    let rows: Vec<ForecastRow> = sqlx::query_as(
        "SELECT f.issued_at, f.model, f.target_minute, f.p10, f.p50, f.p90 FROM forecasts f
         WHERE f.service = $1
           AND f.issued_at = (SELECT issued_at FROM forecasts WHERE service = $1 ORDER BY issued_at DESC LIMIT 1)
         ORDER BY f.target_minute",
    )
    .bind(&service)
    .fetch_all(&state.pool)
    .await?;
    let Some((issued_at, model, ..)) = rows.first().cloned() else {
        let minutes: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM service_minute WHERE service = $1 AND minute >= now() - interval '1 day'",
        )
        .bind(&service)
        .fetch_one(&state.pool)
        .await?;
        return Err(ApiError::NotFound(
            format!("no forecast yet for {service}"),
            Some(format!(
                "no forecast yet: {minutes} minutes of history in the last day"
            )),
        ));
    };
    let mut f = ServiceForecast {
        service,
        issued_at_ms: ms(issued_at),
        model,
        t: Vec::new(),
        p10: Vec::new(),
        p50: Vec::new(),
        p90: Vec::new(),
    };
    for (_, _, t, p10, p50, p90) in rows {
        f.t.push(ms(t));
        f.p10.push(p10);
        f.p50.push(p50);
        f.p90.push(p90);
    }
    Ok(Json(f))
}

/// Parameters of `forecast-history`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct HistoryQuery {
    /// Lead time in minutes (1-1440, default 15).
    pub horizon: Option<i32>,
    /// A range ending now: `1h`, `6h`, `24h` or `7d` (default `1h`).
    pub range: Option<String>,
    /// Start, epoch milliseconds (with `to`).
    pub from: Option<i64>,
    /// End (exclusive), epoch milliseconds (with `from`).
    pub to: Option<i64>,
}

/// Forecasts made `horizon` minutes ahead for the minutes of a range.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ForecastHistory {
    /// Service name.
    pub service: String,
    /// Lead time, minutes.
    pub horizon: i32,
    /// Bucket size, seconds.
    pub bucket_s: i64,
    /// Bucket starts, epoch ms.
    pub t: Vec<i64>,
    /// 10th percentile (mean over the bucket).
    pub p10: Vec<Option<f64>>,
    /// Median (mean over the bucket).
    pub p50: Vec<Option<f64>>,
    /// 90th percentile (mean over the bucket).
    pub p90: Vec<Option<f64>>,
}

/// What was forecast for the past at a fixed lead time (accuracy at a glance).
#[utoipa::path(get, path = "/api/v1/services/{service}/forecast-history", tag = "data",
    params(("service" = String, Path, description = "service name"), HistoryQuery),
    responses((status = 200, body = ForecastHistory), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("cookie" = [])))]
pub(crate) async fn forecast_history(
    State(state): State<AppState>,
    p: Principal,
    P(service): P<String>,
    Q(q): Q<HistoryQuery>,
) -> Result<Json<ForecastHistory>, ApiError> {
    require_all_tenants(&state, &p, "/api/v1/services/{service}/forecast-history")?;
    check_service(&service)?;
    let horizon = bounded("horizon", q.horizon, 15, 1..=1440)?;
    let range = TimeRange::parse(&RangeQuery::new(q.range, q.from, q.to), now_ms())?;
    let rows: Vec<BandRow> = sqlx::query_as(
        "SELECT date_bin(make_interval(secs => $5), target_minute, TIMESTAMPTZ '1970-01-01 00:00:00+00') AS b,
                avg(p10), avg(p50), avg(p90)
         FROM forecasts WHERE service = $1 AND horizon_min = $2 AND target_minute >= $3 AND target_minute < $4
         GROUP BY b ORDER BY b",
    )
    .bind(&service)
    .bind(horizon)
    .bind(at(range.first_bucket_ms()))
    .bind(at(range.to_ms))
    .bind(range.bucket_s as f64)
    .fetch_all(&state.pool)
    .await?;
    let t = range.buckets();
    let n = t.len();
    let mut h = ForecastHistory {
        service,
        horizon,
        bucket_s: range.bucket_s,
        t,
        p10: vec![None; n],
        p50: vec![None; n],
        p90: vec![None; n],
    };
    for (b, p10, p50, p90) in rows {
        if let Some(i) = range.index_of(ms(b)) {
            h.p10[i] = p10;
            h.p50[i] = p50;
            h.p90[i] = p90;
        }
    }
    Ok(Json(h))
}

// ---------------------------------------------------------------- replicas

/// Desired vs current replicas as step lines.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Replicas {
    /// Service name.
    pub service: String,
    /// Decision instants, epoch ms.
    pub t: Vec<i64>,
    /// Desired size.
    pub desired: Vec<i64>,
    /// The size the planner believed current.
    pub current: Vec<i64>,
    /// The size the scaler set (or would set, in dry-run), when known.
    pub applied: Vec<Option<i64>>,
}

/// One point per decision in the range.
#[utoipa::path(get, path = "/api/v1/services/{service}/replicas", tag = "data",
    params(("service" = String, Path, description = "service name"), RangeQuery),
    responses((status = 200, body = Replicas), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("cookie" = [])))]
pub(crate) async fn replicas(
    State(state): State<AppState>,
    p: Principal,
    P(service): P<String>,
    Q(q): Q<RangeQuery>,
) -> Result<Json<Replicas>, ApiError> {
    require_all_tenants(&state, &p, "/api/v1/services/{service}/replicas")?;
    check_service(&service)?;
    let range = TimeRange::parse(&q, now_ms())?;
    let mut rows: Vec<(DateTime<Utc>, i32, i32, Option<i32>)> = sqlx::query_as(
        "SELECT d.issued_at, d.desired, d.current_size, a.applied
         FROM scaling_decisions d LEFT JOIN scaling_actions a ON a.decision_id = d.id
         WHERE d.service = $1 AND d.issued_at >= $2 AND d.issued_at < $3
         ORDER BY d.issued_at DESC LIMIT 20000",
    )
    .bind(&service)
    .bind(at(range.from_ms))
    .bind(at(range.to_ms))
    .fetch_all(&state.pool)
    .await?;
    rows.reverse();
    Ok(Json(Replicas {
        service,
        t: rows.iter().map(|r| ms(r.0)).collect(),
        desired: rows.iter().map(|r| r.1 as i64).collect(),
        current: rows.iter().map(|r| r.2 as i64).collect(),
        applied: rows.iter().map(|r| r.3.map(i64::from)).collect(),
    }))
}

// ---------------------------------------------------------------- decisions

/// Parameters of `/api/v1/decisions`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct DecisionsQuery {
    /// Only this service.
    pub service: Option<String>,
    /// At most this many (1-1000, default 100).
    pub limit: Option<i64>,
    /// A range ending now: `1h`, `6h`, `24h` or `7d` (default `1h`).
    pub range: Option<String>,
    /// Start, epoch milliseconds (with `to`).
    pub from: Option<i64>,
    /// End (exclusive), epoch milliseconds (with `from`).
    pub to: Option<i64>,
}

/// The forecast a decision used.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct DecisionForecast {
    /// Lead time covered, minutes.
    pub horizon: i64,
    /// Median forecast, requests/min.
    pub p50: f64,
    /// 90th percentile, requests/min.
    pub p90: f64,
}

/// A scaling decision and what the scaler did with it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Decision {
    /// Decision id (uuid).
    pub id: String,
    /// Service.
    pub service: String,
    /// When decided, epoch ms.
    pub issued_at_ms: i64,
    /// Not applied after this, epoch ms.
    pub expires_at_ms: i64,
    /// `dry-run` or `apply`.
    pub mode: String,
    /// Planning policy.
    pub policy: String,
    /// Size believed current.
    pub current: i64,
    /// Size asked for.
    pub desired: i64,
    /// Lower bound.
    pub min: i64,
    /// Upper bound.
    pub max: i64,
    /// Why, in words.
    pub reason: String,
    /// True when planned reactively (no usable forecast).
    pub fallback: bool,
    /// The forecast it used.
    pub forecast: Option<DecisionForecast>,
    /// The scaler's outcome, null until known.
    pub outcome: Option<String>,
    /// Why that outcome.
    pub outcome_reason: Option<String>,
    /// Size set (or that would be set in dry-run).
    pub applied: Option<i64>,
    /// Size × hours until the service's next decision (or expiry).
    pub replica_hours: f64,
}

#[derive(sqlx::FromRow)]
struct DecisionRow {
    id: uuid::Uuid,
    service: String,
    issued_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    mode: String,
    policy: String,
    current_size: i32,
    desired: i32,
    min_size: i32,
    max_size: i32,
    reason: String,
    fallback: bool,
    forecast: Option<serde_json::Value>,
    outcome: Option<String>,
    outcome_reason: Option<String>,
    applied: Option<i32>,
    next_at: Option<DateTime<Utc>>,
}

/// Scaling decisions and outcomes, newest first.
#[utoipa::path(get, path = "/api/v1/decisions", tag = "data",
    params(DecisionsQuery),
    responses((status = 200, body = Vec<Decision>), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("cookie" = [])))]
pub(crate) async fn decisions(
    State(state): State<AppState>,
    p: Principal,
    Q(q): Q<DecisionsQuery>,
) -> Result<Json<Vec<Decision>>, ApiError> {
    require_all_tenants(&state, &p, "/api/v1/decisions")?;
    if let Some(s) = &q.service {
        check_service(s)?;
    }
    let limit = bounded("limit", q.limit, 100, 1..=1000)?;
    let range = TimeRange::parse(&RangeQuery::new(q.range, q.from, q.to), now_ms())?;
    let rows: Vec<DecisionRow> = sqlx::query_as(
        "SELECT d.id, d.service, d.issued_at, d.expires_at, d.mode, d.policy, d.current_size, d.desired,
                d.min_size, d.max_size, d.reason, d.fallback, d.forecast, a.outcome, a.reason AS outcome_reason, a.applied,
                lead(d.issued_at) OVER (PARTITION BY d.service ORDER BY d.issued_at) AS next_at
         FROM scaling_decisions d LEFT JOIN scaling_actions a ON a.decision_id = d.id
         WHERE ($1::text IS NULL OR d.service = $1) AND d.issued_at >= $2 AND d.issued_at < $3
         ORDER BY d.issued_at DESC, d.service LIMIT $4",
    )
    .bind(q.service.as_deref())
    .bind(at(range.from_ms))
    .bind(at(range.to_ms))
    .bind(limit)
    .fetch_all(&state.pool)
    .await?;
    Ok(Json(
        rows.into_iter()
            .map(|r| {
                let until = r.next_at.unwrap_or(r.expires_at).max(r.issued_at);
                let hours = (until - r.issued_at).num_milliseconds() as f64 / 3_600_000.0;
                let size = r.applied.unwrap_or(r.desired) as f64;
                Decision {
                    id: r.id.to_string(),
                    service: r.service,
                    issued_at_ms: ms(r.issued_at),
                    expires_at_ms: ms(r.expires_at),
                    mode: r.mode,
                    policy: r.policy,
                    current: r.current_size.into(),
                    desired: r.desired.into(),
                    min: r.min_size.into(),
                    max: r.max_size.into(),
                    reason: r.reason,
                    fallback: r.fallback,
                    forecast: r.forecast.and_then(|v| serde_json::from_value(v).ok()),
                    outcome: r.outcome,
                    outcome_reason: r.outcome_reason,
                    applied: r.applied.map(i64::from),
                    replica_hours: size * hours,
                }
            })
            .collect(),
    ))
}

// ---------------------------------------------------------------- pipeline

/// One partition's progress.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PartitionLag {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Next offset the dataflow reads.
    pub next_offset: i64,
    /// The partition's high watermark as last seen.
    pub end_offset: Option<i64>,
    /// end_offset - next_offset.
    pub lag: Option<i64>,
    /// Max event time seen, epoch ms.
    pub watermark_ms: Option<i64>,
}

/// Dead letters per reason over time.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DeadLetters {
    /// Bucket size, seconds.
    pub bucket_s: i64,
    /// Bucket starts, epoch ms.
    pub t: Vec<i64>,
    /// Count per bucket for each reason.
    pub by_reason: BTreeMap<String, Vec<i64>>,
}

/// Event → row freshness over time.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Freshness {
    /// Bucket size, seconds.
    pub bucket_s: i64,
    /// Bucket starts, epoch ms.
    pub t: Vec<i64>,
    /// Median (max over the bucket).
    pub p50_ms: Vec<Option<f64>>,
    /// 99th percentile (max over the bucket).
    pub p99_ms: Vec<Option<f64>>,
}

/// Events read per second over time.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EventRate {
    /// Bucket size, seconds.
    pub bucket_s: i64,
    /// Bucket starts, epoch ms.
    pub t: Vec<i64>,
    /// Events per second.
    pub per_s: Vec<Option<f64>>,
}

/// A service's latest forecast accuracy.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Accuracy {
    /// Service.
    pub service: String,
    /// Minute evaluated, epoch ms.
    pub minute_ms: i64,
    /// Mean absolute scaled error (vs daily seasonal naive).
    pub mase: Option<f64>,
    /// Mean absolute error, requests/min.
    pub mae: Option<f64>,
    /// Share of actuals inside [p10, p90].
    pub coverage: Option<f64>,
    /// Pairs evaluated.
    pub samples: i32,
    /// Leading model.
    pub model: String,
}

/// Pipeline health.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Pipeline {
    /// Ingest frontier, epoch ms.
    pub frontier_ms: Option<i64>,
    /// Open windows held in memory (latest minute, all topics).
    pub keys_held: Option<i64>,
    /// Per-partition progress and lag.
    pub partitions: Vec<PartitionLag>,
    /// Dead letters by reason.
    pub dead_letters: DeadLetters,
    /// Freshness.
    pub freshness: Freshness,
    /// Event rate.
    pub events: EventRate,
    /// Latest accuracy per service.
    pub accuracy: Vec<Accuracy>,
}

/// Consumer lag, dead letters, freshness, keys held and forecast accuracy.
#[utoipa::path(get, path = "/api/v1/pipeline", tag = "data",
    params(RangeQuery),
    responses((status = 200, body = Pipeline), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("cookie" = [])))]
pub(crate) async fn pipeline(
    State(state): State<AppState>,
    p: Principal,
    Q(q): Q<RangeQuery>,
) -> Result<Json<Pipeline>, ApiError> {
    require_all_tenants(&state, &p, "/api/v1/pipeline")?;
    let range = TimeRange::parse(&q, now_ms())?;
    let pool = &state.pool;
    let frontier_ms = frontier(pool).await?;
    let keys_held: Option<i64> = sqlx::query_scalar(
        "SELECT sum(keys_held)::bigint FROM ingest_stats_minute
         WHERE minute = (SELECT max(minute) FROM ingest_stats_minute)",
    )
    .fetch_one(pool)
    .await?;
    let parts: Vec<PartitionRow> = sqlx::query_as(
        "SELECT topic, partition, next_offset, end_offset, watermark_ms FROM ingest_offsets ORDER BY topic, partition",
    )
    .fetch_all(pool)
    .await?;
    let t = range.buckets();
    let n = t.len();
    let (from, to, bucket) = (
        at(range.first_bucket_ms()),
        at(range.to_ms),
        range.bucket_s as f64,
    );
    let dead: Vec<(DateTime<Utc>, String, i64)> = sqlx::query_as(
        "SELECT date_bin(make_interval(secs => $3), minute, TIMESTAMPTZ '1970-01-01 00:00:00+00') AS b,
                reason, sum(count)::bigint
         FROM dead_letters_minute WHERE minute >= $1 AND minute < $2 GROUP BY b, reason ORDER BY b",
    )
    .bind(from)
    .bind(to)
    .bind(bucket)
    .fetch_all(pool)
    .await?;
    let stats: Vec<StatsRow> = sqlx::query_as(
        "SELECT date_bin(make_interval(secs => $3), minute, TIMESTAMPTZ '1970-01-01 00:00:00+00') AS b,
                max(freshness_p50_ms), max(freshness_p99_ms), sum(events)::bigint
         FROM ingest_stats_minute WHERE minute >= $1 AND minute < $2 GROUP BY b ORDER BY b",
    )
    .bind(from)
    .bind(to)
    .bind(bucket)
    .fetch_all(pool)
    .await?;
    let accuracy: Vec<AccuracyRow> =
        sqlx::query_as(
            "SELECT DISTINCT ON (service) service, minute, mase, mae, coverage, samples, model
             FROM forecast_accuracy WHERE minute >= $1 AND minute < $2 ORDER BY service, minute DESC",
        )
        .bind(at(range.from_ms))
        .bind(to)
        .fetch_all(pool)
        .await?;

    let mut by_reason: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for (b, reason, count) in dead {
        if let Some(i) = range.index_of(ms(b)) {
            by_reason.entry(reason).or_insert_with(|| vec![0; n])[i] += count;
        }
    }
    let mut freshness = Freshness {
        bucket_s: range.bucket_s,
        t: t.clone(),
        p50_ms: vec![None; n],
        p99_ms: vec![None; n],
    };
    let mut events = EventRate {
        bucket_s: range.bucket_s,
        t: t.clone(),
        per_s: vec![None; n],
    };
    for (b, p50, p99, ev) in stats {
        if let Some(i) = range.index_of(ms(b)) {
            freshness.p50_ms[i] = p50;
            freshness.p99_ms[i] = p99;
            events.per_s[i] = Some(ev as f64 / range.bucket_s as f64);
        }
    }
    Ok(Json(Pipeline {
        frontier_ms,
        keys_held,
        partitions: parts
            .into_iter()
            .map(
                |(topic, partition, next_offset, end_offset, watermark_ms)| PartitionLag {
                    topic,
                    partition,
                    next_offset,
                    end_offset,
                    lag: end_offset.map(|e| (e - next_offset).max(0)),
                    watermark_ms,
                },
            )
            .collect(),
        dead_letters: DeadLetters {
            bucket_s: range.bucket_s,
            t,
            by_reason,
        },
        freshness,
        events,
        accuracy: accuracy
            .into_iter()
            .map(
                |(service, minute, mase, mae, coverage, samples, model)| Accuracy {
                    service,
                    minute_ms: ms(minute),
                    mase,
                    mae,
                    coverage,
                    samples,
                    model,
                },
            )
            .collect(),
    }))
}

// ---------------------------------------------------------------- admin

/// Body of `POST /api/v1/tokens`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateToken {
    /// Name (1-128 characters).
    pub name: String,
    /// Role.
    pub role: crate::auth::Role,
    /// Bind to one tenant.
    pub tenant: Option<String>,
    /// Lifetime in seconds (1 s to 10 years; default: never expires).
    pub expires_in_s: Option<i64>,
}

/// A new token: shown once.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CreatedToken {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Role.
    pub role: crate::auth::Role,
    /// Tenant, or null.
    pub tenant: Option<String>,
    /// Created, epoch ms.
    pub created_at_ms: i64,
    /// Expiry, epoch ms, or null.
    pub expires_at_ms: Option<i64>,
    /// Always null for a new token.
    pub revoked_at_ms: Option<i64>,
    /// The token itself; only its hash is stored.
    pub token: String,
}

fn require_admin(state: &AppState, p: &Principal, route: &str) -> Result<(), ApiError> {
    if p.role != crate::auth::Role::Admin {
        state.deny(Some(p), route, "role lacks admin", None);
        return Err(ApiError::Forbidden("this needs an admin token".into()));
    }
    require_all_tenants(state, p, route)
}

/// Every token (never the tokens themselves).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "admin",
    responses((status = 200, body = Vec<crate::auth::TokenInfo>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("cookie" = [])))]
pub(crate) async fn list_tokens(
    State(state): State<AppState>,
    p: Principal,
) -> Result<Json<Vec<crate::auth::TokenInfo>>, ApiError> {
    require_admin(&state, &p, "/api/v1/tokens")?;
    Ok(Json(crate::auth::list_tokens(&state.pool).await.map_err(
        |e| match e {
            crate::auth::AuthError::Database(e) => ApiError::Database(e),
            other => ApiError::BadRequest(other.to_string()),
        },
    )?))
}

/// Creates a token.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "admin",
    request_body = CreateToken,
    responses((status = 201, body = CreatedToken), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("cookie" = [])))]
pub(crate) async fn create_token(
    State(state): State<AppState>,
    p: Principal,
    J(body): J<CreateToken>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    require_admin(&state, &p, "/api/v1/tokens")?;
    let expires_at = match body.expires_in_s {
        None => None,
        Some(s) if (1..=10 * 366 * 86_400).contains(&s) => {
            Some(Utc::now() + chrono::Duration::seconds(s))
        }
        Some(_) => {
            return Err(ApiError::BadRequest(
                "expires_in_s must be 1 s to 10 years".into(),
            ));
        }
    };
    let (info, token) = crate::auth::create_token(
        &state.pool,
        &body.name,
        body.role,
        body.tenant.as_deref(),
        expires_at,
    )
    .await
    .map_err(|e| match e {
        crate::auth::AuthError::Database(e) => ApiError::Database(e),
        other => ApiError::BadRequest(other.to_string()),
    })?;
    state.audit_ok(
        &p,
        "token-create",
        &format!("token {} ({}, {})", info.id, info.name, info.role.as_str()),
    );
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            id: info.id,
            name: info.name,
            role: info.role,
            tenant: info.tenant,
            created_at_ms: info.created_at_ms,
            expires_at_ms: info.expires_at_ms,
            revoked_at_ms: info.revoked_at_ms,
            token,
        }),
    ))
}

/// Revokes a token (its sessions end at once).
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "admin",
    params(("id" = i64, Path, description = "token id")),
    responses((status = 204, description = "revoked"), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("cookie" = [])))]
pub(crate) async fn revoke_token(
    State(state): State<AppState>,
    p: Principal,
    P(id): P<i64>,
) -> Result<StatusCode, ApiError> {
    require_admin(&state, &p, "/api/v1/tokens/{id}")?;
    let found = crate::auth::revoke_token(&state.pool, id)
        .await
        .map_err(|e| match e {
            crate::auth::AuthError::Database(e) => ApiError::Database(e),
            other => ApiError::BadRequest(other.to_string()),
        })?;
    if !found {
        return Err(ApiError::NotFound(format!("no token {id}"), None));
    }
    state.audit_ok(&p, "token-revoke", &format!("token {id}"));
    Ok(StatusCode::NO_CONTENT)
}

/// Parameters of `/api/v1/audit`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct AuditQuery {
    /// At most this many (1-1000, default 100).
    pub limit: Option<i64>,
}

/// The audit log, newest first.
#[utoipa::path(get, path = "/api/v1/audit", tag = "admin",
    params(AuditQuery),
    responses((status = 200, body = Vec<crate::auth::AuditEntry>), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("cookie" = [])))]
pub(crate) async fn audit(
    State(state): State<AppState>,
    p: Principal,
    Q(q): Q<AuditQuery>,
) -> Result<Json<Vec<crate::auth::AuditEntry>>, ApiError> {
    require_admin(&state, &p, "/api/v1/audit")?;
    let limit = bounded("limit", q.limit, 100, 1..=1000)?;
    Ok(Json(crate::auth::audit_entries(&state.pool, limit).await?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CachedJson;

    /// 100 services, each with an hour of sparkline and a 60-minute band
    /// of full-precision model output, as `build_overview` assembles them.
    fn hundred_tiles(round: fn(f64) -> f64) -> Overview {
        let start = 1_790_000_000_000i64;
        let services = (0..100)
            .map(|s| {
                let wave = |i: i64, k: f64| {
                    1000.0
                        + 37.123_456_789 * s as f64
                        + k * (i as f64 / 7.3).sin() * 211.987_654_321
                };
                ServiceTile {
                    service: format!("service-{s:03}"),
                    requests_per_min: 1234,
                    error_rate: Some(0.012_345_678),
                    spark: Spark {
                        t: (0..60).map(|i| start + i * 60_000).collect(),
                        requests: (0..60).map(|i| Some(wave(i, 1.0).round())).collect(),
                    },
                    forecast: Some(Band {
                        t: (60..120).map(|i| start + i * 60_000).collect(),
                        p10: (60..120).map(|i| round(wave(i, 0.8))).collect(),
                        p50: (60..120).map(|i| round(wave(i, 1.0))).collect(),
                        p90: (60..120).map(|i| round(wave(i, 1.2))).collect(),
                    }),
                    no_forecast_reason: None,
                    desired: Some(12),
                    current: Some(11),
                }
            })
            .collect();
        Overview {
            now_ms: start,
            frontier_ms: Some(start),
            minute_ms: Some(start),
            events_per_s: Some(2000.0),
            error_rate: Some(0.01),
            active_users: Some(5000),
            latency_p95_ms: Some(120.0),
            freshness_p50_ms: Some(300.0),
            freshness_p99_ms: Some(900.0),
            services,
        }
    }

    #[test]
    fn tile_values_are_rounded_to_a_tenth() {
        assert_eq!(tile_value(1_234.567_890_123_4), 1234.6);
        assert_eq!(tile_value(0.04), 0.0);
        assert_eq!(tile_value(-2.25), -2.3);
        assert_eq!(
            serde_json::to_string(&tile_value(0.1 + 0.2)).unwrap(),
            "0.3"
        );
    }

    #[test]
    fn rounded_overview_is_a_fraction_of_the_full_precision_one() {
        let full = CachedJson::new(overview_bytes(&hundred_tiles(|v| v)));
        let tiles = CachedJson::new(overview_bytes(&hundred_tiles(tile_value)));
        let (full_gz, tiles_gz) = (full.gzip.unwrap().len(), tiles.gzip.unwrap().len());
        eprintln!(
            "overview, 100 tiles: {} -> {} bytes JSON, {} -> {} gzip",
            full.body.len(),
            tiles.body.len(),
            full_gz,
            tiles_gz
        );
        assert!(
            tiles.body.len() * 10 < full.body.len() * 7,
            "JSON shrinks by > 30%"
        );
        assert!(tiles_gz * 2 < full_gz, "gzip halves");
    }
}
