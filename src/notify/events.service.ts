import { sql } from 'kysely';
import { normalise } from '../platform/canonical-json.js';
import type { Clock } from '../platform/clock.js';
import type { DbExecutor, DbTransaction } from '../platform/db/index.js';
import { newId } from '../platform/ids.js';
import { addJobExpression } from '../platform/jobs/index.js';

/**
 * Events are what Fen tells an app (`payment.succeeded`, `refund.failed`, …).
 * An event is written in the same transaction as the change it reports, with
 * its body frozen as text, so every delivery and every resend carries the same
 * bytes and the app can de-duplicate by the event id.
 */
export const eventTypes = ['payment.succeeded', 'payment.failed', 'payment.closed', 'refund.succeeded', 'refund.failed'] as const;
export type EventType = (typeof eventTypes)[number];

export const deliverEventTask = 'notify.deliver';

export interface NewEvent {
  merchantId: string;
  appId: string;
  type: EventType;
  /** The payment or refund the event is about; one event of a type per object. */
  objectId: string;
  data: unknown;
  notifyUrl: string | null;
}

/** Records the event and queues its first delivery; returns the id, or null when it already existed. */
export async function recordEvent(trx: DbTransaction, clock: Clock, event: NewEvent): Promise<string | null> {
  const id = newId('event');
  const now = clock.now();
  const body = JSON.stringify({ id, type: event.type, created_at: now.toISOString(), data: normalise(event.data) });
  const values = {
    id,
    merchant_id: event.merchantId,
    app_id: event.appId,
    type: event.type,
    object_id: event.objectId,
    body,
    notify_url: event.notifyUrl,
    delivery_status: event.notifyUrl ? ('pending' as const) : ('no_endpoint' as const),
    attempts: 0,
    next_attempt_at: event.notifyUrl ? now : null,
    created_at: now,
  };
  // The event and its first delivery job in one statement: the job is queued only when the event is new.
  const delivery = event.notifyUrl ? addJobExpression({ task: deliverEventTask, payload: { event_id: id }, jobKey: `deliver:${id}` }) : sql`NULL`;
  const inserted = await trx
    .with('inserted', (db) =>
      db
        .insertInto('events')
        .values(values)
        .onConflict((conflict) => conflict.columns(['object_id', 'type']).doNothing())
        .returning('id'),
    )
    .selectFrom('inserted')
    .select('inserted.id')
    // Selected only so that the call runs once per inserted row; its value is not used.
    .select(sql<boolean>`${delivery} IS NULL`.as('delivery_ignored'))
    .executeTakeFirst();
  if (!inserted) return null;
  return id;
}

/** Events whose next attempt is due by the given time, oldest first. */
export async function dueEventIds(executor: DbExecutor, now: Date, limit: number): Promise<string[]> {
  const rows = await sql<{ id: string }>`
    SELECT id FROM events
    WHERE delivery_status = 'pending' AND next_attempt_at <= ${now}
    ORDER BY next_attempt_at LIMIT ${limit}`.execute(executor);
  return rows.rows.map((row) => row.id);
}
