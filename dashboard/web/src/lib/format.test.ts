import { describe, expect, it } from 'vitest';
import { clock, compact, duration, percent, relative, replicaHours } from './format';

describe('compact', () => {
  it('abbreviates and trims', () => {
    expect(compact(0)).toBe('0');
    expect(compact(999)).toBe('999');
    expect(compact(1234)).toBe('1.2k');
    expect(compact(1000)).toBe('1k');
    expect(compact(2_500_000)).toBe('2.5M');
    expect(compact(3.14159)).toBe('3.14');
    expect(compact(-1500)).toBe('-1.5k');
    expect(compact(null)).toBe('—');
    expect(compact(NaN)).toBe('—');
  });
});

describe('percent', () => {
  it('formats fractions', () => {
    expect(percent(0)).toBe('0 %');
    expect(percent(0.0123)).toBe('1.23 %');
    expect(percent(0.25)).toBe('25 %');
    expect(percent(0.00001)).toBe('0.001 %');
    expect(percent(0.000001)).toBe('0.0001 %');
    expect(percent(null)).toBe('—');
  });
});

describe('duration', () => {
  it('picks a unit', () => {
    expect(duration(850)).toBe('850 ms');
    expect(duration(1200)).toBe('1.2 s');
    expect(duration(185_000)).toBe('3 min 5 s');
    expect(duration(120_000)).toBe('2 min');
    expect(duration(7_800_000)).toBe('2 h 10 min');
    expect(duration(-1500)).toBe('-1.5 s');
    expect(duration(undefined)).toBe('—');
  });
});

describe('clock / relative', () => {
  it('shows the date only for other days', () => {
    const now = new Date(2026, 10, 23, 12, 0).getTime();
    expect(clock(new Date(2026, 10, 23, 9, 5).getTime(), now)).toBe('09:05');
    expect(clock(new Date(2026, 10, 20, 9, 5).getTime(), now)).toBe('2026-11-20 09:05');
  });
  it('says ago / in', () => {
    expect(relative(1000, 13_000)).toBe('12 s ago');
    expect(relative(313_000, 13_000)).toBe('in 5 min');
    expect(relative(13_000, 13_000)).toBe('now');
  });
  it('replica-hours', () => {
    expect(replicaHours(0.0667)).toBe('0.07 replica-h');
    expect(replicaHours(12.34)).toBe('12.3 replica-h');
  });
});
