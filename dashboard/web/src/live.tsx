/** The shared live stream (React context) and a data hook that refetches on stream events. */
import { createContext, useContext, useEffect, useRef, useState, useSyncExternalStore } from 'react';
import { ApiError, get } from './lib/api';
import { coalesce, LiveStream, type StreamEvent, type StreamState } from './lib/stream';

export const StreamContext = createContext<LiveStream | null>(null);

export function useStream(): LiveStream {
  const s = useContext(StreamContext);
  if (!s) throw new Error('StreamContext missing');
  return s;
}

export function useStreamState(): StreamState {
  const s = useStream();
  return useSyncExternalStore(
    (f) => s.onState(f),
    () => s.state,
  );
}

export interface Live<T> {
  data: T | null;
  error: ApiError | null;
  loading: boolean;
  /** When the shown data was fetched (epoch ms). */
  at: number;
}

/**
 * GETs `path` (under /api/v1) and refetches it — at most once per `everyMs` — when
 * the stream reports one of `kinds`. Queries for slow-moving data (forecasts,
 * decisions) also listen to `frontier` (every commit of the dataflow) with a
 * longer interval, so they stay current even where a component sends no
 * notification of its own. Keeps showing the last data while a
 * refetch runs. `path === null` fetches nothing.
 */
export function useLive<T>(path: string | null, kinds: StreamEvent[], everyMs = 1000): Live<T> {
  const stream = useStream();
  const [state, setState] = useState<Live<T>>({ data: null, error: null, loading: path !== null, at: 0 });
  const gen = useRef(0);
  const kindsKey = kinds.join(',');

  useEffect(() => {
    if (path === null) {
      setState({ data: null, error: null, loading: false, at: 0 });
      return;
    }
    let ctrl: AbortController | null = null;
    let closed = false;
    const run = () => {
      if (closed) return;
      ctrl?.abort();
      ctrl = new AbortController();
      const g = ++gen.current;
      setState((s) => ({ ...s, loading: true }));
      get<T>(path, ctrl.signal).then(
        (data) => {
          if (g === gen.current) setState({ data, error: null, loading: false, at: Date.now() });
        },
        (e: unknown) => {
          if ((e as Error).name === 'AbortError' || g !== gen.current) return;
          const err = e instanceof ApiError ? e : new ApiError(0, String(e));
          setState((s) => ({ data: err.status === 404 || err.status === 403 ? null : s.data, error: err, loading: false, at: Date.now() }));
        },
      );
    };
    setState({ data: null, error: null, loading: true, at: 0 });
    run();
    const refetch = coalesce(run, everyMs);
    const off = stream.subscribe(kindsKey.split(',') as StreamEvent[], refetch);
    return () => {
      closed = true;
      off();
      ctrl?.abort();
      gen.current++;
    };
  }, [path, kindsKey, stream, everyMs]);

  return state;
}
