-- Forecaster: forecasts with prediction intervals, their live accuracy, and
-- the planner's scaling decisions. Written by `prescient forecaster`.

-- One row per (service, issue minute, horizon). issued_at is the instant the
-- last minute the forecast saw closed; target_minute = issued_at + horizon - 1 min
-- is the start of the forecast minute (horizon 1 = the minute now open).
CREATE TABLE forecasts (
    service        text             NOT NULL,
    issued_at      timestamptz      NOT NULL,
    target_minute  timestamptz      NOT NULL,
    horizon_min    integer          NOT NULL CHECK (horizon_min >= 1),
    p10            double precision NOT NULL,
    p50            double precision NOT NULL,
    p90            double precision NOT NULL,
    model          text             NOT NULL, -- 'auto' (ensemble) or a member name
    PRIMARY KEY (service, issued_at, horizon_min)
);
CREATE INDEX forecasts_target ON forecasts (service, target_minute);
CREATE INDEX forecasts_issued ON forecasts (issued_at);

-- Live accuracy per service, one row per evaluated minute: forecasts of the
-- last window_min minutes (all horizons) against what arrived.
CREATE TABLE forecast_accuracy (
    service       text             NOT NULL,
    minute        timestamptz      NOT NULL, -- last closed minute evaluated
    window_min    integer          NOT NULL,
    samples       integer          NOT NULL, -- (forecast, actual) pairs in the window
    mae           double precision,          -- mean absolute error of p50, requests/min
    mase          double precision,          -- mae / in-sample MAE of daily seasonal naive
    coverage      double precision,          -- share of actuals inside [p10, p90]
    model         text             NOT NULL,  -- model leading the ensemble at the lead time
    PRIMARY KEY (service, minute)
);

-- Every decision the planner made, applied or not (the JSON published on
-- scaling-decisions is stored whole in `decision`).
CREATE TABLE scaling_decisions (
    id            uuid             PRIMARY KEY,
    service       text             NOT NULL,
    issued_at     timestamptz      NOT NULL,
    expires_at    timestamptz      NOT NULL,
    target        jsonb            NOT NULL,
    current_size  integer          NOT NULL,
    desired       integer          NOT NULL,
    min_size      integer          NOT NULL,
    max_size      integer          NOT NULL,
    policy        text             NOT NULL,
    reason        text             NOT NULL,
    fallback      boolean          NOT NULL, -- true when planned reactively
    forecast      jsonb,                     -- {horizon, p50, p90} or NULL
    mode          text             NOT NULL CHECK (mode IN ('dry-run', 'apply')),
    published     boolean          NOT NULL DEFAULT false, -- sent to Kafka
    decision      jsonb            NOT NULL
);
CREATE INDEX scaling_decisions_service ON scaling_decisions (service, issued_at DESC);
