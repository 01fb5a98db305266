/** Scaling: every decision with its outcome, filterable by service. */
import { enc, type Decision, type ServiceSummary } from '../lib/api';
import { clock, compact, replicaHours } from '../lib/format';
import { decisionSummary, outcomeLabel, outcomeTone } from '../lib/shape';
import { rangeQuery, routeUrl, type TimeRange } from '../lib/time';
import { navigate } from '../router';
import { useLive } from '../live';
import { Empty, ErrorState, Link, Loading, RangePicker } from '../components/ui';

export function Scaling({ service, range }: { service: string | null; range: TimeRange }) {
  const services = useLive<ServiceSummary[]>('/services', ['decision']);
  const path = `/decisions?${service ? `service=${enc(service)}&` : ''}${rangeQuery(range)}&limit=500`;
  const ds = useLive<Decision[]>(path, ['decision', 'action', 'frontier'], 5000);
  const sum = ds.data ? decisionSummary(ds.data) : null;
  return (
    <section aria-labelledby="sc-title">
      <div className="view-head">
        <h1 id="sc-title">Scaling decisions</h1>
        <div className="filters">
          <label>
            Service{' '}
            <select
              value={service ?? ''}
              onChange={(e) => navigate({ view: 'scaling', service: e.target.value || null, range })}
              data-testid="service-filter"
            >
              <option value="">all services</option>
              {(services.data ?? []).map((s) => (
                <option key={s.service} value={s.service}>
                  {s.service}
                </option>
              ))}
              {service && !(services.data ?? []).some((s) => s.service === service) && <option value={service}>{service}</option>}
            </select>
          </label>
          <RangePicker range={range} onChange={(r) => navigate({ view: 'scaling', service, range: r })} />
        </div>
      </div>
      {ds.error && <ErrorState error={ds.error} what="decisions" />}
      {!ds.data && !ds.error && <Loading what="decisions" />}
      {sum && (
        <p className="summary" data-testid="scaling-summary">
          <b>{sum.count}</b> decisions{ds.data && ds.data.length >= 500 ? ' (newest 500)' : ''} · <b>{replicaHours(sum.replicaHours)}</b>{' '}
          {Object.entries(sum.byOutcome).map(([k, v]) => (
            <span key={k} className={`badge tone-${outcomeTone(k === 'pending' ? null : (k as Decision['outcome']))}`}>
              {k} {v}
            </span>
          ))}
        </p>
      )}
      {ds.data && ds.data.length === 0 && (
        <Empty title="No decisions in this range">
          The forecaster issues a decision per service each interval once it has traffic; try a longer range.
        </Empty>
      )}
      {ds.data && ds.data.length > 0 && (
        <div className="table-wrap" tabIndex={0} role="region" aria-label="Decisions table">
          <table data-testid="decisions-table">
            <thead>
              <tr>
                <th scope="col">Issued</th>
                <th scope="col">Service</th>
                <th scope="col">Mode</th>
                <th scope="col">Replicas</th>
                <th scope="col">Bounds</th>
                <th scope="col">Reason</th>
                <th scope="col">Forecast</th>
                <th scope="col">Outcome</th>
                <th scope="col" className="num">
                  Cost
                </th>
              </tr>
            </thead>
            <tbody>
              {ds.data.map((d) => (
                <tr key={d.id}>
                  <td className="mono">{clock(d.issued_at_ms)}</td>
                  <td>
                    <Link to={routeUrl({ view: 'service', service: d.service, range })}>{d.service}</Link>
                  </td>
                  <td>
                    {d.mode}
                    <div className="muted small">
                      {d.policy}
                      {d.fallback ? ' · fallback' : ''}
                    </div>
                  </td>
                  <td className="mono">
                    {d.current} → {d.desired}
                  </td>
                  <td className="mono">
                    {d.min}–{d.max}
                  </td>
                  <td>{d.reason}</td>
                  <td className="mono small">
                    {d.forecast ? `+${d.forecast.horizon}m p50 ${compact(d.forecast.p50)} · p90 ${compact(d.forecast.p90)}` : '—'}
                  </td>
                  <td>
                    <span className={`badge tone-${outcomeTone(d.outcome)}`}>{outcomeLabel(d.outcome)}</span>
                    {d.applied !== null && <span className="mono"> {d.applied}</span>}
                    {d.outcome_reason && <div className="muted small">{d.outcome_reason}</div>}
                  </td>
                  <td className="num mono">{replicaHours(d.replica_hours)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
