/** Number, duration and time formatting for tiles, tables and axes. */

const DASH = '—';

/** 1234 -> "1.2k", 2_500_000 -> "2.5M"; null/NaN -> "—". */
export function compact(n: number | null | undefined, digits = 1): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return DASH;
  const a = Math.abs(n);
  const units: [number, string][] = [
    [1e9, 'G'],
    [1e6, 'M'],
    [1e3, 'k'],
  ];
  for (const [v, s] of units) {
    if (a >= v) return `${trim((n / v).toFixed(digits))}${s}`;
  }
  if (Number.isInteger(n)) return String(n);
  return trim(n.toFixed(a < 10 ? digits + 1 : digits));
}

function trim(s: string): string {
  return s.includes('.') ? s.replace(/\.?0+$/, '') : s;
}

/** Fraction 0..1 -> "1.23 %"; tiny non-zero values keep two significant digits. */
export function percent(f: number | null | undefined): string {
  if (f === null || f === undefined || !Number.isFinite(f)) return DASH;
  const p = f * 100;
  if (p === 0) return '0 %';
  if (Math.abs(p) < 0.01) return `${Number(p.toPrecision(2))} %`;
  return `${trim(p.toFixed(p >= 10 ? 1 : 2))} %`;
}

/** Milliseconds -> "850 ms", "1.2 s", "3 min 5 s", "2 h 10 min". */
export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return DASH;
  const a = Math.abs(ms);
  const sign = ms < 0 ? '-' : '';
  if (a < 1000) return `${sign}${Math.round(a)} ms`;
  if (a < 60_000) return `${sign}${trim((a / 1000).toFixed(1))} s`;
  if (a < 3_600_000) {
    const m = Math.floor(a / 60_000);
    const s = Math.round((a % 60_000) / 1000);
    return s ? `${sign}${m} min ${s} s` : `${sign}${m} min`;
  }
  const h = Math.floor(a / 3_600_000);
  const m = Math.round((a % 3_600_000) / 60_000);
  return m ? `${sign}${h} h ${m} min` : `${sign}${h} h`;
}

/** Local "HH:MM" (with the date when not today relative to `nowMs`). */
export function clock(ms: number | null | undefined, nowMs = Date.now()): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return DASH;
  const d = new Date(ms);
  const n = new Date(nowMs);
  const p = (x: number) => String(x).padStart(2, '0');
  const hm = `${p(d.getHours())}:${p(d.getMinutes())}`;
  const sameDay = d.getFullYear() === n.getFullYear() && d.getMonth() === n.getMonth() && d.getDate() === n.getDate();
  return sameDay ? hm : `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${hm}`;
}

/** "12 s ago" / "in 5 min" relative to `nowMs`. */
export function relative(ms: number | null | undefined, nowMs = Date.now()): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return DASH;
  const d = ms - nowMs;
  if (Math.abs(d) < 1000) return 'now';
  return d < 0 ? `${duration(-d)} ago` : `in ${duration(d)}`;
}

/** Replica-hours with sensible precision. */
export function replicaHours(h: number | null | undefined): string {
  if (h === null || h === undefined || !Number.isFinite(h)) return DASH;
  return `${trim(h.toFixed(h >= 100 ? 0 : h >= 10 ? 1 : 2))} replica-h`;
}
