import { describe, expect, it } from 'vitest';
import { coalesce, LiveStream, type EventSourceLike } from './stream';

class FakeSource implements EventSourceLike {
  handlers = new Map<string, (e: MessageEvent) => void>();
  onopen: ((e: Event) => void) | null = null;
  onerror: ((e: Event) => void) | null = null;
  readyState = 0;
  closed = false;
  addEventListener(type: string, fn: (e: MessageEvent) => void) {
    this.handlers.set(type, fn);
  }
  emit(type: string, data: string) {
    this.handlers.get(type)?.({ data } as MessageEvent);
  }
  close() {
    this.closed = true;
  }
}

describe('LiveStream', () => {
  it('opens one source, routes events by kind and reports state', () => {
    const opened: FakeSource[] = [];
    const s = new LiveStream('/api/v1/stream', () => {
      const f = new FakeSource();
      opened.push(f);
      return f;
    });
    const states: string[] = [];
    s.onState((x) => states.push(x));
    const got: [string, unknown][] = [];
    s.subscribe(['rows'], (k, d) => got.push([k, d]));
    s.start();
    s.start(); // idempotent: still one EventSource
    expect(opened.length).toBe(1);
    opened[0].onopen?.(new Event('open'));
    opened[0].emit('rows', '{"minute_ms":5}');
    opened[0].emit('decision', '{"id":1}'); // not subscribed
    opened[0].emit('reset', '{}'); // always delivered
    expect(got).toEqual([
      ['rows', { minute_ms: 5 }],
      ['reset', {}],
    ]);
    opened[0].onerror?.(new Event('error'));
    expect(states).toEqual(['connecting', 'live', 'reconnecting']);
    expect(s.received).toBe(3);
  });
  it('pause closes the source; resume reopens and asks everyone to refetch', () => {
    const opened: FakeSource[] = [];
    const s = new LiveStream('/x', () => {
      const f = new FakeSource();
      opened.push(f);
      return f;
    });
    let refetches = 0;
    s.subscribe(['frontier'], () => refetches++);
    s.start();
    s.pause();
    expect(opened[0].closed).toBe(true);
    expect(s.state).toBe('paused');
    s.resume();
    expect(opened.length).toBe(2);
    expect(refetches).toBe(1);
  });
});

describe('coalesce', () => {
  it('runs at most once per interval, with a trailing call', () => {
    let now = 0;
    const timers: { at: number; f: () => void }[] = [];
    const clock = { now: () => now, set: (f: () => void, ms: number) => timers.push({ at: now + ms, f }) };
    let calls = 0;
    const c = coalesce(() => calls++, 1000, clock);
    c(); // leading
    c();
    c(); // one trailing scheduled
    expect(calls).toBe(1);
    expect(timers.length).toBe(1);
    now = 1000;
    timers.shift()!.f();
    expect(calls).toBe(2);
    now = 2500;
    c();
    expect(calls).toBe(3);
  });
});
