/**
 * The clock is injected everywhere time matters (expiry, retries, T+1,
 * settlement, nonce windows) so tests move time instead of sleeping.
 */
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = {
  now: () => new Date(),
};

/** A clock that only moves when told to; for tests and simulations. */
export class ManualClock implements Clock {
  private currentMs: number;

  constructor(start: Date | string = '2026-01-15T02:00:00.000Z') {
    this.currentMs = new Date(start).getTime();
  }

  now(): Date {
    return new Date(this.currentMs);
  }

  advanceMs(durationMs: number): void {
    this.currentMs += durationMs;
  }

  advanceSeconds(durationSeconds: number): void {
    this.advanceMs(durationSeconds * 1000);
  }

  set(to: Date | string): void {
    this.currentMs = new Date(to).getTime();
  }
}

export function unixSeconds(date: Date): number {
  return Math.floor(date.getTime() / 1000);
}
