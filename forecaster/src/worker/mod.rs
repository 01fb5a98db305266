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

mod alerting;
mod plan;
mod run;
mod state;
mod store;

pub use run::{FRONTIER_CHANNEL, run_worker};
use state::{ServiceState, compute};

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
    /// Hysteresis of the alerts ([`AlertConfig`](crate::AlertConfig)).
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
                models: ModelKind::statistical(),
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

/// `ingest_frontier`'s frontier, bucket range and lateness, and the newest
/// bucket of `service_minute`.
type FrontierRow = (
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<DateTime<Utc>>,
);

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
}
