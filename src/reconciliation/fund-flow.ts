import { sql, type Kysely } from 'kysely';
import { accountSpecs, ensureAccount, postEntry } from '../ledger/index.js';
import { assert } from '../platform/assert.js';
import type { PlatformContext } from '../platform/context.js';
import type { Database, DbTransaction } from '../platform/db/index.js';
import type { Currency } from '../platform/money.js';
import type { BatchRow } from './batches.repository.js';
import { upsertBatchDifference, withdrawBatchDifference } from './differences.js';

/**
 * The fund flow (资金流) of a bill day: what the channel says it owes for the
 * day — payments − refunds − fees — against what Fen's ledger moved on
 * channel_clearing for the same business: the bookings of every record the
 * bill listed (whenever they were booked: a payment paid at 23:59:59 and
 * booked after midnight belongs to the day it was paid), of the day's records
 * the bill did not list, and of the entries this reconciliation made for the
 * day (the channel's fees, resolutions). Open differences explain the rest;
 * whatever is left is a drift, and a drift is a difference too.
 *
 * The fee entry: the bill's fees are booked once per bill (channel_fee_expense
 * against channel_clearing), except the part of a fee that differs from the
 * expected one, which waits for the fee_mismatch difference to be resolved.
 * A re-run books only what changed since the last run, under a key of its
 * own, so nothing is ever booked twice.
 */

export interface FeeBooking {
  batch: BatchRow;
  /** The bill's fees, charged less handed back. */
  channelFeeNet: bigint;
  currency: Currency;
}

/** Books the bill's fees less the open fee differences; returns what is booked in all after. */
export async function bookBillFees(trx: DbTransaction, context: PlatformContext, booking: FeeBooking): Promise<bigint> {
  const { batch } = booking;
  if (batch.mode === 'own') return 0n;
  const feeDeltas = await trx
    .selectFrom('recon_differences')
    .select((eb) => eb.fn.coalesce(eb.fn.sum<bigint>('delta'), sql<bigint>`0`).as('total'))
    .where('batch_id', '=', batch.id)
    .where('kind', '=', 'fee_mismatch')
    .where('status', '<>', 'withdrawn')
    .executeTakeFirstOrThrow();
  // A fee difference's delta is the part of the fee not booked here, with the sign it moves clearing by.
  const target = booking.channelFeeNet + BigInt(feeDeltas.total);
  const change = target - batch.fees_booked_amount;
  if (change === 0n) return target;
  const clearing = await ensureAccount(trx, context.clock, accountSpecs.channelClearing(batch.channel_account_id, booking.currency));
  const expense = await ensureAccount(trx, context.clock, accountSpecs.channelFeeExpense(booking.currency));
  const posted = await postEntry(trx, context.clock, {
    dedupeKey: `recon:fees:${batch.id}:${batch.run_count}`,
    kind: 'recon_channel_fees',
    referenceType: 'recon_batch',
    referenceId: batch.id,
    description: `channel fees of the ${batch.bill_date} bill`,
    postings: [
      { accountId: expense.id, amount: change, currency: booking.currency },
      { accountId: clearing.id, amount: -change, currency: booking.currency },
    ],
  });
  assert(posted.ok, `ledger refused the fees of ${batch.id}: ${posted.ok ? '' : posted.message}`);
  return target;
}

export interface FundFlow {
  channelNet: bigint;
  ledgerNet: bigint;
  openDelta: bigint;
  drift: bigint;
}

/**
 * Computes the day's fund flow on the matching's connection (its temporary
 * tables name the records the bill listed), records it on the batch and
 * raises, updates or withdraws the fund_flow difference.
 */
export async function checkFundFlow(db: Kysely<Database>, context: PlatformContext, batch: BatchRow, booked: { clearingAccountId: string; paired: bigint }): Promise<FundFlow> {
  const { clearingAccountId } = booked;
  const rows = await sql<{ missing: bigint | null; recon: bigint | null; open_delta: bigint | null }>`
    SELECT
      (SELECT sum(local_booked) FROM recon_differences WHERE batch_id = ${batch.id} AND kind = 'missing_channel' AND status <> 'withdrawn')::bigint AS missing,
      (SELECT sum(lp.amount) FROM ledger_postings lp WHERE lp.account_id = ${clearingAccountId} AND lp.entry_id IN (
          SELECT e.id FROM journal_entries e WHERE (e.reference_type = 'recon_batch' AND e.reference_id = ${batch.id})
             OR (e.reference_type = 'recon_difference' AND e.reference_id IN (SELECT id FROM recon_differences WHERE batch_id = ${batch.id}))
          UNION
          SELECT d.entry_id FROM recon_differences d WHERE d.batch_id = ${batch.id} AND d.status = 'resolved' AND d.entry_id IS NOT NULL
             AND NOT EXISTS (SELECT 1 FROM recon_matched m WHERE m.f_entry_id = d.entry_id)))::bigint AS recon,
      (SELECT sum(delta) FROM recon_differences WHERE batch_id = ${batch.id} AND status = 'open' AND kind NOT IN ('fund_flow', 'internal'))::bigint AS open_delta`.execute(db);
  const row = rows.rows[0];
  const ledgerNet = booked.paired + (row?.missing ?? 0n) + (row?.recon ?? 0n);
  const openDelta = row?.open_delta ?? 0n;
  const drift = batch.channel_net_amount - ledgerNet - openDelta;
  await recordFundFlow(context, batch, { channelNet: batch.channel_net_amount, ledgerNet, openDelta, drift });
  return { channelNet: batch.channel_net_amount, ledgerNet, openDelta, drift };
}

async function recordFundFlow(context: PlatformContext, batch: BatchRow, flow: FundFlow): Promise<void> {
  const now = context.clock.now();
  await context.db.transaction().execute(async (trx) => {
    await trx.updateTable('recon_batches').set({ ledger_net_amount: flow.ledgerNet, open_delta_amount: flow.openDelta, fund_flow_drift: flow.drift, updated_at: now }).where('id', '=', batch.id).execute();
    const open = await trx.selectFrom('recon_differences').select('dedupe_key').where('batch_id', '=', batch.id).where('kind', '=', 'fund_flow').where('status', '=', 'open').execute();
    const key = `fund_flow:${batch.bill_date}:${flow.drift}`;
    for (const stale of open) if (stale.dedupe_key !== key || flow.drift === 0n) await withdrawBatchDifference(trx, now, batch.channel_account_id, stale.dedupe_key);
    if (flow.drift === 0n) return;
    await upsertBatchDifference(trx, now, {
      batchId: batch.id,
      channelAccountId: batch.channel_account_id,
      billDate: batch.bill_date,
      kind: 'fund_flow',
      dedupeKey: key,
      currency: batch.currency,
      delta: flow.drift,
      detail: `the channel's net for the day is ${flow.channelNet}, the ledger's ${flow.ledgerNet}, open differences explain ${flow.openDelta}: ${flow.drift} unexplained`,
    });
  });
}
