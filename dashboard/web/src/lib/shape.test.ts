import { describe, expect, it } from 'vitest';
import type { Decision, Series } from './api';
import {
  alignColumns,
  allNull,
  bandAfter,
  decisionMarkers,
  decisionSummary,
  errorRate,
  lastNonNull,
  nearestMarker,
  outcomeTone,
  reasonsByTotal,
  replicaSteps,
  requestsChart,
  significantDecisions,
  sparkChart,
} from './shape';

const M = 60_000;

function series(t: number[], requests: (number | null)[]): Series {
  const n = t.map(() => null);
  return {
    service: 's',
    from_ms: t[0],
    to_ms: t[t.length - 1] + M,
    bucket_s: 60,
    t,
    requests,
    errors: n,
    latency_p50_ms: n,
    latency_p95_ms: n,
    latency_p99_ms: n,
    active_users: n,
  };
}

function decision(over: Partial<Decision>): Decision {
  return {
    id: 'd',
    service: 's',
    issued_at_ms: 0,
    expires_at_ms: 0,
    mode: 'dry-run',
    policy: 'predictive',
    current: 2,
    desired: 3,
    min: 1,
    max: 10,
    reason: 'p90 above capacity',
    fallback: false,
    forecast: null,
    outcome: null,
    outcome_reason: null,
    applied: null,
    replica_hours: 0.5,
    ...over,
  };
}

describe('alignColumns', () => {
  it('merges time axes and fills nulls where a set has no point', () => {
    const r = alignColumns([
      { t: [3, 1], cols: [[30, 10]] },
      { t: [2, 3], cols: [[200, 300], [2, NaN]] },
    ]);
    expect(r.t).toEqual([1, 2, 3]);
    expect(r.cols).toEqual([
      [10, null, 30],
      [null, 200, 300],
      [null, 2, null],
    ]);
  });
  it('handles no input', () => {
    expect(alignColumns([])).toEqual({ t: [], cols: [] });
  });
});

describe('requestsChart', () => {
  it('puts actuals, past forecasts and the future band on one axis', () => {
    const s = series([0, M, 2 * M], [10, 12, null]);
    const hist = { t: [0, M], p10: [8, 9], p50: [10, 11], p90: [12, 13] };
    const fc = { t: [M, 2 * M, 3 * M], p10: [1, 2, 3], p50: [11, 12, 13], p90: [21, 22, 23] };
    const r = requestsChart(s, hist, fc, 3 * M);
    expect(r.t).toEqual([0, M, 2 * M, 3 * M]);
    expect(r.cols[0]).toEqual([10, 12, null, null]); // actual
    expect(r.cols[2]).toEqual([10, 11, null, null]); // past p50
    // the future band starts at the last actual point and runs past it
    expect(r.cols[5]).toEqual([null, 11, 12, 13]);
    expect(r.cols[4]).toEqual([null, 1, 2, 3]);
    expect(r.cols[6]).toEqual([null, 21, 22, 23]);
  });
  it('works without forecasts (tenant-scoped or new service)', () => {
    const r = requestsChart(series([0, M], [1, 2]), null, null, 2 * M);
    expect(r.cols.length).toBe(7);
    expect(allNull(r.cols[5])).toBe(true);
  });
});

describe('sparkChart / bandAfter / lastNonNull', () => {
  it('drops forecast points before the last actual', () => {
    const b = bandAfter({ t: [1, 2, 3], p10: [1, 2, 3], p50: [4, 5, 6], p90: [7, 8, 9] }, 1);
    expect(b).toEqual({ t: [2, 3], p10: [2, 3], p50: [5, 6], p90: [8, 9] });
    expect(lastNonNull([1, 2, 3], [5, 6, null])).toBe(2);
    expect(lastNonNull([1], [null])).toBeNull();
    const s = sparkChart({ t: [0, M], requests: [5, 6] }, { t: [0, 2 * M], p10: [1, 1], p50: [2, 2], p90: [3, 3] });
    expect(s.t).toEqual([0, M, 2 * M]);
    expect(s.cols[2]).toEqual([null, null, 2]);
  });
});

describe('replicaSteps', () => {
  it('prefers the applied size and carries the last step to now', () => {
    const r = replicaSteps({ service: 's', t: [0, 10], desired: [2, 4], current: [2, 2], applied: [2, null] }, 25);
    expect(r.t).toEqual([0, 10, 25]);
    expect(r.cols[0]).toEqual([2, 4, 4]);
    expect(r.cols[1]).toEqual([2, 2, 2]);
  });
  it('does not invent points when there are no decisions', () => {
    expect(replicaSteps({ service: 's', t: [], desired: [], current: [], applied: [] }, 5).t).toEqual([]);
  });
});

describe('errorRate', () => {
  it('divides and guards zero', () => {
    expect(errorRate([1, 0, 3, null], [100, 0, null, 5])).toEqual([0.01, null, null, null]);
  });
});

describe('decisions', () => {
  const ds = [
    decision({ id: 'b', issued_at_ms: 2000, outcome: 'failed', outcome_reason: 'EKS 500', replica_hours: 1 }),
    decision({ id: 'a', issued_at_ms: 1000, outcome: 'applied', applied: 3 }),
    decision({ id: 'c', issued_at_ms: 9000 }),
  ];
  it('markers: in range, ordered, with reason and outcome in the tooltip', () => {
    const m = decisionMarkers(ds, 0, 5000);
    expect(m.map((x) => x.id)).toEqual(['a', 'b']);
    expect(m[0].detail).toContain('p90 above capacity');
    expect(m[0].detail).toContain('outcome: applied');
    expect(m[0].detail).toContain('applied 3');
    expect(m[1].tone).toBe('bad');
    expect(m[1].detail).toContain('EKS 500');
    expect(m[0].title).toBe('2 → 3 replicas (predictive, dry-run)');
  });
  it('significantDecisions keeps the first, changes of size or fallback, and failures', () => {
    const seq = [
      decision({ id: '1', issued_at_ms: 1, desired: 3 }),
      decision({ id: '2', issued_at_ms: 2, desired: 3 }),
      decision({ id: '3', issued_at_ms: 3, desired: 4 }),
      decision({ id: '4', issued_at_ms: 4, desired: 4, outcome: 'failed' }),
      decision({ id: '5', issued_at_ms: 5, desired: 4, fallback: true }),
      decision({ id: '6', issued_at_ms: 6, desired: 4, fallback: true }),
    ];
    expect(significantDecisions([...seq].reverse()).map((d) => d.id)).toEqual(['1', '3', '4', '5']);
  });
  it('nearestMarker respects the tolerance', () => {
    const m = decisionMarkers(ds, 0, 10_000);
    expect(nearestMarker(m, 1100, 200)?.id).toBe('a');
    expect(nearestMarker(m, 1600, 200)).toBeNull();
  });
  it('summary counts outcomes and cost', () => {
    const s = decisionSummary(ds);
    expect(s.count).toBe(3);
    expect(s.replicaHours).toBeCloseTo(2);
    expect(s.byOutcome).toEqual({ failed: 1, applied: 1, pending: 1 });
  });
  it('tones', () => {
    expect(outcomeTone('unchanged')).toBe('good');
    expect(outcomeTone('skipped-stale')).toBe('warn');
    expect(outcomeTone(null)).toBe('neutral');
  });
});

describe('reasonsByTotal', () => {
  it('orders by total then name', () => {
    expect(reasonsByTotal({ b: [1, 1], a: [2, null], c: [5] })).toEqual(['c', 'a', 'b']);
  });
});
