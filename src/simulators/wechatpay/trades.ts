import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import type { Clock } from '../../platform/clock.js';
import { takeFault } from './faults.js';
import { scheduleNotification, type NotificationContent, type NotifierContext } from './notifier.js';
import { apiError, beijingRfc3339, newOpenId, newPrepayId, newRefundId, newTransactionId, type ApiError } from './protocol.js';
import {
  claimProcessingRefunds,
  findRefund,
  findTrade,
  finishRefund,
  insertRefund,
  insertTrade,
  updateTrade,
  withTransaction,
  type Executor,
  type SimRefund,
  type SimRefundOutcome,
  type SimTrade,
  type SimTradeType,
  type TradeChange,
} from './store.js';

/**
 * The life of an order and its refunds at "WeChat Pay": created (and known to
 * queries at once, unlike an Alipay QR order), paid by the payer, closed by
 * the merchant or by expiry; refunds accepted as PROCESSING and completed a
 * little later, as WeChat Pay completes them. Every change is one conditional
 * update in a transaction together with the notification it causes.
 */

export interface TradeContext {
  pool: pg.Pool;
  clock: Clock;
  notifier: NotifierContext;
  /** How long a refund stays PROCESSING before it completes, before timeScale. */
  refundDurationMs: number;
}

const refundBatchSize = 100;

const tradeStateDescriptions = {
  NOTPAY: '订单未支付',
  SUCCESS: '支付成功',
  REFUND: '转入退款',
  CLOSED: '订单已关闭',
} as const;

const refundSummaries = {
  SUCCESS: { eventType: 'REFUND.SUCCESS', summary: '退款成功' },
  ABNORMAL: { eventType: 'REFUND.ABNORMAL', summary: '退款异常' },
  CLOSED: { eventType: 'REFUND.CLOSED', summary: '退款关闭' },
} as const satisfies Record<SimRefundOutcome, { eventType: NotificationContent['eventType']; summary: string }>;

/** Where a refund lands in this simulator: the payer's WeChat balance. */
const userReceivedAccount = '支付用户零钱';

export interface OrderInput {
  mchId: string;
  appId: string;
  outTradeNo: string;
  tradeType: SimTradeType;
  description: string;
  totalFen: bigint;
  currency: string;
  notifyUrl: string;
  payerClientIp: string | null;
  payerOpenId: string | null;
  expiresAt: Date;
}

export function newPayerToken(): string {
  return randomBytes(12).toString('hex');
}

function isPaid(trade: SimTrade): boolean {
  return trade.tradeState === 'SUCCESS' || trade.tradeState === 'REFUND';
}

/**
 * Creates the order or finds the one with the same out_trade_no. A repeat with
 * the same parameters is the same order (and the same prepay); a paid or
 * closed order says so; the same number with other parameters is refused.
 */
export async function createOrFindOrder(context: TradeContext, order: OrderInput): Promise<SimTrade | ApiError> {
  const now = context.clock.now();
  const { trade, created } = await insertTrade(context.pool, {
    ...order,
    prepayId: newPrepayId(now),
    payerToken: newPayerToken(),
    createdAt: now,
  });
  if (created) return trade;
  const current = await expireIfDue(context, trade);
  if (isPaid(current)) return apiError('ORDERPAID');
  if (current.tradeState === 'CLOSED') return apiError('ORDER_CLOSED');
  const same =
    current.tradeType === order.tradeType &&
    current.appId === order.appId &&
    current.description === order.description &&
    current.totalFen === order.totalFen &&
    current.currency === order.currency;
  return same ? current : apiError('OUT_TRADE_NO_USED');
}

async function reload(executor: Executor, trade: SimTrade): Promise<SimTrade> {
  const current = await findTrade(executor, { id: trade.id });
  if (!current) throw new Error(`trade ${trade.outTradeNo} vanished`);
  return current;
}

/** One conditional change, and the notification it causes, in one transaction; undefined when the trade moved on meanwhile. */
async function changeTrade(context: TradeContext, trade: SimTrade, change: TradeChange, notify: boolean): Promise<SimTrade | undefined> {
  const changed = await withTransaction(context.pool, async (client) => {
    const updated = await updateTrade(client, trade.id, trade.tradeState, change);
    if (updated && notify) {
      await scheduleNotification(client, context.notifier, {
        mchId: updated.mchId,
        outTradeNo: updated.outTradeNo,
        notifyUrl: updated.notifyUrl,
        eventType: 'TRANSACTION.SUCCESS',
        summary: '支付成功',
        originalType: 'transaction',
        resource: transactionFields(updated),
      });
    }
    return updated;
  });
  // Only now is the notification committed, so only now can a delivery pass see it.
  if (changed && notify) context.notifier.onScheduled?.();
  return changed;
}

/** Closes an unpaid order whose time is up (lazily, when someone looks at it). WeChat Pay sends no notification for it. */
export async function expireIfDue(context: TradeContext, trade: SimTrade): Promise<SimTrade> {
  const now = context.clock.now();
  if (trade.tradeState !== 'NOTPAY' || now.getTime() < trade.expiresAt.getTime()) return trade;
  return (await changeTrade(context, trade, { tradeState: 'CLOSED', closedAt: now }, false)) ?? (await reload(context.pool, trade));
}

/** The payer pressed Pay: SUCCESS, with a transaction_id, the payer's openid, and TRANSACTION.SUCCESS on its way. */
export async function payTrade(context: TradeContext, trade: SimTrade): Promise<SimTrade> {
  const current = await expireIfDue(context, trade);
  if (current.tradeState !== 'NOTPAY') return current;
  const now = context.clock.now();
  const change: TradeChange = { tradeState: 'SUCCESS', transactionId: newTransactionId(now), paidAt: now, payerOpenId: current.payerOpenId ?? newOpenId() };
  return (await changeTrade(context, current, change, true)) ?? reload(context.pool, current);
}

/** The merchant's close: an unpaid order becomes CLOSED; closing a closed order again is not an error. */
export async function closeTrade(context: TradeContext, trade: SimTrade): Promise<SimTrade | ApiError> {
  const current = await expireIfDue(context, trade);
  if (isPaid(current)) return apiError('ORDERPAID');
  if (current.tradeState === 'CLOSED') return current;
  const closed = await changeTrade(context, current, { tradeState: 'CLOSED', closedAt: context.clock.now() }, false);
  return closed ?? closeTrade(context, await reload(context.pool, current));
}

/** The transaction as the query answers it and TRANSACTION.SUCCESS carries it. */
export function transactionFields(trade: SimTrade): Record<string, unknown> {
  const total = Number(trade.totalFen);
  const paid = trade.paidAt !== null;
  return {
    appid: trade.appId,
    mchid: trade.mchId,
    out_trade_no: trade.outTradeNo,
    ...(trade.transactionId ? { transaction_id: trade.transactionId } : {}),
    trade_type: trade.tradeType,
    trade_state: trade.tradeState,
    trade_state_desc: tradeStateDescriptions[trade.tradeState],
    ...(paid ? { bank_type: 'OTHERS', success_time: beijingRfc3339(trade.paidAt!) } : {}),
    attach: '',
    payer: trade.payerOpenId && paid ? { openid: trade.payerOpenId } : {},
    amount: { total, ...(paid ? { payer_total: total } : {}), currency: trade.currency, payer_currency: trade.currency },
    promotion_detail: [],
  };
}

// ---------------------------------------------------------------------------
// Refunds

export interface RefundInput {
  mchId: string;
  outTradeNo: string;
  outRefundNo: string;
  refundFen: bigint;
  totalFen: bigint;
  currency: string;
  reason: string | null;
  notifyUrl: string | null;
}

function refundableError(trade: SimTrade, input: RefundInput): ApiError | undefined {
  if (trade.tradeState === 'NOTPAY') return apiError('INVALID_REQUEST', '订单未支付，不能退款');
  if (trade.tradeState === 'CLOSED') return apiError('INVALID_REQUEST', '订单已关闭，不能退款');
  if (input.totalFen !== trade.totalFen || input.currency !== trade.currency) return apiError('PARAM_ERROR', '订单金额与原订单不一致');
  if (trade.refundedFen + input.refundFen > trade.totalFen) return apiError('INVALID_REQUEST', '申请退款金额超过订单可退金额');
  return undefined;
}

/**
 * A refund: PROCESSING at once and counted against what is left to refund;
 * it completes after `refundDurationMs` (scaled). The same out_refund_no with
 * the same order and amount is the same refund; with others it is refused.
 */
export async function createRefund(context: TradeContext, input: RefundInput): Promise<{ trade: SimTrade; refund: SimRefund } | ApiError> {
  return withTransaction(context.pool, async (client) => {
    const trade = await findTrade(client, { mchId: input.mchId, outTradeNo: input.outTradeNo }, true);
    if (!trade) return apiError('RESOURCE_NOT_EXISTS', '订单不存在');
    const existing = await findRefund(client, { mchId: input.mchId, outRefundNo: input.outRefundNo });
    if (existing) {
      if (existing.tradeId !== trade.id || existing.refundFen !== input.refundFen) return apiError('INVALID_REQUEST', '同一退款单号的订单或退款金额不一致');
      return { trade, refund: existing };
    }
    const refusal = refundableError(trade, input);
    if (refusal) return refusal;
    const now = context.clock.now();
    const outcome = (await takeFault(client, 'refund_outcome', trade.outTradeNo))?.status ?? 'SUCCESS';
    const refund: SimRefund = {
      refundId: newRefundId(now),
      tradeId: trade.id,
      mchId: input.mchId,
      outRefundNo: input.outRefundNo,
      refundFen: input.refundFen,
      reason: input.reason,
      notifyUrl: input.notifyUrl,
      status: 'PROCESSING',
      outcome,
      createdAt: now,
      completesAt: new Date(now.getTime() + Math.round(context.refundDurationMs * context.notifier.timeScale)),
      successTime: null,
    };
    await insertRefund(client, refund);
    const updated = await updateTrade(client, trade.id, trade.tradeState, { tradeState: 'REFUND', refundedFen: trade.refundedFen + input.refundFen });
    return { trade: updated ?? trade, refund };
  });
}

/** A refund as the refund APIs answer it. */
export function refundFields(trade: SimTrade, refund: SimRefund): Record<string, unknown> {
  const [total, amount] = [Number(trade.totalFen), Number(refund.refundFen)];
  return {
    refund_id: refund.refundId,
    out_refund_no: refund.outRefundNo,
    transaction_id: trade.transactionId,
    out_trade_no: trade.outTradeNo,
    channel: 'ORIGINAL',
    user_received_account: userReceivedAccount,
    ...(refund.successTime ? { success_time: beijingRfc3339(refund.successTime) } : {}),
    create_time: beijingRfc3339(refund.createdAt),
    status: refund.status,
    funds_account: 'AVAILABLE',
    amount: {
      total,
      refund: amount,
      from: [],
      payer_total: total,
      payer_refund: amount,
      settlement_refund: amount,
      settlement_total: total,
      discount_refund: 0,
      currency: trade.currency,
      refund_fee: 0,
    },
    promotion_detail: [],
  };
}

/** A refund as REFUND.* notifications carry it: refund_status, and an amount without a currency. */
function refundNotificationResource(trade: SimTrade, refund: SimRefund): Record<string, unknown> {
  const [total, amount] = [Number(trade.totalFen), Number(refund.refundFen)];
  return {
    mchid: trade.mchId,
    out_trade_no: trade.outTradeNo,
    transaction_id: trade.transactionId,
    out_refund_no: refund.outRefundNo,
    refund_id: refund.refundId,
    refund_status: refund.status,
    ...(refund.successTime ? { success_time: beijingRfc3339(refund.successTime) } : {}),
    user_received_account: userReceivedAccount,
    amount: { total, refund: amount, payer_total: total, payer_refund: amount },
  };
}

async function completeOne(client: pg.PoolClient, context: TradeContext, refund: SimRefund): Promise<void> {
  const now = context.clock.now();
  const finished = await finishRefund(client, refund.refundId, refund.outcome, refund.outcome === 'SUCCESS' ? now : null);
  if (!finished) return;
  // A closed refund paid nothing back, so its amount is refundable again.
  if (finished.status === 'CLOSED') {
    await client.query('UPDATE sim_wechatpay.trades SET refunded_fen = refunded_fen - $2 WHERE id = $1', [finished.tradeId, finished.refundFen.toString()]);
  }
  const trade = await findTrade(client, { id: finished.tradeId });
  if (!trade || !finished.notifyUrl) return;
  const { eventType, summary } = refundSummaries[refund.outcome];
  await scheduleNotification(client, context.notifier, {
    mchId: trade.mchId,
    outTradeNo: trade.outTradeNo,
    notifyUrl: finished.notifyUrl,
    eventType,
    summary,
    originalType: 'refund',
    resource: refundNotificationResource(trade, finished),
  });
}

/**
 * Completes processing refunds — those due by now, or, for tests and
 * operators, named ones at once — each with its REFUND.* notification.
 * Returns how many were completed.
 */
export async function completeRefunds(context: TradeContext, filter: { dueBy?: Date; outRefundNo?: string; mchId?: string }): Promise<number> {
  let completed = 0;
  for (;;) {
    const count = await withTransaction(context.pool, async (client) => {
      const refunds = await claimProcessingRefunds(client, filter, refundBatchSize);
      for (const refund of refunds) await completeOne(client, context, refund);
      return refunds.length;
    });
    completed += count;
    if (count < refundBatchSize) return completed;
  }
}

/** The refund by number, completed first if its time has come (WeChat Pay's query shows the refund's state now). */
export async function currentRefund(context: TradeContext, mchId: string, outRefundNo: string): Promise<{ trade: SimTrade; refund: SimRefund } | undefined> {
  await completeRefunds(context, { dueBy: context.clock.now(), outRefundNo, mchId });
  const refund = await findRefund(context.pool, { mchId, outRefundNo });
  const trade = refund ? await findTrade(context.pool, { id: refund.tradeId }) : undefined;
  return refund && trade ? { trade, refund } : undefined;
}
