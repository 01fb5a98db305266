/**
 * The page's single live connection: ONE EventSource on /api/v1/stream,
 * shared by every view. Views subscribe to event kinds and refetch what an
 * event invalidates; pausing closes the connection, resuming reopens it and
 * asks every subscriber to refetch (nothing is polled).
 */

export type StreamEvent = 'frontier' | 'rows' | 'forecast' | 'decision' | 'action' | 'reset';
export const STREAM_EVENTS: StreamEvent[] = ['frontier', 'rows', 'forecast', 'decision', 'action', 'reset'];

export type StreamState = 'connecting' | 'live' | 'reconnecting' | 'paused';

export interface EventSourceLike {
  addEventListener(type: string, fn: (e: MessageEvent) => void): void;
  onopen: ((e: Event) => void) | null;
  onerror: ((e: Event) => void) | null;
  close(): void;
  readyState: number;
}

type Listener = { kinds: Set<StreamEvent>; fn: (kind: StreamEvent, data: unknown) => void };

export class LiveStream {
  private es: EventSourceLike | null = null;
  private listeners = new Set<Listener>();
  private stateListeners = new Set<(s: StreamState) => void>();
  private _state: StreamState = 'paused';
  /** Events received since the page opened (shown in the header; used by tests). */
  received = 0;

  constructor(
    private readonly url: string,
    private readonly open: (url: string) => EventSourceLike,
  ) {}

  get state(): StreamState {
    return this._state;
  }

  private setState(s: StreamState) {
    if (s === this._state) return;
    this._state = s;
    this.stateListeners.forEach((f) => f(s));
  }

  onState(f: (s: StreamState) => void): () => void {
    this.stateListeners.add(f);
    return () => this.stateListeners.delete(f);
  }

  /** Calls `fn` for each event of the given kinds (and for `reset`, which invalidates everything). */
  subscribe(kinds: StreamEvent[], fn: (kind: StreamEvent, data: unknown) => void): () => void {
    const l: Listener = { kinds: new Set([...kinds, 'reset']), fn };
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  private dispatch(kind: StreamEvent, raw: string) {
    this.received += 1;
    let data: unknown = null;
    try {
      data = JSON.parse(raw);
    } catch {
      data = raw;
    }
    this.listeners.forEach((l) => {
      if (l.kinds.has(kind)) l.fn(kind, data);
    });
  }

  start() {
    if (this.es) return;
    this.setState('connecting');
    const es = this.open(this.url);
    this.es = es;
    for (const k of STREAM_EVENTS) es.addEventListener(k, (e) => this.dispatch(k, String(e.data)));
    es.onopen = () => this.setState('live');
    // EventSource reconnects by itself (sending Last-Event-ID); we only report it.
    es.onerror = () => {
      if (this.es === es) this.setState('reconnecting');
    };
  }

  pause() {
    this.es?.close();
    this.es = null;
    this.setState('paused');
  }

  /** Reopens the stream and tells every subscriber to refetch (events were missed while paused). */
  resume() {
    this.start();
    this.listeners.forEach((l) => l.fn('reset', {}));
  }
}

/**
 * Coalesces bursts: `fn` runs at most once per `ms` (leading + trailing edge),
 * so a flurry of `rows` events costs one refetch per interval.
 */
export function coalesce(fn: () => void, ms: number, clock: { now(): number; set(f: () => void, ms: number): unknown } = {
  now: () => Date.now(),
  set: (f, d) => setTimeout(f, d),
}): () => void {
  let last = -Infinity;
  let pending = false;
  return () => {
    if (pending) return;
    const wait = last + ms - clock.now();
    if (wait <= 0) {
      last = clock.now();
      fn();
      return;
    }
    pending = true;
    clock.set(() => {
      pending = false;
      last = clock.now();
      fn();
    }, wait);
  };
}
