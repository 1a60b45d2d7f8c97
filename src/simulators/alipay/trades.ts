import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import type { Clock } from '../../platform/clock.js';
import { scheduleTradeNotification, type NotifierContext } from './notifier.js';
import { gatewayError, newBuyerId, newTradeNo, type GatewayError } from './protocol.js';
import { findApp, findTrade, insertTrade, updateTrade, withTransaction, type Executor, type SimTrade } from './store.js';

/**
 * The life of a simulated trade, shared by the gateway and the payer's pages:
 * creating it (idempotent per out_trade_no), the payer opening it (the scan),
 * paying, cancelling, closing and expiring. Every change is one conditional
 * update in a transaction together with the notification it causes.
 */

export interface TradeContext {
  pool: pg.Pool;
  clock: Clock;
  notifier: NotifierContext;
}

export interface OrderInput {
  appId: string;
  outTradeNo: string;
  productCode: string;
  subject: string;
  body: string | null;
  totalFen: bigint;
  notifyUrl: string | null;
  returnUrl: string | null;
  expiresAt: Date;
  /** Page pay is opened by the payer's browser, so it is visible at once; a QR order waits for the scan. */
  openNow: boolean;
}

export function newPayerToken(): string {
  return randomBytes(12).toString('hex');
}

/**
 * Creates the order or finds the one with the same out_trade_no. A repeat with
 * the same amount and subject is the same order; anything else is Alipay's
 * ACQ.CONTEXT_INCONSISTENT, and a repeat of a paid or closed order says so.
 */
export async function createOrFindOrder(context: TradeContext, order: OrderInput): Promise<SimTrade | GatewayError> {
  const now = context.clock.now();
  const { trade, created } = await insertTrade(context.pool, {
    tradeNo: newTradeNo(now),
    appId: order.appId,
    outTradeNo: order.outTradeNo,
    productCode: order.productCode,
    subject: order.subject,
    body: order.body,
    totalFen: order.totalFen,
    status: order.openNow ? 'WAIT_BUYER_PAY' : 'PRECREATED',
    payerToken: newPayerToken(),
    notifyUrl: order.notifyUrl,
    returnUrl: order.returnUrl,
    createdAt: now,
    openedAt: order.openNow ? now : null,
    expiresAt: order.expiresAt,
  });
  if (created) return trade;
  if (trade.totalFen !== order.totalFen || trade.subject !== order.subject) {
    return gatewayError('businessFailed', 'ACQ.CONTEXT_INCONSISTENT', '交易信息被篡改');
  }
  const current = await expireIfDue(context, trade);
  if (current.status === 'TRADE_SUCCESS' || current.status === 'TRADE_FINISHED') {
    return gatewayError('businessFailed', 'ACQ.TRADE_HAS_SUCCESS', '交易已被支付');
  }
  if (current.status === 'TRADE_CLOSED') return gatewayError('businessFailed', 'ACQ.TRADE_HAS_CLOSE', '交易已经关闭');
  return order.openNow ? openTrade(context, current) : current;
}

/** Whether Alipay's query knows the trade: a QR order exists for it only once scanned. */
export function visibleToQueries(trade: SimTrade): boolean {
  return trade.openedAt !== null;
}

/** Closes a waiting trade whose time is up (lazily, when someone looks at it). */
export async function expireIfDue(context: TradeContext, trade: SimTrade): Promise<SimTrade> {
  const now = context.clock.now();
  const waiting = trade.status === 'PRECREATED' || trade.status === 'WAIT_BUYER_PAY';
  if (!waiting || now.getTime() < trade.expiresAt.getTime()) return trade;
  return (await changeTrade(context, trade, { status: 'TRADE_CLOSED', closedAt: now })) ?? (await reload(context.pool, trade));
}

async function reload(executor: Executor, trade: SimTrade): Promise<SimTrade> {
  const current = await findTrade(executor, { tradeNo: trade.tradeNo });
  if (!current) throw new Error(`trade ${trade.tradeNo} vanished`);
  return current;
}

/**
 * One conditional state change plus its notification, in one transaction.
 * Returns undefined when the trade moved on meanwhile. A trade that Alipay's
 * query never saw (an unscanned QR order) gets no notification.
 */
async function changeTrade(context: TradeContext, trade: SimTrade, change: Parameters<typeof updateTrade>[3]): Promise<SimTrade | undefined> {
  let scheduled = false;
  const changed = await withTransaction(context.pool, async (client) => {
    const updated = await updateTrade(client, trade.tradeNo, trade.status, change);
    if (!updated) return undefined;
    const app = await findApp(client, updated.appId);
    if (app && visibleToQueries(updated) && updated.status !== 'WAIT_BUYER_PAY') {
      await scheduleTradeNotification(client, context.notifier, updated, app);
      scheduled = true;
    }
    return updated;
  });
  // Only now is the notification committed, so only now can a delivery pass see it.
  if (scheduled) context.notifier.onScheduled?.();
  return changed;
}

/** The payer opened the QR code or the cashier page: the trade now exists for queries (WAIT_BUYER_PAY). */
export async function openTrade(context: TradeContext, trade: SimTrade): Promise<SimTrade> {
  const current = await expireIfDue(context, trade);
  if (current.status !== 'PRECREATED') return current;
  const opened = await changeTrade(context, current, { status: 'WAIT_BUYER_PAY', openedAt: context.clock.now() });
  return opened ?? reload(context.pool, current);
}

/** The payer pressed Pay: TRADE_SUCCESS with a buyer and a payment time, and a notification on its way. */
export async function payTrade(context: TradeContext, trade: SimTrade): Promise<SimTrade> {
  const current = await openTrade(context, trade);
  if (current.status !== 'WAIT_BUYER_PAY') return current;
  const buyerId = newBuyerId();
  const paid = await changeTrade(context, current, {
    status: 'TRADE_SUCCESS',
    paidAt: context.clock.now(),
    buyerId,
    buyerLogonId: `${buyerId.slice(-3)}***@example.com`,
  });
  return paid ?? reload(context.pool, current);
}

/** The payer pressed Cancel, or the merchant called alipay.trade.close: TRADE_CLOSED. */
export async function closeWaitingTrade(context: TradeContext, trade: SimTrade): Promise<SimTrade | undefined> {
  return changeTrade(context, trade, { status: 'TRADE_CLOSED', closedAt: context.clock.now() });
}
