import { sql } from 'kysely';
import { signWebhook } from '../../sdk/index.js';
import { resolveWebhookSecret } from '../apps/index.js';
import type { PlatformContext } from '../platform/context.js';
import { unixSeconds } from '../platform/clock.js';
import { enqueueJob } from '../platform/jobs/index.js';
import { limits } from '../platform/limits.js';
import { deliverEventTask, dueEventIds } from './events.service.js';
import { nextAttemptAt, webhookAttemptsMax } from './schedule.js';

/**
 * Delivers events to apps: a signed POST until the app answers 2xx, on the
 * retry schedule, every attempt recorded. An attempt is claimed with one
 * conditional UPDATE first, so two workers never deliver the same attempt; a
 * worker that dies mid-attempt leaves a lease that expires, and the sweep
 * picks the event up again (at-least-once).
 */
export type WebhookFetch = (url: string, init: { method: 'POST'; headers: Record<string, string>; body: string; signal: AbortSignal }) => Promise<{ status: number }>;

export interface DeliveryOutcome {
  eventId: string;
  attempt: number;
  delivered: boolean;
  statusCode: number | null;
  error: string | null;
}

interface ClaimedEvent {
  id: string;
  app_id: string;
  merchant_id: string;
  type: string;
  body: string;
  notify_url: string;
  attempts: number;
  delivery_status: string;
}

async function claimAttempt(context: PlatformContext, eventId: string, manual: boolean): Promise<ClaimedEvent | undefined> {
  const now = context.clock.now();
  const leaseUntil = new Date(now.getTime() + limits.webhookLeaseSeconds * 1000);
  const claimed = await sql<ClaimedEvent>`
    UPDATE events SET attempts = attempts + 1, next_attempt_at = CASE WHEN delivery_status = 'pending' THEN ${leaseUntil}::timestamptz ELSE next_attempt_at END
    WHERE id = ${eventId} AND notify_url IS NOT NULL
      AND (${manual}::boolean OR (delivery_status = 'pending' AND next_attempt_at <= ${now}))
    RETURNING id, app_id, merchant_id, type, body, notify_url, attempts, delivery_status`.execute(context.db);
  return claimed.rows[0];
}

async function post(fetcher: WebhookFetch, event: ClaimedEvent, signature: string): Promise<{ statusCode: number | null; error: string | null }> {
  try {
    const response = await fetcher(event.notify_url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'user-agent': 'Fen-Webhooks/1',
        'fen-signature': signature,
        'fen-event-id': event.id,
        'fen-event-type': event.type,
      },
      body: event.body,
      signal: AbortSignal.timeout(limits.webhookTimeoutMs),
    });
    return { statusCode: response.status, error: response.status >= 200 && response.status < 300 ? null : `HTTP ${response.status}` };
  } catch (error) {
    const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    return { statusCode: null, error: message.slice(0, limits.webhookErrorLengthMax) };
  }
}

const defaultFetch: WebhookFetch = async (url, init) => {
  const response = await fetch(url, init);
  await response.body?.cancel();
  return { status: response.status };
};

/** One delivery attempt of one event. `manual` is a resend by hand: it runs whatever the schedule says. */
export async function deliverEvent(
  context: PlatformContext,
  eventId: string,
  options: { manual?: boolean; fetch?: WebhookFetch } = {},
): Promise<DeliveryOutcome | undefined> {
  const manual = options.manual ?? false;
  const event = await claimAttempt(context, eventId, manual);
  if (!event) return undefined;
  const secret = await resolveWebhookSecret(context, event.app_id);
  const startedMs = performance.now();
  const signature = signWebhook({ payload: event.body, secret, timestamp: unixSeconds(context.clock.now()) });
  const result = await post(options.fetch ?? defaultFetch, event, signature);
  const latencyMs = Math.round(performance.now() - startedMs);
  await recordOutcome(context, event, { ...result, latencyMs, manual });
  return { eventId, attempt: event.attempts, delivered: result.error === null, ...result };
}

async function recordOutcome(
  context: PlatformContext,
  event: ClaimedEvent,
  outcome: { statusCode: number | null; error: string | null; latencyMs: number; manual: boolean },
): Promise<void> {
  const now = context.clock.now();
  const attempt = {
    event_id: event.id,
    attempt: event.attempts,
    merchant_id: event.merchant_id,
    url: event.notify_url,
    attempted_at: now,
    status_code: outcome.statusCode,
    latency_ms: outcome.latencyMs,
    error: outcome.error,
    manual: outcome.manual,
  };
  if (outcome.error === null) {
    // The common case, in one statement: the attempt and the event's new state commit together.
    await context.db
      .with('attempt', (db) => db.insertInto('event_deliveries').values(attempt))
      .updateTable('events')
      .set({ delivery_status: 'delivered', delivered_at: now, next_attempt_at: null })
      .where('id', '=', event.id)
      .execute();
    return;
  }
  const next = nextAttemptAt({ attemptsMade: event.attempts, failedAt: now });
  await context.db.transaction().execute(async (trx) => {
    await trx.insertInto('event_deliveries').values(attempt).execute();
    // A failed resend by hand leaves a delivered or given-up event as it was.
    if (event.delivery_status !== 'pending') return;
    const exhausted = next === null || event.attempts >= webhookAttemptsMax;
    await trx
      .updateTable('events')
      .set(exhausted ? { delivery_status: 'failed', next_attempt_at: null } : { next_attempt_at: next })
      .where('id', '=', event.id)
      .where('delivery_status', '=', 'pending')
      .execute();
    if (!exhausted && next) await enqueueJob(trx, { task: deliverEventTask, payload: { event_id: event.id }, runAt: next, jobKey: `deliver:${event.id}` });
  });
}

/** Delivers every event that is due by the clock: the sweep behind the per-event jobs. */
export async function deliverDueEvents(context: PlatformContext, options: { fetch?: WebhookFetch } = {}): Promise<DeliveryOutcome[]> {
  const outcomes: DeliveryOutcome[] = [];
  for (const eventId of await dueEventIds(context.db, context.clock.now(), limits.dueBatchSize)) {
    const outcome = await deliverEvent(context, eventId, options);
    if (outcome) outcomes.push(outcome);
  }
  return outcomes;
}
