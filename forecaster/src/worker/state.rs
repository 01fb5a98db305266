//! Per-service state, pure (no PostgreSQL, no Kafka): the history of
//! bucket counts with late corrections, the fitted models, the forecasts
//! issued and their live accuracy, and one tick's fit / forecast / score
//! step ([`compute`]).

use super::*;

pub(super) struct ServiceState {
    /// Requests per bucket; the last value is the bucket starting `last_minute`.
    pub(super) values: Vec<f64>,
    pub(super) last_minute: DateTime<Utc>,
    /// Values appended since the last tick (to feed the models).
    pub(super) fresh: usize,
    pub(super) last_seen: DateTime<Utc>,
    pub(super) ens: Option<Ensemble>,
    pub(super) fitted_at: Option<DateTime<Utc>>,
    pub(super) scale: f64,
    /// (origin bucket, forecast) of the last `horizon` ticks.
    pub(super) issued: VecDeque<(DateTime<Utc>, Vec<Quantiles>)>,
    pub(super) latest: Option<ForecastView>,
    pub(super) leading: &'static str,
    pub(super) accuracy: Option<LiveAccuracy>,
    pub(super) last_scale_up: Option<DateTime<Utc>>,
    pub(super) recent_desired: VecDeque<(DateTime<Utc>, u32)>,
    pub(super) alerts: ServiceAlerts,
    /// Why the last fit failed, until one succeeds.
    pub(super) fit_error: Option<String>,
}

impl ServiceState {
    pub(super) fn new(first: DateTime<Utc>, step: TimeDelta) -> Self {
        ServiceState {
            values: vec![],
            last_minute: first - step,
            fresh: 0,
            last_seen: first,
            ens: None,
            fitted_at: None,
            scale: 1.0,
            issued: VecDeque::new(),
            latest: None,
            leading: "none",
            accuracy: None,
            last_scale_up: None,
            recent_desired: VecDeque::new(),
            alerts: ServiceAlerts::default(),
            fit_error: None,
        }
    }

    /// Replaces the value of an already appended bucket (a late event
    /// changed its count); true when it changed.
    pub(super) fn correct(&mut self, minute: DateTime<Utc>, v: f64, step: TimeDelta) -> bool {
        if minute > self.last_minute {
            return false;
        }
        let back = ((self.last_minute - minute).num_seconds() / step.num_seconds().max(1)) as usize;
        match self.values.len().checked_sub(1 + back) {
            Some(i) if self.values[i] != v => {
                self.values[i] = v;
                true
            }
            _ => false,
        }
    }

    /// Appends `v` at bucket `minute`, zero-filling skipped buckets.
    pub(super) fn push(&mut self, minute: DateTime<Utc>, v: f64, step: TimeDelta) {
        while self.last_minute + step < minute {
            self.values.push(0.0);
            self.fresh += 1;
            self.last_minute += step;
        }
        if minute > self.last_minute {
            self.values.push(v);
            self.fresh += 1;
            self.last_minute = minute;
        }
    }
}

/// Fits (when due), feeds, forecasts and scores every service. Returns
/// (fits, fit errors, seconds forecasting).
pub(super) fn compute(
    services: &mut BTreeMap<String, ServiceState>,
    cfg: &WorkerConfig,
    bucket: Bucket,
    minute: DateTime<Utc>,
) -> (usize, usize, f64) {
    let hz = bucket.steps(cfg.horizon_min);
    let per_day = bucket.per_day();
    let bmin = bucket.minutes();
    let issued_at = minute + bucket.delta();
    let retrain = TimeDelta::minutes(i64::from(cfg.retrain_every_min));
    let (mut fits, mut errors) = (0, 0);
    let mut forecast_secs = 0.0;
    let started = Instant::now();
    for (name, st) in services.iter_mut() {
        let fresh = std::mem::take(&mut st.fresh).min(st.values.len());
        if st.values.len() < bucket.steps(cfg.min_history_min).max(4) {
            continue;
        }
        let due = st.fitted_at.is_none_or(|t| minute - t >= retrain)
            && started.elapsed() < cfg.fit_budget;
        if due {
            let mut ens = st.ens.take().unwrap_or_else(|| {
                let mut e = Ensemble::new(&cfg.models, per_day, hz);
                if let Some(dir) = &cfg.model_dir
                    && let Err(err) = e.load_models(dir, name)
                {
                    tracing::warn!(service = %name, error = %err, "ignoring saved models");
                }
                e
            });
            match ens.fit(&st.values) {
                Ok(_) => {
                    fits += 1;
                    st.fit_error = None;
                    st.fitted_at = Some(minute);
                    let m = if st.values.len() > per_day + 1 {
                        per_day
                    } else {
                        1
                    };
                    let d: Vec<f64> = (m..st.values.len())
                        .map(|t| (st.values[t] - st.values[t - m]).abs())
                        .collect();
                    st.scale = (d.iter().sum::<f64>() / d.len().max(1) as f64).max(1e-9);
                    if let Some(dir) = &cfg.model_dir {
                        let _ = std::fs::create_dir_all(dir);
                        if let Err(err) = ens.save_models(dir, name) {
                            tracing::warn!(service = %name, error = %err, "saving models failed");
                        }
                    }
                    st.ens = Some(ens);
                }
                Err(err) => {
                    errors += 1;
                    tracing::warn!(service = %name, error = %err, "fitting failed");
                    st.fit_error = Some(err.to_string());
                    st.ens = None;
                    continue;
                }
            }
        } else if let Some(ens) = &mut st.ens {
            for &y in &st.values[st.values.len() - fresh..] {
                ens.observe(y);
            }
        }
        let Some(ens) = &st.ens else { continue };
        let t0 = Instant::now();
        let qs = ens.forecast();
        forecast_secs += t0.elapsed().as_secs_f64();
        st.leading = ens.leading_model(bucket.steps(5).min(hz));
        // Score the last hour's forecasts against what arrived.
        let n = st.values.len();
        let (mut cnt, mut abs, mut cov) = (0usize, 0.0, 0usize);
        for (origin, f) in &st.issued {
            let back = (minute - *origin).num_minutes() / bmin;
            for h in 1..=back.min(f.len() as i64) {
                let idx = n as i64 - 1 - (back - h);
                if idx < 0 {
                    continue;
                }
                let y = st.values[idx as usize];
                let q = f[(h - 1) as usize];
                cnt += 1;
                abs += (y - q.p50).abs();
                if q.p10 <= y && y <= q.p90 {
                    cov += 1;
                }
            }
        }
        st.accuracy = (cnt > 0).then(|| LiveAccuracy {
            samples: cnt,
            mae: abs / cnt as f64,
            mase: abs / cnt as f64 / st.scale,
            coverage: cov as f64 / cnt as f64,
        });
        st.latest = Some(ForecastView {
            issued_at,
            points: qs
                .iter()
                .enumerate()
                .map(|(i, q)| ForecastPoint {
                    horizon_min: (i as i64 + 1) as u32 * bmin as u32,
                    p50: q.p50,
                    p90: q.p90,
                })
                .collect(),
            live_mase: st.accuracy.map(|a| a.mase),
        });
        if st.issued.back().is_none_or(|(o, _)| *o < minute) {
            st.issued.push_back((minute, qs));
        }
        while st
            .issued
            .front()
            .is_some_and(|(o, _)| (minute - *o).num_minutes() / bmin >= hz as i64)
        {
            st.issued.pop_front();
        }
    }
    (fits, errors, forecast_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_fills_gaps_with_zero_and_takes_late_corrections() {
        let step = TimeDelta::minutes(5);
        let t0: DateTime<Utc> = "2026-11-01T00:00:00Z".parse().unwrap();
        let mut st = ServiceState::new(t0, step);
        st.push(t0, 10.0, step);
        // Two buckets without a row count as zero.
        st.push(t0 + step * 3, 40.0, step);
        assert_eq!(st.values, vec![10.0, 0.0, 0.0, 40.0]);
        assert_eq!((st.fresh, st.last_minute), (4, t0 + step * 3));
        // An older bucket is not appended again.
        st.push(t0 + step, 99.0, step);
        assert_eq!(st.values.len(), 4);
        // A late event changed bucket 1: corrected once, then unchanged.
        assert!(st.correct(t0 + step, 7.0, step));
        assert!(!st.correct(t0 + step, 7.0, step));
        assert_eq!(st.values, vec![10.0, 7.0, 0.0, 40.0]);
        // A bucket not yet appended, or older than the history, is no correction.
        assert!(!st.correct(t0 + step * 4, 1.0, step));
        assert!(!st.correct(t0 - step * 10, 1.0, step));
    }
}
