/**
 * When to try a webhook again (DESIGN.md §4): about 24 hours in all, after the
 * first attempt. A delivery is made until the app answers 2xx or the schedule
 * runs out; after that the event stays `failed` until someone resends it.
 */
export const webhookRetryDelaysSeconds = [
  15, 15, 30, 3 * 60, 10 * 60, 20 * 60, 30 * 60, 30 * 60, 30 * 60, 60 * 60, 3 * 3600, 3 * 3600, 3 * 3600, 6 * 3600, 6 * 3600,
] as const;

/** The first attempt plus one per delay. */
export const webhookAttemptsMax = webhookRetryDelaysSeconds.length + 1;

/** When the next attempt is due after `attemptsMade` failed attempts; null when the schedule is exhausted. */
export function nextAttemptAt(options: { attemptsMade: number; failedAt: Date }): Date | null {
  const delaySeconds = webhookRetryDelaysSeconds[options.attemptsMade - 1];
  if (delaySeconds === undefined) return null;
  return new Date(options.failedAt.getTime() + delaySeconds * 1000);
}
