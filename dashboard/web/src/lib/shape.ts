/** Data shaping: API columns -> the aligned arrays uPlot draws. Pure functions, unit tested. */
import type { Band, Decision, Num, Outcome, Replicas, Series } from './api';

/** A set of columns sharing one time axis (epoch ms). */
export interface Cols {
  t: number[];
  cols: Num[][];
}

/**
 * Aligns several column sets on the union of their time axes (sorted,
 * deduplicated). Output columns are the inputs' columns in order; a value is
 * null where its set has no point at that instant (uPlot draws a gap).
 */
export function alignColumns(parts: Cols[]): Cols {
  const ts = new Set<number>();
  for (const p of parts) for (const t of p.t) ts.add(t);
  const t = [...ts].sort((a, b) => a - b);
  const index = new Map<number, number>();
  t.forEach((v, i) => index.set(v, i));
  const cols: Num[][] = [];
  for (const p of parts) {
    for (const c of p.cols) {
      const out: Num[] = new Array<Num>(t.length).fill(null);
      p.t.forEach((tv, i) => {
        const v = c[i];
        out[index.get(tv)!] = v === undefined || v === null || !Number.isFinite(v) ? null : v;
      });
      cols.push(out);
    }
  }
  return { t, cols };
}

/** Keeps the points of a band whose time is strictly after `afterMs`. */
export function bandAfter(b: Band, afterMs: number): Band {
  const keep = b.t.map((t) => t > afterMs);
  const f = <T,>(xs: T[]) => xs.filter((_, i) => keep[i]);
  return { t: f(b.t), p10: f(b.p10), p50: f(b.p50), p90: f(b.p90) };
}

export const REQUEST_COLS = ['actual', 'past p10', 'past p50', 'past p90', 'p10', 'p50', 'p90'] as const;

/**
 * The service view's requests chart: actuals, the forecasts that were made
 * `horizon` minutes ahead for the past (band + p50), and the latest forecast
 * running past now (band + p50), all on one axis.
 */
export function requestsChart(series: Series, history: Band | null, forecast: Band | null, nowMs: number): Cols {
  const empty: Band = { t: [], p10: [], p50: [], p90: [] };
  const h = history ?? empty;
  const f = forecast ? bandAfter(forecast, Math.min(nowMs, lastNonNull(series.t, series.requests) ?? nowMs) - 1) : empty;
  return alignColumns([
    { t: series.t, cols: [series.requests] },
    { t: h.t, cols: [h.p10, h.p50, h.p90] },
    { t: f.t, cols: [f.p10, f.p50, f.p90] },
  ]);
}

/** Time of the last non-null value, or null. */
export function lastNonNull(t: number[], v: Num[]): number | null {
  for (let i = Math.min(t.length, v.length) - 1; i >= 0; i--) if (v[i] !== null && v[i] !== undefined) return t[i];
  return null;
}

/** Overview tile: last hour of requests followed by the next-hour forecast band. */
export function sparkChart(spark: { t: number[]; requests: Num[] }, forecast: Band | null): Cols {
  const f = forecast ? bandAfter(forecast, lastNonNull(spark.t, spark.requests) ?? -Infinity) : null;
  return alignColumns([
    { t: spark.t, cols: [spark.requests] },
    { t: f?.t ?? [], cols: [f?.p10 ?? [], f?.p50 ?? [], f?.p90 ?? []] },
  ]);
}

/**
 * Replicas as a step line: each decision's value holds until the next one;
 * the last value is carried to `untilMs` so the line reaches "now".
 */
export function replicaSteps(r: Replicas, untilMs: number): Cols {
  const t = [...r.t];
  const desired = [...r.desired];
  const current = r.current.map((c, i) => r.applied[i] ?? c);
  if (t.length > 0 && untilMs > t[t.length - 1]) {
    t.push(untilMs);
    desired.push(desired[desired.length - 1]);
    current.push(current[current.length - 1]);
  }
  return { t, cols: [desired, current] };
}

/** errors / requests per bucket (null where requests is 0 or unknown). */
export function errorRate(errors: Num[], requests: Num[]): Num[] {
  return requests.map((r, i) => {
    const e = errors[i];
    if (r === null || e === null || e === undefined || r <= 0) return null;
    return e / r;
  });
}

export type Tone = 'good' | 'warn' | 'bad' | 'neutral';

/** How an outcome reads at a glance. Null = the scaler has not reported yet. */
export function outcomeTone(o: Outcome | null): Tone {
  switch (o) {
    case 'applied':
    case 'unchanged':
      return 'good';
    case 'clamped':
    case 'skipped-stale':
    case 'skipped-superseded':
      return 'warn';
    case 'failed':
      return 'bad';
    default:
      return 'neutral';
  }
}

export function outcomeLabel(o: Outcome | null): string {
  return o ?? 'pending';
}

/** A decision as a chart marker, with the text of its tooltip. */
export interface Marker {
  t: number;
  id: string;
  tone: Tone;
  title: string;
  detail: string;
}

export function decisionMarkers(ds: Decision[], fromMs: number, toMs: number): Marker[] {
  return ds
    .filter((d) => d.issued_at_ms >= fromMs && d.issued_at_ms <= toMs)
    .sort((a, b) => a.issued_at_ms - b.issued_at_ms)
    .map((d) => ({
      t: d.issued_at_ms,
      id: d.id,
      tone: outcomeTone(d.outcome),
      title: `${d.current} → ${d.desired} replicas (${d.policy}${d.fallback ? ', fallback' : ''}, ${d.mode})`,
      detail: `${d.reason} · outcome: ${outcomeLabel(d.outcome)}${d.outcome_reason ? ` (${d.outcome_reason})` : ''}${
        d.applied !== null ? ` · applied ${d.applied}` : ''
      }`,
    }));
}

/**
 * The decisions worth a marker on the traffic chart: the first in the range,
 * every change of the desired size or of policy fallback, and every failure.
 * (A decision per minute would otherwise paint the chart solid.)
 */
export function significantDecisions(ds: Decision[]): Decision[] {
  const sorted = [...ds].sort((a, b) => a.issued_at_ms - b.issued_at_ms);
  return sorted.filter((d, i) => {
    if (i === 0) return true;
    const prev = sorted[i - 1];
    return d.desired !== prev.desired || d.fallback !== prev.fallback || d.outcome === 'failed';
  });
}

/** The marker nearest to `t` within `tolMs`, or null. */
export function nearestMarker(ms: Marker[], t: number, tolMs: number): Marker | null {
  let best: Marker | null = null;
  let bestD = Infinity;
  for (const m of ms) {
    const d = Math.abs(m.t - t);
    if (d <= tolMs && d < bestD) {
      best = m;
      bestD = d;
    }
  }
  return best;
}

/** Totals for the scaling view's summary line. */
export function decisionSummary(ds: Decision[]): { count: number; replicaHours: number; byOutcome: Record<string, number> } {
  const byOutcome: Record<string, number> = {};
  let replicaHours = 0;
  for (const d of ds) {
    const k = outcomeLabel(d.outcome);
    byOutcome[k] = (byOutcome[k] ?? 0) + 1;
    if (Number.isFinite(d.replica_hours)) replicaHours += d.replica_hours;
  }
  return { count: ds.length, replicaHours, byOutcome };
}

/** Dead-letter reasons ordered by total count, largest first (stable colours follow this order). */
export function reasonsByTotal(byReason: Record<string, Num[]>): string[] {
  const total = (xs: Num[]) => xs.reduce<number>((s, v) => s + (v ?? 0), 0);
  return Object.keys(byReason).sort((a, b) => total(byReason[b]) - total(byReason[a]) || a.localeCompare(b));
}

/** True when every value is null/absent (drives the "no data in this range" state). */
export function allNull(...cols: Num[][]): boolean {
  return cols.every((c) => c.every((v) => v === null || v === undefined));
}
