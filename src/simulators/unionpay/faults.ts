import { z } from 'zod';
import { createFaultStore, type StoredFault } from '../shared/fault-store.js';
import type { Executor } from './store.js';

/**
 * Fault switches: ways to make the simulator misbehave as real channels do,
 * for one order (by UnionPay orderId: a payment's, a refund's, or the one a
 * query asks about) or for all. Kept in the database like the rest of the
 * state, so a switch set through one simulator process holds for every process
 * on the same schema, and survives a restart.
 */

export const simEndpoints = ['frontTransReq', 'backTransReq', 'queryTrans', 'fileTransRequest'] as const;
const endpoint = z.enum(simEndpoints);
const billLine = z.enum(['payment', 'refund']).default('payment');
/** A refund's own orderId, to pick one of a payment's refund lines. */
const refundOrderId = z.string().regex(/^[0-9A-Za-z]{8,40}$/).optional();
/** Fen as UnionPay writes them (txnAmt): digits, at least 1 fen. */
const txnAmt = z.string().regex(/^[1-9]\d{0,11}$/);

export const faultSchema = z.discriminatedUnion('kind', [
  /** The first notification attempt goes out this much later (not scaled by timeScale). */
  z.object({ kind: z.literal('notification_delay'), delayMs: z.number().int().min(0).max(24 * 60 * 60 * 1000) }),
  /** Attempts are lost on the way (counted as failed, so the retry schedule goes on). */
  z.object({ kind: z.literal('notification_drop') }),
  /** Each attempt is sent as this many identical copies at once. */
  z.object({ kind: z.literal('notification_duplicate'), copies: z.number().int().min(2).max(20) }),
  /**
   * A payment's notification is held back and goes out only after the next
   * notification of the same payment (its first refund's), so the refund
   * arrives before the payment it refunds.
   */
  z.object({ kind: z.literal('notification_reorder') }),
  /** The endpoint answers with an HTTP error and does nothing. */
  z.object({ kind: z.literal('gateway_error'), endpoint, httpStatus: z.number().int().min(500).max(599).default(502) }),
  /** The endpoint does the work but holds the answer longer than any client waits. */
  z.object({ kind: z.literal('gateway_timeout'), endpoint, holdMs: z.number().int().min(1).max(600_000).default(30_000) }),
  /**
   * The endpoint answers respCode 03 (timeout), 04 (state unknown) or 05
   * (accepted, query later). With `performed` it did the work first — as a
   * real 03 may or may not have — otherwise nothing happened.
   */
  z.object({ kind: z.literal('resp_code'), endpoint, respCode: z.enum(['03', '04', '05']), performed: z.boolean().default(false) }),
  /** Notifications and/or query answers report this txnAmt (fen, as on the wire) instead of the real one. */
  z.object({
    kind: z.literal('wrong_amount'),
    txnAmt: z.string().regex(/^[1-9]\d{0,11}$/),
    where: z.enum(['notification', 'query', 'both']).default('both'),
  }),
  // Bill faults: what the settlement date's reconciliation file (the ZM file
  // of the file transfer, txnType 76) says about the order, named by the
  // payment's orderId, or about every order when none is given. `line` picks
  // the payment's line or its refund lines (one refund by `refundOrderId`).
  // Every line stays self-consistent (交易金额, 结算金额, 商户手续费 and
  // 清算净额 agree), so a fault shows up as a difference against Fen's books,
  // not as a bad file. The names are the Alipay simulator's; amounts are fen.
  /** The line is left out of the file. */
  z.object({ kind: z.literal('bill_missing_line'), line: billLine, refundOrderId }),
  /** One more line: a second payment of the named order (a duplicate payment) or, without one, of an order nobody placed. */
  z.object({ kind: z.literal('bill_extra_line'), line: billLine, txnAmt }),
  /** The line reports this amount (fen) as 交易金额 and 结算金额. */
  z.object({ kind: z.literal('bill_wrong_amount'), line: billLine, txnAmt, refundOrderId }),
  /** The named order is listed as paid (交易类型 01) although it never was: failed or still waiting. */
  z.object({ kind: z.literal('bill_wrong_status') }),
  /** The line's 商户手续费 is this many fen instead of the configured rate's. */
  z.object({ kind: z.literal('bill_wrong_fee'), line: billLine, fee: z.string().regex(/^\d{1,12}$/), refundOrderId }),
  /** The line is settled on the next date: left out of its date's file and timed 00:00:00 in the next date's. */
  z.object({ kind: z.literal('bill_next_day'), line: billLine, refundOrderId }),
]);

export type UnionpayFault = z.infer<typeof faultSchema>;
export type UnionpayFaultInput = z.input<typeof faultSchema>;
export type FaultKind = UnionpayFault['kind'];

export const faultSettingSchema = z.object({
  /** Only this UnionPay orderId; absent: every order. */
  orderId: z.string().regex(/^[0-9A-Za-z]{8,40}$/).optional(),
  /** Turns itself off after firing this many times; absent: until cleared. */
  times: z.number().int().min(1).max(1000).optional(),
  fault: faultSchema,
});

export type FaultSetting = z.input<typeof faultSettingSchema>;

export interface ActiveFault {
  id: number;
  orderId: string | null;
  remaining: number | null;
  fault: UnionpayFault;
}

const store = createFaultStore({ schema: 'sim_unionpay', keyColumn: 'order_id', parseFault: (settings) => faultSchema.parse(settings) });

/** The shared store's row under this channel's name for the order it aims at, as the admin API has always shown it. */
function asActiveFault({ id, key, remaining, fault }: StoredFault<UnionpayFault>): ActiveFault {
  return { id, orderId: key, remaining, fault };
}

export async function insertFault(executor: Executor, setting: FaultSetting, now: Date): Promise<ActiveFault> {
  const parsed = faultSettingSchema.parse(setting);
  return asActiveFault(await store.insert(executor, parsed.orderId ?? null, parsed.fault, parsed.times ?? null, now));
}

export async function listFaults(executor: Executor): Promise<ActiveFault[]> {
  return (await store.list(executor)).map(asActiveFault);
}

/** Clears one switch, the switches of one order, or all; returns how many were cleared. */
export async function clearFaults(executor: Executor, filter: { id?: number; orderId?: string } = {}): Promise<number> {
  return store.clear(executor, { id: filter.id, key: filter.orderId });
}

/**
 * Fires the most specific active switch of a kind for an order (its own
 * before a global one), counting down `times`; `matches` narrows by the
 * fault's settings (the endpoint, where an amount is misreported).
 */
export const takeFault = store.take;
