//! Burst collapsing: per key, at most one message per window; what is held
//! back is counted and mentioned in the next message for that key.
//!
//! The state lives in the warm function, so it collapses bursts within one
//! execution environment (Lambda runs one per concurrent invocation; SNS
//! bursts mostly land on the same warm one). A cold start forgets it and at
//! worst sends one extra message.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};

/// What to do with the next message for a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Send it, mentioning `collapsed` messages held back before it.
    Send {
        /// Messages held back since the last one sent.
        collapsed: u32,
    },
    /// Hold it back: a message for this key went out less than a window ago.
    Suppress,
}

#[derive(Debug, Clone, Copy)]
struct KeyState {
    last_sent: DateTime<Utc>,
    collapsed: u32,
}

/// Per-key rate limiter.
#[derive(Debug, Clone)]
pub(crate) struct Limiter {
    window: Duration,
    keys: HashMap<String, KeyState>,
}

impl Limiter {
    /// At most one message per `window` per key.
    pub(crate) fn new(window: Duration) -> Limiter {
        Limiter {
            window,
            keys: HashMap::new(),
        }
    }

    /// Whether a message for `key` may go out at `now`.
    pub(crate) fn check(&self, key: &str, now: DateTime<Utc>) -> Verdict {
        match self.keys.get(key) {
            Some(s) if now - s.last_sent < self.window => Verdict::Suppress,
            Some(s) => Verdict::Send {
                collapsed: s.collapsed,
            },
            None => Verdict::Send { collapsed: 0 },
        }
    }

    /// Records that a message for `key` went out at `now`.
    pub(crate) fn sent(&mut self, key: &str, now: DateTime<Utc>) {
        self.keys.insert(
            key.to_string(),
            KeyState {
                last_sent: now,
                collapsed: 0,
            },
        );
        // Forget keys idle for a long time so memory stays bounded.
        let horizon = self.window * 12;
        self.keys
            .retain(|_, s| now - s.last_sent < horizon || s.collapsed > 0);
    }

    /// Records `n` messages for `key` held back.
    pub(crate) fn collapsed(&mut self, key: &str, n: u32) {
        if let Some(s) = self.keys.get_mut(key) {
            s.collapsed += n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_message_per_window_then_the_count() {
        let t0: DateTime<Utc> = "2026-11-21T10:00:00Z".parse().unwrap();
        let mut l = Limiter::new(Duration::seconds(60));
        assert_eq!(l.check("a", t0), Verdict::Send { collapsed: 0 });
        l.sent("a", t0);
        assert_eq!(l.check("a", t0 + Duration::seconds(59)), Verdict::Suppress);
        l.collapsed("a", 3);
        assert_eq!(
            l.check("b", t0 + Duration::seconds(1)),
            Verdict::Send { collapsed: 0 },
            "keys are independent"
        );
        assert_eq!(
            l.check("a", t0 + Duration::seconds(60)),
            Verdict::Send { collapsed: 3 }
        );
        l.sent("a", t0 + Duration::seconds(60));
        assert_eq!(
            l.check("a", t0 + Duration::seconds(200)),
            Verdict::Send { collapsed: 0 }
        );
    }
}
