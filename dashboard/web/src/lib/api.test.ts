import { describe, expect, it } from 'vitest';
import { errorMessage } from './api';

describe('errorMessage', () => {
  it('prefers the reason, then the error, then short text', () => {
    expect(errorMessage(404, '{"error":"no forecast yet: x","reason":"needs 5 more minutes of history"}')).toBe('needs 5 more minutes of history');
    expect(errorMessage(403, '{"error":"forbidden"}')).toBe('forbidden');
    expect(errorMessage(500, 'boom')).toBe('boom');
    expect(errorMessage(502, '')).toBe('HTTP 502');
    expect(errorMessage(502, 'x'.repeat(400))).toBe('HTTP 502');
  });
});
