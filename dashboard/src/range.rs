//! Time ranges of the API (`range=1h|6h|24h|7d` or `from`/`to` in epoch
//! milliseconds) and the bucket size each one is served at.

use serde::Deserialize;
use utoipa::IntoParams;

use crate::error::ApiError;

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 60 * MINUTE_MS;
const DAY_MS: i64 = 24 * HOUR_MS;

/// The longest span a request may ask for.
pub(crate) const MAX_SPAN_MS: i64 = 31 * DAY_MS;

/// Query parameters selecting a time range.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct RangeQuery {
    /// A range ending now: `1h`, `6h`, `24h` or `7d` (default `1h`).
    pub range: Option<String>,
    /// Start, epoch milliseconds (with `to`, instead of `range`).
    pub from: Option<i64>,
    /// End (exclusive), epoch milliseconds (with `from`).
    pub to: Option<i64>,
}

/// A resolved time range: `[from_ms, to_ms)` served in buckets of `bucket_s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeRange {
    /// Start, epoch ms.
    pub from_ms: i64,
    /// End (exclusive), epoch ms.
    pub to_ms: i64,
    /// Bucket size in seconds: 60, 300 or 3600.
    pub bucket_s: i64,
}

/// Bucket size for a span: 1 min up to 6 h, 5 min up to 3 days, 1 h beyond.
pub(crate) fn bucket_for_span(span_ms: i64) -> i64 {
    if span_ms <= 6 * HOUR_MS {
        60
    } else if span_ms <= 3 * DAY_MS {
        300
    } else {
        3600
    }
}

/// Milliseconds of a named range.
pub(crate) fn named_span(range: &str) -> Option<i64> {
    match range {
        "1h" => Some(HOUR_MS),
        "6h" => Some(6 * HOUR_MS),
        "24h" => Some(DAY_MS),
        "7d" => Some(7 * DAY_MS),
        _ => None,
    }
}

impl RangeQuery {
    /// The range parameters of a route with more parameters than these.
    pub(crate) fn new(range: Option<String>, from: Option<i64>, to: Option<i64>) -> RangeQuery {
        RangeQuery { range, from, to }
    }
}

impl TimeRange {
    /// Resolves the query against `now_ms`.
    pub(crate) fn parse(q: &RangeQuery, now_ms: i64) -> Result<TimeRange, ApiError> {
        let (from_ms, to_ms) = match (&q.range, q.from, q.to) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                return Err(ApiError::BadRequest(
                    "give either `range` or `from` and `to`, not both".into(),
                ));
            }
            (Some(r), None, None) => {
                let span = named_span(r).ok_or_else(|| {
                    ApiError::BadRequest(format!(
                        "unknown range {r:?}: use 1h, 6h, 24h or 7d, or from= and to= in epoch ms"
                    ))
                })?;
                (now_ms - span, now_ms)
            }
            (None, None, None) => (now_ms - HOUR_MS, now_ms),
            (None, Some(from), Some(to)) => (from, to),
            (None, _, _) => {
                return Err(ApiError::BadRequest(
                    "`from` and `to` go together (epoch milliseconds)".into(),
                ));
            }
        };
        // Year 1970 .. 9999: what timestamptz and JavaScript both hold.
        const MAX_MS: i64 = 253_402_300_799_000;
        if !(0..=MAX_MS).contains(&from_ms) || !(0..=MAX_MS).contains(&to_ms) {
            return Err(ApiError::BadRequest(
                "`from` and `to` must be epoch milliseconds between 1970 and 9999".into(),
            ));
        }
        if from_ms >= to_ms {
            return Err(ApiError::BadRequest("`from` must be before `to`".into()));
        }
        if to_ms - from_ms > MAX_SPAN_MS {
            return Err(ApiError::BadRequest(
                "the range may span at most 31 days".into(),
            ));
        }
        Ok(TimeRange {
            from_ms,
            to_ms,
            bucket_s: bucket_for_span(to_ms - from_ms),
        })
    }

    /// Bucket size in milliseconds.
    pub(crate) fn bucket_ms(&self) -> i64 {
        self.bucket_s * 1000
    }

    /// Start of the first bucket (`from_ms` aligned down to the bucket size).
    pub(crate) fn first_bucket_ms(&self) -> i64 {
        self.from_ms.div_euclid(self.bucket_ms()) * self.bucket_ms()
    }

    /// Every bucket start in the range, ascending.
    pub(crate) fn buckets(&self) -> Vec<i64> {
        (self.first_bucket_ms()..self.to_ms)
            .step_by(self.bucket_ms() as usize)
            .collect()
    }

    /// Index of the bucket holding `t_ms`, if it is in the range.
    pub(crate) fn index_of(&self, t_ms: i64) -> Option<usize> {
        let first = self.first_bucket_ms();
        (t_ms >= first && t_ms < self.to_ms).then(|| ((t_ms - first) / self.bucket_ms()) as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(range: Option<&str>, from: Option<i64>, to: Option<i64>) -> RangeQuery {
        RangeQuery {
            range: range.map(str::to_string),
            from,
            to,
        }
    }

    #[test]
    fn named_ranges_pick_coarser_buckets_as_they_grow() {
        let now = 1_700_000_000_000;
        let cases = [("1h", 60), ("6h", 60), ("24h", 300), ("7d", 3600)];
        for (range, bucket) in cases {
            let r = TimeRange::parse(&q(Some(range), None, None), now).unwrap();
            assert_eq!(r.bucket_s, bucket, "{range}");
            assert_eq!(r.to_ms, now);
        }
        let r = TimeRange::parse(&q(None, None, None), now).unwrap();
        assert_eq!((r.to_ms - r.from_ms, r.bucket_s), (HOUR_MS, 60));
        assert_eq!(bucket_for_span(3 * DAY_MS), 300);
        assert_eq!(bucket_for_span(3 * DAY_MS + 1), 3600);
    }

    #[test]
    fn buckets_are_aligned_and_cover_the_range() {
        let r = TimeRange::parse(&q(None, Some(90_000), Some(300_000)), 0).unwrap();
        assert_eq!(r.buckets(), vec![60_000, 120_000, 180_000, 240_000]);
        assert_eq!(r.index_of(61_000), Some(0));
        assert_eq!(r.index_of(299_999), Some(3));
        assert_eq!(r.index_of(300_000), None);
    }

    #[test]
    fn bad_ranges_are_rejected() {
        for bad in [
            q(Some("2h"), None, None),
            q(Some("1h"), Some(0), None),
            q(None, Some(10), None),
            q(None, Some(10), Some(5)),
            q(None, Some(-1), Some(5)),
            q(None, Some(0), Some(MAX_SPAN_MS + 1)),
            q(None, Some(0), Some(i64::MAX)),
            q(Some("1h'; DROP TABLE api_tokens; --"), None, None),
        ] {
            assert!(
                matches!(
                    TimeRange::parse(&bad, 1_000_000),
                    Err(ApiError::BadRequest(_))
                ),
                "{bad:?}"
            );
        }
    }
}
