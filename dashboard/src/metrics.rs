//! The dashboard's own Prometheus metrics (`prescient_dashboard_*`) and the
//! middleware that records every request.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus::{
    HistogramVec, IntCounter, IntCounterVec, IntGauge, Registry,
    register_histogram_vec_with_registry, register_int_counter_vec_with_registry,
    register_int_counter_with_registry, register_int_gauge_with_registry,
};

use crate::AppState;

/// Metrics of one dashboard server.
#[derive(Debug, Clone)]
pub struct Metrics {
    /// The registry they are in (served at `/metrics`).
    pub registry: Registry,
    /// Requests by route, method and status.
    pub requests: IntCounterVec,
    /// Request latency by route and method.
    pub duration: HistogramVec,
    /// Open server-sent-event streams.
    pub sse_clients: IntGauge,
    /// Events received from PostgreSQL by kind.
    pub sse_events: IntCounterVec,
    /// Denied requests and logins by reason.
    pub auth_denied: IntCounterVec,
    /// Hours rolled into `tenant_service_hour` by this replica.
    pub rollup_hours: IntCounter,
    /// End of the rolled-up hours (epoch seconds), as last seen by this replica.
    pub rollup_until: IntGauge,
}

impl Metrics {
    /// Registers the metrics in `registry`.
    pub fn new(registry: Registry) -> Result<Metrics, prometheus::Error> {
        Ok(Metrics {
            requests: register_int_counter_vec_with_registry!(
                "prescient_dashboard_http_requests_total",
                "HTTP requests served by the dashboard, by route, method and status.",
                &["route", "method", "status"],
                registry
            )?,
            duration: register_histogram_vec_with_registry!(
                "prescient_dashboard_http_request_duration_seconds",
                "Time to the response head, by route and method.",
                &["route", "method"],
                vec![
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5
                ],
                registry
            )?,
            sse_clients: register_int_gauge_with_registry!(
                "prescient_dashboard_sse_clients",
                "Open /api/v1/stream connections.",
                registry
            )?,
            sse_events: register_int_counter_vec_with_registry!(
                "prescient_dashboard_sse_events_total",
                "Notifications received from PostgreSQL and fanned out, by event.",
                &["event"],
                registry
            )?,
            auth_denied: register_int_counter_vec_with_registry!(
                "prescient_dashboard_auth_denied_total",
                "Requests or logins refused, by reason.",
                &["reason"],
                registry
            )?,
            rollup_hours: register_int_counter_with_registry!(
                "prescient_dashboard_rollup_hours_total",
                "Final hours of metrics_minute rolled into tenant_service_hour by this replica.",
                registry
            )?,
            rollup_until: register_int_gauge_with_registry!(
                "prescient_dashboard_rollup_until_seconds",
                "End of the hours rolled into tenant_service_hour (epoch seconds).",
                registry
            )?,
            registry,
        })
    }
}

/// Middleware: counts and times each request under its route template
/// (never the raw path, so labels stay bounded).
pub(crate) async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| {
            if req.uri().path().starts_with("/api/") {
                "unmatched".to_string()
            } else {
                "static".to_string()
            }
        });
    let method = req.method().as_str().to_string();
    let started = Instant::now();
    let response = next.run(req).await;
    let m = &state.metrics;
    m.duration
        .with_label_values(&[route.as_str(), method.as_str()])
        .observe(started.elapsed().as_secs_f64());
    m.requests
        .with_label_values(&[route.as_str(), method.as_str(), response.status().as_str()])
        .inc();
    response
}
