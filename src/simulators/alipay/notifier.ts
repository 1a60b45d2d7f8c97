import type pg from 'pg';
import type { Clock } from '../../platform/clock.js';
import type { Logger } from '../../platform/logging.js';
import { takeFault } from './faults.js';
import { beijingTime, newNotifyId, notificationSignContent, signRsa2, signTypeRsa2, yuanFromFen } from './protocol.js';
import type { Executor, SimApp, SimTrade, SimTradeStatus } from './store.js';

/**
 * Alipay's asynchronous notifications (trade_status_sync): a signed form POST
 * to the order's notify_url, repeated until the reply body is exactly
 * `success`, on Alipay's schedule — 4m, 10m, 10m, 1h, 2h, 6h, 15h after the
 * first attempt, about 25 hours in all — compressed by `timeScale` for demos
 * and tests. The schedule lives in the database (a restart resumes it) and
 * `deliverDueNotifications` is one pass of the loop, callable directly.
 */

export const alipayRetryDelaysMs = [4, 10, 10, 60, 120, 360, 900].map((minutes) => minutes * 60_000);
export const notificationAttemptsMax = alipayRetryDelaysMs.length + 1;
const claimBatchSize = 100;
const replyLengthStoredMax = 200;

export interface NotifierContext {
  pool: pg.Pool;
  clock: Clock;
  timeScale: number;
  signingPrivateKeyPem: string;
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
// What a notification says

/** The notification's fields for a trade in a given state; empty values are left out, as Alipay does. */
export function tradeNotificationFields(trade: SimTrade, app: SimApp, tradeStatus: SimTradeStatus, notifyId: string): Record<string, string> {
  const paid = tradeStatus === 'TRADE_SUCCESS' || tradeStatus === 'TRADE_FINISHED' || (tradeStatus === 'TRADE_CLOSED' && trade.paidAt !== null);
  const total = yuanFromFen(trade.totalFen);
  const fields: Record<string, string | null | undefined> = {
    notify_type: 'trade_status_sync',
    notify_id: notifyId,
    app_id: trade.appId,
    auth_app_id: trade.appId,
    charset: 'utf-8',
    version: '1.0',
    sign_type: signTypeRsa2,
    trade_no: trade.tradeNo,
    out_trade_no: trade.outTradeNo,
    trade_status: tradeStatus,
    total_amount: total,
    receipt_amount: paid ? total : undefined,
    invoice_amount: paid ? total : undefined,
    buyer_pay_amount: paid ? total : undefined,
    point_amount: paid ? '0.00' : undefined,
    subject: trade.subject,
    body: trade.body,
    gmt_create: beijingTime(trade.createdAt),
    gmt_payment: paid && trade.paidAt ? beijingTime(trade.paidAt) : undefined,
    gmt_close: tradeStatus === 'TRADE_CLOSED' && trade.closedAt ? beijingTime(trade.closedAt) : undefined,
    buyer_id: paid ? trade.buyerId : undefined,
    buyer_logon_id: paid ? trade.buyerLogonId : undefined,
    seller_id: app.sellerId,
    seller_email: app.sellerEmail,
    // A JSON string inside the form, with Alipay's camelCase key, as on the wire.
    fund_bill_list: paid ? JSON.stringify([{ amount: total, fundChannel: 'ALIPAYACCOUNT' }]) : undefined,
  };
  return Object.fromEntries(Object.entries(fields).filter((entry): entry is [string, string] => typeof entry[1] === 'string' && entry[1] !== ''));
}

/** The form exactly as posted: the fields, the attempt's notify_time, and the RSA2 signature. */
export function signedNotificationForm(fields: Record<string, string>, now: Date, privateKeyPem: string): Record<string, string> {
  const withTime = { ...fields, notify_time: beijingTime(now) };
  return { ...withTime, sign: signRsa2(notificationSignContent(withTime), privateKeyPem) };
}

function withReportedTotal(fields: Record<string, string>, totalAmount: string): Record<string, string> {
  const changed: Record<string, string> = { ...fields, total_amount: totalAmount };
  for (const name of ['receipt_amount', 'invoice_amount', 'buyer_pay_amount'] as const) {
    if (changed[name] !== undefined) changed[name] = totalAmount;
  }
  if (changed.fund_bill_list !== undefined) changed.fund_bill_list = JSON.stringify([{ amount: totalAmount, fundChannel: 'ALIPAYACCOUNT' }]);
  return changed;
}

// ---------------------------------------------------------------------------
// Scheduling

/**
 * Schedules the notification for a trade's new state, inside the caller's
 * transaction. Faults: `notification_delay` postpones the first attempt;
 * `notification_reorder` (on payment) adds a stale WAIT_BUYER_PAY after the
 * TRADE_SUCCESS, so the later state arrives first.
 */
export async function scheduleTradeNotification(executor: Executor, context: NotifierContext, trade: SimTrade, app: SimApp): Promise<void> {
  if (!trade.notifyUrl) return;
  const now = context.clock.now();
  const delay = await takeFault(executor, 'notification_delay', trade.outTradeNo);
  const dueAt = new Date(now.getTime() + (delay?.delayMs ?? 0));
  const statuses: SimTradeStatus[] = [trade.status];
  if (trade.status === 'TRADE_SUCCESS' && (await takeFault(executor, 'notification_reorder', trade.outTradeNo))) statuses.push('WAIT_BUYER_PAY');
  for (const status of statuses) {
    const notifyId = newNotifyId(now);
    await executor.query(
      `INSERT INTO sim_alipay.notifications (notify_id, trade_no, out_trade_no, notify_url, trade_status, fields, state, next_attempt_at, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $8)`,
      [notifyId, trade.tradeNo, trade.outTradeNo, trade.notifyUrl, status, JSON.stringify(tradeNotificationFields(trade, app, status, notifyId)), dueAt, now],
    );
  }
}

interface ClaimedNotification {
  id: number;
  outTradeNo: string;
  notifyUrl: string;
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
       SELECT id, next_attempt_at FROM sim_alipay.notifications
       WHERE state = 'pending' AND next_attempt_at <= $1
       ORDER BY next_attempt_at, id LIMIT $2 FOR UPDATE SKIP LOCKED)
     UPDATE sim_alipay.notifications AS n SET next_attempt_at = $3 FROM due WHERE n.id = due.id
     RETURNING n.id, n.out_trade_no, n.notify_url, n.fields, n.attempts, due.next_attempt_at AS due_at`,
    [now, claimBatchSize, leaseUntil],
  );
  return result.rows
    .map((row: Record<string, unknown>) => ({
      id: Number(row.id),
      outTradeNo: row.out_trade_no as string,
      notifyUrl: row.notify_url as string,
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
      headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' },
      body: new URLSearchParams(form).toString(),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const reply = await response.text();
    // Alipay stops only for a reply of exactly "success"; anything else is retried.
    return { outcome: reply === 'success' ? 'acknowledged' : 'refused', httpStatus: response.status, reply: reply.slice(0, replyLengthStoredMax) };
  } catch (error) {
    return { outcome: 'failed', httpStatus: null, reply: (error as Error).name };
  }
}

async function recordAttempt(context: NotifierContext, notificationId: number, attempt: number, copy: number, outcome: CopyOutcome | 'dropped'): Promise<void> {
  const row = outcome === 'dropped' ? { outcome: 'dropped', httpStatus: null, reply: null } : outcome;
  await context.pool.query(
    `INSERT INTO sim_alipay.notification_attempts (notification_id, attempt, copy, attempted_at, outcome, http_status, reply)
     VALUES ($1, $2, $3, $4, $5, $6, $7)`,
    [notificationId, attempt, copy, context.clock.now(), row.outcome, row.httpStatus, row.reply],
  );
}

/** One attempt of one notification, with its faults; returns whether it was acknowledged and how many requests went out. */
async function attemptDelivery(context: NotifierContext, notification: ClaimedNotification, attempt: number): Promise<{ acknowledged: boolean; requests: number }> {
  if (await takeFault(context.pool, 'notification_drop', notification.outTradeNo)) {
    await recordAttempt(context, notification.id, attempt, 1, 'dropped');
    return { acknowledged: false, requests: 0 };
  }
  const duplicate = await takeFault(context.pool, 'notification_duplicate', notification.outTradeNo);
  const wrongAmount = await takeFault(context.pool, 'wrong_amount', notification.outTradeNo, (fault) => fault.where !== 'query');
  const fields = wrongAmount ? withReportedTotal(notification.fields, wrongAmount.totalAmount) : notification.fields;
  const form = signedNotificationForm(fields, context.clock.now(), context.signingPrivateKeyPem);
  const copies = duplicate?.copies ?? 1;
  const outcomes = await Promise.all(Array.from({ length: copies }, () => postForm(notification.notifyUrl, form, context.requestTimeoutMs)));
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
    await context.pool.query(`UPDATE sim_alipay.notifications SET state = 'delivered', attempts = $2, delivered_at = $3 WHERE id = $1`, [notification.id, attempt, now]);
    return;
  }
  const delayMs = alipayRetryDelaysMs[attempt - 1];
  if (delayMs === undefined) {
    report.abandoned += 1;
    await context.pool.query(`UPDATE sim_alipay.notifications SET state = 'abandoned', attempts = $2 WHERE id = $1`, [notification.id, attempt]);
    context.logger.warn({ outTradeNo: notification.outTradeNo, attempts: attempt }, 'alipay simulator gave up on a notification');
    return;
  }
  report.retrying += 1;
  const nextAttemptAt = new Date(now.getTime() + Math.max(1, Math.round(delayMs * context.timeScale)));
  await context.pool.query('UPDATE sim_alipay.notifications SET attempts = $2, next_attempt_at = $3 WHERE id = $1', [notification.id, attempt, nextAttemptAt]);
}

/**
 * One pass of the delivery loop: every notification due now, in order within
 * each trade (so a reordered pair arrives in the order the fault meant), trades
 * side by side.
 */
export async function deliverDueNotifications(context: NotifierContext): Promise<DeliveryReport> {
  const report: DeliveryReport = { attempted: 0, delivered: 0, retrying: 0, abandoned: 0, requestsSent: 0 };
  for (;;) {
    const claimed = await claimDue(context);
    if (claimed.length === 0) return report;
    const byTrade = new Map<string, ClaimedNotification[]>();
    for (const notification of claimed) byTrade.set(notification.outTradeNo, [...(byTrade.get(notification.outTradeNo) ?? []), notification]);
    await Promise.all(
      [...byTrade.values()].map(async (sequence) => {
        for (const notification of sequence) await deliverOne(context, notification, report);
      }),
    );
    if (claimed.length < claimBatchSize) return report;
  }
}
