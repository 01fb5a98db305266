//! Where a restart resumes: the offsets, watermarks and frontier the sink
//! stored in the same transactions as the rows they cover.

use rustc_hash::FxHashMap;
use sqlx::PgPool;

use crate::progress::PartitionProgress;
use crate::window::Windows;

/// Failures reading or checking the stored progress.
#[derive(Debug, thiserror::Error)]
pub enum OffsetsError {
    /// The database refused.
    #[error("reading ingest progress: {0}")]
    Sql(#[from] sqlx::Error),
    /// The database holds rows made with other window settings.
    #[error(
        "topic {topic:?} was aggregated with --bucket {stored_bucket_ms} ms / --lateness {stored_lateness_ms} ms, \
         now asked for {bucket_ms} ms / {lateness_ms} ms: rows would mix; keep the old settings, or use a fresh database"
    )]
    WindowsChanged {
        /// Topic.
        topic: String,
        /// Stored bucket.
        stored_bucket_ms: i64,
        /// Stored lateness.
        stored_lateness_ms: i64,
        /// Asked bucket.
        bucket_ms: i64,
        /// Asked lateness.
        lateness_ms: i64,
    },
}

/// Stored progress of a topic.
#[derive(Debug, Clone, Default)]
pub(crate) struct ResumeState {
    /// Per partition, what was stored (idle is always false here).
    pub partitions: FxHashMap<i32, PartitionProgress>,
    /// Stored event-time frontier.
    pub frontier: Option<i64>,
}

/// partition, next_offset, watermark_ms, replay_offset, replay_watermark_ms
type OffsetRow = (i32, i64, Option<i64>, i64, Option<i64>);

/// Loads the stored progress of `topic`, recording `windows` on first use and
/// refusing to mix rows made with different window settings.
pub(crate) async fn load(
    pool: &PgPool,
    topic: &str,
    windows: Windows,
) -> Result<ResumeState, OffsetsError> {
    sqlx::query(
        "INSERT INTO ingest_frontier (topic, frontier_ms, bucket_ms, lateness_ms) VALUES ($1, NULL, $2, $3)
         ON CONFLICT (topic) DO NOTHING",
    )
    .bind(topic)
    .bind(windows.bucket_ms)
    .bind(windows.lateness_ms)
    .execute(pool)
    .await?;
    let (frontier, bucket_ms, lateness_ms): (Option<i64>, i64, i64) = sqlx::query_as(
        "SELECT frontier_ms, bucket_ms, lateness_ms FROM ingest_frontier WHERE topic = $1",
    )
    .bind(topic)
    .fetch_one(pool)
    .await?;
    if (bucket_ms, lateness_ms) != (windows.bucket_ms, windows.lateness_ms) {
        return Err(OffsetsError::WindowsChanged {
            topic: topic.to_string(),
            stored_bucket_ms: bucket_ms,
            stored_lateness_ms: lateness_ms,
            bucket_ms: windows.bucket_ms,
            lateness_ms: windows.lateness_ms,
        });
    }
    let rows: Vec<OffsetRow> = sqlx::query_as(
        "SELECT partition, next_offset, watermark_ms, replay_offset, replay_watermark_ms
         FROM ingest_offsets WHERE topic = $1",
    )
    .bind(topic)
    .fetch_all(pool)
    .await?;
    let partitions = rows
        .into_iter()
        .map(
            |(partition, next_offset, watermark_ms, replay_offset, replay_watermark_ms)| {
                (
                    partition,
                    PartitionProgress {
                        partition,
                        next_offset,
                        watermark_ms,
                        idle: false,
                        replay_offset,
                        replay_watermark_ms,
                        end_offset: None,
                    },
                )
            },
        )
        .collect();
    Ok(ResumeState {
        partitions,
        frontier,
    })
}
