//! Per-partition progress, and the event-time frontier derived from it.
//!
//! Each partition has its own watermark: the largest event time read from
//! it. The frontier is the minimum over the partitions that are not idle
//! (caught up with the broker and quiet for the idle timeout), never moves
//! back, and decides when a window closes for good. Every worker derives
//! the same frontier from the same broadcast reports, and the sink stores
//! it with the offsets so a restart resumes with the same one.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A partition's progress as its worker reports it at the end of a tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PartitionProgress {
    /// Kafka partition.
    pub partition: i32,
    /// Next offset to read.
    pub next_offset: i64,
    /// Largest event time accepted so far.
    pub watermark_ms: Option<i64>,
    /// Caught up and quiet for the idle timeout.
    pub idle: bool,
    /// Where a restart must re-read from to rebuild open windows.
    pub replay_offset: i64,
    /// The watermark just before `replay_offset`.
    pub replay_watermark_ms: Option<i64>,
    /// The partition's end (high watermark) as last seen by its consumer.
    pub end_offset: Option<i64>,
}

impl PartitionProgress {
    /// What is stored, i.e. everything but the idle flag.
    pub(crate) fn stored_eq(&self, other: &PartitionProgress) -> bool {
        (
            self.next_offset,
            self.watermark_ms,
            self.replay_offset,
            self.replay_watermark_ms,
            self.end_offset,
        ) == (
            other.next_offset,
            other.watermark_ms,
            other.replay_offset,
            other.replay_watermark_ms,
            other.end_offset,
        )
    }
}

/// Latest progress of every partition, and the frontier.
#[derive(Debug, Clone, Default)]
pub(crate) struct FrontierTracker {
    partitions: BTreeMap<i32, PartitionProgress>,
    frontier: Option<i64>,
}

impl FrontierTracker {
    /// A tracker starting from a stored frontier.
    pub(crate) fn new(frontier: Option<i64>) -> Self {
        FrontierTracker {
            partitions: BTreeMap::new(),
            frontier,
        }
    }

    /// Records a partition's latest progress.
    pub(crate) fn update(&mut self, p: PartitionProgress) {
        self.partitions.insert(p.partition, p);
    }

    /// Every partition's latest progress.
    pub(crate) fn partitions(&self) -> &BTreeMap<i32, PartitionProgress> {
        &self.partitions
    }

    /// Recomputes and returns the frontier: the minimum watermark of the
    /// non-idle partitions (none while one of them has no data yet), or
    /// the maximum when all are idle; never lower than before.
    pub(crate) fn advance(&mut self) -> Option<i64> {
        let mut active = self.partitions.values().filter(|p| !p.idle).peekable();
        let candidate = if active.peek().is_none() {
            self.partitions
                .values()
                .filter_map(|p| p.watermark_ms)
                .max()
        } else {
            active
                .map(|p| p.watermark_ms)
                .collect::<Option<Vec<_>>>()
                .and_then(|w| w.into_iter().min())
        };
        self.frontier = self.frontier.max(candidate);
        self.frontier
    }

    /// The frontier as of the last [`FrontierTracker::advance`].
    pub(crate) fn frontier(&self) -> Option<i64> {
        self.frontier
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(partition: i32, wm: Option<i64>, idle: bool) -> PartitionProgress {
        PartitionProgress {
            partition,
            next_offset: 0,
            watermark_ms: wm,
            idle,
            replay_offset: 0,
            replay_watermark_ms: None,
            end_offset: None,
        }
    }

    #[test]
    fn frontier_is_min_of_active_and_monotonic() {
        let mut t = FrontierTracker::new(None);
        t.update(p(0, Some(100), false));
        t.update(p(1, None, false));
        assert_eq!(
            t.advance(),
            None,
            "a partition without data holds the frontier"
        );
        t.update(p(1, Some(50), false));
        assert_eq!(t.advance(), Some(50));
        t.update(p(1, Some(500), true));
        assert_eq!(
            t.advance(),
            Some(100),
            "idle partitions do not hold it back"
        );
        t.update(p(0, Some(200), true));
        assert_eq!(t.advance(), Some(500), "all idle: the largest watermark");
        t.update(p(0, Some(200), false));
        assert_eq!(t.advance(), Some(500), "never moves back");
        let mut restored = FrontierTracker::new(Some(700));
        restored.update(p(0, Some(10), false));
        assert_eq!(restored.advance(), Some(700));
    }
}
