import { z } from 'zod';
import { createFaultStore, type StoredFault } from '../shared/fault-store.js';
import type { Executor } from './store.js';

/**
 * Fault switches: ways to make the simulator misbehave as real channels do,
 * for one trade (by out_trade_no) or for all. Kept in the database like the
 * rest of the state, so a switch set through one simulator process holds for
 * every process on the same schema, and survives a restart.
 */

const apiMethodPattern = /^alipay\.[a-z.]+$/;
const yuanSchema = z.string().regex(/^\d+\.\d{2}$/);
const billLineSchema = z.enum(['payment', 'refund']).default('payment');
const outRequestNoSchema = z.string().min(1).max(64).optional();

export const faultSchema = z.discriminatedUnion('kind', [
  /** The first notification attempt goes out this much later (not scaled by timeScale). */
  z.object({ kind: z.literal('notification_delay'), delayMs: z.number().int().min(0).max(24 * 60 * 60 * 1000) }),
  /** Attempts are lost on the way (counted as failed, so Alipay's retry schedule goes on). */
  z.object({ kind: z.literal('notification_drop') }),
  /** Each attempt is sent as this many identical copies at once. */
  z.object({ kind: z.literal('notification_duplicate'), copies: z.number().int().min(2).max(20) }),
  /** A payment's notifications go out newest first: TRADE_SUCCESS, then a stale WAIT_BUYER_PAY. */
  z.object({ kind: z.literal('notification_reorder') }),
  /** The gateway answers this API method with an HTTP error and does nothing. */
  z.object({ kind: z.literal('gateway_error'), apiMethod: z.string().regex(apiMethodPattern), httpStatus: z.number().int().min(500).max(599).default(502) }),
  /**
   * The gateway answers this API method with Alipay's system error and does
   * nothing: 20000 isp.unknow-error (service unavailable) or 40004 ACQ.SYSTEM_ERROR.
   */
  z.object({
    kind: z.literal('system_error'),
    apiMethod: z.string().regex(apiMethodPattern),
    variant: z.enum(['service_unavailable', 'acq_system_error']).default('service_unavailable'),
  }),
  /** The gateway does the work but holds the answer longer than any client waits. */
  z.object({ kind: z.literal('gateway_timeout'), apiMethod: z.string().regex(apiMethodPattern), holdMs: z.number().int().min(1).max(600_000).default(30_000) }),
  /** Notifications and/or query answers report this total (yuan, as on the wire) instead of the real one. */
  z.object({
    kind: z.literal('wrong_amount'),
    totalAmount: z.string().regex(/^\d+\.\d{2}$/),
    where: z.enum(['notification', 'query', 'both']).default('both'),
  }),
  // Bill faults: what the day's trade bill (业务明细) says about the trade, or
  // about every trade when no out_trade_no is given. `line` picks the trade's
  // payment line or its refund lines (one refund by `outRequestNo`). The bill
  // stays self-consistent — its totals are those of the lines as written — so
  // a fault shows up as a difference against Fen's books, not as a bad file.
  /** The line is left out of the bill. */
  z.object({ kind: z.literal('bill_missing_line'), line: billLineSchema, outRequestNo: outRequestNoSchema }),
  /** One more line: a second payment of the named order (a duplicate payment) or, without one, of an order nobody placed. */
  z.object({ kind: z.literal('bill_extra_line'), line: billLineSchema, totalAmount: yuanSchema }),
  /** The line reports this amount (yuan) instead of the real one. */
  z.object({ kind: z.literal('bill_wrong_amount'), line: billLineSchema, totalAmount: yuanSchema, outRequestNo: outRequestNoSchema }),
  /** The named trade is listed as paid (业务类型 交易) although it never was: closed or still waiting. */
  z.object({ kind: z.literal('bill_wrong_status') }),
  /** The line's 服务费 is this (yuan, as a magnitude) instead of the configured rate's. */
  z.object({ kind: z.literal('bill_wrong_fee'), line: billLineSchema, serviceFee: yuanSchema, outRequestNo: outRequestNoSchema }),
  /** The line is booked on the next day: left out of its day's bill and dated 00:00:00 in the next day's. */
  z.object({ kind: z.literal('bill_next_day'), line: billLineSchema, outRequestNo: outRequestNoSchema }),
]);

export type AlipayFault = z.infer<typeof faultSchema>;
export type AlipayFaultInput = z.input<typeof faultSchema>;
export type FaultKind = AlipayFault['kind'];

export const faultSettingSchema = z.object({
  /** Only this trade; absent: every trade. */
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
  fault: AlipayFault;
}

const store = createFaultStore({ schema: 'sim_alipay', keyColumn: 'out_trade_no', parseFault: (settings) => faultSchema.parse(settings) });

/** The shared store's row under this channel's name for the order it aims at, as the admin API has always shown it. */
function asActiveFault({ id, key, remaining, fault }: StoredFault<AlipayFault>): ActiveFault {
  return { id, outTradeNo: key, remaining, fault };
}

export async function insertFault(executor: Executor, setting: FaultSetting, now: Date): Promise<ActiveFault> {
  const parsed = faultSettingSchema.parse(setting);
  return asActiveFault(await store.insert(executor, parsed.outTradeNo ?? null, parsed.fault, parsed.times ?? null, now));
}

export async function listFaults(executor: Executor): Promise<ActiveFault[]> {
  return (await store.list(executor)).map(asActiveFault);
}

/** Clears one switch, the switches of one trade, or all; returns how many were cleared. */
export async function clearFaults(executor: Executor, filter: { id?: number; outTradeNo?: string } = {}): Promise<number> {
  return store.clear(executor, { id: filter.id, key: filter.outTradeNo });
}

/**
 * Fires the most specific active switch of a kind for a trade (its own
 * before a global one), counting down `times`; `matches` narrows by the
 * fault's settings (the API method, where an amount is misreported).
 */
export const takeFault = store.take;
