//! The `prescient forecaster` worker: every time a minute closes in
//! `service_minute`, forecast every active service 1..60 minutes ahead,
//! track live accuracy, plan capacity and publish the decisions.
//!
//! A minute is closed when the dataflow's frontier (`ingest_frontier`) has
//! passed its end; without a frontier row, every minute before the newest
//! one in `service_minute` is taken as closed. The worker polls for that
//! (default every 5 s). Minutes without a row count as zero requests.
//!
//! Per tick, for each active service (a row within `active_min` minutes):
//! new minutes are appended to its in-memory history (at most
//! `history_days`), models are refitted every `retrain_every_min` minutes of
//! data (otherwise they only absorb the new values), the `auto` forecast is
//! written to `forecasts`, the last hour's forecasts are scored against what
//! arrived (`forecast_accuracy` and Prometheus), and, for services with a
//! policy, the planner's decision is written to `scaling_decisions` and
//! published on `scaling-decisions`. A failed tick (PostgreSQL or Kafka
//! down) is retried on the next poll; nothing is skipped.
//!
//! Decision and forecast times are data time: `issued_at` is the end of the
//! last closed minute. Decision ids are UUID v5 of service and `issued_at`,
//! so a repeated tick writes nothing twice.

use crate::config::{ConfigError, Policies};
use crate::metrics::{Metrics, MetricsError};
use crate::models::Quantiles;
use crate::planner::{self, ForecastPoint, ForecastView, PlanInput};
use crate::select::{Ensemble, ModelKind, ModelsConfig};
use chrono::{DateTime, TimeDelta, Utc};
use prescient_contracts::decision::{Mode, ScalingDecision};
use rdkafka::producer::{FutureProducer, FutureRecord};
use sqlx::PgPool;
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
    /// How often to look for a newly closed minute.
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
    /// Apply database migrations on start.
    pub migrate: bool,
}

impl WorkerConfig {
    /// Defaults: no Kafka, default policy for every service, poll 5 s,
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
            poll_interval: Duration::from_secs(5),
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
            migrate: true,
        }
    }
}

/// `prescient forecaster` flags.
#[derive(Debug, clap::Args)]
pub struct WorkerArgs {
    /// PostgreSQL URL.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: String,
    /// Kafka bootstrap servers for `scaling-decisions` (omit to record in PostgreSQL only).
    #[arg(long, env = "KAFKA_BROKERS")]
    pub brokers: Option<String>,
    /// Capacity policy TOML (see docs/forecaster.md); without one every
    /// service gets the default dry-run policy.
    #[arg(long)]
    pub policy_file: Option<PathBuf>,
    /// Plan only for services listed in the policy file.
    #[arg(long)]
    pub only_listed: bool,
    /// Serve Prometheus `/metrics` on this address.
    #[arg(long, default_value = "0.0.0.0:9102")]
    pub metrics_addr: SocketAddr,
    /// Seconds between polls for a closed minute.
    #[arg(long, default_value_t = 5.0)]
    pub poll_secs: f64,
    /// Forecast horizon in minutes.
    #[arg(long, default_value_t = 60)]
    pub horizon: usize,
    /// Days of history kept per service.
    #[arg(long, default_value_t = 8.0)]
    pub history_days: f64,
    /// Refit models after this many minutes.
    #[arg(long, default_value_t = 60)]
    pub retrain_minutes: u32,
    /// Comma-separated models (naive, snaive_daily, snaive_weekly, ets, profile, lstm).
    #[arg(long, default_value = "naive,snaive_daily,snaive_weekly,ets,profile")]
    pub models: String,
    /// Directory for trained model files (safetensors).
    #[arg(long)]
    pub model_dir: Option<PathBuf>,
    /// Record all decisions as dry-run.
    #[arg(long)]
    pub dry_run: bool,
}

impl WorkerArgs {
    /// Resolves flags and the policy file into a [`WorkerConfig`].
    pub fn into_config(self) -> Result<WorkerConfig, crate::cli::CliError> {
        let mut c = WorkerConfig::new(self.database_url);
        c.brokers = self.brokers.filter(|b| !b.is_empty());
        if let Some(p) = &self.policy_file {
            c.policies = Policies::from_path(p)?;
        }
        c.policies.only_listed = self.only_listed;
        c.metrics_addr = Some(self.metrics_addr);
        c.poll_interval = Duration::from_secs_f64(self.poll_secs.max(0.05));
        c.horizon_min = self.horizon.max(1);
        c.history_days = self.history_days;
        c.retrain_every_min = self.retrain_minutes.max(1);
        c.models.models =
            ModelKind::parse_list(&self.models).map_err(crate::cli::CliError::Usage)?;
        c.model_dir = self.model_dir;
        c.force_dry_run = self.dry_run;
        Ok(c)
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
    /// Seconds spent forecasting (excluding fits and I/O).
    pub forecast_secs: f64,
}

struct ServiceState {
    /// Requests per minute; the last value is the minute `last_minute`.
    values: Vec<f64>,
    last_minute: DateTime<Utc>,
    /// Values appended since the last tick (to feed the models).
    fresh: usize,
    last_seen: DateTime<Utc>,
    ens: Option<Ensemble>,
    fitted_at: Option<DateTime<Utc>>,
    scale: f64,
    /// (origin minute, forecast) of the last `horizon` ticks.
    issued: VecDeque<(DateTime<Utc>, Vec<Quantiles>)>,
    latest: Option<ForecastView>,
    leading: &'static str,
    accuracy: Option<(usize, f64, f64, f64)>,
    current: Option<u32>,
    last_scale_up: Option<DateTime<Utc>>,
    recent_desired: VecDeque<(DateTime<Utc>, u32)>,
}

impl ServiceState {
    fn new(first: DateTime<Utc>) -> Self {
        ServiceState {
            values: vec![],
            last_minute: first - TimeDelta::minutes(1),
            fresh: 0,
            last_seen: first,
            ens: None,
            fitted_at: None,
            scale: 1.0,
            issued: VecDeque::new(),
            latest: None,
            leading: "none",
            accuracy: None,
            current: None,
            last_scale_up: None,
            recent_desired: VecDeque::new(),
        }
    }

    /// Appends `v` at `minute`, zero-filling skipped minutes.
    fn push(&mut self, minute: DateTime<Utc>, v: f64) {
        while self.last_minute + TimeDelta::minutes(1) < minute {
            self.values.push(0.0);
            self.fresh += 1;
            self.last_minute += TimeDelta::minutes(1);
        }
        if minute > self.last_minute {
            self.values.push(v);
            self.fresh += 1;
            self.last_minute = minute;
        }
    }
}

/// A connected worker; [`run_worker`] drives it, tests call [`Worker::tick`].
pub struct Worker {
    config: WorkerConfig,
    pool: PgPool,
    producer: Option<FutureProducer<prescient_connect::KafkaContext>>,
    metrics: Metrics,
    services: BTreeMap<String, ServiceState>,
    last_tick: Option<DateTime<Utc>>,
    ticks: u64,
}

impl Worker {
    /// Connects to PostgreSQL (and Kafka), applies migrations, registers metrics.
    pub async fn connect(config: WorkerConfig) -> Result<Worker, WorkerError> {
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
            config,
            pool,
            producer,
            metrics,
            services: BTreeMap::new(),
            last_tick: None,
            ticks: 0,
        })
    }

    /// The worker's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The last closed minute (its start), if any data exists.
    pub async fn latest_closed_minute(&self) -> Result<Option<DateTime<Utc>>, WorkerError> {
        let (frontier, newest): (Option<i64>, Option<DateTime<Utc>>) = sqlx::query_as(
            "SELECT (SELECT min(frontier_ms) FROM ingest_frontier WHERE frontier_ms IS NOT NULL),
                    (SELECT max(minute) FROM service_minute)",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(match (frontier, newest) {
            (Some(f), _) => DateTime::from_timestamp_millis(f.div_euclid(60_000) * 60_000 - 60_000),
            (None, Some(m)) => Some(m - TimeDelta::minutes(1)),
            (None, None) => None,
        })
    }

    /// Processes the closed minute `minute` (its start): load, fit,
    /// forecast, score, plan, write and publish.
    pub async fn tick(&mut self, minute: DateTime<Utc>) -> Result<TickReport, WorkerError> {
        let started = Instant::now();
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
        let rows: Vec<(String, DateTime<Utc>, i64)> = sqlx::query_as(
            "SELECT service, minute, requests FROM service_minute
             WHERE minute > $1 AND minute <= $2 ORDER BY service, minute",
        )
        .bind(from)
        .bind(minute)
        .fetch_all(&self.pool)
        .await?;
        for (service, m, requests) in rows {
            let st = self
                .services
                .entry(service)
                .or_insert_with(|| ServiceState::new(m));
            st.push(m, requests as f64);
            st.last_seen = m;
        }
        let active = TimeDelta::minutes(i64::from(self.config.active_min));
        self.services
            .retain(|_, st| minute - st.last_seen <= active);
        let cap = (self.config.history_days * 1440.0) as usize;
        for st in self.services.values_mut() {
            st.push(minute, 0.0); // zero-fill quiet minutes up to the closed one
            if st.values.len() > cap {
                let drop = st.values.len() - cap;
                st.values.drain(..drop);
            }
        }

        // Fit, forecast and score off the async runtime.
        let mut services = std::mem::take(&mut self.services);
        let cfg = self.config.clone();
        let (services_back, fits, fit_errors, forecast_secs) =
            tokio::task::spawn_blocking(move || {
                let (f, e, s) = compute(&mut services, &cfg, minute);
                (services, f, e, s)
            })
            .await?;
        self.services = services_back;
        self.metrics.fits.inc_by(fits as u64);
        self.metrics.fit_errors.inc_by(fit_errors as u64);
        self.metrics.forecast_seconds.observe(forecast_secs);

        let issued_at = minute + TimeDelta::minutes(1);
        let mut report = TickReport {
            minute: Some(minute),
            fits,
            forecast_secs,
            ..Default::default()
        };
        report.forecasts = self.write_forecasts(issued_at).await?;
        report.services = self
            .services
            .values()
            .filter(|s| s.latest.as_ref().is_some_and(|f| f.issued_at == issued_at))
            .count();
        self.write_accuracy(minute).await?;
        let decisions = self.plan_all(issued_at);
        report.decisions = decisions.len();
        self.write_decisions(&decisions).await?;
        report.published = self.publish(&decisions).await?;

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
                target.push(issued_at + TimeDelta::minutes(i as i64));
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
            let Some((n, a, m, c)) = st.accuracy else {
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

    fn plan_all(&mut self, now: DateTime<Utc>) -> Vec<ScalingDecision> {
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
            let input = PlanInput {
                service: name.clone(),
                policy_name: if self.config.policies.services.contains_key(name) {
                    name.clone()
                } else {
                    "default".into()
                },
                now,
                current: st.current.unwrap_or(0),
                last_minute_requests: st.values.last().copied().unwrap_or(0.0),
                forecast: st.latest.clone(),
                last_scale_up: st.last_scale_up,
                recent_desired: st.recent_desired.iter().copied().collect(),
            };
            let d = planner::plan(&input, &policy);
            if d.desired > input.current {
                st.last_scale_up = Some(now);
            }
            st.current = Some(d.desired);
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

    async fn write_decisions(&self, decisions: &[ScalingDecision]) -> Result<(), WorkerError> {
        if decisions.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        for d in decisions {
            sqlx::query(
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
            sqlx::query(
                "SELECT pg_notify('prescient_decisions', json_build_object('id', $1::uuid, 'service', $2::text)::text)",
            )
            .bind(d.id)
            .bind(&d.service)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
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
    minute: DateTime<Utc>,
) -> (usize, usize, f64) {
    let hz = cfg.horizon_min;
    let issued_at = minute + TimeDelta::minutes(1);
    let retrain = TimeDelta::minutes(i64::from(cfg.retrain_every_min));
    let (mut fits, mut errors) = (0, 0);
    let mut forecast_secs = 0.0;
    let started = Instant::now();
    for (name, st) in services.iter_mut() {
        let fresh = std::mem::take(&mut st.fresh).min(st.values.len());
        if st.values.len() < cfg.min_history_min.max(4) {
            continue;
        }
        let due = st.fitted_at.is_none_or(|t| minute - t >= retrain)
            && started.elapsed() < cfg.fit_budget;
        if due {
            let mut ens = st.ens.take().unwrap_or_else(|| {
                let mut e = Ensemble::new(&cfg.models, 1440, hz);
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
                    st.fitted_at = Some(minute);
                    let m = if st.values.len() > 1441 { 1440 } else { 1 };
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
        st.leading = ens.leading_model(hz.min(5));
        // Score the last hour's forecasts against what arrived.
        let n = st.values.len();
        let (mut cnt, mut abs, mut cov) = (0usize, 0.0, 0usize);
        for (origin, f) in &st.issued {
            let back = (minute - *origin).num_minutes();
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
        st.accuracy = (cnt > 0).then(|| {
            (
                cnt,
                abs / cnt as f64,
                abs / cnt as f64 / st.scale,
                cov as f64 / cnt as f64,
            )
        });
        st.latest = Some(ForecastView {
            issued_at,
            points: qs
                .iter()
                .enumerate()
                .map(|(i, q)| ForecastPoint {
                    horizon_min: i as u32 + 1,
                    p50: q.p50,
                    p90: q.p90,
                })
                .collect(),
            live_mase: st.accuracy.map(|a| a.2),
        });
        if st.issued.back().is_none_or(|(o, _)| *o < minute) {
            st.issued.push_back((minute, qs));
        }
        while st
            .issued
            .front()
            .is_some_and(|(o, _)| (minute - *o).num_minutes() >= hz as i64)
        {
            st.issued.pop_front();
        }
    }
    (fits, errors, forecast_secs)
}

/// Runs the worker until `shutdown` completes: polls for closed minutes and
/// ticks on each. Errors inside a tick (a database or broker outage) are
/// logged, counted and retried on the next poll; only start-up errors
/// (connecting, migrating, binding `/metrics`) are returned.
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
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tokio::time::sleep(poll) => {}
        }
        let step = async {
            if let Some(m) = worker.latest_closed_minute().await?
                && worker.last_tick.is_none_or(|t| m > t)
            {
                worker.tick(m).await?;
            }
            Ok::<(), WorkerError>(())
        };
        tokio::select! {
            _ = &mut shutdown => break,
            r = step => if let Err(e) = r {
                worker.metrics.tick_errors.inc();
                tracing::warn!(error = %e, "forecaster tick failed; retrying");
            }
        }
    }
    Ok(())
}
