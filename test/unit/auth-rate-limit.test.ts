import { describe, expect, it } from 'vitest';
import { sessionCookieOptions } from '../../src/auth/auth.routes.js';
import { LoginRateLimiter } from '../../src/auth/login-rate-limit.js';
import { secretsEqual } from '../../src/auth/sessions.js';
import { ManualClock } from '../../src/platform/clock.js';

describe('failed sign-in rate limit per address', () => {
  it('allows a burst of failures, then refills one token per interval', () => {
    const clock = new ManualClock('2026-03-01T00:00:00Z');
    const limiter = new LoginRateLimiter(clock, { failuresBurstMax: 3, refillIntervalSeconds: 10, trackedAddressesMax: 100 });
    for (let failure = 0; failure < 3; failure += 1) {
      expect(limiter.retryAfterSeconds('192.0.2.1')).toBe(0);
      limiter.recordFailure('192.0.2.1');
    }
    expect(limiter.retryAfterSeconds('192.0.2.1')).toBe(10);
    expect(limiter.retryAfterSeconds('192.0.2.2')).toBe(0);
    clock.advanceSeconds(4);
    expect(limiter.retryAfterSeconds('192.0.2.1')).toBe(6);
    clock.advanceSeconds(6);
    expect(limiter.retryAfterSeconds('192.0.2.1')).toBe(0);
  });

  it('forgets the least recently failing addresses beyond its capacity', () => {
    const clock = new ManualClock('2026-03-01T00:00:00Z');
    const limiter = new LoginRateLimiter(clock, { failuresBurstMax: 1, refillIntervalSeconds: 60, trackedAddressesMax: 2 });
    for (const address of ['a', 'b', 'c']) limiter.recordFailure(address);
    expect(limiter.retryAfterSeconds('a')).toBe(0);
    expect(limiter.retryAfterSeconds('b')).toBe(60);
    expect(limiter.retryAfterSeconds('c')).toBe(60);
  });
});

describe('session cookie and secrets', () => {
  it('marks the cookie Secure exactly when Fen serves TLS', () => {
    const expiresAt = new Date('2026-03-01T12:00:00Z');
    expect(sessionCookieOptions({ tls: undefined }, expiresAt)).toEqual({ httpOnly: true, sameSite: 'strict', path: '/', secure: false, expires: expiresAt });
    expect(sessionCookieOptions({ tls: { certificatePath: 'cert.pem', keyPath: 'key.pem' } }, expiresAt).secure).toBe(true);
  });

  it('compares secrets of any length without throwing', () => {
    expect(secretsEqual('abc', 'abc')).toBe(true);
    expect(secretsEqual('abc', 'abcd')).toBe(false);
    expect(secretsEqual('', 'abc')).toBe(false);
  });
});
