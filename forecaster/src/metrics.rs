//! Prometheus metrics of the forecaster worker (all prefixed `prescient_`).

use prometheus::{
    Gauge, GaugeVec, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, register_gauge_vec_with_registry, register_gauge_with_registry,
    register_histogram_with_registry, register_int_counter_vec_with_registry,
    register_int_counter_with_registry, register_int_gauge_vec_with_registry,
    register_int_gauge_with_registry,
};

/// Errors registering metrics.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// A metric could not be created or registered (e.g. registered twice).
    #[error("registering metrics: {0}")]
    Register(#[from] prometheus::Error),
}

/// The worker's metrics.
#[derive(Clone)]
pub struct Metrics {
    /// `prescient_forecaster_ticks_total`: minutes processed.
    pub ticks: IntCounter,
    /// `prescient_forecaster_tick_errors_total`: ticks that failed (retried).
    pub tick_errors: IntCounter,
    /// `prescient_forecaster_tick_seconds`: time per tick (load, fit, forecast, write).
    pub tick_seconds: Histogram,
    /// `prescient_forecaster_forecast_seconds`: time forecasting all services in a tick.
    pub forecast_seconds: Histogram,
    /// `prescient_forecaster_last_minute_timestamp_seconds`: last closed minute processed.
    pub last_minute: Gauge,
    /// `prescient_forecaster_services`: services forecast in the last tick.
    pub services: IntGauge,
    /// `prescient_forecaster_fits_total`: model (re)fits.
    pub fits: IntCounter,
    /// `prescient_forecaster_fit_errors_total`: fits that failed.
    pub fit_errors: IntCounter,
    /// `prescient_forecast_live_mase{service}`: live MASE (vs daily seasonal naive).
    pub live_mase: GaugeVec,
    /// `prescient_forecast_interval_coverage{service}`: share of actuals inside p10..p90.
    pub coverage: GaugeVec,
    /// `prescient_scaling_decisions_total{service,basis}`: decisions, basis `predictive` or `reactive`.
    pub decisions: IntCounterVec,
    /// `prescient_scaling_desired{service}`: last desired size.
    pub desired: GaugeVec,
    /// `prescient_scaling_publish_errors_total`: decisions not delivered to Kafka.
    pub publish_errors: IntCounter,
    /// `prescient_forecaster_alerts_total{kind}`: alerts raised (`forecast-error-high`,
    /// `fallback-reactive`, `forecasts-stale`).
    pub alerts: IntCounterVec,
    /// `prescient_forecaster_alert_active{service,kind}`: 1 while an alert is raised.
    pub alert_active: IntGaugeVec,
    /// `prescient_forecaster_alert_publish_errors_total`: alerts Kafka did not acknowledge.
    pub alert_publish_errors: IntCounter,
    /// `prescient_forecaster_corrected_buckets_total`: buckets re-read after late events changed them.
    pub corrected: IntCounter,
}

impl Metrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn new(registry: &Registry) -> Result<Metrics, MetricsError> {
        let m = Metrics {
            ticks: register_int_counter_with_registry!(
                "prescient_forecaster_ticks_total",
                "Closed minutes processed",
                registry
            )?,
            tick_errors: register_int_counter_with_registry!(
                "prescient_forecaster_tick_errors_total",
                "Ticks that failed and are retried",
                registry
            )?,
            tick_seconds: register_histogram_with_registry!(
                HistogramOpts::new("prescient_forecaster_tick_seconds", "Seconds per tick")
                    .buckets(vec![
                        0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                    ]),
                registry
            )?,
            forecast_seconds: register_histogram_with_registry!(
                HistogramOpts::new(
                    "prescient_forecaster_forecast_seconds",
                    "Seconds forecasting every service in a tick",
                )
                .buckets(vec![0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0]),
                registry
            )?,
            last_minute: register_gauge_with_registry!(
                "prescient_forecaster_last_minute_timestamp_seconds",
                "Start of the last closed minute processed (Unix seconds)",
                registry
            )?,
            services: register_int_gauge_with_registry!(
                "prescient_forecaster_services",
                "Services forecast in the last tick",
                registry
            )?,
            fits: register_int_counter_with_registry!(
                "prescient_forecaster_fits_total",
                "Model fits",
                registry
            )?,
            fit_errors: register_int_counter_with_registry!(
                "prescient_forecaster_fit_errors_total",
                "Model fits that failed",
                registry
            )?,
            live_mase: register_gauge_vec_with_registry!(
                Opts::new(
                    "prescient_forecast_live_mase",
                    "Live MASE of the last hour's forecasts",
                ),
                &["service"],
                registry
            )?,
            coverage: register_gauge_vec_with_registry!(
                Opts::new(
                    "prescient_forecast_interval_coverage",
                    "Share of actuals inside the p10..p90 interval",
                ),
                &["service"],
                registry
            )?,
            decisions: register_int_counter_vec_with_registry!(
                Opts::new(
                    "prescient_scaling_decisions_total",
                    "Scaling decisions made",
                ),
                &["service", "basis"],
                registry
            )?,
            desired: register_gauge_vec_with_registry!(
                Opts::new("prescient_scaling_desired", "Last desired size"),
                &["service"],
                registry
            )?,
            publish_errors: register_int_counter_with_registry!(
                "prescient_scaling_publish_errors_total",
                "Decisions that could not be published to Kafka",
                registry
            )?,
            alerts: register_int_counter_vec_with_registry!(
                Opts::new("prescient_forecaster_alerts_total", "Alerts raised"),
                &["kind"],
                registry
            )?,
            alert_active: register_int_gauge_vec_with_registry!(
                Opts::new(
                    "prescient_forecaster_alert_active",
                    "1 while an alert is raised for a service",
                ),
                &["service", "kind"],
                registry
            )?,
            alert_publish_errors: register_int_counter_with_registry!(
                "prescient_forecaster_alert_publish_errors_total",
                "Alerts that could not be published to Kafka",
                registry
            )?,
            corrected: register_int_counter_with_registry!(
                "prescient_forecaster_corrected_buckets_total",
                "Buckets re-read after late events changed their counts",
                registry
            )?,
        };
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_prefixed_and_double_registration_fails() {
        let r = Registry::new();
        let m = Metrics::new(&r).unwrap();
        m.live_mase.with_label_values(&["checkout"]).set(0.5);
        m.ticks.inc();
        let names: Vec<String> = r.gather().iter().map(|f| f.name().to_string()).collect();
        assert!(
            names.iter().all(|n| n.starts_with("prescient_")),
            "{names:?}"
        );
        assert!(names.contains(&"prescient_forecast_live_mase".to_string()));
        assert!(Metrics::new(&r).is_err());
    }
}
