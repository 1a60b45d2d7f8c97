import type { KeyObject } from 'node:crypto';
import type pg from 'pg';
import type { Clock } from '../../platform/clock.js';
import type { Logger } from '../../platform/logging.js';
import { takeFault } from './faults.js';
import { acpVersion, maskedTestCard, respFields, signedMessage, type SimRespCode } from './protocol.js';
import type { Executor, SimTransaction } from './store.js';

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
const claimBatchSize = 100;
const replyLengthStoredMax = 200;

export interface UnionpaySigner {
  certificatePem: string;
  privateKey: KeyObject;
}

export interface NotifierContext {
  pool: pg.Pool;
  clock: Clock;
  timeScale: number;
  signer: UnionpaySigner;
  logger: Logger;
  /** How long one POST may take before it counts as failed. */
  requestTimeoutMs: number;
}

export interface DeliveryReport {
  /** Notifications attempted in this pass. */
  attempted: number;
  delivered: number;
  /** Attempts that failed, were refused or were dropped by a fault, and will be retried. */
  retrying: number;
  abandoned: number;
  /** HTTP requests made (duplicates count each copy). */
  requestsSent: number;
}

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

interface ClaimedNotification {
  id: number;
  groupQueryId: string;
  orderId: string;
  backUrl: string;
  fields: Record<string, string>;
  attempts: number;
  dueAt: Date;
}

/** Claims due notifications with a lease, so two simulator processes never send the same attempt. */
async function claimDue(context: NotifierContext): Promise<ClaimedNotification[]> {
  const now = context.clock.now();
  const leaseUntil = new Date(now.getTime() + context.requestTimeoutMs * 2 + 60_000);
  const result = await context.pool.query(
    `WITH due AS (
       SELECT id, next_attempt_at FROM sim_unionpay.notifications
       WHERE state = 'pending' AND next_attempt_at <= $1
       ORDER BY next_attempt_at, id LIMIT $2 FOR UPDATE SKIP LOCKED)
     UPDATE sim_unionpay.notifications AS n SET next_attempt_at = $3 FROM due WHERE n.id = due.id
     RETURNING n.id, n.group_query_id, n.order_id, n.back_url, n.fields, n.attempts, due.next_attempt_at AS due_at`,
    [now, claimBatchSize, leaseUntil],
  );
  return result.rows
    .map((row: Record<string, unknown>) => ({
      id: Number(row.id),
      groupQueryId: row.group_query_id as string,
      orderId: row.order_id as string,
      backUrl: row.back_url as string,
      fields: row.fields as Record<string, string>,
      attempts: Number(row.attempts),
      dueAt: row.due_at as Date,
    }))
    .sort((left, right) => left.dueAt.getTime() - right.dueAt.getTime() || left.id - right.id);
}

// ---------------------------------------------------------------------------
// Delivery

type CopyOutcome = { outcome: 'acknowledged' | 'refused' | 'failed'; httpStatus: number | null; reply: string | null };

async function postForm(url: string, form: Record<string, string>, timeoutMs: number): Promise<CopyOutcome> {
  try {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded; charset=UTF-8' },
      body: new URLSearchParams(form).toString(),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const reply = await response.text();
    // UnionPay stops on HTTP 200, whatever the body says; anything else is retried.
    return { outcome: response.status === 200 ? 'acknowledged' : 'refused', httpStatus: response.status, reply: reply.slice(0, replyLengthStoredMax) };
  } catch (error) {
    return { outcome: 'failed', httpStatus: null, reply: (error as Error).name };
  }
}

async function recordAttempt(context: NotifierContext, notificationId: number, attempt: number, copy: number, outcome: CopyOutcome | 'dropped'): Promise<void> {
  const row = outcome === 'dropped' ? { outcome: 'dropped', httpStatus: null, reply: null } : outcome;
  await context.pool.query(
    `INSERT INTO sim_unionpay.notification_attempts (notification_id, attempt, copy, attempted_at, outcome, http_status, reply)
     VALUES ($1, $2, $3, $4, $5, $6, $7)`,
    [notificationId, attempt, copy, context.clock.now(), row.outcome, row.httpStatus, row.reply],
  );
}

/** One attempt of one notification, with its faults; returns whether it was acknowledged and how many requests went out. */
async function attemptDelivery(context: NotifierContext, notification: ClaimedNotification, attempt: number): Promise<{ acknowledged: boolean; requests: number }> {
  if (await takeFault(context.pool, 'notification_drop', notification.orderId)) {
    await recordAttempt(context, notification.id, attempt, 1, 'dropped');
    return { acknowledged: false, requests: 0 };
  }
  const duplicate = await takeFault(context.pool, 'notification_duplicate', notification.orderId);
  const wrongAmount = await takeFault(context.pool, 'wrong_amount', notification.orderId, (fault) => fault.where !== 'query');
  const fields = wrongAmount ? withReportedAmount(notification.fields, wrongAmount.txnAmt) : notification.fields;
  const form = signedMessage(fields, context.signer);
  const copies = duplicate?.copies ?? 1;
  const outcomes = await Promise.all(Array.from({ length: copies }, () => postForm(notification.backUrl, form, context.requestTimeoutMs)));
  for (const [index, outcome] of outcomes.entries()) await recordAttempt(context, notification.id, attempt, index + 1, outcome);
  return { acknowledged: outcomes.some((outcome) => outcome.outcome === 'acknowledged'), requests: copies };
}

async function deliverOne(context: NotifierContext, notification: ClaimedNotification, report: DeliveryReport): Promise<void> {
  const attempt = notification.attempts + 1;
  const { acknowledged, requests } = await attemptDelivery(context, notification, attempt);
  report.attempted += 1;
  report.requestsSent += requests;
  const now = context.clock.now();
  if (acknowledged) {
    report.delivered += 1;
    await context.pool.query(`UPDATE sim_unionpay.notifications SET state = 'delivered', attempts = $2, delivered_at = $3 WHERE id = $1`, [notification.id, attempt, now]);
    return;
  }
  const delayMs = unionpayRetryDelaysMs[attempt - 1];
  if (delayMs === undefined) {
    report.abandoned += 1;
    await context.pool.query(`UPDATE sim_unionpay.notifications SET state = 'abandoned', attempts = $2 WHERE id = $1`, [notification.id, attempt]);
    context.logger.warn({ orderId: notification.orderId, attempts: attempt }, 'unionpay simulator gave up on a notification');
    return;
  }
  report.retrying += 1;
  const nextAttemptAt = new Date(now.getTime() + Math.max(1, Math.round(delayMs * context.timeScale)));
  await context.pool.query('UPDATE sim_unionpay.notifications SET attempts = $2, next_attempt_at = $3 WHERE id = $1', [notification.id, attempt, nextAttemptAt]);
}

/**
 * One pass of the delivery loop: every notification due now, in order within
 * each payment (its own and its refunds', so a reordered pair arrives in the
 * order the fault meant), payments side by side.
 */
export async function deliverDueNotifications(context: NotifierContext): Promise<DeliveryReport> {
  const report: DeliveryReport = { attempted: 0, delivered: 0, retrying: 0, abandoned: 0, requestsSent: 0 };
  for (;;) {
    const claimed = await claimDue(context);
    if (claimed.length === 0) return report;
    const byPayment = new Map<string, ClaimedNotification[]>();
    for (const notification of claimed) byPayment.set(notification.groupQueryId, [...(byPayment.get(notification.groupQueryId) ?? []), notification]);
    await Promise.all(
      [...byPayment.values()].map(async (sequence) => {
        for (const notification of sequence) await deliverOne(context, notification, report);
      }),
    );
    if (claimed.length < claimBatchSize) return report;
  }
}
