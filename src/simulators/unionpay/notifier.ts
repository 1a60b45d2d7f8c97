import type { KeyObject } from 'node:crypto';
import {
  deliverDue,
  postNotification,
  recordDroppedAttempt,
  sendCopies,
  type AttemptResult,
  type ClaimedNotification,
  type CopyOutcome,
  type DeliveryChannel,
  type DeliveryContext,
  type DeliveryReport,
} from '../shared/notification-delivery.js';
import { takeFault } from './faults.js';
import { acpVersion, maskedTestCard, respFields, signedMessage, type SimRespCode } from './protocol.js';
import { simulatorSchema, type Executor, type SimTransaction } from './store.js';

/**
 * UnionPay's back notifications (后台通知): a signed form POST to the
 * transaction's backUrl once it has succeeded — UnionPay notifies successes
 * only — repeated until the merchant answers HTTP 200. UnionPay promises no
 * exact schedule in the ACP specification; it re-sends a handful of times with
 * growing gaps, which this simulator does as 1, 2, 4, 8 and 16 minutes after
 * the first attempt (six attempts, about half an hour), compressed by
 * `timeScale` for demos and tests. The schedule lives in the database (a
 * restart resumes it) and `deliverDueNotifications` is one pass of the loop,
 * callable directly.
 */

export const unionpayRetryDelaysMs = [1, 2, 4, 8, 16].map((minutes) => minutes * 60_000);
export const notificationAttemptsMax = unionpayRetryDelaysMs.length + 1;

export interface UnionpaySigner {
  certificatePem: string;
  privateKey: KeyObject;
}

export interface NotifierContext extends DeliveryContext {
  signer: UnionpaySigner;
}

export type { DeliveryReport };

// ---------------------------------------------------------------------------
// What a notification (and a query answer) says about a transaction

/** The fields UnionPay reports for a transaction, without the signing fields; empty values are left out. */
export function transactionFields(transaction: SimTransaction, resultCode: SimRespCode | null): Record<string, string> {
  const succeeded = transaction.status === 'succeeded';
  const fields: Record<string, string | null | undefined> = {
    version: acpVersion,
    encoding: 'UTF-8',
    bizType: transaction.bizType,
    txnType: transaction.txnType,
    txnSubType: transaction.txnSubType,
    channelType: transaction.channelType,
    accessType: '0',
    merId: transaction.merId,
    orderId: transaction.orderId,
    txnTime: transaction.txnTime,
    txnAmt: transaction.txnFen.toString(),
    currencyCode: transaction.currencyCode,
    queryId: transaction.queryId,
    origQryId: transaction.origQueryId,
    traceNo: transaction.traceNo,
    traceTime: transaction.traceTime,
    settleAmt: succeeded ? transaction.txnFen.toString() : undefined,
    settleCurrencyCode: succeeded ? transaction.currencyCode : undefined,
    settleDate: transaction.settleDate,
    reqReserved: transaction.reqReserved,
    accNo: succeeded && transaction.txnType === '01' ? maskedTestCard : undefined,
    payCardType: succeeded && transaction.txnType === '01' ? '01' : undefined,
    ...(resultCode ? respFields(resultCode) : {}),
  };
  return Object.fromEntries(Object.entries(fields).filter((entry): entry is [string, string] => typeof entry[1] === 'string' && entry[1] !== ''));
}

/** The same fields reporting another amount (a fault), consistently in every amount field. */
export function withReportedAmount(fields: Record<string, string>, txnAmt: string): Record<string, string> {
  return { ...fields, txnAmt, ...(fields.settleAmt !== undefined ? { settleAmt: txnAmt } : {}) };
}

// ---------------------------------------------------------------------------
// Scheduling

/**
 * Schedules the back notification for a transaction that has just succeeded,
 * inside the caller's transaction. Faults: `notification_delay` postpones the
 * first attempt; `notification_reorder` holds a payment's notification until
 * the payment's next notification (its refund's) is scheduled, and then lets
 * it go right after that one.
 */
export async function scheduleNotification(executor: Executor, context: NotifierContext, transaction: SimTransaction): Promise<void> {
  if (!transaction.backUrl || transaction.status !== 'succeeded') return;
  const now = context.clock.now();
  const delay = await takeFault(executor, 'notification_delay', transaction.orderId);
  const dueAt = new Date(now.getTime() + (delay?.delayMs ?? 0));
  const groupQueryId = transaction.origQueryId ?? transaction.queryId;
  const held = transaction.txnType === '01' && (await takeFault(executor, 'notification_reorder', transaction.orderId)) !== undefined;
  let ownDueAt = dueAt;
  if (!held) {
    const released = await executor.query(
      `UPDATE sim_unionpay.notifications SET state = 'pending', next_attempt_at = $2 WHERE group_query_id = $1 AND state = 'held'`,
      [groupQueryId, dueAt],
    );
    // Released notifications go right after this one: it is due a millisecond before them.
    if ((released.rowCount ?? 0) > 0) ownDueAt = new Date(dueAt.getTime() - 1);
  }
  await executor.query(
    `INSERT INTO sim_unionpay.notifications (query_id, group_query_id, order_id, back_url, fields, state, next_attempt_at, created_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
    [transaction.queryId, groupQueryId, transaction.orderId, transaction.backUrl, JSON.stringify(transactionFields(transaction, '00')), held ? 'held' : 'pending', ownDueAt, now],
  );
}

// ---------------------------------------------------------------------------
// Delivery: what UnionPay sends and when it counts as received; the loop itself is ../shared/notification-delivery.ts.

interface UnionpayNotification extends ClaimedNotification {
  groupQueryId: string;
  orderId: string;
  backUrl: string;
  fields: Record<string, string>;
}

async function postForm(url: string, form: Record<string, string>, timeoutMs: number): Promise<CopyOutcome> {
  const request = { headers: { 'content-type': 'application/x-www-form-urlencoded; charset=UTF-8' }, body: new URLSearchParams(form).toString() };
  // UnionPay stops on HTTP 200, whatever the body says; anything else is retried.
  return postNotification(url, request, timeoutMs, (httpStatus) => httpStatus === 200);
}

/** One attempt of one notification, with its faults; returns whether it was acknowledged and how many requests went out. */
async function attemptDelivery(context: NotifierContext, notification: UnionpayNotification, attempt: number): Promise<AttemptResult> {
  const target = { notificationId: notification.id, attempt };
  if (await takeFault(context.pool, 'notification_drop', notification.orderId)) return recordDroppedAttempt(context, simulatorSchema, target);
  const duplicate = await takeFault(context.pool, 'notification_duplicate', notification.orderId);
  const wrongAmount = await takeFault(context.pool, 'wrong_amount', notification.orderId, (fault) => fault.where !== 'query');
  const fields = wrongAmount ? withReportedAmount(notification.fields, wrongAmount.txnAmt) : notification.fields;
  const form = signedMessage(fields, context.signer);
  return sendCopies(context, simulatorSchema, target, duplicate?.copies ?? 1, () => postForm(notification.backUrl, form, context.requestTimeoutMs));
}

const unionpayDelivery: DeliveryChannel<NotifierContext, UnionpayNotification> = {
  name: 'unionpay',
  schema: simulatorSchema,
  retryDelaysMs: unionpayRetryDelaysMs,
  // Held notifications wait for their payment's next one to release them; they never go out on their own.
  claimableStates: ['pending'],
  columns: ['group_query_id', 'order_id', 'back_url', 'fields'],
  fromRow: (row, claimed) => ({
    ...claimed,
    groupQueryId: row.group_query_id as string,
    orderId: row.order_id as string,
    backUrl: row.back_url as string,
    fields: row.fields as Record<string, string>,
  }),
  // A payment and its refunds form one sequence, so a reordered pair arrives in the order the fault meant.
  sequenceKey: (notification) => notification.groupQueryId,
  attempt: attemptDelivery,
  describe: (notification) => ({ orderId: notification.orderId }),
};

/**
 * One pass of the delivery loop: every notification due now, in order within
 * each payment (its own and its refunds', so a reordered pair arrives in the
 * order the fault meant), payments side by side.
 */
export async function deliverDueNotifications(context: NotifierContext): Promise<DeliveryReport> {
  return deliverDue(context, unionpayDelivery);
}
