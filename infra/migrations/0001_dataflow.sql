-- Dataflow: per-minute metrics, and the ingest progress written in the same
-- transaction as the metrics it covers (exactly once).

-- One row per (tenant, service, endpoint, bucket).
CREATE TABLE metrics_minute (
    tenant          text             NOT NULL,
    service         text             NOT NULL,
    endpoint        text             NOT NULL,
    minute          timestamptz      NOT NULL, -- bucket start
    requests        bigint           NOT NULL,
    errors          bigint           NOT NULL, -- status >= 500
    latency_p50_ms  double precision,          -- NULL when no event had latency_ms
    latency_p95_ms  double precision,
    latency_p99_ms  double precision,
    active_users    bigint           NOT NULL, -- distinct users
    updated_at      timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, service, endpoint, minute)
);
CREATE INDEX metrics_minute_minute ON metrics_minute (minute);

-- One row per (service, bucket) across tenants: the forecaster's signal.
CREATE TABLE service_minute (
    service         text             NOT NULL,
    minute          timestamptz      NOT NULL,
    requests        bigint           NOT NULL,
    errors          bigint           NOT NULL,
    latency_p50_ms  double precision,
    latency_p95_ms  double precision,
    latency_p99_ms  double precision,
    active_users    bigint           NOT NULL, -- distinct (tenant, user) pairs
    updated_at      timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (service, minute)
);
CREATE INDEX service_minute_minute ON service_minute (minute);

-- Where each partition's consumer resumes. next_offset is the source of
-- truth (not consumer-group commits). replay_offset/replay_watermark_ms say
-- where to re-read from to rebuild the state of windows still open.
CREATE TABLE ingest_offsets (
    topic               text        NOT NULL,
    partition           integer     NOT NULL,
    next_offset         bigint      NOT NULL,
    watermark_ms        bigint,              -- max event time seen on the partition
    replay_offset       bigint      NOT NULL,
    replay_watermark_ms bigint,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, partition)
);

-- Per topic: windows ending at or before frontier_ms - lateness are final.
CREATE TABLE ingest_frontier (
    topic        text        PRIMARY KEY,
    frontier_ms  bigint,                     -- min of the partitions' watermarks (idle ones aside)
    bucket_ms    bigint      NOT NULL,
    lateness_ms  bigint      NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
