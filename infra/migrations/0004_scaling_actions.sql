-- What the scaler did with each decision, consumed from the scaling-actions
-- topic (ScalingAction JSON, contracts/src/action.rs) by the forecaster
-- worker, which also plans from the sizes recorded here. Owned by the
-- forecaster. Each insert is followed, in the same transaction, by
-- NOTIFY prescient_actions '{"decision_id":…,"service":…,"outcome":…}'.

CREATE TABLE scaling_actions (
    decision_id  uuid        PRIMARY KEY,          -- scaling_decisions.id (not a FK: actions may arrive first)
    service      text        NOT NULL,
    target       jsonb       NOT NULL,
    outcome      text        NOT NULL CHECK (outcome IN ('applied', 'unchanged', 'clamped', 'skipped-stale',
                                                         'skipped-superseded', 'dry-run', 'failed')),
    previous     integer,                          -- size before, when known
    requested    integer     NOT NULL,
    applied      integer,                          -- size set (or, for dry-run, that would be set)
    reason       text        NOT NULL,
    mode         text        NOT NULL CHECK (mode IN ('dry-run', 'apply')),
    retryable    boolean     NOT NULL DEFAULT false,
    at           timestamptz NOT NULL,             -- when the scaler handled it
    action       jsonb       NOT NULL              -- the message, whole
);
CREATE INDEX scaling_actions_service ON scaling_actions (service, at DESC);

-- Offsets of Kafka consumers that write to PostgreSQL (other than the
-- dataflow's ingest_offsets), stored in the same transaction as their rows.
CREATE TABLE consumer_offsets (
    consumer     text    NOT NULL,  -- e.g. 'scaling-actions'
    topic        text    NOT NULL,
    partition    integer NOT NULL,
    next_offset  bigint  NOT NULL,
    PRIMARY KEY (consumer, topic, partition)
);
