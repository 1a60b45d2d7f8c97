import { sql } from 'kysely';
import type { RefundResult } from '../channels/index.js';
import { raiseAlert } from '../monitoring/index.js';
import { recordEvent } from '../notify/index.js';
import { connectorFor, getChannelAccount } from '../routing/index.js';
import type { PlatformContext } from '../platform/context.js';
import type { DbTransaction } from '../platform/db/index.js';
import { FenError } from '../platform/errors.js';
import type { AuthenticatedApp } from '../platform/http/index.js';
import { newId } from '../platform/ids.js';
import { enqueueJob } from '../platform/jobs/index.js';
import { limits } from '../platform/limits.js';
import { prorate } from '../platform/money.js';
import { bookRefund, bookSuspenseRefund, resolveBookingAccounts } from './booking.js';
import { queryDelaySeconds } from './payment-results.js';
import { currencyOf, findPayment, findRefund, refundView, type PaymentRow, type RefundRow } from './payments.repository.js';

/**
 * Refunds: partial and repeated, never more than was paid. The amount is
 * reserved on the payment by one conditional UPDATE before the channel is
 * called (`refunded + refunding + amount <= amount`, checked again by a CHECK
 * constraint), so two racing refunds cannot together exceed the payment.
 */
export const queryRefundTask = 'refunds.query';

export interface CreateRefundInput {
  paymentId: string;
  amount: bigint;
  outRefundNo: string;
  reason: string | null;
}

/** The fee returned with a refund: pro rata, with the last refund taking what is left so the sum is exact. */
export function feeRefundFor(options: { policy: 'pro_rata' | 'kept'; payment: Pick<PaymentRow, 'amount' | 'fee_amount' | 'refunded_amount' | 'refunded_fee_amount'>; refundAmount: bigint }): bigint {
  const { payment, refundAmount } = options;
  if (options.policy === 'kept') return 0n;
  if (payment.refunded_amount + refundAmount === payment.amount) return payment.fee_amount - payment.refunded_fee_amount;
  const share = prorate({ whole: payment.fee_amount, part: refundAmount, total: payment.amount });
  return share > payment.fee_amount - payment.refunded_fee_amount ? payment.fee_amount - payment.refunded_fee_amount : share;
}

async function existingRefund(context: PlatformContext, appId: string, input: CreateRefundInput): Promise<RefundRow | undefined> {
  const existing = await context.db.selectFrom('refunds').selectAll().where('app_id', '=', appId).where('out_refund_no', '=', input.outRefundNo).executeTakeFirst();
  if (!existing) return undefined;
  if (existing.payment_id !== input.paymentId || existing.amount !== input.amount) {
    throw new FenError('out_refund_no_exists', `out_refund_no ${input.outRefundNo} is already used by refund ${existing.id} with other details`, { refund_id: existing.id });
  }
  return existing;
}

async function reserveRefund(context: PlatformContext, payment: PaymentRow, input: CreateRefundInput): Promise<RefundRow> {
  return context.db.transaction().execute(async (trx) => {
    const reserved = await sql<{ id: string }>`
      UPDATE payments SET refunding_amount = refunding_amount + ${input.amount}, updated_at = ${context.clock.now()}
      WHERE id = ${payment.id} AND status = 'succeeded' AND refunded_amount + refunding_amount + ${input.amount} <= amount
      RETURNING id`.execute(trx);
    if (reserved.rows.length === 0) {
      throw new FenError('refund_exceeds_payment', `a refund of ${input.amount} would exceed what is left to refund on payment ${payment.id}`);
    }
    const now = context.clock.now();
    const inserted = await trx
      .insertInto('refunds')
      .values({ id: newId('refund', now.getTime()), merchant_id: payment.merchant_id, app_id: payment.app_id, payment_id: payment.id, out_refund_no: input.outRefundNo, amount: input.amount, currency: payment.currency, reason: input.reason, status: 'processing', source: 'merchant', created_at: now, updated_at: now })
      .onConflict((conflict) => conflict.columns(['app_id', 'out_refund_no']).doNothing())
      .returningAll()
      .executeTakeFirst();
    // Another request with this out_refund_no committed first: throwing undoes this reservation, and createRefund answers with that refund.
    if (!inserted) throw new FenError('out_refund_no_exists', `out_refund_no ${input.outRefundNo} is already used`);
    return inserted;
  });
}

export async function createRefund(context: PlatformContext, app: AuthenticatedApp, input: CreateRefundInput): Promise<RefundRow> {
  const payment = await findPayment(context.db, input.paymentId);
  if (!payment || payment.app_id !== app.appId) throw new FenError('not_found', `no payment ${input.paymentId}`);
  const existing = await existingRefund(context, app.appId, input);
  if (existing) return existing;
  if (payment.status !== 'succeeded') throw new FenError('payment_not_refundable', `payment ${payment.id} is ${payment.status}; only succeeded payments can be refunded`);
  if (input.amount > payment.amount - payment.refunded_amount - payment.refunding_amount) {
    throw new FenError('refund_exceeds_payment', `a refund of ${input.amount} would exceed what is left to refund on payment ${payment.id}`);
  }
  let refund: RefundRow;
  try {
    refund = await reserveRefund(context, payment, input);
  } catch (error) {
    // Two requests with one out_refund_no raced past the check above (a double click, or a retry with a new key):
    // the loser answers with the winner's refund, or out_refund_no_exists when its details differ — never a 500
    // from the unique index (found by test/integration/faults-database.test.ts).
    const raced = error instanceof FenError && (error.code === 'out_refund_no_exists' || error.code === 'refund_exceeds_payment');
    const twin = raced ? await existingRefund(context, app.appId, input) : undefined;
    if (twin) return twin;
    throw error;
  }
  return sendRefund(context, refund, payment);
}

async function sendRefund(context: PlatformContext, refund: RefundRow, payment: PaymentRow): Promise<RefundRow> {
  const account = await getChannelAccount(context, payment.channel_account_id ?? '');
  const result = await connectorFor(context, account).refund({
    outTradeNo: payment.id,
    ...(payment.channel_trade_no ? { channelTradeNo: payment.channel_trade_no } : {}),
    outRefundNo: refund.id,
    refundAmount: { amount: refund.amount, currency: currencyOf(refund) },
    paymentAmount: { amount: payment.amount, currency: currencyOf(payment) },
    ...(refund.reason ? { reason: refund.reason } : {}),
  });
  return applyRefundResult(context, refund.id, result);
}

async function finishRefund(trx: DbTransaction, context: PlatformContext, refund: RefundRow, outcome: { status: 'succeeded' | 'failed'; channelRefundNo: string | null; failure?: { code: string; message: string } }): Promise<RefundRow | undefined> {
  const now = context.clock.now();
  return trx
    .updateTable('refunds')
    .set({
      status: outcome.status,
      channel_refund_no: outcome.channelRefundNo,
      succeeded_at: outcome.status === 'succeeded' ? now : null,
      failure_code: outcome.failure?.code ?? null,
      failure_message: outcome.failure?.message ?? null,
      updated_at: now,
    })
    .where('id', '=', refund.id)
    .where('status', '=', 'processing')
    .returningAll()
    .executeTakeFirst();
}

async function refundSucceeded(context: PlatformContext, refund: RefundRow, channelRefundNo: string | null): Promise<void> {
  const payment = await findPayment(context.db, refund.payment_id);
  if (!payment) throw new Error(`refund ${refund.id} without payment`);
  const accounts = await resolveBookingAccounts(context, { merchantId: refund.merchant_id, channelAccountId: payment.channel_account_id ?? '', currency: currencyOf(refund) });
  await context.db.transaction().execute(async (trx) => {
    const locked = await findPayment(trx, refund.payment_id, { forUpdate: true });
    if (!locked) return;
    const done = await finishRefund(trx, context, refund, { status: 'succeeded', channelRefundNo });
    if (!done) return;
    const mode = locked.account_mode ?? 'shared';
    if (done.source === 'exception') {
      await bookSuspenseRefund(trx, context, accounts, { refundId: done.id, merchantId: done.merchant_id, currency: currencyOf(done), amount: done.amount, mode });
      await trx.updateTable('payment_exceptions').set({ status: 'refunded', updated_at: context.clock.now() }).where('refund_id', '=', done.id).execute();
      return;
    }
    const feeRefund = feeRefundFor({ policy: context.config.refundFeePolicy, payment: locked, refundAmount: done.amount });
    await trx
      .updateTable('payments')
      .set((eb) => ({ refunding_amount: eb('refunding_amount', '-', done.amount), refunded_amount: eb('refunded_amount', '+', done.amount), refunded_fee_amount: eb('refunded_fee_amount', '+', feeRefund), updated_at: context.clock.now() }))
      .where('id', '=', locked.id)
      .execute();
    await trx.updateTable('refunds').set({ fee_refund_amount: feeRefund }).where('id', '=', done.id).execute();
    await bookRefund(trx, context, accounts, { refundId: done.id, merchantId: done.merchant_id, currency: currencyOf(done), amount: done.amount, feeRefund, mode });
    await recordEvent(trx, context.clock, { merchantId: done.merchant_id, appId: done.app_id, type: 'refund.succeeded', objectId: done.id, data: refundView({ ...done, fee_refund_amount: feeRefund }), notifyUrl: locked.notify_url });
  });
}

async function refundFailed(context: PlatformContext, refund: RefundRow, failure: { code: string; message: string }): Promise<void> {
  await context.db.transaction().execute(async (trx) => {
    const payment = await findPayment(trx, refund.payment_id, { forUpdate: true });
    const done = await finishRefund(trx, context, refund, { status: 'failed', channelRefundNo: null, failure });
    if (!done || !payment) return;
    if (done.source === 'exception') {
      await trx.updateTable('payment_exceptions').set({ status: 'open', refund_id: null, updated_at: context.clock.now() }).where('refund_id', '=', done.id).execute();
      return;
    }
    // The reservation is released: the amount can be refunded again.
    await trx.updateTable('payments').set((eb) => ({ refunding_amount: eb('refunding_amount', '-', done.amount), updated_at: context.clock.now() })).where('id', '=', payment.id).execute();
    await recordEvent(trx, context.clock, { merchantId: done.merchant_id, appId: done.app_id, type: 'refund.failed', objectId: done.id, data: refundView(done), notifyUrl: payment.notify_url });
  });
}

export async function scheduleRefundQuery(context: PlatformContext, refundId: string, attempt: number): Promise<void> {
  if (attempt >= limits.channelQueryAttemptsMax) return;
  const runAt = new Date(context.clock.now().getTime() + queryDelaySeconds(attempt) * 1000);
  await enqueueJob(context.db, { task: queryRefundTask, payload: { refund_id: refundId, attempt }, runAt, jobKey: `refund-query:${refundId}` });
}

/** Applies a channel's answer about a refund; unknown and pending answers are asked again later. */
export async function applyRefundResult(context: PlatformContext, refundId: string, result: RefundResult, attempt = 0): Promise<RefundRow> {
  const refund = await findRefund(context.db, refundId);
  if (!refund) throw new Error(`no refund ${refundId}`);
  if (refund.status !== 'processing') return refund;
  switch (result.status) {
    case 'succeeded':
      await refundSucceeded(context, refund, result.facts.channelRefundNo ?? null);
      break;
    case 'failed':
      await refundFailed(context, refund, { code: `channel_${result.channelCode}`.slice(0, 64), message: result.message });
      break;
    case 'not_found':
      await refundFailed(context, refund, { code: 'not_found_at_channel', message: 'the channel has no such refund' });
      break;
    case 'amount_mismatch':
      await raiseAlert(context.db, context.clock, { kind: 'amount_mismatch', severity: 'critical', merchantId: refund.merchant_id, subjectId: refund.id, message: `channel reported refund ${refund.id} as ${result.reported.amount} instead of ${refund.amount}` });
      await scheduleRefundQuery(context, refund.id, attempt);
      break;
    case 'pending':
    case 'unknown':
      await scheduleRefundQuery(context, refund.id, attempt);
      break;
  }
  return (await findRefund(context.db, refundId)) ?? refund;
}

export async function queryRefund(context: PlatformContext, refundId: string, attempt: number): Promise<RefundRow | undefined> {
  const refund = await findRefund(context.db, refundId);
  if (!refund || refund.status !== 'processing') return refund;
  const payment = await findPayment(context.db, refund.payment_id);
  if (!payment?.channel_account_id) return refund;
  const account = await getChannelAccount(context, payment.channel_account_id);
  const result = await connectorFor(context, account).queryRefund({
    outTradeNo: payment.id,
    ...(payment.channel_trade_no ? { channelTradeNo: payment.channel_trade_no } : {}),
    outRefundNo: refund.id,
    expected: { amount: refund.amount, currency: currencyOf(refund) },
  });
  return applyRefundResult(context, refundId, result, attempt + 1);
}

/**
 * Refunds the money of an exception (paid after close, duplicate payment, wrong
 * amount) back to the payer from suspense. Claimed by one conditional UPDATE,
 * so the job and an operator cannot both start it.
 */
export async function refundException(context: PlatformContext, exceptionId: string): Promise<RefundRow | undefined> {
  const refundId = newId('refund', context.clock.now().getTime());
  const claimed = await context.db.transaction().execute(async (trx) => {
    const exception = await trx
      .updateTable('payment_exceptions')
      .set({ status: 'refunding', refund_id: refundId, updated_at: context.clock.now() })
      .where('id', '=', exceptionId)
      .where('status', '=', 'open')
      .returningAll()
      .executeTakeFirst();
    if (!exception) return undefined;
    const payment = await findPayment(trx, exception.payment_id);
    if (!payment) return undefined;
    const now = context.clock.now();
    const refund = await trx
      .insertInto('refunds')
      .values({ id: refundId, merchant_id: exception.merchant_id, app_id: payment.app_id, payment_id: payment.id, out_refund_no: `exception:${exception.id}`, amount: exception.amount, currency: exception.currency, reason: `automatic refund of ${exception.kind}`, status: 'processing', source: 'exception', created_at: now, updated_at: now })
      .returningAll()
      .executeTakeFirstOrThrow();
    return { refund, payment, channelTradeNo: exception.channel_trade_no };
  });
  if (!claimed) return undefined;
  const account = await getChannelAccount(context, claimed.payment.channel_account_id ?? '');
  const result = await connectorFor(context, account).refund({
    outTradeNo: claimed.payment.id,
    channelTradeNo: claimed.channelTradeNo,
    outRefundNo: claimed.refund.id,
    refundAmount: { amount: claimed.refund.amount, currency: currencyOf(claimed.refund) },
    paymentAmount: { amount: claimed.refund.amount, currency: currencyOf(claimed.refund) },
    reason: claimed.refund.reason ?? 'exception refund',
  });
  return applyRefundResult(context, claimed.refund.id, result);
}
