import {
  deliverDue,
  postNotification,
  recordDroppedAttempt,
  scaledDelayMs,
  sendCopies,
  type AttemptResult,
  type ClaimedNotification,
  type CopyOutcome,
  type DeliveryChannel,
  type DeliveryContext,
  type DeliveryReport,
} from '../shared/notification-delivery.js';
import { takeFault } from './faults.js';
import { beijingRfc3339, encryptResource, newNotificationId, signedHeaders, withReportedAmount, type PlatformKey } from './protocol.js';
import { findMerchant, simulatorSchema, type Executor } from './store.js';

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

export interface NotifierContext extends DeliveryContext {
  platformKey: PlatformKey;
}

export type { DeliveryReport };

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
    await insertNotification(executor, content, 'held', new Date(dueAt.getTime() + scaledDelayMs(heldDurationMaxMs, context.timeScale)), now);
    return;
  }
  await insertNotification(executor, content, 'pending', dueAt, now);
}

// ---------------------------------------------------------------------------
// Delivery: what WeChat Pay sends and when it counts as received; the loop itself is ../shared/notification-delivery.ts.

interface WechatpayNotification extends ClaimedNotification {
  notificationId: string;
  mchId: string;
  outTradeNo: string;
  notifyUrl: string;
  eventType: string;
  summary: string;
  originalType: string;
  resource: Record<string, unknown>;
  createdAt: Date;
}

/** The envelope exactly as posted: the resource encrypted for the merchant, and the JSON text that is signed. */
function notificationBody(notification: WechatpayNotification, resource: Record<string, unknown>, apiV3Key: string): string {
  return JSON.stringify({
    id: notification.notificationId,
    create_time: beijingRfc3339(notification.createdAt),
    resource_type: 'encrypt-resource',
    event_type: notification.eventType,
    summary: notification.summary,
    resource: encryptResource(JSON.stringify(resource), apiV3Key, notification.originalType),
  });
}

async function postJson(url: string, body: string, headers: Record<string, string>, timeoutMs: number): Promise<CopyOutcome> {
  const request = { headers: { 'content-type': 'application/json', 'user-agent': 'Mozilla/4.0 (Fen WeChat Pay simulator)', ...headers }, body };
  // WeChat Pay stops for 200 or 204 only; anything else, whatever the body says, is retried.
  return postNotification(url, request, timeoutMs, (httpStatus) => httpStatus === 200 || httpStatus === 204);
}

/** One attempt of one notification, with its faults; returns whether it was acknowledged and how many requests went out. */
async function attemptDelivery(context: NotifierContext, notification: WechatpayNotification, attempt: number): Promise<AttemptResult> {
  const target = { notificationId: notification.id, attempt };
  if (await takeFault(context.pool, 'notification_drop', notification.outTradeNo)) return recordDroppedAttempt(context, simulatorSchema, target);
  const merchant = await findMerchant(context.pool, notification.mchId);
  if (!merchant) throw new Error(`merchant ${notification.mchId} of a notification is gone`);
  const duplicate = await takeFault(context.pool, 'notification_duplicate', notification.outTradeNo);
  const wrongAmount = await takeFault(context.pool, 'wrong_amount', notification.outTradeNo, (fault) => fault.where !== 'answer');
  const resource = wrongAmount ? withReportedAmount(notification.resource, wrongAmount.amountFen) : notification.resource;
  const body = notificationBody(notification, resource, merchant.apiV3Key);
  const headers = signedHeaders(body, context.platformKey, context.clock.now());
  return sendCopies(context, simulatorSchema, target, duplicate?.copies ?? 1, () => postJson(notification.notifyUrl, body, headers, context.requestTimeoutMs));
}

const wechatpayDelivery: DeliveryChannel<NotifierContext, WechatpayNotification> = {
  name: 'wechatpay',
  schema: simulatorSchema,
  retryDelaysMs: wechatpayRetryDelaysMs,
  // A held notification goes out on its own once its deadline passes, if nothing followed it.
  claimableStates: ['pending', 'held'],
  columns: ['notification_id', 'mchid', 'out_trade_no', 'notify_url', 'event_type', 'summary', 'original_type', 'resource', 'created_at'],
  fromRow: (row, claimed) => ({
    ...claimed,
    notificationId: row.notification_id as string,
    mchId: row.mchid as string,
    outTradeNo: row.out_trade_no as string,
    notifyUrl: row.notify_url as string,
    eventType: row.event_type as string,
    summary: row.summary as string,
    originalType: row.original_type as string,
    resource: row.resource as Record<string, unknown>,
    createdAt: row.created_at as Date,
  }),
  // Out-trade numbers are unique per merchant only, so the order is both.
  sequenceKey: (notification) => `${notification.mchId}/${notification.outTradeNo}`,
  attempt: attemptDelivery,
  describe: (notification) => ({ outTradeNo: notification.outTradeNo, eventType: notification.eventType }),
};

/**
 * One pass of the delivery loop: every notification due now, in order within
 * each order (so a reordered pair arrives in the order the fault meant),
 * orders side by side.
 */
export async function deliverDueNotifications(context: NotifierContext): Promise<DeliveryReport> {
  return deliverDue(context, wechatpayDelivery);
}
