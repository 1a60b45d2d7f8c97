import type { Clock } from '../platform/clock.js';

/**
 * A second line behind the per-account lock-out: failed sign-ins per client
 * address, as a token bucket. One address trying many accounts (password
 * spraying) never trips any single account's lock-out, but it runs out of
 * tokens here. Only failures spend tokens, so a busy office behind one
 * address signs in freely.
 *
 * The buckets live in this process's memory: with several API processes an
 * address gets that many times the budget, which is acceptable for a
 * secondary measure (the lock-out, in the database, is the real limit).
 */
export interface LoginRateLimitOptions {
  failuresBurstMax: number;
  refillIntervalSeconds: number;
  trackedAddressesMax: number;
}

export const defaultLoginRateLimit: LoginRateLimitOptions = {
  failuresBurstMax: 20,
  refillIntervalSeconds: 6,
  trackedAddressesMax: 10_000,
};

interface Bucket {
  tokens: number;
  updatedMs: number;
}

export class LoginRateLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly clock: Clock,
    private readonly options: LoginRateLimitOptions = defaultLoginRateLimit,
  ) {}

  private refilled(address: string): Bucket {
    const nowMs = this.clock.now().getTime();
    const bucket = this.buckets.get(address);
    if (!bucket) return { tokens: this.options.failuresBurstMax, updatedMs: nowMs };
    const earned = Math.max(0, nowMs - bucket.updatedMs) / (this.options.refillIntervalSeconds * 1000);
    return { tokens: Math.min(this.options.failuresBurstMax, bucket.tokens + earned), updatedMs: nowMs };
  }

  /** Seconds until the address may try again, or 0 when it may try now. */
  retryAfterSeconds(address: string): number {
    const bucket = this.refilled(address);
    if (bucket.tokens >= 1) return 0;
    return Math.ceil((1 - bucket.tokens) * this.options.refillIntervalSeconds);
  }

  recordFailure(address: string): void {
    const bucket = this.refilled(address);
    bucket.tokens = Math.max(0, bucket.tokens - 1);
    this.buckets.delete(address);
    this.buckets.set(address, bucket);
    this.evictOverflow();
  }

  /** Keeps memory bounded: the least recently failing addresses go first (a Map iterates in insertion order). */
  private evictOverflow(): void {
    while (this.buckets.size > this.options.trackedAddressesMax) {
      const oldest = this.buckets.keys().next();
      if (oldest.done) return;
      this.buckets.delete(oldest.value);
    }
  }
}
