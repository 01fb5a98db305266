//! The `prescient forecaster` worker: every time a bucket (a minute by
//! default) closes in `service_minute`, forecast every active service up to
//! an hour ahead, track live accuracy, plan capacity and publish the
//! decisions.
//!
//! **When.** A bucket is closed when the dataflow's frontier
//! (`ingest_frontier`) has passed its end; without a frontier row, every
//! bucket before the newest one in `service_minute` is taken as closed. The
//! worker wakes on `NOTIFY prescient_frontier` (the dataflow sends it when
//! its frontier moves) and, as a fallback for a lost notification or a
//! missing dataflow, polls every `poll_interval` (default 30 s). Buckets
//! without a row count as zero requests.
//!
//! **Bucket length.** [`WorkerConfig::bucket`], or, when unset, the
//! `bucket_ms` the dataflow records in `ingest_frontier` (one minute when
//! there is none yet). It must be a whole number of minutes that divides a
//! day; horizons, seasons and the history are counted in buckets, and
//! forecast horizons are recorded in minutes (`horizon_min` = k × bucket).
//!
//! **Per tick**, for each active service (a row within `active_min`
//! minutes): new buckets are appended to its in-memory history (at most
//! `history_days`), buckets within the dataflow's lateness
//! (`ingest_frontier.lateness_ms`) are read again and corrected where late
//! events changed them (so refits and live accuracy use the final counts;
//! the models' running state keeps what it absorbed until the next refit),
//! models are refitted every `retrain_every_min` minutes of
//! data (otherwise they only absorb the new values), the `auto` forecast is
//! written to `forecasts`, the last hour's forecasts are scored against what
//! arrived (`forecast_accuracy` and Prometheus), and, for services with a
//! policy, the planner's decision is written to `scaling_decisions` and
//! published on `scaling-decisions`. A failed tick (PostgreSQL or Kafka
//! down) is retried; nothing is skipped.
//!
//! **The size planned from** (`current`) is the target's actual size as the
//! scaler last reported it: the newest row in `scaling_actions` for the
//! service *and its policy's target* (recorded from the `scaling-actions`
//! topic by [`crate::actions`]). For `applied`, `clamped` and `unchanged`
//! that is the size set (`applied`); for `dry-run` it is the size the
//! scaler would have set, so dry-run decisions show what apply mode would
//! do; for `failed` and `skipped-*` outcomes it is the size the scaler saw
//! before (`previous`). With no such row yet the size is unknown: the
//! planner then applies no step limit or scale-in hold and reports
//! `current` as the policy's minimum (see [`crate::planner`]).
//!
//! **Exactly one payload per decision.** Decision and forecast times are
//! data time: `issued_at` is the end of the last closed bucket, and a
//! decision's id is a UUID v5 of service and `issued_at`. A bucket is
//! planned once: when its tick fails after planning, the retry reuses the
//! planned decisions. What is published is the payload stored in
//! `scaling_decisions` (the first write wins, `ON CONFLICT DO NOTHING`) and
//! only while it is not yet marked published, so a restarted worker that
//! plans the same bucket differently never sends a second payload under
//! the same id.

use crate::alerts::{AlertConfig, Condition, Observation, ServiceAlerts};
use crate::config::{ConfigError, Policies};
use crate::metrics::{Metrics, MetricsError};
use crate::models::Quantiles;
use crate::planner::{self, ForecastPoint, ForecastView, PlanInput};
use crate::select::{Ensemble, ModelKind, ModelsConfig};
use chrono::{DateTime, TimeDelta, Utc};
use prescient_contracts::action::Alert;
use prescient_contracts::decision::{Mode, ScalingDecision};
use rdkafka::producer::{FutureProducer, FutureRecord};
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Errors of the worker.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// PostgreSQL failed.
    #[error("postgres: {0}")]
    Db(#[from] sqlx::Error),
    /// Migrations failed.
    #[error(transparent)]
    Migrate(#[from] prescient_infra::migrate::MigrateError),
    /// The Kafka security settings cannot be used.
    #[error(transparent)]
    Connect(#[from] prescient_connect::ConnectError),
    /// Kafka producer could not be created.
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// Metrics could not be registered or served.
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    /// The metrics endpoint could not be served.
    #[error(transparent)]
    Serve(#[from] prescient_infra::metrics::MetricsError),
    /// Invalid settings.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A background computation panicked.
    #[error("forecasting task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
    /// The scaling-actions consumer could not start.
    #[error(transparent)]
    Actions(#[from] crate::actions::ActionsError),
    /// The bucket length is not usable, or disagrees with the dataflow's.
    #[error("bucket: {0}")]
    Bucket(String),
}

/// Settings of the worker (see [`WorkerConfig::new`] for defaults).
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// PostgreSQL URL.
    pub database_url: String,
    /// Kafka bootstrap servers; `None` records decisions in PostgreSQL only.
    pub brokers: Option<String>,
    /// Kafka TLS/SASL settings (default: plaintext).
    pub kafka_security: prescient_connect::KafkaSecurity,
    /// Capacity policies.
    pub policies: Policies,
    /// Serve `/metrics` here (e.g. `0.0.0.0:9102`).
    pub metrics_addr: Option<SocketAddr>,
    /// Register metrics in this registry (the demo shares one); a new one otherwise.
    pub registry: Option<prometheus::Registry>,
    /// Bucket length: `None` takes the dataflow's (`ingest_frontier.bucket_ms`,
    /// one minute while there is none). A whole number of minutes dividing a day.
    pub bucket: Option<Duration>,
    /// Fallback poll for a newly closed bucket; the worker normally wakes on
    /// `NOTIFY prescient_frontier`.
    pub poll_interval: Duration,
    /// Forecast horizons `1..=horizon_min` minutes.
    pub horizon_min: usize,
    /// Minutes of history kept and fitted on.
    pub history_days: f64,
    /// Refit each service's models after this many minutes of new data.
    pub retrain_every_min: u32,
    /// A service is active while it had a row within this many minutes.
    pub active_min: u32,
    /// Fewest minutes of history before a service is forecast.
    pub min_history_min: usize,
    /// Most time one tick spends fitting; services still due are fitted on
    /// the next ticks (unfitted ones are planned reactively meanwhile).
    pub fit_budget: Duration,
    /// Delete forecasts and accuracy rows older than this many hours.
    pub retention_hours: u32,
    /// Models and their settings.
    pub models: ModelsConfig,
    /// Where trained models (the LSTM) are saved so a restart fine-tunes.
    pub model_dir: Option<PathBuf>,
    /// Record every decision as `dry-run` whatever the policy says.
    pub force_dry_run: bool,
    /// Hysteresis of the alerts ([`crate::alerts`]).
    pub alerts: AlertConfig,
    /// Apply database migrations on start.
    pub migrate: bool,
}

impl WorkerConfig {
    /// Defaults: no Kafka, default policy for every service, the dataflow's
    /// bucket, fallback poll 30 s,
    /// horizon 60 min, 8 days of history, retrain hourly, active within
    /// 60 min, forecast after 30 min of history, fit for at most 20 s per
    /// tick, keep 48 h of forecasts,
    /// models naive + snaive_daily + snaive_weekly + ets + profile (add `lstm` in
    /// `models.models`), migrations on.
    pub fn new(database_url: impl Into<String>) -> Self {
        WorkerConfig {
            database_url: database_url.into(),
            brokers: None,
            kafka_security: Default::default(),
            policies: Policies::default(),
            metrics_addr: None,
            registry: None,
            bucket: None,
            poll_interval: Duration::from_secs(30),
            horizon_min: 60,
            history_days: 8.0,
            retrain_every_min: 60,
            active_min: 60,
            min_history_min: 30,
            fit_budget: Duration::from_secs(20),
            retention_hours: 48,
            models: ModelsConfig {
                models: vec![
                    ModelKind::Naive,
                    ModelKind::SnaiveDaily,
                    ModelKind::SnaiveWeekly,
                    ModelKind::Ets,
                    ModelKind::Profile,
                ],
                ..Default::default()
            },
            model_dir: None,
            force_dry_run: false,
            alerts: AlertConfig::default(),
            migrate: true,
        }
    }
}

/// What one tick did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TickReport {
    /// The closed minute processed.
    pub minute: Option<DateTime<Utc>>,
    /// Services forecast.
    pub services: usize,
    /// Forecast rows written.
    pub forecasts: usize,
    /// Models fitted.
    pub fits: usize,
    /// Decisions written.
    pub decisions: usize,
    /// Decisions delivered to Kafka.
    pub published: usize,
    /// Alerts raised (published when there is a broker).
    pub alerts: Vec<Alert>,
    /// Seconds spent forecasting (excluding fits and I/O).
    pub forecast_secs: f64,
    /// Buckets already in a history whose count changed (late events),
    /// re-read within the dataflow's lateness and corrected.
    pub corrected: usize,
}

/// Live accuracy of a service's recent forecasts (the last `horizon` ticks'
/// forecasts against what arrived).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LiveAccuracy {
    /// (forecast, actual) pairs scored.
    pub samples: usize,
    /// Mean absolute error of the p50, requests per bucket.
    pub mae: f64,
    /// `mae` over the in-sample MAE of the daily seasonal naive.
    pub mase: f64,
    /// Share of actuals inside [p10, p90].
    pub coverage: f64,
}

/// The length of a bucket, checked: a whole number of minutes that divides a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    minutes: i64,
}

impl Bucket {
    /// One minute.
    pub const MINUTE: Bucket = Bucket { minutes: 1 };

    /// Checks a bucket length in milliseconds.
    pub fn from_ms(ms: i64) -> Result<Bucket, WorkerError> {
        if ms <= 0 || ms % 60_000 != 0 || 86_400_000 % ms != 0 {
            return Err(WorkerError::Bucket(format!(
                "{ms} ms is not a whole number of minutes dividing a day \
                 (the forecaster counts horizons and seasons in minutes)"
            )));
        }
        Ok(Bucket {
            minutes: ms / 60_000,
        })
    }

    /// Length in milliseconds.
    pub fn ms(self) -> i64 {
        self.minutes * 60_000
    }

    /// Length in minutes.
    pub fn minutes(self) -> i64 {
        self.minutes
    }

    fn delta(self) -> TimeDelta {
        TimeDelta::minutes(self.minutes)
    }

    fn per_day(self) -> usize {
        (1440 / self.minutes) as usize
    }

    /// Buckets needed to cover `minutes` (at least one).
    fn steps(self, minutes: usize) -> usize {
        minutes.div_ceil(self.minutes as usize).max(1)
    }

    /// Start of the last bucket that ends at or before `frontier_ms`.
    fn last_closed(self, frontier_ms: i64) -> Option<DateTime<Utc>> {
        let b = self.ms();
        DateTime::from_timestamp_millis(frontier_ms.div_euclid(b) * b - b)
    }
}

struct ServiceState {
    /// Requests per bucket; the last value is the bucket starting `last_minute`.
    values: Vec<f64>,
    last_minute: DateTime<Utc>,
    /// Values appended since the last tick (to feed the models).
    fresh: usize,
    last_seen: DateTime<Utc>,
    ens: Option<Ensemble>,
    fitted_at: Option<DateTime<Utc>>,
    scale: f64,
    /// (origin bucket, forecast) of the last `horizon` ticks.
    issued: VecDeque<(DateTime<Utc>, Vec<Quantiles>)>,
    latest: Option<ForecastView>,
    leading: &'static str,
    accuracy: Option<LiveAccuracy>,
    last_scale_up: Option<DateTime<Utc>>,
    recent_desired: VecDeque<(DateTime<Utc>, u32)>,
    alerts: ServiceAlerts,
    /// Why the last fit failed, until one succeeds.
    fit_error: Option<String>,
}

impl ServiceState {
    fn new(first: DateTime<Utc>, step: TimeDelta) -> Self {
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
    fn correct(&mut self, minute: DateTime<Utc>, v: f64, step: TimeDelta) -> bool {
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
    fn push(&mut self, minute: DateTime<Utc>, v: f64, step: TimeDelta) {
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

/// `ingest_frontier`'s frontier, bucket range and lateness, and the newest
/// bucket of `service_minute`.
type FrontierRow = (
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<DateTime<Utc>>,
);

/// Fewest scored forecast points before a high live error raises an alert.
const MIN_ALERT_SAMPLES: usize = 30;

/// The size the scaler last reported for each service's policy target.
type Sizes = BTreeMap<String, u32>;

/// A connected worker; [`run_worker`] drives it, tests call [`Worker::tick`].
pub struct Worker {
    config: WorkerConfig,
    pool: PgPool,
    producer: Option<FutureProducer<prescient_connect::KafkaContext>>,
    metrics: Metrics,
    services: BTreeMap<String, ServiceState>,
    last_tick: Option<DateTime<Utc>>,
    ticks: u64,
    bucket: Bucket,
    /// The bucket came from the configuration (never adopt the dataflow's).
    bucket_fixed: bool,
    /// The dataflow's allowed lateness (`ingest_frontier.lateness_ms`):
    /// closed buckets this recent may still change and are re-read.
    lateness: TimeDelta,
    /// Decisions planned for a bucket whose tick has not completed: a retry
    /// reuses them instead of planning again.
    planned: Option<(DateTime<Utc>, Vec<ScalingDecision>)>,
}

impl Worker {
    /// Connects to PostgreSQL (and Kafka), applies migrations, registers metrics.
    pub async fn connect(config: WorkerConfig) -> Result<Worker, WorkerError> {
        let bucket = match config.bucket {
            Some(d) => Bucket::from_ms(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))?,
            None => Bucket::MINUTE,
        };
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(5))
            .connect(&config.database_url)
            .await?;
        if config.migrate {
            prescient_infra::migrate::run(&pool).await?;
        }
        let producer = match &config.brokers {
            Some(b) => {
                let mut client = rdkafka::ClientConfig::new();
                client
                    .set("bootstrap.servers", b)
                    .set("message.timeout.ms", "10000")
                    .set("enable.idempotence", "true");
                let context = config.kafka_security.context()?;
                Some(
                    config
                        .kafka_security
                        .apply(&mut client)
                        .create_with_context(context)?,
                )
            }
            None => None,
        };
        let registry = config.registry.clone().unwrap_or_default();
        let metrics = Metrics::new(&registry)?;
        if let Some(addr) = config.metrics_addr {
            prescient_infra::metrics::serve(addr, registry).await?;
        }
        Ok(Worker {
            bucket_fixed: config.bucket.is_some(),
            config,
            pool,
            producer,
            metrics,
            services: BTreeMap::new(),
            last_tick: None,
            ticks: 0,
            bucket,
            planned: None,
            lateness: TimeDelta::zero(),
        })
    }

    /// The worker's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The bucket length in use.
    pub fn bucket(&self) -> Bucket {
        self.bucket
    }

    /// The last closed bucket (its start), if any data exists. Adopts the
    /// dataflow's bucket length while none is configured and nothing was
    /// processed yet; a disagreement otherwise is an error.
    pub async fn latest_closed_minute(&mut self) -> Result<Option<DateTime<Utc>>, WorkerError> {
        let (frontier, bmin, bmax, lateness, newest): FrontierRow = sqlx::query_as(
            "SELECT (SELECT min(frontier_ms) FROM ingest_frontier WHERE frontier_ms IS NOT NULL),
                    (SELECT min(bucket_ms) FROM ingest_frontier),
                    (SELECT max(bucket_ms) FROM ingest_frontier),
                    (SELECT max(lateness_ms) FROM ingest_frontier),
                    (SELECT max(minute) FROM service_minute)",
        )
        .fetch_one(&self.pool)
        .await?;
        self.lateness = TimeDelta::milliseconds(lateness.unwrap_or(0).max(0));
        if let (Some(lo), Some(hi)) = (bmin, bmax) {
            if lo != hi {
                return Err(WorkerError::Bucket(format!(
                    "ingest_frontier has topics with different buckets ({lo} and {hi} ms)"
                )));
            }
            if lo != self.bucket.ms() {
                if self.bucket_fixed || self.last_tick.is_some() {
                    return Err(WorkerError::Bucket(format!(
                        "the dataflow's buckets are {lo} ms but the forecaster uses {} ms \
                         (set --bucket to match, or restart the forecaster)",
                        self.bucket.ms()
                    )));
                }
                self.bucket = Bucket::from_ms(lo)?;
                tracing::info!(bucket_ms = lo, "forecaster: using the dataflow's bucket");
            }
        }
        Ok(match (frontier, newest) {
            (Some(f), _) => self.bucket.last_closed(f),
            (None, Some(m)) => Some(m - self.bucket.delta()),
            (None, None) => None,
        })
    }

    /// Processes the closed bucket starting at `minute`: load, fit,
    /// forecast, score, plan, write and publish.
    pub async fn tick(&mut self, minute: DateTime<Utc>) -> Result<TickReport, WorkerError> {
        let started = Instant::now();
        let step = self.bucket.delta();
        let history = TimeDelta::seconds((self.config.history_days * 86_400.0) as i64);
        let from = match self.last_tick {
            Some(t) if t < minute => t,
            Some(_) => {
                return Ok(TickReport {
                    minute: Some(minute),
                    ..Default::default()
                });
            }
            None => minute - history,
        };
        // Also re-read the buckets late events may still have changed.
        let reread = if self.last_tick.is_some() {
            from - self.lateness
        } else {
            from
        };
        let rows: Vec<(String, DateTime<Utc>, i64)> = sqlx::query_as(
            "SELECT service, minute, requests FROM service_minute
             WHERE minute > $1 AND minute <= $2 ORDER BY service, minute",
        )
        .bind(reread)
        .bind(minute)
        .fetch_all(&self.pool)
        .await?;
        let mut corrected = 0;
        for (service, m, requests) in rows {
            let st = self
                .services
                .entry(service)
                .or_insert_with(|| ServiceState::new(m, step));
            if m <= st.last_minute {
                corrected += usize::from(st.correct(m, requests as f64, step));
            } else {
                st.push(m, requests as f64, step);
            }
            st.last_seen = st.last_seen.max(m);
        }
        self.metrics.corrected.inc_by(corrected as u64);
        let active = TimeDelta::minutes(i64::from(self.config.active_min));
        self.services
            .retain(|_, st| minute - st.last_seen <= active);
        let cap = (self.config.history_days * self.bucket.per_day() as f64) as usize;
        for st in self.services.values_mut() {
            st.push(minute, 0.0, step); // zero-fill quiet buckets up to the closed one
            if st.values.len() > cap {
                let drop = st.values.len() - cap;
                st.values.drain(..drop);
            }
        }

        // Fit, forecast and score off the async runtime.
        let mut services = std::mem::take(&mut self.services);
        let cfg = self.config.clone();
        let bucket = self.bucket;
        let (services_back, fits, fit_errors, forecast_secs) =
            tokio::task::spawn_blocking(move || {
                let (f, e, s) = compute(&mut services, &cfg, bucket, minute);
                (services, f, e, s)
            })
            .await?;
        self.services = services_back;
        self.metrics.fits.inc_by(fits as u64);
        self.metrics.fit_errors.inc_by(fit_errors as u64);
        self.metrics.forecast_seconds.observe(forecast_secs);

        let issued_at = minute + step;
        let mut report = TickReport {
            minute: Some(minute),
            fits,
            forecast_secs,
            corrected,
            ..Default::default()
        };
        report.forecasts = self.write_forecasts(issued_at).await?;
        report.services = self
            .services
            .values()
            .filter(|s| s.latest.as_ref().is_some_and(|f| f.issued_at == issued_at))
            .count();
        self.write_accuracy(minute).await?;
        // Plan once per bucket: a retry of this tick reuses the decisions.
        let decisions = match self.planned.take() {
            Some((m, d)) if m == minute => d,
            _ => {
                let sizes = self.target_sizes().await?;
                self.plan_all(issued_at, &sizes)
            }
        };
        self.planned = Some((minute, decisions.clone()));
        report.decisions = decisions.len();
        let unpublished = self.write_decisions(&decisions).await?;
        report.published = self.publish(&unpublished).await?;

        self.ticks += 1;
        if self.ticks % 60 == 1 {
            let cutoff = minute - TimeDelta::hours(i64::from(self.config.retention_hours));
            sqlx::query("DELETE FROM forecasts WHERE issued_at < $1")
                .bind(cutoff)
                .execute(&self.pool)
                .await?;
            sqlx::query("DELETE FROM forecast_accuracy WHERE minute < $1")
                .bind(cutoff)
                .execute(&self.pool)
                .await?;
        }
        report.alerts = self.raise_alerts(minute, issued_at, &decisions).await;
        self.planned = None;
        self.last_tick = Some(minute);
        self.metrics.ticks.inc();
        self.metrics.services.set(report.services as i64);
        self.metrics.last_minute.set(minute.timestamp() as f64);
        self.metrics
            .tick_seconds
            .observe(started.elapsed().as_secs_f64());
        tracing::info!(%minute, services = report.services, fits, decisions = report.decisions, "forecaster tick");
        Ok(report)
    }

    /// Feeds this bucket's observations to every service's alert
    /// hysteresis; publishes the alerts raised (a failed send is logged
    /// and counted, not retried: the condition is still visible in the
    /// metrics) and returns them.
    async fn raise_alerts(
        &mut self,
        minute: DateTime<Utc>,
        issued_at: DateTime<Utc>,
        decisions: &[ScalingDecision],
    ) -> Vec<Alert> {
        let at = issued_at;
        let mut raised = vec![];
        for (name, st) in self.services.iter_mut() {
            let policy = self
                .config
                .policies
                .for_service(name)
                .unwrap_or(&self.config.policies.defaults);
            let mut obs = Observation::default();
            if let Some(a) = st
                .accuracy
                .filter(|a| a.samples >= MIN_ALERT_SAMPLES && a.mase > policy.max_live_mase)
            {
                obs.error_high = Some(format!(
                    "live MASE {:.2} over the last {} forecast points > {:.2}",
                    a.mase, a.samples, policy.max_live_mase
                ));
            }
            if st.ens.is_some()
                && let Some(d) = decisions
                    .iter()
                    .find(|d| d.service == *name && d.forecast.is_none())
            {
                obs.fallback = Some(d.reason.clone());
            }
            // Stale: forecasts stopped, or fitting fails. A first fit that
            // is only deferred (the fit budget at start-up) is warm-up.
            let fresh = st.latest.as_ref().is_some_and(|f| f.issued_at == issued_at);
            if !fresh && (st.latest.is_some() || st.fit_error.is_some()) {
                let last = st
                    .latest
                    .as_ref()
                    .map_or("never".to_string(), |f| f.issued_at.to_rfc3339());
                obs.stale = Some(match &st.fit_error {
                    Some(e) => format!(
                        "no forecast for the bucket at {minute} (last issued: {last}); fitting failed: {e}"
                    ),
                    None => format!("no forecast for the bucket at {minute} (last issued: {last})"),
                });
            }
            let (new, cleared) = st.alerts.observe(name, &obs, at, self.config.alerts);
            for a in &new {
                let c = Condition::ALL
                    .into_iter()
                    .find(|c| c.kind() == a.alert)
                    .unwrap_or(Condition::Stale);
                self.metrics.alerts.with_label_values(&[c.label()]).inc();
                self.metrics
                    .alert_active
                    .with_label_values(&[name.as_str(), c.label()])
                    .set(1);
                tracing::warn!(service = %name, kind = c.label(), message = %a.message, "forecaster alert");
            }
            for c in cleared {
                self.metrics
                    .alert_active
                    .with_label_values(&[name.as_str(), c.label()])
                    .set(0);
                tracing::info!(service = %name, kind = c.label(), "forecaster alert cleared");
            }
            raised.extend(new);
        }
        if let Some(producer) = &self.producer {
            for a in &raised {
                let payload = serde_json::to_string(a).expect("alerts serialise");
                let record = FutureRecord::to(prescient_contracts::SCALING_ACTIONS_TOPIC)
                    .key(&a.service)
                    .payload(&payload);
                if let Err((e, _)) = producer.send(record, Duration::from_secs(10)).await {
                    self.metrics.alert_publish_errors.inc();
                    tracing::warn!(service = %a.service, error = %e, "publishing an alert failed");
                }
            }
        }
        raised
    }

    /// The sizes the scaler last reported for the services with a policy
    /// (see the module docs for which outcome gives which size).
    async fn target_sizes(&self) -> Result<Sizes, WorkerError> {
        let (mut names, mut targets) = (vec![], vec![]);
        for name in self.services.keys() {
            if let Some(p) = self.config.policies.for_service(name) {
                names.push(name.as_str());
                targets
                    .push(serde_json::to_string(&p.target_for(name)).expect("targets serialise"));
            }
        }
        if names.is_empty() {
            return Ok(Sizes::new());
        }
        // Per service, its target's newest outcome that tells a size: an
        // index scan of scaling_actions (service, at DESC), one row each.
        let rows: Vec<(String, i32)> = sqlx::query_as(
            "SELECT s.service, a.size
             FROM unnest($1::text[], $2::text[]) AS s(service, target)
             CROSS JOIN LATERAL (
                 SELECT CASE WHEN outcome IN ('applied', 'clamped', 'unchanged', 'dry-run')
                             THEN coalesce(applied, previous) ELSE previous END AS size
                 FROM scaling_actions
                 WHERE service = s.service AND target = s.target::jsonb
                   AND (CASE WHEN outcome IN ('applied', 'clamped', 'unchanged', 'dry-run')
                             THEN coalesce(applied, previous) ELSE previous END) IS NOT NULL
                 ORDER BY at DESC
                 LIMIT 1) AS a",
        )
        .bind(&names)
        .bind(&targets)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(service, size)| (service, size.max(0) as u32))
            .collect())
    }

    async fn write_forecasts(&self, issued_at: DateTime<Utc>) -> Result<usize, WorkerError> {
        let mut svc = vec![];
        let mut target = vec![];
        let mut horizon = vec![];
        let (mut p10, mut p50, mut p90) = (vec![], vec![], vec![]);
        for (name, st) in &self.services {
            let Some(f) = st.latest.as_ref().filter(|f| f.issued_at == issued_at) else {
                continue;
            };
            let Some((_, qs)) = st.issued.back() else {
                continue;
            };
            for (i, q) in qs.iter().enumerate() {
                svc.push(name.clone());
                target.push(issued_at + self.bucket.delta() * i as i32);
                horizon.push(f.points[i].horizon_min as i32);
                p10.push(q.p10);
                p50.push(q.p50);
                p90.push(q.p90);
            }
        }
        if svc.is_empty() {
            return Ok(0);
        }
        let n = svc.len();
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO forecasts (service, issued_at, target_minute, horizon_min, p10, p50, p90, model)
             SELECT s, $2, t, h, a, b, c, 'auto'
             FROM UNNEST($1::text[], $3::timestamptz[], $4::int[], $5::float8[], $6::float8[], $7::float8[])
                  AS u(s, t, h, a, b, c)
             ON CONFLICT (service, issued_at, horizon_min) DO UPDATE
               SET p10 = EXCLUDED.p10, p50 = EXCLUDED.p50, p90 = EXCLUDED.p90, model = EXCLUDED.model",
        )
        .bind(&svc)
        .bind(issued_at)
        .bind(&target)
        .bind(&horizon)
        .bind(&p10)
        .bind(&p50)
        .bind(&p90)
        .execute(&mut *tx)
        .await?;
        // Delivered on commit: the dashboard redraws the services' forecasts.
        sqlx::query(
            "SELECT pg_notify('prescient_forecasts',
                     json_build_object('service', s, 'issued_at', $2::timestamptz)::text)
             FROM (SELECT DISTINCT unnest($1::text[]) AS s) AS u",
        )
        .bind(&svc)
        .bind(issued_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(n)
    }

    async fn write_accuracy(&self, minute: DateTime<Utc>) -> Result<(), WorkerError> {
        let (mut svc, mut samples, mut mae, mut mase, mut cov, mut model) =
            (vec![], vec![], vec![], vec![], vec![], vec![]);
        for (name, st) in &self.services {
            let Some(LiveAccuracy {
                samples: n,
                mae: a,
                mase: m,
                coverage: c,
            }) = st.accuracy
            else {
                continue;
            };
            self.metrics
                .live_mase
                .with_label_values(&[name.as_str()])
                .set(m);
            self.metrics
                .coverage
                .with_label_values(&[name.as_str()])
                .set(c);
            svc.push(name.clone());
            samples.push(n as i32);
            mae.push(a);
            mase.push(m);
            cov.push(c);
            model.push(st.leading.to_string());
        }
        if svc.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO forecast_accuracy (service, minute, window_min, samples, mae, mase, coverage, model)
             SELECT s, $2, $3, n, a, m, c, l
             FROM UNNEST($1::text[], $4::int[], $5::float8[], $6::float8[], $7::float8[], $8::text[]) AS u(s, n, a, m, c, l)
             ON CONFLICT (service, minute) DO UPDATE SET samples = EXCLUDED.samples, mae = EXCLUDED.mae,
               mase = EXCLUDED.mase, coverage = EXCLUDED.coverage, model = EXCLUDED.model",
        )
        .bind(&svc)
        .bind(minute)
        .bind(self.config.horizon_min as i32)
        .bind(&samples)
        .bind(&mae)
        .bind(&mase)
        .bind(&cov)
        .bind(&model)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    fn plan_all(&mut self, now: DateTime<Utc>, sizes: &Sizes) -> Vec<ScalingDecision> {
        let mut out = vec![];
        for (name, st) in self.services.iter_mut() {
            let Some(policy) = self.config.policies.for_service(name) else {
                continue;
            };
            let mut policy = policy.clone();
            if self.config.force_dry_run {
                policy.mode = Mode::DryRun;
            }
            let window = TimeDelta::minutes(i64::from(policy.scale_in_stabilization_min));
            st.recent_desired.retain(|(t, _)| now - *t < window);
            let current = sizes.get(name).copied();
            let input = PlanInput {
                service: name.clone(),
                policy_name: if self.config.policies.services.contains_key(name) {
                    name.clone()
                } else {
                    "default".into()
                },
                now,
                current,
                last_minute_requests: st.values.last().copied().unwrap_or(0.0),
                forecast: st.latest.clone(),
                last_scale_up: st.last_scale_up,
                recent_desired: st.recent_desired.iter().copied().collect(),
            };
            let d = planner::plan(&input, &policy);
            if d.desired > d.current {
                st.last_scale_up = Some(now);
            }
            st.recent_desired.push_back((now, d.desired));
            let basis = if d.forecast.is_some() {
                "predictive"
            } else {
                "reactive"
            };
            self.metrics
                .decisions
                .with_label_values(&[name.as_str(), basis])
                .inc();
            self.metrics
                .desired
                .with_label_values(&[name.as_str()])
                .set(f64::from(d.desired));
            out.push(d);
        }
        out
    }

    /// Stores new decisions (an id already stored keeps its payload) and
    /// returns the stored payloads of `decisions` not yet published.
    async fn write_decisions(
        &self,
        decisions: &[ScalingDecision],
    ) -> Result<Vec<ScalingDecision>, WorkerError> {
        if decisions.is_empty() {
            return Ok(vec![]);
        }
        let mut tx = self.pool.begin().await?;
        for d in decisions {
            let inserted = sqlx::query(
                "INSERT INTO scaling_decisions (id, service, issued_at, expires_at, target, current_size, desired,
                   min_size, max_size, policy, reason, fallback, forecast, mode, decision)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(d.id)
            .bind(&d.service)
            .bind(d.issued_at)
            .bind(d.expires_at)
            .bind(sqlx::types::Json(&d.target))
            .bind(d.current as i32)
            .bind(d.desired as i32)
            .bind(d.min as i32)
            .bind(d.max as i32)
            .bind(&d.policy)
            .bind(&d.reason)
            .bind(d.forecast.is_none())
            .bind(d.forecast.as_ref().map(sqlx::types::Json))
            .bind(d.mode.as_str())
            .bind(sqlx::types::Json(d))
            .execute(&mut *tx)
            .await?;
            if inserted.rows_affected() > 0 {
                sqlx::query(
                    "SELECT pg_notify('prescient_decisions', json_build_object('id', $1::uuid, 'service', $2::text)::text)",
                )
                .bind(d.id)
                .bind(&d.service)
                .execute(&mut *tx)
                .await?;
            }
        }
        let ids: Vec<uuid::Uuid> = decisions.iter().map(|d| d.id).collect();
        let stored: Vec<(sqlx::types::Json<ScalingDecision>,)> = sqlx::query_as(
            "SELECT decision FROM scaling_decisions WHERE id = ANY($1) AND NOT published ORDER BY service",
        )
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(stored.into_iter().map(|(d,)| d.0).collect())
    }

    async fn publish(&self, decisions: &[ScalingDecision]) -> Result<usize, WorkerError> {
        let Some(producer) = &self.producer else {
            return Ok(0);
        };
        let mut sent = vec![];
        for d in decisions {
            let payload = serde_json::to_string(d).expect("decisions serialise");
            let record = FutureRecord::to(prescient_contracts::SCALING_DECISIONS_TOPIC)
                .key(&d.service)
                .payload(&payload);
            match producer.send(record, Duration::from_secs(10)).await {
                Ok(_) => sent.push(d.id),
                Err((e, _)) => {
                    self.metrics.publish_errors.inc();
                    tracing::warn!(service = %d.service, error = %e, "publishing a scaling decision failed");
                }
            }
        }
        if !sent.is_empty() {
            sqlx::query("UPDATE scaling_decisions SET published = true WHERE id = ANY($1)")
                .bind(&sent)
                .execute(&self.pool)
                .await?;
        }
        Ok(sent.len())
    }
}

/// Fits (when due), feeds, forecasts and scores every service. Returns
/// (fits, fit errors, seconds forecasting).
fn compute(
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

/// The channel the worker wakes on.
pub const FRONTIER_CHANNEL: &str = "prescient_frontier";

/// After a failed tick, try again this soon (or at the poll, if sooner).
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// `LISTEN prescient_frontier` on its own connection.
async fn listen(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut l = PgListener::connect_with(pool).await?;
    l.listen(FRONTIER_CHANNEL).await?;
    Ok(l)
}

/// Why the worker woke up.
enum Wake {
    Shutdown,
    /// A notification; its payload.
    Notified(String),
    /// The poll, a lost listener connection, or a retry.
    Check,
}

/// Runs the worker until `shutdown` completes: ticks on each newly closed
/// bucket, woken by `NOTIFY prescient_frontier` (a notification whose
/// frontier closes no new bucket is ignored), with a poll every
/// `poll_interval` as the fallback. A lost LISTEN connection is
/// re-established on the next wake-up, checking for a closed bucket then
/// (notifications may have been missed). Errors inside a tick (a database
/// or broker outage) are logged, counted and retried within 5 s; only
/// start-up errors (connecting, migrating, binding `/metrics`) are returned.
///
/// This is what `prescient forecaster` runs, and what `prescient demo` runs
/// in-process with `force_dry_run = true`.
pub async fn run_worker(
    config: WorkerConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), WorkerError> {
    let poll = config.poll_interval;
    let brokers = config.brokers.clone();
    let security = config.kafka_security.clone();
    let mut worker = Worker::connect(config).await?;
    // What the scaler did with the decisions, into `scaling_actions`
    // (stops with the worker: dropping it sets its stop flag).
    let _actions = match &brokers {
        Some(b) => Some(crate::actions::ActionsConsumer::start(
            tokio::runtime::Handle::current(),
            worker.pool.clone(),
            b,
            &security,
            prescient_contracts::SCALING_ACTIONS_TOPIC,
        )?),
        None => None,
    };
    let mut listener: Option<PgListener> = None;
    tokio::pin!(shutdown);
    loop {
        if listener.is_none() {
            match listen(&worker.pool).await {
                Ok(l) => listener = Some(l),
                Err(e) => {
                    tracing::warn!(error = %e, "forecaster: LISTEN {FRONTIER_CHANNEL} failed; polling")
                }
            }
        }
        let step = async {
            if let Some(m) = worker.latest_closed_minute().await?
                && worker.last_tick.is_none_or(|t| m > t)
            {
                worker.tick(m).await?;
            }
            Ok::<(), WorkerError>(())
        };
        let failed = tokio::select! {
            _ = &mut shutdown => break,
            r = step => match r {
                Ok(()) => false,
                Err(e) => {
                    worker.metrics.tick_errors.inc();
                    tracing::warn!(error = %e, "forecaster tick failed; retrying");
                    true
                }
            }
        };
        // Sleep until a notification says a new bucket closed, or the poll.
        let wait = if failed { poll.min(RETRY_AFTER) } else { poll };
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let wake = tokio::select! {
                _ = &mut shutdown => Wake::Shutdown,
                _ = tokio::time::sleep_until(deadline) => Wake::Check,
                n = async {
                    match listener.as_mut() {
                        Some(l) => l.try_recv().await,
                        None => std::future::pending().await,
                    }
                } => match n {
                    Ok(Some(n)) => Wake::Notified(n.payload().to_string()),
                    Ok(None) => {
                        tracing::warn!("forecaster: LISTEN connection lost; reconnecting");
                        Wake::Check
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "forecaster: LISTEN failed; reconnecting");
                        listener = None;
                        Wake::Check
                    }
                },
            };
            match wake {
                Wake::Shutdown => return Ok(()),
                Wake::Check => break,
                Wake::Notified(payload) if worker.closes_new_bucket(&payload) => break,
                Wake::Notified(_) => {}
            }
        }
    }
    Ok(())
}

impl Worker {
    /// Whether a `prescient_frontier` payload (`{"topic":…,"frontier_ms":…}`)
    /// closes a bucket after the last one processed (an unreadable payload
    /// counts as yes: check).
    fn closes_new_bucket(&self, payload: &str) -> bool {
        let frontier = serde_json::from_str::<serde_json::Value>(payload)
            .ok()
            .and_then(|v| v.get("frontier_ms").and_then(serde_json::Value::as_i64));
        match (frontier, self.last_tick) {
            (Some(f), Some(last)) => self.bucket.last_closed(f).is_some_and(|m| m > last),
            _ => true,
        }
    }
}
