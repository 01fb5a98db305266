/** Typed client for the dashboard API (dashboard/API.md). Cookies carry the session. */

export type Num = number | null;

export interface Me {
  id: number;
  name: string;
  role: 'admin' | 'operator' | 'viewer';
  tenant: string | null;
  expires_at_ms: number | null;
}

export interface Band {
  t: number[];
  p10: Num[];
  p50: Num[];
  p90: Num[];
}

export interface ServiceTile {
  service: string;
  requests_per_min: Num;
  error_rate: Num;
  spark: { t: number[]; requests: Num[] };
  forecast: Band | null;
  no_forecast_reason: string | null;
  desired: number | null;
  current: number | null;
}

export interface Overview {
  now_ms: number;
  frontier_ms: Num;
  events_per_s: Num;
  error_rate: Num;
  active_users: Num;
  latency_p95_ms: Num;
  freshness_p50_ms: Num;
  freshness_p99_ms: Num;
  services: ServiceTile[];
}

export interface ServiceSummary {
  service: string;
  last_minute_ms: number;
  requests_per_min: Num;
}

export interface Series {
  service: string;
  from_ms: number;
  to_ms: number;
  bucket_s: number;
  t: number[];
  requests: Num[];
  errors: Num[];
  latency_p50_ms: Num[];
  latency_p95_ms: Num[];
  latency_p99_ms: Num[];
  active_users: Num[];
}

export interface Forecast extends Band {
  service: string;
  issued_at_ms: number;
  model: string;
}

export interface ForecastHistory extends Band {
  service: string;
  horizon: number;
  bucket_s: number;
}

export interface Replicas {
  service: string;
  t: number[];
  desired: Num[];
  current: Num[];
  applied: Num[];
}

export type Outcome =
  | 'applied'
  | 'unchanged'
  | 'clamped'
  | 'skipped-stale'
  | 'skipped-superseded'
  | 'dry-run'
  | 'failed';

export interface Decision {
  id: string;
  service: string;
  issued_at_ms: number;
  expires_at_ms: number;
  mode: string;
  policy: string;
  current: number;
  desired: number;
  min: number;
  max: number;
  reason: string;
  fallback: boolean;
  forecast: { horizon: number; p50: number; p90: number } | null;
  outcome: Outcome | null;
  outcome_reason: string | null;
  applied: number | null;
  replica_hours: number;
}

export interface Pipeline {
  frontier_ms: Num;
  keys_held: Num;
  partitions: {
    topic: string;
    partition: number;
    next_offset: number;
    end_offset: Num;
    lag: Num;
    watermark_ms: Num;
  }[];
  dead_letters: { bucket_s: number; t: number[]; by_reason: Record<string, Num[]> };
  freshness: { bucket_s: number; t: number[]; p50_ms: Num[]; p99_ms: Num[] };
  events: { bucket_s: number; t: number[]; per_s: Num[] };
  accuracy: {
    service: string;
    minute_ms: number;
    mase: Num;
    mae: Num;
    coverage: Num;
    samples: number;
    model: string;
  }[];
}

/** A failed API call: HTTP status and the server's message (its `reason` when given). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** Turns an error response body into the message shown to the user. */
export function errorMessage(status: number, body: string): string {
  try {
    const j = JSON.parse(body) as { error?: unknown; reason?: unknown };
    if (typeof j.reason === 'string' && j.reason) return j.reason;
    if (typeof j.error === 'string' && j.error) return j.error;
  } catch {
    /* not JSON */
  }
  const text = body.trim();
  if (text && text.length < 300) return text;
  return `HTTP ${status}`;
}

/** GET a JSON route under /api/v1. */
/** GETs started before React rendered, by path (see `prefetch`). */
const early = new Map<string, { at: number; res: Promise<Response | null> }>();

/**
 * Starts the first screen's GETs at once (the session's `/me` and the view's first query run in
 * parallel instead of one after the other); the next `get` of each path within a few seconds takes
 * the answer over if it succeeded, and fetches anew otherwise (e.g. a 401 before logging in).
 */
export function prefetch(paths: string[]): void {
  for (const path of paths) {
    const res = fetch(`/api/v1${path}`, { credentials: 'same-origin', headers: { Accept: 'application/json' } }).catch(() => null);
    early.set(path, { at: Date.now(), res });
  }
}

async function takePrefetched(path: string): Promise<Response | null> {
  const e = early.get(path);
  if (!e) return null;
  early.delete(path);
  if (Date.now() - e.at > 5000) return null;
  const res = await e.res;
  return res && res.ok ? res : null;
}

export async function get<T>(path: string, signal?: AbortSignal): Promise<T> {
  let res: Response;
  try {
    res = (await takePrefetched(path)) ?? (await fetch(`/api/v1${path}`, { credentials: 'same-origin', headers: { Accept: 'application/json' }, signal }));
  } catch (e) {
    if ((e as Error).name === 'AbortError') throw e;
    throw new ApiError(0, 'The dashboard server cannot be reached.');
  }
  if (!res.ok) throw new ApiError(res.status, errorMessage(res.status, await res.text()));
  return (await res.json()) as T;
}

/** Logs in with a token; resolves on success, throws ApiError(401|429, …) otherwise. */
export async function login(token: string): Promise<void> {
  const res = await fetch('/api/v1/login', {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ token }),
  });
  if (res.ok) return;
  const body = await res.text();
  if (res.status === 429) {
    const after = res.headers.get('Retry-After');
    throw new ApiError(429, `Too many attempts. Try again${after ? ` in ${after} s` : ' later'}.`);
  }
  if (res.status === 401) throw new ApiError(401, 'That token was not accepted (unknown, revoked or expired).');
  throw new ApiError(res.status, errorMessage(res.status, body));
}

export async function logout(): Promise<void> {
  await fetch('/api/v1/logout', { method: 'POST', credentials: 'same-origin' });
}

export const enc = encodeURIComponent;
