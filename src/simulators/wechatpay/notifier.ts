import type pg from 'pg';
import type { Clock } from '../../platform/clock.js';
import type { Logger } from '../../platform/logging.js';
import { takeFault } from './faults.js';
import { beijingRfc3339, encryptResource, newNotificationId, signedHeaders, withReportedAmount, type PlatformKey } from './protocol.js';
import { findMerchant, type Executor } from './store.js';

/**
 * WeChat Pay's notifications: a JSON envelope whose `resource` is encrypted
 * with the merchant's APIv3 key, signed in the Wechatpay-* headers, POSTed to
 * the notify_url until the reply is HTTP 200 or 204, on WeChat Pay's schedule
 * — 15s, 15s, 30s, 3m, 10m, 20m, 30m, 30m, 30m, 60m, 3h, 3h, 3h, 6h, 6h after
 * the attempts before, about 24 hours in all — compressed by `timeScale` for
 * demos and tests. The schedule lives in the database (a restart resumes it)
 * and `deliverDueNotifications` is one pass of the loop, callable directly.
 *
 * A notification is signed with the simulator's clock, which is what Fen
 * checks it against with its own injected clock; in production both are the
 * real time. (API answers are different: the SDK checks them against the real
 * time, so the server signs those with the real time.)
 */

const secondMs = 1000;
const minuteMs = 60 * secondMs;
const hourMs = 60 * minuteMs;
export const wechatpayRetryDelaysMs = [
  15 * secondMs, 15 * secondMs, 30 * secondMs, 3 * minuteMs, 10 * minuteMs, 20 * minuteMs, 30 * minuteMs, 30 * minuteMs,
  30 * minuteMs, 60 * minuteMs, 3 * hourMs, 3 * hourMs, 3 * hourMs, 6 * hourMs, 6 * hourMs,
];
export const notificationAttemptsMax = wechatpayRetryDelaysMs.length + 1;
/** A notification held back by the reorder fault goes out on its own after this long (scaled), if nothing follows it. */
const heldDurationMaxMs = 10 * minuteMs;
const claimBatchSize = 100;
const replyLengthStoredMax = 200;

export interface NotifierContext {
  pool: pg.Pool;
  clock: Clock;
  timeScale: number;
  platformKey: PlatformKey;
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

/** What a notification says, before it is encrypted for the merchant. */
export interface NotificationContent {
  mchId: string;
  outTradeNo: string;
  notifyUrl: string;
  eventType: 'TRANSACTION.SUCCESS' | 'REFUND.SUCCESS' | 'REFUND.ABNORMAL' | 'REFUND.CLOSED';
  summary: string;
  /** `transaction` or `refund`; also the associated data of the encryption. */
  originalType: 'transaction' | 'refund';
  resource: Record<string, unknown>;
}

// ---------------------------------------------------------------------------
// Scheduling

function scaled(context: NotifierContext, durationMs: number): number {
  return Math.max(1, Math.round(durationMs * context.timeScale));
}

async function insertNotification(executor: Executor, content: NotificationContent, state: 'pending' | 'held', dueAt: Date, now: Date): Promise<void> {
  await executor.query(
    `INSERT INTO sim_wechatpay.notifications (notification_id, mchid, out_trade_no, notify_url, event_type, summary, original_type, resource, state, next_attempt_at, created_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
    [newNotificationId(now), content.mchId, content.outTradeNo, content.notifyUrl, content.eventType, content.summary, content.originalType, JSON.stringify(content.resource), state, dueAt, now],
  );
}

/**
 * Schedules a notification inside the caller's transaction. Faults:
 * `notification_delay` postpones its first attempt; `notification_reorder`
 * holds it back until the order's next notification is scheduled, which then
 * goes out first.
 */
export async function scheduleNotification(executor: Executor, context: NotifierContext, content: NotificationContent): Promise<void> {
  const now = context.clock.now();
  const delay = await takeFault(executor, 'notification_delay', content.outTradeNo);
  const dueAt = new Date(now.getTime() + (delay?.delayMs ?? 0));
  const held = await executor.query<{ id: string }>(
    `SELECT id FROM sim_wechatpay.notifications WHERE mchid = $1 AND out_trade_no = $2 AND state = 'held' ORDER BY id LIMIT 1 FOR UPDATE`,
    [content.mchId, content.outTradeNo],
  );
  if (held.rows[0]) {
    // A millisecond earlier is enough for the newer one to go first, and both are due in the same pass.
    await insertNotification(executor, content, 'pending', new Date(dueAt.getTime() - 1), now);
    await executor.query(`UPDATE sim_wechatpay.notifications SET state = 'pending', next_attempt_at = $2 WHERE id = $1`, [held.rows[0].id, dueAt]);
    return;
  }
  if (await takeFault(executor, 'notification_reorder', content.outTradeNo)) {
    await insertNotification(executor, content, 'held', new Date(dueAt.getTime() + scaled(context, heldDurationMaxMs)), now);
    return;
  }
  await insertNotification(executor, content, 'pending', dueAt, now);
}

interface ClaimedNotification {
  id: number;
  notificationId: string;
  mchId: string;
  outTradeNo: string;
  notifyUrl: string;
  eventType: string;
  summary: string;
  originalType: string;
  resource: Record<string, unknown>;
  attempts: number;
  createdAt: Date;
  dueAt: Date;
}

/** Claims due notifications with a lease, so two simulator processes never send the same attempt. */
async function claimDue(context: NotifierContext): Promise<ClaimedNotification[]> {
  const now = context.clock.now();
  const leaseUntil = new Date(now.getTime() + context.requestTimeoutMs * 2 + 60_000);
  const result = await context.pool.query(
    `WITH due AS (
       SELECT id, next_attempt_at FROM sim_wechatpay.notifications
       WHERE state IN ('pending', 'held') AND next_attempt_at <= $1
       ORDER BY next_attempt_at, id LIMIT $2 FOR UPDATE SKIP LOCKED)
     UPDATE sim_wechatpay.notifications AS n SET next_attempt_at = $3, state = 'pending' FROM due WHERE n.id = due.id
     RETURNING n.*, due.next_attempt_at AS due_at`,
    [now, claimBatchSize, leaseUntil],
  );
  return result.rows
    .map((row: Record<string, unknown>) => ({
      id: Number(row.id),
      notificationId: row.notification_id as string,
      mchId: row.mchid as string,
      outTradeNo: row.out_trade_no as string,
      notifyUrl: row.notify_url as string,
      eventType: row.event_type as string,
      summary: row.summary as string,
      originalType: row.original_type as string,
      resource: row.resource as Record<string, unknown>,
      attempts: Number(row.attempts),
      createdAt: row.created_at as Date,
      dueAt: row.due_at as Date,
    }))
    .sort((left, right) => left.dueAt.getTime() - right.dueAt.getTime() || left.id - right.id);
}

// ---------------------------------------------------------------------------
// Delivery

/** The envelope exactly as posted: the resource encrypted for the merchant, and the JSON text that is signed. */
function notificationBody(notification: ClaimedNotification, resource: Record<string, unknown>, apiV3Key: string): string {
  return JSON.stringify({
    id: notification.notificationId,
    create_time: beijingRfc3339(notification.createdAt),
    resource_type: 'encrypt-resource',
    event_type: notification.eventType,
    summary: notification.summary,
    resource: encryptResource(JSON.stringify(resource), apiV3Key, notification.originalType),
  });
}

type CopyOutcome = { outcome: 'acknowledged' | 'refused' | 'failed'; httpStatus: number | null; reply: string | null };

async function postJson(url: string, body: string, headers: Record<string, string>, timeoutMs: number): Promise<CopyOutcome> {
  try {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'Mozilla/4.0 (Fen WeChat Pay simulator)', ...headers },
      body,
      signal: AbortSignal.timeout(timeoutMs),
    });
    const reply = await response.text();
    // WeChat Pay stops for 200 or 204 only; anything else, whatever the body says, is retried.
    const acknowledged = response.status === 200 || response.status === 204;
    return { outcome: acknowledged ? 'acknowledged' : 'refused', httpStatus: response.status, reply: reply.slice(0, replyLengthStoredMax) };
  } catch (error) {
    return { outcome: 'failed', httpStatus: null, reply: (error as Error).name };
  }
}

async function recordAttempt(context: NotifierContext, notificationId: number, attempt: number, copy: number, outcome: CopyOutcome | 'dropped'): Promise<void> {
  const row = outcome === 'dropped' ? { outcome: 'dropped', httpStatus: null, reply: null } : outcome;
  await context.pool.query(
    `INSERT INTO sim_wechatpay.notification_attempts (notification_id, attempt, copy, attempted_at, outcome, http_status, reply)
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
  const merchant = await findMerchant(context.pool, notification.mchId);
  if (!merchant) throw new Error(`merchant ${notification.mchId} of a notification is gone`);
  const duplicate = await takeFault(context.pool, 'notification_duplicate', notification.outTradeNo);
  const wrongAmount = await takeFault(context.pool, 'wrong_amount', notification.outTradeNo, (fault) => fault.where !== 'answer');
  const resource = wrongAmount ? withReportedAmount(notification.resource, wrongAmount.amountFen) : notification.resource;
  const body = notificationBody(notification, resource, merchant.apiV3Key);
  const headers = signedHeaders(body, context.platformKey, context.clock.now());
  const copies = duplicate?.copies ?? 1;
  const outcomes = await Promise.all(Array.from({ length: copies }, () => postJson(notification.notifyUrl, body, headers, context.requestTimeoutMs)));
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
    await context.pool.query(`UPDATE sim_wechatpay.notifications SET state = 'delivered', attempts = $2, delivered_at = $3 WHERE id = $1`, [notification.id, attempt, now]);
    return;
  }
  const delayMs = wechatpayRetryDelaysMs[attempt - 1];
  if (delayMs === undefined) {
    report.abandoned += 1;
    await context.pool.query(`UPDATE sim_wechatpay.notifications SET state = 'abandoned', attempts = $2 WHERE id = $1`, [notification.id, attempt]);
    context.logger.warn({ outTradeNo: notification.outTradeNo, eventType: notification.eventType, attempts: attempt }, 'wechatpay simulator gave up on a notification');
    return;
  }
  report.retrying += 1;
  const nextAttemptAt = new Date(now.getTime() + scaled(context, delayMs));
  await context.pool.query('UPDATE sim_wechatpay.notifications SET attempts = $2, next_attempt_at = $3 WHERE id = $1', [notification.id, attempt, nextAttemptAt]);
}

/**
 * One pass of the delivery loop: every notification due now, in order within
 * each order (so a reordered pair arrives in the order the fault meant),
 * orders side by side.
 */
export async function deliverDueNotifications(context: NotifierContext): Promise<DeliveryReport> {
  const report: DeliveryReport = { attempted: 0, delivered: 0, retrying: 0, abandoned: 0, requestsSent: 0 };
  for (;;) {
    const claimed = await claimDue(context);
    if (claimed.length === 0) return report;
    const byOrder = new Map<string, ClaimedNotification[]>();
    for (const notification of claimed) {
      const key = `${notification.mchId}/${notification.outTradeNo}`;
      byOrder.set(key, [...(byOrder.get(key) ?? []), notification]);
    }
    await Promise.all(
      [...byOrder.values()].map(async (sequence) => {
        for (const notification of sequence) await deliverOne(context, notification, report);
      }),
    );
    if (claimed.length < claimBatchSize) return report;
  }
}
