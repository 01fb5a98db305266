//! Event-time windows and the latency histogram.
//!
//! Events fall into fixed buckets (one minute by default) by event time. A
//! bucket `[start, start + bucket)` accepts events until the watermark
//! reaches `start + bucket + lateness`; after that the event is too late.
//!
//! Latencies go into a log-scale histogram whose buckets are at most 1%
//! wide relative to their value (DDSketch's scheme), so a quantile read
//! from it is within 1% of the exact one. Histograms from any number of
//! workers merge by adding counts, which is what lets differential
//! dataflow maintain them incrementally.

/// Bucket geometry: event time to bucket start, and lateness rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Windows {
    /// Bucket length in milliseconds (> 0).
    pub bucket_ms: i64,
    /// Allowed lateness in milliseconds (≥ 0).
    pub lateness_ms: i64,
}

impl Windows {
    /// Start of the bucket holding `ts_ms`.
    pub fn bucket_start(&self, ts_ms: i64) -> i64 {
        ts_ms.div_euclid(self.bucket_ms) * self.bucket_ms
    }

    /// The watermark at which the bucket starting at `start` closes for good.
    pub fn closes_at(&self, start: i64) -> i64 {
        start + self.bucket_ms + self.lateness_ms
    }

    /// True if an event in bucket `start` arrives too late given watermark `wm`.
    pub fn too_late(&self, start: i64, wm: Option<i64>) -> bool {
        wm.is_some_and(|wm| self.closes_at(start) <= wm)
    }

    /// True if an event in bucket `start` is late (its bucket has ended per
    /// `wm`) but within the allowance.
    pub fn late(&self, start: i64, wm: Option<i64>) -> bool {
        wm.is_some_and(|wm| start + self.bucket_ms <= wm) && !self.too_late(start, wm)
    }
}

/// Relative accuracy of the latency histogram.
pub(crate) const LATENCY_ALPHA: f64 = 0.01;
/// Latencies below this (ms) go to bucket 0 and read back as 0.
pub(crate) const LATENCY_MIN_MS: f64 = 1e-3;
/// Latencies above this (ms) are clamped to it (about 11.6 days).
pub(crate) const LATENCY_MAX_MS: f64 = 1e9;
const INDEX_OFFSET: i32 = 1000;

fn gamma() -> f64 {
    (1.0 + LATENCY_ALPHA) / (1.0 - LATENCY_ALPHA)
}

/// Histogram bucket of a latency in milliseconds.
pub(crate) fn latency_bucket(ms: f64) -> u16 {
    if ms.is_nan() || ms < LATENCY_MIN_MS {
        return 0;
    }
    let ms = ms.min(LATENCY_MAX_MS);
    let i = (ms.ln() / gamma().ln()).ceil() as i32;
    (i + INDEX_OFFSET) as u16
}

/// The value a bucket reads back as: within [`LATENCY_ALPHA`] of every
/// latency that falls into it.
pub(crate) fn latency_value(bucket: u16) -> f64 {
    if bucket == 0 {
        return 0.0;
    }
    let g = gamma();
    let i = bucket as i32 - INDEX_OFFSET;
    2.0 * g.powi(i) / (g + 1.0)
}

/// Nearest-rank quantile `q` (0 < q ≤ 1) of a histogram given as
/// `(bucket, count)` pairs sorted by bucket. `None` when it is empty.
pub(crate) fn quantile_bucket<'a>(
    sorted: impl IntoIterator<Item = (&'a u16, i64)> + Clone,
    q: f64,
) -> Option<u16> {
    let total: i64 = sorted.clone().into_iter().map(|(_, n)| n.max(0)).sum();
    if total <= 0 {
        return None;
    }
    let rank = ((q * total as f64).ceil() as i64).clamp(1, total);
    let mut seen = 0;
    for (bucket, n) in sorted {
        seen += n.max(0);
        if seen >= rank {
            return Some(*bucket);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_and_lateness() {
        let w = Windows {
            bucket_ms: 60_000,
            lateness_ms: 600_000,
        };
        assert_eq!(w.bucket_start(119_999), 60_000);
        assert_eq!(w.bucket_start(-1), -60_000);
        assert!(!w.too_late(0, None));
        assert!(!w.too_late(0, Some(659_999)));
        assert!(w.too_late(0, Some(660_000)));
        assert!(w.late(0, Some(60_000)));
        assert!(!w.late(0, Some(59_999)));
        assert!(!w.late(0, Some(660_000)), "too late is not merely late");
    }

    #[test]
    fn histogram_error_is_within_two_percent() {
        let mut x = 0.0011;
        while x < 1e8 {
            let back = latency_value(latency_bucket(x));
            assert!((back - x).abs() / x <= 0.0101, "{x} read back as {back}");
            x *= 1.013;
        }
        assert_eq!(latency_value(latency_bucket(0.0)), 0.0);
        assert!(latency_bucket(1e12) > latency_bucket(1e8));
    }

    #[test]
    fn quantiles_match_exact_nearest_rank_within_two_percent() {
        // Deterministic pseudo-random latencies, heavy-tailed.
        let mut state = 42u64;
        let mut values: Vec<f64> = (0..10_000)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let u = (state >> 11) as f64 / (1u64 << 53) as f64;
                1.0 / (1.0 - u).max(1e-6) * 3.0
            })
            .collect();
        let mut hist = std::collections::BTreeMap::<u16, i64>::new();
        for v in &values {
            *hist.entry(latency_bucket(*v)).or_default() += 1;
        }
        values.sort_by(|a, b| a.partial_cmp(b).unwrap());
        for q in [0.5, 0.95, 0.99, 1.0] {
            let exact = values[((q * values.len() as f64).ceil() as usize).max(1) - 1];
            let est = latency_value(quantile_bucket(hist.iter().map(|(b, n)| (b, *n)), q).unwrap());
            assert!(
                (est - exact).abs() / exact <= 0.02,
                "q{q}: {est} vs {exact}"
            );
        }
        assert_eq!(quantile_bucket(std::iter::empty(), 0.5), None);
    }
}
