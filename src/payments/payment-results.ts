import { sql } from 'kysely';
import type { PaymentStatusResult } from '../channels/index.js';
import { raiseAlert } from '../monitoring/index.js';
import { recordEvent, type EventType } from '../notify/index.js';
import type { PlatformContext } from '../platform/context.js';
import type { DbTransaction } from '../platform/db/index.js';
import { newId } from '../platform/ids.js';
import { enqueueJob } from '../platform/jobs/index.js';
import { limits } from '../platform/limits.js';
import { bookCapture, bookSuspense, resolveBookingAccounts } from './booking.js';
import { decide, type ChannelObservation, type ExceptionKind } from './payment-state.js';
import { currencyOf, findPayment, paymentView, type PaymentRow } from './payments.repository.js';

/**
 * Applying what a channel said (a verified notification, a query answer, a
 * close answer) to a payment. Each change is one conditional UPDATE in a
 * transaction with its journal entry and its event, so a result applied twice,
 * or by two racing notifications, changes the payment once and books once.
 */
export const queryPaymentTask = 'payments.query';
export const exceptionRefundTask = 'payments.exception_refund';

export function observationOf(result: PaymentStatusResult): ChannelObservation {
  switch (result.status) {
    case 'succeeded':
      return { kind: 'succeeded', amount: result.facts.amount.amount, currency: result.facts.amount.currency, channelTradeNo: result.facts.channelTradeNo ?? result.facts.outTradeNo, paidAt: result.facts.paidAt };
    case 'pending':
      return { kind: 'pending' };
    case 'not_found':
      return { kind: 'not_found' };
    case 'failed':
      return result.reason === 'declined' ? { kind: 'failed', channelTradeNo: result.facts.channelTradeNo ?? null, reason: 'declined' } : { kind: 'closed', channelTradeNo: result.facts.channelTradeNo ?? null };
    case 'amount_mismatch':
      // Money reported with another amount is an exception when it says paid; otherwise only suspicious.
      // A "success" of 0.00 moved no money: there is nothing to hold in suspense (an exception
      // holds a positive amount), so it is only suspicious too. Before, it broke the exception's
      // CHECK (amount > 0): every copy of the notification was answered "fail" with an internal
      // error and no alert. Found by test/fuzz/channels-and-cashier.test.ts (FUZZ_SEED=41).
      if (result.reportedStatus === 'succeeded' && result.reported.amount > 0n) {
        return { kind: 'succeeded', amount: result.reported.amount, currency: result.reported.currency, channelTradeNo: result.facts.channelTradeNo ?? result.facts.outTradeNo, paidAt: result.facts.paidAt ?? new Date(0) };
      }
      return { kind: 'unknown', reason: 'amount differs on an unpaid answer' };
    case 'unknown':
      return { kind: 'unknown', reason: result.message };
  }
}

export async function recordPaymentEvent(trx: DbTransaction, context: PlatformContext, payment: PaymentRow, type: EventType): Promise<void> {
  await recordEvent(trx, context.clock, { merchantId: payment.merchant_id, appId: payment.app_id, type, objectId: payment.id, data: paymentView(payment, context.config.publicUrl), notifyUrl: payment.notify_url });
}

async function markSucceeded(context: PlatformContext, payment: PaymentRow, observed: Extract<ChannelObservation, { kind: 'succeeded' }>): Promise<PaymentRow | undefined> {
  const accounts = payment.account_mode === 'shared' || payment.account_mode === 'own'
    ? await resolveBookingAccounts(context, { merchantId: payment.merchant_id, channelAccountId: payment.channel_account_id ?? '', currency: currencyOf(payment) })
    : undefined;
  return context.db.transaction().execute(async (trx) => {
    const updated = await trx
      .updateTable('payments')
      .set({ status: 'succeeded', channel_trade_no: observed.channelTradeNo, paid_at: observed.paidAt, updated_at: context.clock.now() })
      .where('id', '=', payment.id)
      .where('status', 'in', ['created', 'paying'])
      .returningAll()
      .executeTakeFirst();
    if (!updated) return undefined;
    await recordPaymentEvent(trx, context, updated, 'payment.succeeded');
    // The books last: posting locks the shared balance rows (the merchant's, the platform's), held until the commit, so nothing else may run in between.
    if (accounts && updated.account_mode) {
      await bookCapture(trx, context, accounts, { paymentId: updated.id, merchantId: updated.merchant_id, currency: currencyOf(updated), amount: updated.amount, fee: updated.fee_amount, mode: updated.account_mode });
    }
    return updated;
  });
}

/** Ends an open payment without money: closed (by Fen, the payer or expiry) or failed (declined). */
export async function markEnded(context: PlatformContext, paymentId: string, ending: { status: 'closed' | 'failed'; code: string; message: string }): Promise<PaymentRow | undefined> {
  return context.db.transaction().execute(async (trx) => {
    const now = context.clock.now();
    const updated = await trx
      .updateTable('payments')
      .set({ status: ending.status, failure_code: ending.code, failure_message: ending.message, closed_at: now, updated_at: now })
      .where('id', '=', paymentId)
      .where('status', 'in', ['created', 'paying'])
      .returningAll()
      .executeTakeFirst();
    if (updated) await recordPaymentEvent(trx, context, updated, ending.status === 'closed' ? 'payment.closed' : 'payment.failed');
    return updated;
  });
}

const alertSeverity: Record<ExceptionKind, 'warning' | 'critical'> = { paid_after_close: 'warning', duplicate_payment: 'warning', amount_mismatch: 'critical' };

/**
 * Money that must not count as a plain success: recorded once per channel
 * trade, booked to suspense, raised as an alert, and refunded automatically
 * when the platform is set to.
 */
async function recordException(context: PlatformContext, payment: PaymentRow, kind: ExceptionKind, observed: Extract<ChannelObservation, { kind: 'succeeded' }>): Promise<void> {
  const accounts = await resolveBookingAccounts(context, { merchantId: payment.merchant_id, channelAccountId: payment.channel_account_id ?? '', currency: currencyOf(payment) });
  await context.db.transaction().execute(async (trx) => {
    const now = context.clock.now();
    const exceptionId = newId('exception');
    const inserted = await trx
      .insertInto('payment_exceptions')
      .values({ id: exceptionId, merchant_id: payment.merchant_id, payment_id: payment.id, kind, channel_trade_no: observed.channelTradeNo, amount: observed.amount, currency: observed.currency, status: 'open', created_at: now, updated_at: now })
      .onConflict((conflict) => conflict.columns(['payment_id', 'channel_trade_no']).doNothing())
      .returning('id')
      .executeTakeFirst();
    if (!inserted) return;
    await bookSuspense(trx, context, accounts, { exceptionId, merchantId: payment.merchant_id, currency: observed.currency, amount: observed.amount, mode: payment.account_mode ?? 'shared' });
    await raiseAlert(trx, context.clock, { kind, severity: alertSeverity[kind], merchantId: payment.merchant_id, subjectId: payment.id, message: `${kind} on payment ${payment.id}: ${observed.amount} ${observed.currency} in channel trade ${observed.channelTradeNo}`, details: { exception_id: exceptionId, expected_amount: payment.amount, reported_amount: observed.amount } });
    if (kind === 'amount_mismatch') {
      const failed = await trx
        .updateTable('payments')
        .set({ status: 'failed', failure_code: 'amount_mismatch', failure_message: `the channel reported ${observed.amount} ${observed.currency}`, closed_at: now, updated_at: now })
        .where('id', '=', payment.id)
        .where('status', 'in', ['created', 'paying'])
        .returningAll()
        .executeTakeFirst();
      if (failed) await recordPaymentEvent(trx, context, failed, 'payment.failed');
    }
    // A wrong amount needs a person: which amount is true is exactly what is in doubt.
    if (context.config.exceptionAutoRefund && kind !== 'amount_mismatch') {
      await enqueueJob(trx, { task: exceptionRefundTask, payload: { exception_id: exceptionId }, jobKey: `exception-refund:${exceptionId}` });
    }
  });
}

/** The delay before asking a channel again: 5 s, doubling, at most 5 minutes. */
export function queryDelaySeconds(attempt: number): number {
  return Math.min(limits.channelQueryFirstDelaySeconds * 2 ** Math.max(0, attempt), limits.channelQueryDelayMaxSeconds);
}

export async function scheduleQuery(context: PlatformContext, paymentId: string, attempt: number): Promise<void> {
  if (attempt >= limits.channelQueryAttemptsMax) return;
  const runAt = new Date(context.clock.now().getTime() + queryDelaySeconds(attempt) * 1000);
  await enqueueJob(context.db, { task: queryPaymentTask, payload: { payment_id: paymentId, attempt }, runAt, jobKey: `query:${paymentId}` });
}

/** Applies one channel answer; returns the payment as it stands afterwards. */
export async function applyPaymentResult(context: PlatformContext, payment: PaymentRow, result: PaymentStatusResult, options: { attempt?: number } = {}): Promise<PaymentRow> {
  const observed = observationOf(result);
  if (result.status === 'amount_mismatch' && (result.reportedStatus !== 'succeeded' || result.reported.amount <= 0n)) {
    await raiseAlert(context.db, context.clock, { kind: 'amount_mismatch', severity: 'critical', merchantId: payment.merchant_id, subjectId: payment.id, message: `channel reported ${result.reported.amount} for payment ${payment.id} of ${payment.amount}` });
  }
  const decision = decide({ status: payment.status, amount: payment.amount, currency: currencyOf(payment), channelTradeNo: payment.channel_trade_no }, observed);
  switch (decision.action) {
    case 'succeed': {
      const updated = await markSucceeded(context, payment, observed as Extract<ChannelObservation, { kind: 'succeeded' }>);
      // Lost a race with another result: apply this one again to what won.
      if (!updated) return reapply(context, payment.id, result);
      return updated;
    }
    case 'close':
    case 'fail': {
      const ending = decision.action === 'close' ? { status: 'closed' as const, code: 'closed', message: 'closed at the channel' } : { status: 'failed' as const, code: 'declined', message: decision.reason };
      return (await markEnded(context, payment.id, ending)) ?? reapply(context, payment.id, result);
    }
    case 'exception':
      await recordException(context, payment, decision.kind, observed as Extract<ChannelObservation, { kind: 'succeeded' }>);
      return (await findPayment(context.db, payment.id)) ?? payment;
    case 'query_later':
      await scheduleQuery(context, payment.id, options.attempt ?? 0);
      return payment;
    case 'already_applied':
    case 'none':
      return payment;
  }
}

async function reapply(context: PlatformContext, paymentId: string, result: PaymentStatusResult): Promise<PaymentRow> {
  const current = await findPayment(context.db, paymentId);
  if (!current) throw new Error(`payment ${paymentId} vanished`);
  return applyPaymentResult(context, current, result);
}

/** Payments paying for longer than the stale limit, for the minute sweep. */
export async function stalePaymentIds(context: PlatformContext, limit: number): Promise<string[]> {
  const before = new Date(context.clock.now().getTime() - limits.paymentStaleSeconds * 1000);
  const rows = await sql<{ id: string }>`SELECT id FROM payments WHERE status = 'paying' AND updated_at <= ${before} ORDER BY updated_at LIMIT ${limit}`.execute(context.db);
  return rows.rows.map((row) => row.id);
}
