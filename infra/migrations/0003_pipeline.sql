-- Pipeline health, written by the dataflow's sink in the same transaction as
-- the rows and offsets it describes (exactly once), read by the dashboard.
-- Owned by the dataflow.

-- Dead letters per reason per minute (minute = the record's Kafka timestamp,
-- so a replay after a crash lands in the same row; counted exactly once).
CREATE TABLE dead_letters_minute (
    topic    text        NOT NULL,  -- source topic, e.g. user-events
    reason   text        NOT NULL,  -- the prescient-reason label (invalid_json, too_late, ...)
    minute   timestamptz NOT NULL,
    count    bigint      NOT NULL,
    PRIMARY KEY (topic, minute, reason)
);
CREATE INDEX dead_letters_minute_minute ON dead_letters_minute (minute);

-- Consumer lag per partition = end_offset - next_offset (end_offset: the
-- partition's high watermark as last seen by its consumer; NULL until known).
ALTER TABLE ingest_offsets ADD COLUMN end_offset bigint;

-- Per topic and wall-clock minute: what the pipeline did (overwritten by each
-- commit of that minute; observability, not exactly-once data).
CREATE TABLE ingest_stats_minute (
    topic             text             NOT NULL,
    minute            timestamptz      NOT NULL, -- wall-clock minute of the commits
    events            bigint           NOT NULL, -- records read (replays excluded)
    rejected          bigint           NOT NULL, -- of which dead-lettered
    commits           bigint           NOT NULL, -- transactions
    rows_written      bigint           NOT NULL, -- metrics_minute + service_minute rows upserted
    freshness_p50_ms  double precision,          -- Kafka timestamp -> commit, over the minute
    freshness_p99_ms  double precision,
    keys_held         bigint           NOT NULL, -- open (row key, bucket) windows in memory at the last commit
    PRIMARY KEY (topic, minute)
);
