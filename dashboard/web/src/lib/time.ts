/**
 * Time ranges and URL state. Every view's state lives in the URL, e.g.
 * `/services/checkout?range=24h` or `/services/checkout?from=…&to=…`, so a
 * copied link reproduces the view (the server answers index.html for any
 * non-API path).
 */

export const PRESETS = ['1h', '6h', '24h', '7d'] as const;
export type Preset = (typeof PRESETS)[number];

export const PRESET_MS: Record<Preset, number> = {
  '1h': 3_600_000,
  '6h': 6 * 3_600_000,
  '24h': 24 * 3_600_000,
  '7d': 7 * 24 * 3_600_000,
};

export type TimeRange =
  | { kind: 'preset'; preset: Preset }
  | { kind: 'custom'; from: number; to: number };

export const DEFAULT_RANGE: TimeRange = { kind: 'preset', preset: '6h' };

function isPreset(s: string | null): s is Preset {
  return s !== null && (PRESETS as readonly string[]).includes(s);
}

/** Reads a range from query parameters; anything invalid falls back to the default. */
export function parseRange(params: URLSearchParams): TimeRange {
  const from = Number(params.get('from'));
  const to = Number(params.get('to'));
  if (params.has('from') && params.has('to') && Number.isFinite(from) && Number.isFinite(to) && from > 0 && to > from) {
    return { kind: 'custom', from: Math.floor(from), to: Math.floor(to) };
  }
  const r = params.get('range');
  return isPreset(r) ? { kind: 'preset', preset: r } : DEFAULT_RANGE;
}

/** The API query string for a range (`range=6h` or `from=…&to=…`). */
export function rangeQuery(r: TimeRange): string {
  return r.kind === 'preset' ? `range=${r.preset}` : `from=${r.from}&to=${r.to}`;
}

/** Absolute bounds in epoch ms; presets end at `nowMs`. */
export function resolveRange(r: TimeRange, nowMs: number): { from: number; to: number } {
  return r.kind === 'preset' ? { from: nowMs - PRESET_MS[r.preset], to: nowMs } : { from: r.from, to: r.to };
}

/** Bucket the server uses for a span: 1 min up to 6 h, 5 min up to 3 days, 1 h beyond. */
export function bucketSecondsFor(spanMs: number): 60 | 300 | 3600 {
  if (spanMs <= PRESET_MS['6h']) return 60;
  if (spanMs <= 3 * PRESET_MS['24h']) return 300;
  return 3600;
}

export type Route =
  | { view: 'overview' }
  | { view: 'service'; service: string; range: TimeRange }
  | { view: 'scaling'; service: string | null; range: TimeRange }
  | { view: 'pipeline' };

/** Parses a location (`pathname`, `search`) into a route; unknown paths go to the overview. */
export function parseLocation(pathname: string, search: string): Route {
  const params = new URLSearchParams(search);
  const parts = pathname.split('/').filter((p) => p.length > 0);
  if (parts[0] === 'services' && parts.length >= 2) {
    let service: string;
    try {
      service = decodeURIComponent(parts.slice(1).join('/'));
    } catch {
      return { view: 'overview' };
    }
    return { view: 'service', service, range: parseRange(params) };
  }
  if (parts[0] === 'scaling') {
    const s = params.get('service');
    return { view: 'scaling', service: s && s.length > 0 ? s : null, range: parseRange(params) };
  }
  if (parts[0] === 'pipeline') return { view: 'pipeline' };
  return { view: 'overview' };
}

/** The inverse of parseLocation: a route as a path + query (default range omitted). */
export function routeUrl(r: Route): string {
  const params = new URLSearchParams();
  const addRange = (range: TimeRange) => {
    if (range.kind === 'custom') {
      params.set('from', String(range.from));
      params.set('to', String(range.to));
    } else if (range.preset !== (DEFAULT_RANGE as { preset: Preset }).preset) {
      params.set('range', range.preset);
    }
  };
  let path: string;
  switch (r.view) {
    case 'overview':
      path = '/';
      break;
    case 'service':
      path = `/services/${encodeURIComponent(r.service)}`;
      addRange(r.range);
      break;
    case 'scaling':
      path = '/scaling';
      if (r.service) params.set('service', r.service);
      addRange(r.range);
      break;
    case 'pipeline':
      path = '/pipeline';
      break;
  }
  const qs = params.toString();
  return `${path}${qs ? `?${qs}` : ''}`;
}

/** `<input type="datetime-local">` value for an epoch-ms instant, in local time. */
export function toLocalInput(ms: number): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

/** Parses a datetime-local value (local time) to epoch ms, or null when invalid. */
export function fromLocalInput(v: string): number | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})$/.exec(v);
  if (!m) return null;
  const d = new Date(+m[1], +m[2] - 1, +m[3], +m[4], +m[5]);
  const ms = d.getTime();
  return Number.isFinite(ms) ? ms : null;
}
