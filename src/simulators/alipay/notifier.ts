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
import { beijingTime, newNotifyId, notificationSignContent, signRsa2, signTypeRsa2, yuanFromFen } from './protocol.js';
import { simulatorSchema, type Executor, type SimApp, type SimTrade, type SimTradeStatus } from './store.js';

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

export interface NotifierContext extends DeliveryContext {
  signingPrivateKeyPem: string;
}

export type { DeliveryReport };

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

// ---------------------------------------------------------------------------
// Delivery: what Alipay sends and when it counts as received; the loop itself is ../shared/notification-delivery.ts.

interface AlipayNotification extends ClaimedNotification {
  outTradeNo: string;
  notifyUrl: string;
  fields: Record<string, string>;
}

async function postForm(url: string, form: Record<string, string>, timeoutMs: number): Promise<CopyOutcome> {
  const request = { headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' }, body: new URLSearchParams(form).toString() };
  // Alipay stops only for a reply of exactly "success"; anything else is retried.
  return postNotification(url, request, timeoutMs, (_httpStatus, reply) => reply === 'success');
}

/** One attempt of one notification, with its faults; returns whether it was acknowledged and how many requests went out. */
async function attemptDelivery(context: NotifierContext, notification: AlipayNotification, attempt: number): Promise<AttemptResult> {
  const target = { notificationId: notification.id, attempt };
  if (await takeFault(context.pool, 'notification_drop', notification.outTradeNo)) return recordDroppedAttempt(context, simulatorSchema, target);
  const duplicate = await takeFault(context.pool, 'notification_duplicate', notification.outTradeNo);
  const wrongAmount = await takeFault(context.pool, 'wrong_amount', notification.outTradeNo, (fault) => fault.where !== 'query');
  const fields = wrongAmount ? withReportedTotal(notification.fields, wrongAmount.totalAmount) : notification.fields;
  const form = signedNotificationForm(fields, context.clock.now(), context.signingPrivateKeyPem);
  return sendCopies(context, simulatorSchema, target, duplicate?.copies ?? 1, () => postForm(notification.notifyUrl, form, context.requestTimeoutMs));
}

const alipayDelivery: DeliveryChannel<NotifierContext, AlipayNotification> = {
  name: 'alipay',
  schema: simulatorSchema,
  retryDelaysMs: alipayRetryDelaysMs,
  claimableStates: ['pending'],
  columns: ['out_trade_no', 'notify_url', 'fields'],
  fromRow: (row, claimed) => ({
    ...claimed,
    outTradeNo: row.out_trade_no as string,
    notifyUrl: row.notify_url as string,
    fields: row.fields as Record<string, string>,
  }),
  // A reordered pair belongs to one trade and must arrive in the order the fault meant.
  sequenceKey: (notification) => notification.outTradeNo,
  attempt: attemptDelivery,
  describe: (notification) => ({ outTradeNo: notification.outTradeNo }),
};

/**
 * One pass of the delivery loop: every notification due now, in order within
 * each trade (so a reordered pair arrives in the order the fault meant), trades
 * side by side.
 */
export async function deliverDueNotifications(context: NotifierContext): Promise<DeliveryReport> {
  return deliverDue(context, alipayDelivery);
}
