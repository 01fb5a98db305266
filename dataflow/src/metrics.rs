//! The dataflow's Prometheus metrics (all prefixed `prescient_`).

use std::sync::Mutex;

use prometheus::{
    Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, register_gauge_with_registry, register_histogram_with_registry,
    register_int_counter_vec_with_registry, register_int_counter_with_registry,
    register_int_gauge_vec_with_registry, register_int_gauge_with_registry,
};

use prescient_contracts::event::Reason;

/// Every metric the dataflow exports. Cheap to share behind an `Arc`.
pub struct Metrics {
    /// `prescient_events_in_total`: records read from the topic (replays excluded).
    pub events_in: IntCounter,
    /// `prescient_events_rejected_total{reason}`: records sent to the dead-letter topic.
    pub rejected: IntCounterVec,
    /// `prescient_events_late_total`: accepted events whose window had ended (within the allowance).
    pub late: IntCounter,
    /// `prescient_events_replayed_total`: records re-read on start to rebuild open windows.
    pub replayed: IntCounter,
    /// `prescient_consumer_lag{partition}`: messages between the consumer and the partition's end.
    pub consumer_lag: IntGaugeVec,
    /// `prescient_commit_rows`: rows (metrics, service and offsets) per transaction.
    pub commit_rows: Histogram,
    /// `prescient_commit_duration_seconds`: time per transaction, retries included.
    pub commit_seconds: Histogram,
    /// `prescient_commits_total`: committed transactions.
    pub commits: IntCounter,
    /// `prescient_commit_failures_total`: failed attempts (each retried).
    pub commit_failures: IntCounter,
    /// `prescient_watermark_delay_seconds`: wall clock minus the event-time frontier.
    pub watermark_delay: Gauge,
    /// `prescient_frontier_ms`: the event-time frontier (epoch ms).
    pub frontier_ms: IntGauge,
    /// `prescient_keys_held`: open windows held in memory (per row key).
    pub keys_held: IntGauge,
    /// `prescient_rows_held`: rows (`metrics_minute` and `service_minute`)
    /// whose totals the dataflow holds; released when their window closes.
    pub rows_held: IntGauge,
    /// `prescient_freshness_seconds`: event produced (Kafka timestamp) → its row committed.
    pub freshness: Histogram,
    /// Same as `freshness` at millisecond resolution, for `prescient bench`.
    pub freshness_ms: Mutex<FineHistogram>,
    /// Event produced (Kafka timestamp) → the end of the source tick that
    /// read it, in ms, for `prescient bench` (not exported): the part of
    /// `freshness` spent before the dataflow (producer, broker, one tick).
    pub read_delay_ms: Mutex<FineHistogram>,
    /// `prescient_dead_letters_truncated_total`: dead letters whose payload was cut to fit the topic.
    pub dead_letters_truncated: IntCounter,
    /// `prescient_dead_letter_retries_total`: dead letters sent again after the broker refused them.
    pub dead_letter_retries: IntCounter,
    /// `prescient_rows_refused_total`: rows PostgreSQL refused for a reason retrying cannot fix, dropped.
    pub rows_rejected: IntCounter,
}

/// A millisecond-resolution histogram (0 ms to 60 s, overflow clamped).
#[derive(Debug, Clone)]
pub struct FineHistogram {
    counts: Vec<u64>,
}

impl Default for FineHistogram {
    fn default() -> Self {
        FineHistogram {
            counts: vec![0; 60_001],
        }
    }
}

impl FineHistogram {
    /// Adds `n` observations of `ms`.
    pub fn observe(&mut self, ms: i64, n: u64) {
        let i = ms.clamp(0, 60_000) as usize;
        self.counts[i] += n;
    }

    /// Number of observations.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Nearest-rank quantile in ms.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        self.counts.iter().enumerate().find_map(|(ms, n)| {
            seen += n;
            (seen >= rank).then_some(ms as u64)
        })
    }

    /// Forgets every observation.
    pub fn reset(&mut self) {
        self.counts.iter_mut().for_each(|c| *c = 0);
    }
}

impl Metrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn new(registry: &Registry) -> Result<Metrics, prometheus::Error> {
        let m = Metrics {
            events_in: register_int_counter_with_registry!(
                "prescient_events_in_total",
                "Records read from the events topic",
                registry
            )?,
            rejected: register_int_counter_vec_with_registry!(
                Opts::new(
                    "prescient_events_rejected_total",
                    "Records sent to the dead-letter topic, by reason",
                ),
                &["reason"],
                registry
            )?,
            late: register_int_counter_with_registry!(
                "prescient_events_late_total",
                "Events accepted after their window ended, within the allowed lateness",
                registry
            )?,
            replayed: register_int_counter_with_registry!(
                "prescient_events_replayed_total",
                "Records re-read on start to rebuild the state of open windows",
                registry
            )?,
            consumer_lag: register_int_gauge_vec_with_registry!(
                Opts::new(
                    "prescient_consumer_lag",
                    "Messages between the consumer position and the partition end",
                ),
                &["partition"],
                registry
            )?,
            commit_rows: register_histogram_with_registry!(
                HistogramOpts::new("prescient_commit_rows", "Rows written per transaction")
                    .buckets(prometheus::exponential_buckets(1.0, 4.0, 10)?),
                registry
            )?,
            commit_seconds: register_histogram_with_registry!(
                HistogramOpts::new(
                    "prescient_commit_duration_seconds",
                    "Duration of a commit transaction",
                )
                .buckets(prometheus::exponential_buckets(0.001, 2.0, 14)?),
                registry
            )?,
            commits: register_int_counter_with_registry!(
                "prescient_commits_total",
                "Committed transactions",
                registry
            )?,
            commit_failures: register_int_counter_with_registry!(
                "prescient_commit_failures_total",
                "Failed commit attempts (each is retried until the database is back)",
                registry
            )?,
            watermark_delay: register_gauge_with_registry!(
                "prescient_watermark_delay_seconds",
                "Wall clock minus the event-time frontier",
                registry
            )?,
            frontier_ms: register_int_gauge_with_registry!(
                "prescient_frontier_ms",
                "Event-time frontier, epoch milliseconds",
                registry
            )?,
            keys_held: register_int_gauge_with_registry!(
                "prescient_keys_held",
                "Open windows held in memory",
                registry
            )?,
            rows_held: register_int_gauge_with_registry!(
                "prescient_rows_held",
                "Rows whose totals the dataflow holds in memory (released when their window closes)",
                registry
            )?,
            freshness: register_histogram_with_registry!(
                HistogramOpts::new(
                    "prescient_freshness_seconds",
                    "From an event's Kafka timestamp to the commit of the rows it changed",
                )
                .buckets(prometheus::exponential_buckets(0.01, 2.0, 14)?),
                registry
            )?,
            freshness_ms: Mutex::new(FineHistogram::default()),
            read_delay_ms: Mutex::new(FineHistogram::default()),
            dead_letters_truncated: register_int_counter_with_registry!(
                "prescient_dead_letters_truncated_total",
                "Dead letters whose payload was cut to fit the dead-letter topic",
                registry
            )?,
            dead_letter_retries: register_int_counter_with_registry!(
                "prescient_dead_letter_retries_total",
                "Dead letters sent again after the broker refused them",
                registry
            )?,
            rows_rejected: register_int_counter_with_registry!(
                "prescient_rows_refused_total",
                "Rows PostgreSQL refused for a reason retrying cannot fix (data, constraint, limit), dropped",
                registry
            )?,
        };
        for r in Reason::all() {
            m.rejected.with_label_values(&[r.as_str()]);
        }
        Ok(m)
    }

    /// Counts one rejected record.
    pub fn reject(&self, reason: Reason) {
        self.rejected.with_label_values(&[reason.as_str()]).inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fine_histogram_quantiles() {
        let mut h = FineHistogram::default();
        assert_eq!(h.quantile(0.5), None);
        h.observe(10, 50);
        h.observe(20, 49);
        h.observe(99_999, 1);
        assert_eq!(h.quantile(0.5), Some(10));
        assert_eq!(h.quantile(0.99), Some(20));
        assert_eq!(h.quantile(1.0), Some(60_000));
        h.reset();
        assert_eq!(h.count(), 0);
    }

    #[test]
    fn registers_every_reason() {
        let r = Registry::new();
        let m = Metrics::new(&r).unwrap();
        m.reject(Reason::TooLate);
        let text = prescient_infra::metrics::render(&r);
        assert!(text.contains("prescient_events_rejected_total{reason=\"too_late\"} 1"));
        assert!(text.contains("prescient_events_rejected_total{reason=\"invalid_json\"} 0"));
    }
}
