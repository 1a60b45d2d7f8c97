import { sql } from 'kysely';
import { appendAudit } from '../audit/index.js';
import type { PaymentStatusResult } from '../channels/index.js';
import { accountSpecs, ensureAccount, postEntry, type AccountSpec } from '../ledger/index.js';
import { applyPaymentResult, findPayment, queryRefund } from '../payments/index.js';
import type { Actor } from '../platform/actor.js';
import { systemActor } from '../platform/actor.js';
import { assert } from '../platform/assert.js';
import type { PlatformContext } from '../platform/context.js';
import type { DbTransaction, ReconResolution } from '../platform/db/index.js';
import { FenError } from '../platform/errors.js';
import type { Currency } from '../platform/money.js';
import { connectorFor, getChannelAccount } from '../routing/index.js';
import { findBatch, findDifference, refreshBatchStatus, type DifferenceRow } from './batches.repository.js';
import type { OperatorResolution } from './recon.types.js';

/**
 * Closing differences. Every resolution that moves money is a journal entry
 * — never an edit of a payment, a refund or a balance — written in the same
 * transaction as the difference's new state and its audit record.
 *
 * The entry moves channel_clearing by the difference's delta, so that the
 * books agree with what the channel says it owes; where the other side of
 * the entry goes is what the resolution decides:
 *  - suspense (automatic, for money nobody at Fen can place yet) and
 *    trust_channel: to `suspense`, to be placed later (or, for a fee, to
 *    `channel_fee_expense`: the channel's fee was right);
 *  - trust_fen: to `channel_dispute:<account>`, a claim on the channel;
 *  - accepted: written off to `reconciliation_write_off`, with the reason.
 * For a merchant's own channel account the money never passes the platform,
 * so its resolutions record the decision and book nothing.
 */

const disputeSpec = (channelAccountId: string, currency: Currency): AccountSpec => ({
  code: `channel_dispute:${channelAccountId}`,
  currency,
  type: 'asset',
  merchantId: null,
  slotCount: 1,
  noOverdraft: false,
});

const writeOffSpec = (currency: Currency): AccountSpec => ({ code: 'reconciliation_write_off', currency, type: 'expense', merchantId: null, slotCount: 1, noOverdraft: false });

function counterSpec(difference: DifferenceRow, resolution: ReconResolution, currency: Currency): AccountSpec {
  switch (resolution) {
    case 'trust_fen':
      return disputeSpec(difference.channel_account_id, currency);
    case 'accepted':
      return writeOffSpec(currency);
    default:
      return difference.kind === 'fee_mismatch' ? accountSpecs.channelFeeExpense(currency) : accountSpecs.suspense(currency);
  }
}

/** Books the difference's delta on channel_clearing against the resolution's account; returns the entry id, if any. */
async function bookResolution(trx: DbTransaction, context: PlatformContext, difference: DifferenceRow, resolution: ReconResolution): Promise<string | null> {
  const batch = await findBatch(trx, difference.batch_id);
  if (!batch || batch.mode === 'own' || difference.delta === 0n) return null;
  const currency = difference.currency as Currency;
  const clearing = await ensureAccount(trx, context.clock, accountSpecs.channelClearing(difference.channel_account_id, currency));
  const counter = await ensureAccount(trx, context.clock, counterSpec(difference, resolution, currency));
  const posted = await postEntry(trx, context.clock, {
    dedupeKey: `recon:difference:${difference.id}`,
    kind: `recon_${resolution}`,
    referenceType: 'recon_difference',
    referenceId: difference.id,
    merchantId: difference.merchant_id,
    description: `${difference.kind} ${difference.detail}`.slice(0, 2000),
    postings: [
      { accountId: clearing.id, amount: difference.delta, currency },
      { accountId: counter.id, amount: -difference.delta, currency },
    ],
  });
  assert(posted.ok, `ledger refused the resolution of ${difference.id}: ${posted.ok ? '' : posted.message}`);
  return posted.value.entryId;
}

interface Closing {
  resolution: ReconResolution;
  reason: string | null;
  actor: Actor;
  /** An entry already booked elsewhere (an applied notification, an exception) that resolves it. */
  entryId?: string | null;
}

/** Closes an open difference once: a conditional update, so two operators (or the job and one) cannot both resolve it. */
async function close(context: PlatformContext, differenceId: string, closing: Closing): Promise<DifferenceRow> {
  return context.db.transaction().execute(async (trx) => {
    const difference = await findDifference(trx, differenceId, { forUpdate: true });
    if (!difference) throw new FenError('not_found', `no difference ${differenceId}`);
    if (difference.status !== 'open') throw new FenError('invalid_state', `difference ${differenceId} is ${difference.status}`);
    const entryId = closing.entryId === undefined ? await bookResolution(trx, context, difference, closing.resolution) : closing.entryId;
    const now = context.clock.now();
    await trx
      .updateTable('recon_differences')
      .set({ status: 'resolved', resolution: closing.resolution, resolution_reason: closing.reason, resolved_by: closing.actor.id, resolved_at: now, entry_id: entryId, updated_at: now })
      .where('id', '=', differenceId)
      .where('status', '=', 'open')
      .execute();
    await appendAudit(trx, context.clock, {
      actor: closing.actor,
      action: 'reconciliation.difference_resolved',
      targetType: 'recon_difference',
      targetId: differenceId,
      merchantId: difference.merchant_id,
      before: { status: 'open', kind: difference.kind, delta: difference.delta },
      after: { status: 'resolved', resolution: closing.resolution, reason: closing.reason, entry_id: entryId },
    });
    await refreshBatchStatus(trx, difference.batch_id, now);
    const updated = await findDifference(trx, differenceId);
    assert(updated, 'the difference vanished');
    return updated;
  });
}

/** An operator's decision: trust the channel, trust Fen, or accept with a reason. */
export async function resolveDifference(context: PlatformContext, actor: Actor, input: { differenceId: string; resolution: OperatorResolution; reason: string }): Promise<DifferenceRow> {
  const difference = await findDifference(context.db, input.differenceId);
  if (!difference) throw new FenError('not_found', `no difference ${input.differenceId}`);
  if (difference.kind === 'internal' && input.resolution !== 'accepted') {
    throw new FenError('invalid_request', 'an internal difference is between Fen’s own records: it can only be accepted, with the reason');
  }
  return close(context, input.differenceId, { resolution: input.resolution, reason: input.reason, actor, ...(difference.kind === 'internal' ? { entryId: null } : {}) });
}

async function entryIdByKey(context: PlatformContext, dedupeKey: string): Promise<string | null> {
  const entry = await context.db.selectFrom('journal_entries').select('id').where('dedupe_key', '=', dedupeKey).executeTakeFirst();
  return entry?.id ?? null;
}

/** After the channel's answer was applied: did the payment take this trade's money, or did it become an exception? */
async function paymentOutcome(context: PlatformContext, difference: DifferenceRow): Promise<Closing | undefined> {
  const payment = await findPayment(context.db, difference.payment_id ?? '');
  if (payment?.status === 'succeeded' && payment.channel_trade_no === difference.channel_trade_no) {
    return { resolution: 'notification_applied', reason: 'the channel confirmed the payment; its result was applied', actor: systemActor, entryId: await entryIdByKey(context, `payment:${payment.id}:capture`) };
  }
  const exception = await context.db
    .selectFrom('payment_exceptions')
    .select(['id', 'kind'])
    .where('payment_id', '=', difference.payment_id ?? '')
    .where('channel_trade_no', '=', difference.channel_trade_no ?? '')
    .executeTakeFirst();
  if (!exception) return undefined;
  await rememberListed(context, difference, exception.id);
  return { resolution: 'exception_refund', reason: `recorded as ${exception.kind}: booked to suspense and refunded to the payer`, actor: systemActor, entryId: await entryIdByKey(context, `exception:${exception.id}:suspense`) };
}

/**
 * An exception made from a bill line is money that bill listed: remembered in
 * the pool as matched, so the batch of the day the exception was recorded on
 * does not look for it on its own bill.
 */
async function rememberListed(context: PlatformContext, difference: DifferenceRow, exceptionId: string): Promise<void> {
  const now = context.clock.now();
  await sql`INSERT INTO recon_pool (channel_account_id, item_key, item_type, item_id, line_kind, payment_id, merchant_id, channel_trade_no, currency,
      amount, business_at, origin_date, status, matched_batch_id, created_at, updated_at)
    SELECT ${difference.channel_account_id}, 'exception:' || x.id, 'exception', x.id, 'payment', x.payment_id, x.merchant_id, x.channel_trade_no, x.currency,
           x.amount, x.created_at, (x.created_at AT TIME ZONE 'Asia/Shanghai')::date, 'matched', ${difference.batch_id}, ${now}, ${now}
      FROM payment_exceptions x WHERE x.id = ${exceptionId}
    ON CONFLICT (channel_account_id, item_key) DO UPDATE SET status = 'matched', matched_batch_id = excluded.matched_batch_id, updated_at = excluded.updated_at`.execute(context.db);
}

/** The bill line as the channel's own statement of a payment, for the exception path. */
function billStatement(difference: DifferenceRow): PaymentStatusResult {
  const amount = { amount: difference.channel_amount ?? 0n, currency: difference.currency as Currency };
  const paidAt = difference.occurred_at ?? new Date(0);
  return { status: 'succeeded', facts: { outTradeNo: difference.out_trade_no ?? '', channelTradeNo: difference.channel_trade_no ?? undefined, amount, channelStatus: 'BILL_LINE', paidAt, payerChannelId: undefined } };
}

/** Asks the channel about the payment a line names and applies its answer through the payments module. */
async function applyChannelAnswer(context: PlatformContext, difference: DifferenceRow): Promise<void> {
  const payment = await findPayment(context.db, difference.payment_id ?? '');
  if (!payment?.channel_account_id) return;
  const account = await getChannelAccount(context, payment.channel_account_id);
  const answer = await connectorFor(context, account).queryPayment({
    outTradeNo: payment.id,
    ...(difference.channel_trade_no ? { channelTradeNo: difference.channel_trade_no } : {}),
    expected: { amount: payment.amount, currency: payment.currency as Currency },
  });
  await applyPaymentResult(context, payment, answer);
}

/** What can safely be fixed without a person; returns the closing, or undefined to leave it to an operator. */
async function automaticClosing(context: PlatformContext, difference: DifferenceRow): Promise<Closing | undefined> {
  const succeededOnBill = difference.channel_status === 'succeeded';
  if (difference.kind === 'missing_local' && difference.payment_id === null && difference.refund_id === null) {
    return { resolution: 'suspense', reason: 'money the channel lists for nothing Fen has: held in suspense until placed', actor: systemActor };
  }
  if (difference.kind === 'missing_local' && difference.line_kind === 'payment' && difference.payment_id !== null) {
    const payment = await findPayment(context.db, difference.payment_id);
    if (payment) await applyPaymentResult(context, payment, billStatement(difference));
    return paymentOutcome(context, difference);
  }
  if (difference.kind === 'status_mismatch' && succeededOnBill && difference.line_kind === 'payment') {
    await applyChannelAnswer(context, difference);
    return paymentOutcome(context, difference);
  }
  if (difference.kind === 'status_mismatch' && succeededOnBill && difference.line_kind === 'refund' && difference.local_status === 'processing' && difference.refund_id) {
    const refund = await queryRefund(context, difference.refund_id, 0);
    if (refund?.status !== 'succeeded') return undefined;
    return { resolution: 'notification_applied', reason: 'the channel confirmed the refund; its result was applied', actor: systemActor, entryId: await entryIdByKey(context, `refund:${refund.id}`) };
  }
  return undefined;
}

/**
 * The automatic pass over a batch's open differences: query the channel and
 * apply a missed result, send a second payment down the exception path (to
 * suspense, then refunded), book money nobody can place to suspense. Each is
 * tried on every run until it succeeds; the rest wait for an operator.
 */
export async function resolveAutomatically(context: PlatformContext, batchId: string): Promise<number> {
  const open = await context.db.selectFrom('recon_differences').select('id').where('batch_id', '=', batchId).where('status', '=', 'open').orderBy('id').execute();
  let resolved = 0;
  for (const { id } of open) {
    const difference = await findDifference(context.db, id);
    if (!difference || difference.status !== 'open') continue;
    try {
      const closing = await automaticClosing(context, difference);
      if (!closing) continue;
      await close(context, id, closing);
      resolved += 1;
    } catch (error) {
      // A channel that cannot be reached now is asked again on the next run; the difference stays open.
      if (!(error instanceof FenError)) throw error;
      context.logger.warn({ difference_id: id, code: error.code }, 'automatic resolution not possible yet');
    }
  }
  return resolved;
}
