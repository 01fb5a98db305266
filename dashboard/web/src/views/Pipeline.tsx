/** Pipeline health: lag per partition, dead letters by reason, freshness, keys held, live MASE. */
import { useMemo } from 'react';
import type { Pipeline as PipelineData } from '../lib/api';
import { clock, compact, duration, percent } from '../lib/format';
import { allNull, reasonsByTotal } from '../lib/shape';
import { useLive } from '../live';
import { Chart, type SeriesSpec } from '../components/Chart';
import { Empty, ErrorState, Kpi, Loading } from '../components/ui';

const PALETTE = ['--c-1', '--c-2', '--c-3', '--c-4', '--c-5', '--c-6'];

export function Pipeline() {
  const p = useLive<PipelineData>('/pipeline?range=6h', ['frontier', 'rows', 'forecast']);
  const d = p.data;
  const dl = useMemo(() => {
    if (!d) return null;
    const reasons = reasonsByTotal(d.dead_letters.by_reason);
    return {
      reasons,
      data: { t: d.dead_letters.t, cols: reasons.map((r) => d.dead_letters.by_reason[r]) },
      series: reasons.map((r, i): SeriesSpec => ({ label: r, color: PALETTE[i % PALETTE.length] })),
      total: reasons.reduce((s, r) => s + d.dead_letters.by_reason[r].reduce<number>((a, v) => a + (v ?? 0), 0), 0),
    };
  }, [d]);
  if (!d) return p.error ? <ErrorState error={p.error} what="pipeline health" /> : <Loading what="pipeline health" />;
  const totalLag = d.partitions.reduce<number | null>((s, x) => (x.lag === null ? s : (s ?? 0) + x.lag), null);
  const maxLag = Math.max(1, ...d.partitions.map((x) => x.lag ?? 0));
  const now = Date.now();
  return (
    <section aria-labelledby="pl-title">
      <h1 id="pl-title">Pipeline</h1>
      {p.error && <ErrorState error={p.error} what="the latest pipeline state (showing the previous one)" />}
      <div className="kpis">
        <Kpi label="Data through" value={d.frontier_ms === null ? '—' : clock(d.frontier_ms)} sub={d.frontier_ms === null ? 'no frontier yet' : `${duration(now - d.frontier_ms)} behind now`} />
        <Kpi label="Consumer lag" value={compact(totalLag)} sub={`records over ${d.partitions.length} partitions`} tone={totalLag !== null && totalLag > 100_000 ? 'warn' : undefined} />
        <Kpi label="Keys held" value={compact(d.keys_held)} sub="open windows in the dataflow" />
        <Kpi label="Dead letters" value={compact(dl?.total ?? 0)} sub="last 6 h" tone={dl && dl.total > 0 ? 'warn' : 'good'} />
      </div>
      <div className="grid2">
        <div className="panel">
          <h2>Lag per partition</h2>
          {d.partitions.length === 0 ? (
            <Empty title="No partitions recorded">The dataflow has not committed offsets yet.</Empty>
          ) : (
            <div className="table-wrap" tabIndex={0} role="region" aria-label="Lag per partition">
              <table data-testid="partitions-table">
                <thead>
                  <tr>
                    <th scope="col">Topic</th>
                    <th scope="col" className="num">Partition</th>
                    <th scope="col" className="num">Next offset</th>
                    <th scope="col" className="num">End offset</th>
                    <th scope="col">Lag</th>
                    <th scope="col">Watermark</th>
                  </tr>
                </thead>
                <tbody>
                  {d.partitions.map((x) => (
                    <tr key={`${x.topic}/${x.partition}`}>
                      <td className="nowrap">{x.topic}</td>
                      <td className="num mono">{x.partition}</td>
                      <td className="num mono">{x.next_offset}</td>
                      <td className="num mono">{x.end_offset ?? '—'}</td>
                      <td>
                        <span className="bar" aria-hidden="true">
                          <span style={{ width: `${((x.lag ?? 0) / maxLag) * 100}%` }} />
                        </span>{' '}
                        <span className="mono">{x.lag === null ? 'unknown' : compact(x.lag)}</span>
                      </td>
                      <td className="mono">{x.watermark_ms === null ? '—' : clock(x.watermark_ms)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </div>
        <div className="panel">
          <h2>Forecast accuracy (live MASE)</h2>
          {d.accuracy.length === 0 ? (
            <Empty title="No accuracy yet">MASE needs forecasts whose target minutes have closed; it appears after the first horizon passes.</Empty>
          ) : (
            <div className="table-wrap" tabIndex={0} role="region" aria-label="Forecast accuracy">
              <table data-testid="accuracy-table">
                <thead>
                  <tr>
                    <th scope="col">Service</th>
                    <th scope="col" className="num">MASE</th>
                    <th scope="col" className="num">MAE</th>
                    <th scope="col" className="num">p10–p90 coverage</th>
                    <th scope="col">Model</th>
                  </tr>
                </thead>
                <tbody>
                  {d.accuracy.map((a) => (
                    <tr key={a.service}>
                      <td>{a.service}</td>
                      <td className={`num mono tone-${a.mase === null ? 'neutral' : a.mase < 1 ? 'good' : 'warn'}`}>{a.mase === null ? '—' : a.mase.toFixed(2)}</td>
                      <td className="num mono">{compact(a.mae)}</td>
                      <td className="num mono">{percent(a.coverage)}</td>
                      <td>{a.model}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
              <p className="muted small">MASE &lt; 1 beats the seasonal-naive forecast.</p>
            </div>
          )}
        </div>
      </div>
      <div className="grid2">
        <div className="panel">
          <h2>Dead letters by reason</h2>
          {dl && dl.reasons.length > 0 ? (
            <Chart testId="dlq-chart" label="Dead letters per bucket by reason" data={dl.data} series={dl.series} height={200} />
          ) : (
            <Empty title="No dead letters in the last 6 h">Every record was valid and on time.</Empty>
          )}
        </div>
        <div className="panel">
          <h2>Freshness (event → row)</h2>
          {allNull(d.freshness.p50_ms, d.freshness.p99_ms) ? (
            <Empty title="No freshness measurements in the last 6 h">The dataflow records them per minute in ingest_stats_minute once it runs.</Empty>
          ) : (
          <Chart
            testId="freshness-chart"
            label="Freshness p50 and p99"
            data={{ t: d.freshness.t, cols: [d.freshness.p50_ms, d.freshness.p99_ms] }}
            height={200}
            yFormat={(v) => duration(v)}
            series={[
              { label: 'p50', color: '--c-p50' },
              { label: 'p99', color: '--c-p99' },
            ]}
          />
          )}
        </div>
      </div>
      <div className="panel">
        <h2>Events per second</h2>
        {allNull(d.events.per_s) ? (
          <Empty title="No ingest statistics in the last 6 h">Events per second appear once the dataflow records ingest_stats_minute.</Empty>
        ) : (
          <Chart testId="events-chart" label="Events per second" data={{ t: d.events.t, cols: [d.events.per_s] }} height={160} series={[{ label: 'events/s', color: '--c-actual' }]} />
        )}
      </div>
    </section>
  );
}
