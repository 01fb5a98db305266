//! Live updates: one task LISTENs on PostgreSQL's NOTIFY channels and fans
//! each notification out to every `/api/v1/stream` client, with increasing
//! event ids and a ring buffer so a reconnecting client resumes where it
//! left off (`Last-Event-ID`).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prescient_connect::backoff;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::broadcast;

/// The channels listened to and the event name each becomes.
pub(crate) const CHANNELS: [(&str, &str); 5] = [
    ("prescient_frontier", "frontier"),
    ("prescient_rows", "rows"),
    ("prescient_forecasts", "forecast"),
    ("prescient_decisions", "decision"),
    ("prescient_actions", "action"),
];

/// How many events a reconnecting client can catch up on.
pub(crate) const RING_CAPACITY: usize = 1024;

/// One event of the stream.
#[derive(Debug, Clone)]
pub struct Event {
    /// Monotonically increasing id.
    pub id: u64,
    /// `frontier`, `rows`, `forecast`, `decision`, `action` or `reset`.
    pub kind: &'static str,
    /// JSON payload.
    pub data: Arc<str>,
}

impl Event {
    /// Whether a tenant-scoped client may see it (only tenant-neutral
    /// progress events; forecasts, decisions and actions span tenants).
    pub fn tenant_visible(&self) -> bool {
        matches!(self.kind, "frontier" | "rows" | "reset")
    }
}

/// The fan-out point.
#[derive(Debug)]
pub struct Hub {
    next_id: AtomicU64,
    ring: Mutex<VecDeque<Event>>,
    tx: broadcast::Sender<Event>,
}

/// What a (re)connecting client gets first.
#[derive(Debug)]
pub struct Subscription {
    /// Events after its `Last-Event-ID` still in the buffer.
    pub replay: Vec<Event>,
    /// True when its `Last-Event-ID` is older than the buffer (or from
    /// another server process): it must refetch everything.
    pub reset: bool,
    /// The id of the newest event so far (0 when none).
    pub last_id: u64,
    /// Live events from here on.
    pub rx: broadcast::Receiver<Event>,
}

impl Hub {
    /// An empty hub. Ids start at the current time in microseconds, so they
    /// keep increasing across restarts of the server and a stale
    /// `Last-Event-ID` from an earlier process is recognised.
    pub fn new() -> Arc<Hub> {
        let start = chrono::Utc::now().timestamp_micros().max(1) as u64;
        let (tx, _) = broadcast::channel(RING_CAPACITY);
        Arc::new(Hub {
            next_id: AtomicU64::new(start),
            ring: Mutex::new(VecDeque::with_capacity(RING_CAPACITY)),
            tx,
        })
    }

    /// Records and broadcasts an event; returns its id.
    pub fn publish(&self, kind: &'static str, data: &str) -> u64 {
        let mut ring = self.ring.lock().expect("ring lock");
        // Ids are assigned under the lock so the ring stays in id order.
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let event = Event {
            id,
            kind,
            data: Arc::from(data),
        };
        if ring.len() == RING_CAPACITY {
            ring.pop_front();
        }
        ring.push_back(event.clone());
        let _ = self.tx.send(event);
        id
    }

    /// Subscribes a client that last saw `last_event_id`.
    pub fn subscribe(&self, last_event_id: Option<u64>) -> Subscription {
        let ring = self.ring.lock().expect("ring lock");
        let rx = self.tx.subscribe();
        let last_id = ring.back().map(|e| e.id).unwrap_or(0);
        let (replay, reset) = match last_event_id {
            None => (Vec::new(), false),
            Some(seen) => {
                let oldest = ring.front().map(|e| e.id);
                let newest = ring.back().map(|e| e.id);
                match (oldest, newest) {
                    // Nothing was missed.
                    (_, Some(newest)) if seen >= newest => (Vec::new(), seen > newest),
                    (Some(oldest), _) if seen + 1 >= oldest => (
                        ring.iter().filter(|e| e.id > seen).cloned().collect(),
                        false,
                    ),
                    // Older than the buffer, or the buffer is empty and the id is
                    // from an earlier process.
                    _ => (Vec::new(), true),
                }
            }
        };
        Subscription {
            replay,
            reset,
            last_id,
            rx,
        }
    }

    /// Listens on [`CHANNELS`] until the process ends, publishing every
    /// notification. A lost connection publishes `reset` (notifications may
    /// have been missed) and reconnects.
    pub fn spawn_listener(
        self: &Arc<Hub>,
        pool: PgPool,
        on_event: impl Fn(&'static str) + Send + Sync + 'static,
    ) -> tokio::task::JoinHandle<()> {
        let hub = self.clone();
        tokio::spawn(async move {
            let reconnect =
                || backoff::exponential(Duration::from_millis(200), Duration::from_secs(5));
            let mut delays = reconnect();
            loop {
                let mut listener = match PgListener::connect_with(&pool).await {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::warn!(error = %e, "dashboard: LISTEN connection failed; retrying");
                        tokio::time::sleep(delays.next().unwrap_or_default()).await;
                        continue;
                    }
                };
                if let Err(e) = listener
                    .listen_all(CHANNELS.iter().map(|(channel, _)| *channel))
                    .await
                {
                    tracing::warn!(error = %e, "dashboard: LISTEN failed; retrying");
                    tokio::time::sleep(delays.next().unwrap_or_default()).await;
                    continue;
                }
                delays = reconnect();
                tracing::debug!("dashboard: listening for notifications");
                loop {
                    match listener.try_recv().await {
                        Ok(Some(n)) => {
                            let Some((_, kind)) = CHANNELS.iter().find(|(c, _)| *c == n.channel())
                            else {
                                continue;
                            };
                            hub.publish(kind, n.payload());
                            on_event(kind);
                        }
                        Ok(None) => {
                            tracing::warn!("dashboard: LISTEN connection lost; reconnecting");
                            hub.publish("reset", "{}");
                            on_event("reset");
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "dashboard: LISTEN failed; reconnecting");
                            hub.publish("reset", "{}");
                            on_event("reset");
                            tokio::time::sleep(Duration::from_secs(1)).await;
                            break;
                        }
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_replays_only_missed_events() {
        let hub = Hub::new();
        let a = hub.publish("rows", "{}");
        let b = hub.publish("frontier", "{}");
        let c = hub.publish("decision", "{}");
        assert!(a < b && b < c);
        let s = hub.subscribe(Some(a));
        assert_eq!(
            s.replay.iter().map(|e| e.id).collect::<Vec<_>>(),
            vec![b, c]
        );
        assert!(!s.reset);
        let s = hub.subscribe(Some(c));
        assert!(s.replay.is_empty() && !s.reset);
        let s = hub.subscribe(Some(a - 10));
        assert!(s.reset, "an id older than the buffer asks for a refetch");
        let s = hub.subscribe(None);
        assert!(s.replay.is_empty() && !s.reset && s.last_id == c);
    }

    #[test]
    fn ring_keeps_the_newest_events() {
        let hub = Hub::new();
        let first = hub.publish("rows", "{}");
        for _ in 0..RING_CAPACITY {
            hub.publish("rows", "{}");
        }
        assert!(hub.subscribe(Some(first - 1)).reset);
        let s = hub.subscribe(Some(first));
        assert_eq!(s.replay.len(), RING_CAPACITY);
    }
}
