/** Overview: the whole system at a glance, plus one tile per service (last hour + next hour). */
import { useMemo } from 'react';
import type { Me, Overview as OverviewData, ServiceTile } from '../lib/api';
import { compact, duration, percent } from '../lib/format';
import { sparkChart } from '../lib/shape';
import { routeUrl } from '../lib/time';
import { useLive } from '../live';
import { Chart } from '../components/Chart';
import { Empty, ErrorState, Kpi, Link, Loading } from '../components/ui';

function secondsClock(ms: number): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

export function Overview({ me }: { me: Me }) {
  const ov = useLive<OverviewData>('/overview', ['frontier', 'rows', 'forecast', 'decision', 'action']);
  const d = ov.data;
  if (!d) {
    if (ov.error) return <ErrorState error={ov.error} what="the overview" />;
    return <Loading what="the overview" />;
  }
  const behind = d.frontier_ms !== null ? Math.max(0, d.now_ms - d.frontier_ms) : null;
  const errTone = d.error_rate === null ? undefined : d.error_rate >= 0.05 ? 'bad' : d.error_rate >= 0.01 ? 'warn' : 'good';
  return (
    <section aria-labelledby="ov-title">
      <h1 id="ov-title">Overview</h1>
      {me.tenant && (
        <p className="banner" data-testid="tenant-banner">
          Signed in for tenant <strong>{me.tenant}</strong>: the figures below are this tenant&apos;s own traffic. Forecasts and scaling
          span tenants and need a token without a tenant.
        </p>
      )}
      {ov.error && <ErrorState error={ov.error} what="the latest overview (showing the previous one)" />}
      <div className="kpis" data-testid="kpis">
        <Kpi label="Events / s" value={compact(d.events_per_s)} sub="last closed minute" testId="kpi-events" />
        <Kpi label="Error rate" value={percent(d.error_rate)} sub="status ≥ 500" tone={errTone} testId="kpi-errors" />
        <Kpi label="Active users" value={compact(d.active_users, 1)} sub="distinct, last minute" testId="kpi-users" />
        <Kpi label="p95 latency" value={duration(d.latency_p95_ms)} sub="request-weighted" testId="kpi-latency" />
        <Kpi
          label="Freshness"
          value={d.freshness_p50_ms === null ? '—' : duration(d.freshness_p50_ms)}
          sub={d.freshness_p99_ms === null ? 'event → row, p50' : `event → row, p50 · p99 ${duration(d.freshness_p99_ms)}`}
          testId="kpi-freshness"
        />
        <Kpi
          label="Data through"
          value={d.frontier_ms === null ? '—' : secondsClock(d.frontier_ms)}
          sub={behind === null ? 'no frontier yet' : `${duration(behind)} behind now`}
          tone={behind !== null && behind > 180_000 ? 'warn' : undefined}
          testId="kpi-frontier"
        />
      </div>
      <h2>Services</h2>
      {d.services.length === 0 ? (
        <Empty title="No services yet">
          No events have reached PostgreSQL. Start producers (or <code>prescient demo</code>); tiles appear as soon as the first minute
          closes.
        </Empty>
      ) : (
        <ul className="tiles" data-testid="service-tiles">
          {d.services.map((s) => (
            <ServiceTileView key={s.service} s={s} nowMs={d.now_ms} />
          ))}
        </ul>
      )}
    </section>
  );
}

function ServiceTileView({ s, nowMs }: { s: ServiceTile; nowMs: number }) {
  const data = useMemo(() => sparkChart(s.spark, s.forecast), [s.spark, s.forecast]);
  const start = s.spark.t[0] ?? nowMs - 3_600_000;
  const end = Math.max(s.forecast?.t[s.forecast.t.length - 1] ?? 0, start + 2 * 3_600_000);
  const scaling = s.desired !== null ? (s.current !== null && s.current !== s.desired ? `${s.current} → ${s.desired}` : `${s.desired}`) : null;
  return (
    <li className="tile">
      <Link to={routeUrl({ view: 'service', service: s.service, range: { kind: 'preset', preset: '6h' } })} className="tile-link" testId="tile-link">
        <span className="tile-name">{s.service}</span>
        <span className="tile-figures">
          <span>
            <b>{compact(s.requests_per_min)}</b> req/min
          </span>
          <span>
            <b>{percent(s.error_rate)}</b> errors
          </span>
          {scaling && (
            <span>
              <b>{scaling}</b> replicas
            </span>
          )}
        </span>
      </Link>
      <Chart
        label={`${s.service}: requests per minute over the last hour${s.forecast ? ' and the forecast for the next hour' : ''}`}
        data={data}
        height={64}
        sparkline
        xRange={[start, end]}
        nowMs={s.spark.t[s.spark.t.length - 1]}
        series={[
          { label: 'requests', color: '--c-actual', width: 1.5, points: s.spark.requests.filter((v) => v !== null).length < 5 },
          { label: 'p10', color: '--c-forecast', hidden: true },
          { label: 'p50', color: '--c-forecast', width: 1.5, dash: [4, 3] },
          { label: 'p90', color: '--c-forecast', hidden: true },
        ]}
        bands={[{ upper: 3, lower: 1, color: '--c-forecast' }]}
      />
      <p className="tile-note">
        {s.forecast ? (
          <>last hour · next hour forecast (p10–p90)</>
        ) : (
          <span data-testid="no-forecast">No forecast: {s.no_forecast_reason ?? 'not issued yet'}</span>
        )}
      </p>
    </li>
  );
}

