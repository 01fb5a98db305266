/**
 * Service: requests against forecasts on one time axis that runs past now,
 * past forecasts at a fixed horizon beside the actuals, latency, errors,
 * replicas as a step line and decisions as markers.
 */
import { useMemo } from 'react';
import { enc, type Band, type Decision, type Forecast, type ForecastHistory, type Me, type Replicas, type Series } from '../lib/api';
import { clock, compact, duration } from '../lib/format';
import { allNull, decisionMarkers, outcomeLabel, outcomeTone, replicaSteps, requestsChart, significantDecisions } from '../lib/shape';
import { rangeQuery, routeUrl, type TimeRange } from '../lib/time';
import { navigate } from '../router';
import { useLive } from '../live';
import { Chart } from '../components/Chart';
import { Empty, ErrorState, Legend, Link, Loading, RangePicker } from '../components/ui';

const HORIZON_MIN = 15;

export function Service({ me, service, range }: { me: Me; service: string; range: TimeRange }) {
  const s = enc(service);
  const rq = rangeQuery(range);
  const scoped = me.tenant !== null;
  const series = useLive<Series>(`/services/${s}/series?${rq}`, ['rows', 'frontier']);
  const forecast = useLive<Forecast>(scoped ? null : `/services/${s}/forecast`, ['forecast', 'frontier'], 5000);
  const history = useLive<ForecastHistory>(scoped ? null : `/services/${s}/forecast-history?horizon=${HORIZON_MIN}&${rq}`, ['forecast', 'frontier'], 5000);
  const replicas = useLive<Replicas>(scoped ? null : `/services/${s}/replicas?${rq}`, ['decision', 'action', 'frontier'], 5000);
  const decisions = useLive<Decision[]>(scoped ? null : `/decisions?service=${s}&${rq}&limit=500`, ['decision', 'action', 'frontier'], 5000);

  const sd = series.data;
  const nowMs = sd ? sd.to_ms : Date.now();
  const fc: Band | null = forecast.data;
  const fcEnd = fc && fc.t.length > 0 ? fc.t[fc.t.length - 1] : nowMs;
  const xRange: [number, number] | undefined = sd ? [sd.from_ms, Math.max(sd.to_ms, fcEnd)] : undefined;

  const req = useMemo(() => (sd ? requestsChart(sd, history.data, fc, nowMs) : null), [sd, history.data, fc, nowMs]);
  // Traffic chart: changes only; replicas chart: every decision.
  const markers = useMemo(
    () => (decisions.data && sd ? decisionMarkers(significantDecisions(decisions.data), sd.from_ms, sd.to_ms + 3_600_000) : []),
    [decisions.data, sd],
  );
  const allMarkers = useMemo(
    () => (decisions.data && sd ? decisionMarkers(decisions.data, sd.from_ms, sd.to_ms + 3_600_000) : []),
    [decisions.data, sd],
  );
  const steps = useMemo(() => (replicas.data ? replicaSteps(replicas.data, nowMs) : null), [replicas.data, nowMs]);
  const lat = useMemo(
    () => (sd ? { t: sd.t, cols: [sd.latency_p50_ms, sd.latency_p95_ms, sd.latency_p99_ms] } : null),
    [sd],
  );
  const errs = useMemo(() => (sd ? { t: sd.t, cols: [sd.errors] } : null), [sd]);

  const setRange = (r: TimeRange) => navigate({ view: 'service', service, range: r });
  const bucket = sd ? (sd.bucket_s === 60 ? '1-minute' : sd.bucket_s === 300 ? '5-minute' : '1-hour') : '';

  return (
    <section aria-labelledby="svc-title">
      <div className="view-head">
        <h1 id="svc-title">
          <Link to="/">Overview</Link> <span aria-hidden="true">/</span> <span data-testid="service-name">{service}</span>
        </h1>
        <RangePicker range={range} onChange={setRange} />
      </div>

      {!sd && series.error && <ErrorState error={series.error} what={`${service}'s traffic`} />}
      {!sd && !series.error && <Loading what={`${service}'s traffic`} />}
      {sd && allNull(sd.requests) && (
        <Empty title={`No traffic for ${service} in this range`}>Pick a longer range, or check the service name in the overview.</Empty>
      )}

      {sd && req && (
        <div className="panel" data-testid="requests-panel">
          <div className="panel-head">
            <h2>Requests per minute: actual vs forecast</h2>
            <p className="muted" data-testid="forecast-status">
              {scoped
                ? 'Forecasts span tenants: your tenant-scoped token shows actual traffic only.'
                : fc
                  ? `Latest forecast issued ${clock((fc as Forecast).issued_at_ms)} by model “${(fc as Forecast).model}”; ${bucket} buckets.`
                  : forecast.error
                    ? `No forecast for ${service}: ${forecast.error.message}`
                    : forecast.loading
                      ? 'Loading forecast…'
                      : ''}
            </p>
          </div>
          <Legend
            items={[
              { label: 'actual', color: '--c-actual' },
              ...(scoped
                ? []
                : [
                    { label: `forecast made ${HORIZON_MIN} min ahead (p50, p10–p90)`, color: '--c-past', dash: true },
                    { label: 'latest forecast (p50, p10–p90)', color: '--c-forecast', dash: true },
                    { label: 'now', color: '--now' },
                    { label: 'replica change (▼ marker)', color: '--tone-good' },
                  ]),
            ]}
          />
          <Chart
            testId="requests-chart"
            label={`${service}: requests per minute, actual and forecast, with a line at now`}
            data={req}
            height={300}
            xRange={xRange}
            nowMs={nowMs}
            markers={markers}
            series={[
              { label: 'actual', color: '--c-actual', width: 2 },
              { label: `p10 @${HORIZON_MIN}m`, color: '--c-past', hidden: true },
              { label: `p50 @${HORIZON_MIN}m`, color: '--c-past', width: 1.5, dash: [6, 4] },
              { label: `p90 @${HORIZON_MIN}m`, color: '--c-past', hidden: true },
              { label: 'forecast p10', color: '--c-forecast', hidden: true },
              { label: 'forecast p50', color: '--c-forecast', width: 2, dash: [6, 4] },
              { label: 'forecast p90', color: '--c-forecast', hidden: true },
            ]}
            bands={[
              { upper: 3, lower: 1, color: '--c-past' },
              { upper: 6, lower: 4, color: '--c-forecast' },
            ]}
          />
        </div>
      )}

      {sd && lat && errs && (
        <div className="grid2">
          <div className="panel">
            <h2>Latency</h2>
            <Chart
              testId="latency-chart"
              label={`${service}: latency p50, p95 and p99`}
              data={lat}
              height={200}
              xRange={[sd.from_ms, sd.to_ms]}
              yFormat={(v) => duration(v)}
              series={[
                { label: 'p50', color: '--c-p50' },
                { label: 'p95', color: '--c-p95' },
                { label: 'p99', color: '--c-p99' },
              ]}
            />
          </div>
          <div className="panel">
            <h2>Errors per minute</h2>
            <Chart
              testId="errors-chart"
              label={`${service}: errors per minute`}
              data={errs}
              height={200}
              xRange={[sd.from_ms, sd.to_ms]}
              series={[{ label: 'errors', color: '--c-errors' }]}
            />
          </div>
        </div>
      )}

      {!scoped && sd && (
        <div className="panel">
          <div className="panel-head">
            <h2>Replicas: desired vs current</h2>
            <Link to={routeUrl({ view: 'scaling', service, range })}>All decisions for {service} →</Link>
          </div>
          {replicas.error && <ErrorState error={replicas.error} what="replicas" />}
          {steps && steps.t.length === 0 && <Empty title="No scaling decisions in this range">The forecaster has not decided anything for {service} yet.</Empty>}
          {steps && steps.t.length > 0 && (
            <Chart
              testId="replicas-chart"
              label={`${service}: desired and current replicas as step lines, with decision markers`}
              data={steps}
              height={180}
              xRange={xRange}
              nowMs={nowMs}
              markers={allMarkers}
              yFormat={(v) => String(Math.round(v))}
              series={[
                { label: 'desired', color: '--c-desired', stepped: true, width: 2 },
                { label: 'current', color: '--c-current', stepped: true, width: 2, dash: [5, 3] },
              ]}
            />
          )}
          {decisions.data && decisions.data.length > 0 && <DecisionList ds={decisions.data.slice(0, 8)} />}
        </div>
      )}
    </section>
  );
}

function DecisionList({ ds }: { ds: Decision[] }) {
  return (
    <details className="decisions" open>
      <summary>Latest decisions (text)</summary>
      <ol data-testid="decision-list">
        {ds.map((d) => (
          <li key={d.id} tabIndex={0} className={`tone-${outcomeTone(d.outcome)}`}>
            <span className="mono">{clock(d.issued_at_ms)}</span> {d.current} → {d.desired}{' '}
            <span className="muted">
              ({d.policy}
              {d.fallback ? ', fallback' : ''}, {d.mode})
            </span>{' '}
            {d.reason} — <span className={`badge tone-${outcomeTone(d.outcome)}`}>{outcomeLabel(d.outcome)}</span>
            {d.outcome_reason ? <span className="muted"> {d.outcome_reason}</span> : null}
            {d.forecast ? (
              <span className="muted">
                {' '}
                · forecast +{d.forecast.horizon} min p50 {compact(d.forecast.p50)} p90 {compact(d.forecast.p90)}
              </span>
            ) : null}
          </li>
        ))}
      </ol>
    </details>
  );
}
