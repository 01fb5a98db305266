//! The loop: wake on `NOTIFY prescient_frontier` (or the poll), tick on
//! each newly closed bucket, retry failed ticks.

use super::*;

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
