import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import type { Clock } from '../../platform/clock.js';
import { scheduleNotification, type NotifierContext } from './notifier.js';
import { acpError, newQueryId, newTraceNo, respMessages, settleDateOf, traceTimeOf, type AcpError } from './protocol.js';
import { findTransaction, insertTransaction, updateTransaction, withTransaction, type SimTransaction, type TransactionChange } from './store.js';

/**
 * The life of simulated transactions, shared by the gateway and the payer's
 * pages: a consumption order made by the payer's browser (idempotent per
 * orderId + txnTime), paid, cancelled or timed out on the payer page; and
 * refunds against a paid order, partial and repeated up to its amount. Every
 * change is one conditional update in a database transaction together with
 * the notification it causes.
 */

export interface TransactionContext {
  pool: pg.Pool;
  clock: Clock;
  notifier: NotifierContext;
}

export interface ConsumeOrder {
  merId: string;
  orderId: string;
  txnTime: string;
  txnSubType: string;
  bizType: string;
  channelType: string;
  txnFen: bigint;
  currencyCode: string;
  commodityName: string | null;
  backUrl: string | null;
  frontUrl: string | null;
  reqReserved: string | null;
  payTimeoutAt: Date | null;
}

export function newPayerToken(): string {
  return randomBytes(12).toString('hex');
}

/** Why a failed consumption failed, in the words of origRespMsg. */
const failureDetails = {
  cancelled: '持卡人取消 the payer cancelled',
  timedOut: '订单已超时 the order passed payTimeout',
} as const;

function failed(now: Date, detail: string): TransactionChange {
  return { status: 'failed', resultCode: '01', resultMessage: `${respMessages['01']} ${detail}`, completedAt: now, traceTime: traceTimeOf(now) };
}

/**
 * Creates the order or finds the one with the same orderId and txnTime. A
 * repeat with the same amount is the same order (the payer's browser posted
 * the form again); a different one is UnionPay's 12, a duplicate transaction.
 */
export async function createOrFindOrder(context: TransactionContext, order: ConsumeOrder): Promise<SimTransaction | AcpError> {
  const now = context.clock.now();
  const { transaction, created } = await insertTransaction(context.pool, {
    ...order,
    queryId: newQueryId(now),
    txnType: '01',
    status: 'waiting',
    resultCode: null,
    resultMessage: null,
    origQueryId: null,
    payerToken: newPayerToken(),
    traceNo: newTraceNo(),
    traceTime: null,
    settleDate: null,
    createdAt: now,
  });
  if (created) return transaction;
  if (transaction.txnType !== '01' || transaction.txnFen !== order.txnFen || transaction.currencyCode !== order.currencyCode) {
    return acpError('12', 'an order with this orderId and txnTime exists with other details');
  }
  return expireIfDue(context, transaction);
}

/** Fails a waiting order whose payTimeout has passed (lazily, when someone looks at it). */
export async function expireIfDue(context: TransactionContext, transaction: SimTransaction): Promise<SimTransaction> {
  const now = context.clock.now();
  if (transaction.status !== 'waiting' || transaction.payTimeoutAt === null || now.getTime() < transaction.payTimeoutAt.getTime()) return transaction;
  return (await changeTransaction(context, transaction, failed(now, failureDetails.timedOut))) ?? reload(context.pool, transaction);
}

async function reload(pool: pg.Pool, transaction: SimTransaction): Promise<SimTransaction> {
  const current = await findTransaction(pool, { queryId: transaction.queryId });
  if (!current) throw new Error(`transaction ${transaction.queryId} vanished`);
  return current;
}

/** One conditional state change plus its notification (successes only, as UnionPay), in one database transaction. */
async function changeTransaction(context: TransactionContext, transaction: SimTransaction, change: TransactionChange): Promise<SimTransaction | undefined> {
  const changed = await withTransaction(context.pool, async (client) => {
    const updated = await updateTransaction(client, transaction.queryId, transaction.status, change);
    if (updated) await scheduleNotification(client, context.notifier, updated);
    return updated;
  });
  // Only now is the notification committed, so only now can a delivery pass see it.
  if (changed) context.notifier.onScheduled?.();
  return changed;
}

/** The payer pressed Pay: succeeded, with UnionPay's trace time and settlement date, and a notification on its way. */
export async function payOrder(context: TransactionContext, transaction: SimTransaction): Promise<SimTransaction> {
  const current = await expireIfDue(context, transaction);
  if (current.status !== 'waiting') return current;
  const now = context.clock.now();
  const paid = await changeTransaction(context, current, {
    status: 'succeeded',
    resultCode: '00',
    resultMessage: respMessages['00'],
    traceTime: traceTimeOf(now),
    settleDate: settleDateOf(now),
    completedAt: now,
  });
  return paid ?? reload(context.pool, current);
}

/** The payer pressed Cancel: the order fails (UnionPay sends no notification for a failure). */
export async function cancelOrder(context: TransactionContext, transaction: SimTransaction): Promise<SimTransaction> {
  const current = await expireIfDue(context, transaction);
  if (current.status !== 'waiting') return current;
  return (await changeTransaction(context, current, failed(context.clock.now(), failureDetails.cancelled))) ?? reload(context.pool, current);
}

// ---------------------------------------------------------------------------
// Refunds

export interface RefundOrder {
  merId: string;
  orderId: string;
  txnTime: string;
  txnSubType: string;
  bizType: string;
  channelType: string;
  txnFen: bigint;
  currencyCode: string;
  origQueryId: string;
  backUrl: string | null;
  reqReserved: string | null;
}

export type RefundOutcome = { transaction: SimTransaction; repeated: boolean } | AcpError;

function sameRefund(existing: SimTransaction, refund: RefundOrder): boolean {
  return existing.txnType === '04' && existing.txnFen === refund.txnFen && existing.origQueryId === refund.origQueryId;
}

/**
 * A refund (退货) of part or all of what is left on a paid order. The same
 * orderId and txnTime again is the same refund (answered as before, nothing
 * moves twice); with other details it is 12. The simulator completes a refund
 * at once and notifies it, where UnionPay may take a while.
 */
export async function refundPayment(context: TransactionContext, refund: RefundOrder): Promise<RefundOutcome> {
  const now = context.clock.now();
  return withTransaction(context.pool, async (client): Promise<RefundOutcome> => {
    // Locking the original first serializes refunds of one payment, repeats included.
    const original = await findTransaction(client, { queryId: refund.origQueryId }, true);
    const existing = await findTransaction(client, { merId: refund.merId, orderId: refund.orderId, txnTime: refund.txnTime });
    if (existing) return sameRefund(existing, refund) ? { transaction: existing, repeated: true } : acpError('12', 'a transaction with this orderId and txnTime exists');
    if (!original || original.merId !== refund.merId || original.txnType !== '01' || original.status !== 'succeeded') {
      return acpError('35', 'origQryId names no paid order of this merchant');
    }
    const refundedFen = original.refundedFen + refund.txnFen;
    if (refundedFen > original.txnFen) return acpError('36', `the refund exceeds what is left to refund (${original.txnFen - original.refundedFen} fen)`);
    const { transaction } = await insertTransaction(client, {
      ...refund,
      queryId: newQueryId(now),
      txnType: '04',
      status: 'succeeded',
      resultCode: '00',
      resultMessage: respMessages['00'],
      commodityName: null,
      payerToken: null,
      frontUrl: null,
      payTimeoutAt: null,
      traceNo: newTraceNo(),
      traceTime: traceTimeOf(now),
      settleDate: settleDateOf(now),
      createdAt: now,
    });
    await updateTransaction(client, original.queryId, 'succeeded', { refundedFen });
    await scheduleNotification(client, context.notifier, transaction);
    return { transaction, repeated: false };
  });
}
