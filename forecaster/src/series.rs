//! Regular time series: loading `timestamp,value` CSV files (NAB format) at a
//! fixed interval, with gaps filled so index arithmetic means time arithmetic.

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use std::path::Path;

/// Errors reading a series.
#[derive(Debug, thiserror::Error)]
pub enum SeriesError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// File path.
        path: String,
        /// Underlying error.
        source: std::io::Error,
    },
    /// A line could not be parsed.
    #[error("line {line}: {msg}")]
    Parse {
        /// 1-based line number.
        line: usize,
        /// What was wrong.
        msg: String,
    },
    /// Fewer than two points, or no positive interval.
    #[error("series too short or without a regular interval: {0}")]
    Shape(String),
}

/// A series sampled at a fixed interval, starting at `start`.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Timestamp of `values[0]`.
    pub start: DateTime<Utc>,
    /// Spacing between points, in seconds.
    pub interval_secs: i64,
    /// One value per interval; gaps in the source were filled by linear interpolation.
    pub values: Vec<f64>,
    /// How many points were missing from the source and interpolated.
    pub filled: usize,
}

impl Series {
    /// Builds a series from values at a fixed interval.
    pub fn new(start: DateTime<Utc>, interval_secs: i64, values: Vec<f64>) -> Self {
        Series {
            start,
            interval_secs,
            values,
            filled: 0,
        }
    }

    /// Timestamp of point `i`.
    pub fn timestamp(&self, i: usize) -> DateTime<Utc> {
        self.start + TimeDelta::seconds(self.interval_secs * i as i64)
    }

    /// Number of points per day at this interval (at least 1).
    pub fn points_per_day(&self) -> usize {
        ((86_400 / self.interval_secs.max(1)) as usize).max(1)
    }

    /// Number of points per minute-long lead `minutes` (rounded up, at least 1).
    pub fn steps_for_minutes(&self, minutes: u32) -> usize {
        let secs = i64::from(minutes) * 60;
        (((secs + self.interval_secs - 1) / self.interval_secs.max(1)) as usize).max(1)
    }

    /// Reads a `timestamp,value` CSV file (header optional). Timestamps may be
    /// `YYYY-MM-DD HH:MM:SS`, RFC 3339, or integer epoch seconds. The interval
    /// is the most common spacing; points are placed on that grid and gaps are
    /// interpolated.
    pub fn from_csv_path(path: &Path) -> Result<Series, SeriesError> {
        let text = std::fs::read_to_string(path).map_err(|source| SeriesError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_csv_str(&text)
    }

    /// Like [`Series::from_csv_path`], from the file's text.
    pub fn from_csv_str(text: &str) -> Result<Series, SeriesError> {
        let mut points: Vec<(i64, f64)> = read_points(text)?
            .into_iter()
            .map(|(ms, v)| (ms.div_euclid(1000), v))
            .collect();
        points.sort_by_key(|p| p.0);
        if points.len() < 2 {
            return Err(SeriesError::Shape(format!("{} points", points.len())));
        }
        let interval = modal_spacing(&points)
            .ok_or_else(|| SeriesError::Shape("no positive spacing".into()))?;
        let t0 = points[0].0;
        let last = points[points.len() - 1].0;
        let n = ((last - t0 + interval / 2) / interval) as usize + 1;
        let mut slots: Vec<Option<f64>> = vec![None; n];
        for (t, v) in &points {
            let idx = ((t - t0 + interval / 2) / interval) as usize;
            slots[idx.min(n - 1)] = Some(*v);
        }
        let mut filled = 0;
        let mut values = Vec::with_capacity(n);
        let mut prev: Option<(usize, f64)> = None;
        let mut i = 0;
        while i < n {
            if let Some(v) = slots[i] {
                values.push(v);
                prev = Some((i, v));
                i += 1;
                continue;
            }
            // find next known point
            let next = (i..n).find_map(|j| slots[j].map(|v| (j, v)));
            let (pi, pv) = prev.expect("first slot is always known");
            let (nj, nv) = next.expect("last slot is always known");
            for k in i..nj {
                let w = (k - pi) as f64 / (nj - pi) as f64;
                values.push(pv + w * (nv - pv));
                filled += 1;
            }
            i = nj;
        }
        let start = DateTime::from_timestamp(t0, 0)
            .ok_or_else(|| SeriesError::Shape("timestamp out of range".into()))?;
        Ok(Series {
            start,
            interval_secs: interval,
            values,
            filled,
        })
    }
}

/// Reads `timestamp,value` rows (the NAB format; what `prescient produce
/// --replay` and every forecaster command read) with the `csv` crate: one
/// header row allowed, fields may be quoted, values must be finite numbers.
/// Timestamps in epoch milliseconds, by one rule everywhere:
/// `YYYY-MM-DD HH:MM:SS` (UTC), RFC 3339, or an integer epoch: seconds
/// below 10^11 (before the year 5138), milliseconds from there on.
pub fn read_points(text: &str) -> Result<Vec<(i64, f64)>, SeriesError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut points = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| SeriesError::Parse {
            line: e.position().map_or(i + 1, |p| p.line() as usize),
            msg: e.to_string(),
        })?;
        let line = record.position().map_or(i + 1, |p| p.line() as usize);
        if record.iter().all(str::is_empty) {
            continue;
        }
        let parse = |msg: String| SeriesError::Parse { line, msg };
        if record.len() != 2 {
            return Err(parse(format!(
                "expected `timestamp,value`, found {} fields",
                record.len()
            )));
        }
        let (ts, val) = (&record[0], &record[1]);
        let Ok(value) = val.parse::<f64>() else {
            if i == 0 {
                continue; // header
            }
            return Err(parse(format!("bad value {val:?}")));
        };
        if !value.is_finite() {
            return Err(parse("value is not finite".into()));
        }
        let t = parse_ts_ms(ts).ok_or_else(|| parse(format!("bad timestamp {ts:?}")))?;
        points.push((t, value));
    }
    Ok(points)
}

/// The one timestamp rule of [`read_points`], in epoch milliseconds.
fn parse_ts_ms(s: &str) -> Option<i64> {
    if let Ok(t) = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S") {
        return Some(t.and_utc().timestamp_millis());
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_millis());
    }
    let n: i64 = s.parse().ok()?;
    Some(if n.abs() < 100_000_000_000 {
        n * 1000
    } else {
        n
    })
}

fn modal_spacing(points: &[(i64, f64)]) -> Option<i64> {
    let mut counts: std::collections::BTreeMap<i64, usize> = Default::default();
    for w in points.windows(2) {
        let d = w[1].0 - w[0].0;
        if d > 0 {
            *counts.entry(d).or_default() += 1;
        }
    }
    counts
        .into_iter()
        .max_by_key(|(d, c)| (*c, -*d))
        .map(|(d, _)| d)
}

impl Series {
    /// The first `days` days of the series (all of it when shorter).
    pub fn first_days(&self, days: f64) -> Series {
        let n = ((days * self.points_per_day() as f64) as usize).min(self.values.len());
        Series::new(
            self.timestamp(0),
            self.interval_secs,
            self.values[..n].to_vec(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_fills_gaps() {
        let s = Series::from_csv_str(
            "timestamp,value\n2014-04-10 00:00:00,1\n2014-04-10 00:05:00,2\n2014-04-10 00:20:00,5\n",
        )
        .unwrap();
        assert_eq!(s.interval_secs, 300);
        assert_eq!(s.values, vec![1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(s.filled, 2);
        assert_eq!(s.points_per_day(), 288);
        assert_eq!(s.steps_for_minutes(15), 3);
        assert_eq!(s.steps_for_minutes(16), 4);
        assert_eq!(s.timestamp(4).to_rfc3339(), "2014-04-10T00:20:00+00:00");
    }

    #[test]
    fn one_timestamp_rule_for_every_format() {
        let p = read_points(
            "timestamp,value\n\"2014-04-10 00:00:00\",1\n2014-04-10T00:01:00Z, 2\n1397088120,3\n1397088180000,4\n\n",
        )
        .unwrap();
        let t0 = 1_397_088_000_000;
        assert_eq!(
            p,
            [
                (t0, 1.0),
                (t0 + 60_000, 2.0),
                (t0 + 120_000, 3.0),
                (t0 + 180_000, 4.0)
            ]
        );
        let e = read_points("t,v\n2014-04-10 00:00:00,1\n2014-04-10 00:01:00,inf\n").unwrap_err();
        assert_eq!(e.to_string(), "line 3: value is not finite");
        assert!(read_points("1,2,3\n").is_err());
    }

    #[test]
    fn rejects_garbage() {
        assert!(Series::from_csv_str("t,v\n2014-04-10 00:00:00,x\n").is_err());
        assert!(Series::from_csv_str("t,v\n2014-04-10 00:00:00,1\n").is_err());
        assert!(Series::from_csv_str("t,v\nyesterday,1\ntoday,2\n").is_err());
    }

    #[test]
    fn reads_nab_files() {
        let nab = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/nab/data");
        let s = Series::from_csv_path(&nab.join("realAWSCloudwatch/elb_request_count_8c0756.csv"))
            .unwrap();
        assert_eq!(s.interval_secs, 300);
        assert!(s.values.len() >= 4032);
    }
}
