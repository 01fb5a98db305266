import { describe, expect, it } from 'vitest';
import { bucketSecondsFor, fromLocalInput, parseLocation, parseRange, PRESET_MS, rangeQuery, resolveRange, routeUrl, toLocalInput, type Route } from './time';

describe('parseRange', () => {
  it('reads presets and falls back to 6h on junk', () => {
    expect(parseRange(new URLSearchParams('range=24h'))).toEqual({ kind: 'preset', preset: '24h' });
    expect(parseRange(new URLSearchParams('range=13h'))).toEqual({ kind: 'preset', preset: '6h' });
    expect(parseRange(new URLSearchParams(''))).toEqual({ kind: 'preset', preset: '6h' });
  });
  it('prefers a valid custom from/to and rejects inverted or non-numeric bounds', () => {
    expect(parseRange(new URLSearchParams('from=1000&to=5000&range=1h'))).toEqual({ kind: 'custom', from: 1000, to: 5000 });
    expect(parseRange(new URLSearchParams('from=5000&to=1000'))).toEqual({ kind: 'preset', preset: '6h' });
    expect(parseRange(new URLSearchParams('from=abc&to=1000'))).toEqual({ kind: 'preset', preset: '6h' });
    expect(parseRange(new URLSearchParams('from=1000'))).toEqual({ kind: 'preset', preset: '6h' });
  });
});

describe('rangeQuery / resolveRange', () => {
  it('builds the API query', () => {
    expect(rangeQuery({ kind: 'preset', preset: '7d' })).toBe('range=7d');
    expect(rangeQuery({ kind: 'custom', from: 1, to: 2 })).toBe('from=1&to=2');
  });
  it('resolves presets against now', () => {
    expect(resolveRange({ kind: 'preset', preset: '1h' }, 10_000_000)).toEqual({ from: 10_000_000 - 3_600_000, to: 10_000_000 });
    expect(resolveRange({ kind: 'custom', from: 5, to: 9 }, 123)).toEqual({ from: 5, to: 9 });
  });
});

describe('bucketSecondsFor', () => {
  it('matches the server: 1 min to 6 h, 5 min to 3 days, 1 h beyond', () => {
    expect(bucketSecondsFor(PRESET_MS['1h'])).toBe(60);
    expect(bucketSecondsFor(PRESET_MS['6h'])).toBe(60);
    expect(bucketSecondsFor(PRESET_MS['6h'] + 1)).toBe(300);
    expect(bucketSecondsFor(PRESET_MS['24h'])).toBe(300);
    expect(bucketSecondsFor(3 * PRESET_MS['24h'])).toBe(300);
    expect(bucketSecondsFor(PRESET_MS['7d'])).toBe(3600);
  });
});

describe('routes in the URL', () => {
  const cases: [Route, string][] = [
    [{ view: 'overview' }, '/'],
    [{ view: 'service', service: 'checkout', range: { kind: 'preset', preset: '6h' } }, '/services/checkout'],
    [{ view: 'service', service: 'check out/v2', range: { kind: 'preset', preset: '24h' } }, '/services/check%20out%2Fv2?range=24h'],
    [{ view: 'service', service: 'api', range: { kind: 'custom', from: 1000, to: 2000 } }, '/services/api?from=1000&to=2000'],
    [{ view: 'scaling', service: 'api', range: { kind: 'preset', preset: '7d' } }, '/scaling?service=api&range=7d'],
    [{ view: 'scaling', service: null, range: { kind: 'preset', preset: '6h' } }, '/scaling'],
    [{ view: 'pipeline' }, '/pipeline'],
  ];
  it.each(cases)('round-trips %j', (route, url) => {
    expect(routeUrl(route)).toBe(url);
    const q = url.indexOf('?');
    expect(parseLocation(q < 0 ? url : url.slice(0, q), q < 0 ? '' : url.slice(q))).toEqual(route);
  });
  it('sends unknown paths and broken escapes to the overview', () => {
    expect(parseLocation('/nope', '')).toEqual({ view: 'overview' });
    expect(parseLocation('/services/%E0%A4%A', '')).toEqual({ view: 'overview' });
    expect(parseLocation('/services/', '')).toEqual({ view: 'overview' });
  });
});

describe('datetime-local inputs', () => {
  it('round-trips local minutes and rejects junk', () => {
    const ms = new Date(2026, 10, 23, 9, 5).getTime();
    expect(toLocalInput(ms)).toBe('2026-11-23T09:05');
    expect(fromLocalInput('2026-11-23T09:05')).toBe(ms);
    expect(fromLocalInput('yesterday')).toBeNull();
  });
});
