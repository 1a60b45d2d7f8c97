import { z } from 'zod';
import { createFaultStore, type StoredFault } from '../shared/fault-store.js';
import type { Executor } from './store.js';

/**
 * Fault switches: ways to make the simulator misbehave as real channels do,
 * for one order (by out_trade_no) or for all. Kept in the database like the
 * rest of the state, so a switch set through one simulator process holds for
 * every process on the same schema, and survives a restart.
 */

/** The API operations a fault can aim at, named as the connector names them. */
export const apiOperations = ['native', 'h5', 'jsapi', 'query', 'close', 'refund', 'refund_query', 'tradebill', 'bill_download'] as const;
export type ApiOperation = (typeof apiOperations)[number];
const operation = z.enum(apiOperations);
const billLine = z.enum(['payment', 'refund']).default('payment');
const outRefundNo = z.string().min(1).max(64).optional();
const fen = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

export const faultSchema = z.discriminatedUnion('kind', [
  /** The first attempt of the next notification goes out this much later (not scaled by timeScale). */
  z.object({ kind: z.literal('notification_delay'), delayMs: z.number().int().min(0).max(24 * 60 * 60 * 1000) }),
  /** Attempts are lost on the way (counted as failed, so WeChat Pay's retry schedule goes on). */
  z.object({ kind: z.literal('notification_drop') }),
  /** Each attempt is sent as this many identical copies at once. */
  z.object({ kind: z.literal('notification_duplicate'), copies: z.number().int().min(2).max(20) }),
  /**
   * The order's next notification is held back until the one after it is
   * scheduled, and then goes out second: a REFUND.SUCCESS arrives before the
   * TRANSACTION.SUCCESS of the same order.
   */
  z.object({ kind: z.literal('notification_reorder') }),
  /** The operation is answered with a bare HTTP error from "the gateway in front", unsigned, and nothing is done. */
  z.object({ kind: z.literal('http_error'), operation, httpStatus: z.number().int().min(500).max(599).default(502) }),
  /** The operation is answered 500 SYSTEM_ERROR (signed, as WeChat Pay answers it) and nothing is done. */
  z.object({ kind: z.literal('system_error'), operation }),
  /** The operation is done, but its answer is held longer than any client waits. */
  z.object({ kind: z.literal('timeout'), operation, holdMs: z.number().int().min(1).max(600_000).default(30_000) }),
  /**
   * Answers and notifications report this amount (fen) instead of the real
   * one: the order's total for payments, the refund's amount for refunds.
   */
  z.object({
    kind: z.literal('wrong_amount'),
    amountFen: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
    where: z.enum(['notification', 'answer', 'both']).default('both'),
  }),
  /** The order's next refund does not succeed: it ends ABNORMAL (the payer's card was cancelled) or CLOSED. */
  z.object({ kind: z.literal('refund_outcome'), status: z.enum(['ABNORMAL', 'CLOSED']) }),
  // Bill faults: what the day's trade bill (GET /v3/bill/tradebill, ALL) says
  // about the order, or about every order when no out_trade_no is given.
  // `line` picks the order's payment line or its refund lines (one refund by
  // `outRefundNo`). The bill stays self-consistent — its summary row totals
  // the lines as written — so a fault shows up as a difference against Fen's
  // books, not as a bad file. The names are the Alipay simulator's; amounts
  // are fen, as everywhere in this API.
  /** The line is left out of the bill. */
  z.object({ kind: z.literal('bill_missing_line'), line: billLine, outRefundNo }),
  /** One more line: a second payment of the named order (a duplicate payment) or, without one, of an order nobody placed. */
  z.object({ kind: z.literal('bill_extra_line'), line: billLine, amountFen: fen.min(1) }),
  /** The line reports this amount (fen): 应结订单金额 and 订单金额 of a payment, 退款金额 and 申请退款金额 of a refund. */
  z.object({ kind: z.literal('bill_wrong_amount'), line: billLine, amountFen: fen.min(1), outRefundNo }),
  /** The named order is listed as paid (交易状态 SUCCESS) although it never was: closed or still unpaid. */
  z.object({ kind: z.literal('bill_wrong_status') }),
  /** The line's 手续费 is this many fen (a magnitude; a refund line writes it negative) instead of the configured rate's. */
  z.object({ kind: z.literal('bill_wrong_fee'), line: billLine, feeFen: fen, outRefundNo }),
  /** The line is booked on the next day: left out of its day's bill and dated 00:00:00 in the next day's. */
  z.object({ kind: z.literal('bill_next_day'), line: billLine, outRefundNo }),
]);

export type WechatpayFault = z.infer<typeof faultSchema>;
export type WechatpayFaultInput = z.input<typeof faultSchema>;
export type FaultKind = WechatpayFault['kind'];

export const faultSettingSchema = z.object({
  /** Only this order; absent: every order. */
  outTradeNo: z.string().min(1).max(64).optional(),
  /** Turns itself off after firing this many times; absent: until cleared. */
  times: z.number().int().min(1).max(1000).optional(),
  fault: faultSchema,
});

export type FaultSetting = z.input<typeof faultSettingSchema>;

export interface ActiveFault {
  id: number;
  outTradeNo: string | null;
  remaining: number | null;
  fault: WechatpayFault;
}

const store = createFaultStore({ schema: 'sim_wechatpay', keyColumn: 'out_trade_no', parseFault: (settings) => faultSchema.parse(settings) });

/** The shared store's row under this channel's name for the order it aims at, as the admin API has always shown it. */
function asActiveFault({ id, key, remaining, fault }: StoredFault<WechatpayFault>): ActiveFault {
  return { id, outTradeNo: key, remaining, fault };
}

export async function insertFault(executor: Executor, setting: FaultSetting, now: Date): Promise<ActiveFault> {
  const parsed = faultSettingSchema.parse(setting);
  return asActiveFault(await store.insert(executor, parsed.outTradeNo ?? null, parsed.fault, parsed.times ?? null, now));
}

export async function listFaults(executor: Executor): Promise<ActiveFault[]> {
  return (await store.list(executor)).map(asActiveFault);
}

/** Clears one switch, the switches of one order, or all; returns how many were cleared. */
export async function clearFaults(executor: Executor, filter: { id?: number; outTradeNo?: string } = {}): Promise<number> {
  return store.clear(executor, { id: filter.id, key: filter.outTradeNo });
}

/**
 * Fires the most specific active switch of a kind for an order (its own
 * before a global one), counting down `times`; `matches` narrows by the
 * fault's settings (the operation, where an amount is misreported).
 */
export const takeFault = store.take;
