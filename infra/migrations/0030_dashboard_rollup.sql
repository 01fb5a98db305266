-- Dashboard: an hourly rollup of metrics_minute per (tenant, service), so a
-- tenant's 7-day view reads 168 rows instead of ~100,000 scattered minutes.
-- Owned by the dashboard (`prescient dashboard` writes it in the background).
--
-- Only final hours are rolled up: an hour is final once its end plus the
-- dataflow's lateness is at or before the frontier (`ingest_frontier`), after
-- which the dataflow never changes its rows again. Each row holds partial
-- sums, so any bucket of whole hours combines them exactly as the raw
-- minutes would: mean per minute = requests / minutes, and so on.
-- To rebuild it (e.g. after rows were written behind the frontier by hand):
--   DELETE FROM dashboard_rollup_state; TRUNCATE tenant_service_hour;
CREATE TABLE tenant_service_hour (
    tenant          text             NOT NULL,
    service         text             NOT NULL,
    hour            timestamptz      NOT NULL, -- hour start
    minutes         bigint           NOT NULL, -- minutes of the hour with rows
    requests        double precision NOT NULL, -- sum over those minutes (of the sum over endpoints)
    errors          double precision NOT NULL,
    p50_num         double precision,          -- sum of p50 x its request weight (minutes with a p50)
    p50_den         double precision,          -- sum of those weights
    latency_p95_ms  double precision,          -- max over the minutes' endpoint maxima
    latency_p99_ms  double precision,
    active_users    double precision,          -- max over minutes of the sum over endpoints
    PRIMARY KEY (tenant, service, hour)
);

-- How far the rollup has got: every final hour before `rolled_until` is in
-- tenant_service_hour; later minutes are read from metrics_minute.
CREATE TABLE dashboard_rollup_state (
    name          text        PRIMARY KEY,    -- 'tenant_service_hour'
    rolled_until  timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now()
);
