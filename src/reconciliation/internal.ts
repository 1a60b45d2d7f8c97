import { sql, type Kysely } from 'kysely';
import type { PlatformContext } from '../platform/context.js';
import type { Database } from '../platform/db/index.js';
import type { BatchRow } from './batches.repository.js';
import { upsertBatchDifference } from './differences.js';

/**
 * Internal reconciliation (内部对账): Fen's own parts against each other for
 * a day, with no channel involved — every succeeded payment, refund and
 * exception of the day has its booking and the booking moved channel_clearing
 * by the record's amount (a merchant's own account books no clearing, only
 * that an entry exists), and every payment's refunded_amount is the sum of its
 * succeeded refunds. (A merchant's own account books only fees, and nothing
for a fee of zero, so there only the refunded amounts are checked.) Clearing items are checked here too once the clearing
 * module keeps them. A disagreement is an `internal` difference of the day's
 * batch: nothing the channel said can settle it, so it is accepted with a
 * reason once whoever owns the broken part has corrected it.
 *
 * It reads the day's records from the matching's temporary table recon_fen,
 * which already carries each record's booking, so it costs one scan.
 */
interface Drift {
  item_type: string;
  item_id: string;
  payment_id: string;
  merchant_id: string | null;
  currency: string;
  amount: bigint;
  booked: bigint;
  problem: string;
}

export async function checkInternal(db: Kysely<Database>, context: PlatformContext, batch: BatchRow): Promise<number> {
  const shared = batch.mode === 'shared';
  const booking = await sql<Drift>`
    SELECT item_type, item_id, payment_id, merchant_id, currency, amount, booked,
           CASE WHEN entry_id IS NULL THEN 'no_booking' ELSE 'booked_amount' END AS problem
      FROM recon_fen
     WHERE day_set AND ${shared} AND (entry_id IS NULL OR booked <> (CASE WHEN item_type = 'refund' THEN -amount ELSE amount END))
     ORDER BY item_id LIMIT 1000`.execute(db);
  const refunded = await sql<Drift>`
    SELECT 'payment' AS item_type, p.id AS item_id, p.id AS payment_id, p.merchant_id, p.currency, p.refunded_amount AS amount,
           coalesce(r.total, 0)::bigint AS booked, 'refunded_amount' AS problem
      FROM recon_fen f JOIN payments p ON p.id = f.item_id
      LEFT JOIN LATERAL (SELECT sum(amount) AS total FROM refunds WHERE payment_id = p.id AND status = 'succeeded' AND source <> 'exception') r ON true
     WHERE f.day_set AND f.item_type = 'payment' AND p.refunded_amount > 0 AND p.refunded_amount <> coalesce(r.total, 0)
     ORDER BY p.id LIMIT 1000`.execute(db);
  const now = context.clock.now();
  for (const drift of [...booking.rows, ...refunded.rows]) {
    const detail = drift.problem === 'no_booking'
      ? `${drift.item_type} ${drift.item_id} succeeded but has no journal entry`
      : drift.problem === 'booked_amount'
        ? `${drift.item_type} ${drift.item_id} of ${drift.amount} moved channel_clearing by ${drift.booked}`
        : `payment ${drift.item_id} says ${drift.amount} refunded; its succeeded refunds add up to ${drift.booked}`;
    await upsertBatchDifference(context.db, now, {
      batchId: batch.id,
      channelAccountId: batch.channel_account_id,
      billDate: batch.bill_date,
      kind: 'internal',
      dedupeKey: `internal:${drift.item_type}:${drift.item_id}:${drift.problem}`,
      currency: drift.currency,
      delta: 0n,
      detail,
      paymentId: drift.payment_id,
      refundId: drift.item_type === 'refund' ? drift.item_id : null,
      merchantId: drift.merchant_id,
      localAmount: drift.amount,
    });
  }
  return booking.rows.length + refunded.rows.length;
}
