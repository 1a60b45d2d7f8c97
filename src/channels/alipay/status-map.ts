import type { ChannelStatus } from '../connector.js';

/**
 * Every word Alipay uses for the state of a trade or refund, and every answer
 * code, mapped onto Fen's outcomes. The maps are checked by the compiler
 * (`satisfies Record<…>`), so adding a status to a list without deciding what
 * it means does not build; anything Alipay sends that is not listed here is
 * looked up as `undefined`, which the transformers turn into `unknown` (and the
 * connector logs), never into a success or a failure.
 */

/** trade_status of alipay.trade.query and of trade_status_sync notifications. */
export const alipayTradeStatuses = ['WAIT_BUYER_PAY', 'TRADE_SUCCESS', 'TRADE_FINISHED', 'TRADE_CLOSED'] as const;
export type AlipayTradeStatus = (typeof alipayTradeStatuses)[number];

export const tradeStatusMap = {
  // Created (the payer has scanned or opened the page) and not yet paid.
  WAIT_BUYER_PAY: 'pending',
  // Paid; still refundable.
  TRADE_SUCCESS: 'succeeded',
  // Paid, and past the refund period (or a product without refunds): final.
  TRADE_FINISHED: 'succeeded',
  // Closed unpaid (timeout, close, cancel) — or paid and then refunded in full.
  TRADE_CLOSED: 'failed',
} as const satisfies Record<AlipayTradeStatus, ChannelStatus>;

/**
 * refund_status of alipay.trade.fastpay.refund.query. Alipay documents only
 * REFUND_SUCCESS; a refund it has not (yet) processed comes back without the
 * field, which the transformer reads as `pending` or `not_found`.
 */
export const alipayRefundStatuses = ['REFUND_SUCCESS'] as const;
export type AlipayRefundStatus = (typeof alipayRefundStatuses)[number];

export const refundStatusMap = {
  REFUND_SUCCESS: 'succeeded',
} as const satisfies Record<AlipayRefundStatus, ChannelStatus>;

/**
 * fund_change of alipay.trade.refund: `Y` means money moved by this call; `N`
 * means it did not move now — a repeat of a refund already made, or one still
 * in processing — so Alipay's own advice is to confirm with a refund query.
 */
export const alipayFundChanges = ['Y', 'N'] as const;
export type AlipayFundChange = (typeof alipayFundChanges)[number];

export const fundChangeMap = {
  Y: 'succeeded',
  N: 'pending',
} as const satisfies Record<AlipayFundChange, ChannelStatus>;

/**
 * What an error answer means for the request that got it:
 *  - `not_found`: Alipay has no such trade (or refund);
 *  - `rejected`: Alipay refused this request and changed nothing;
 *  - `state_conflict`: the trade is already in a state the request does not fit
 *    (paid, closed) — the truth is one query away;
 *  - `retry`: Alipay could not answer; the result is unknown.
 * Each operation decides what a class means for it (a rejected query tells
 * nothing about the trade, a rejected refund means no money moved).
 */
export const alipayErrorClasses = ['not_found', 'rejected', 'state_conflict', 'retry'] as const;
export type AlipayErrorClass = (typeof alipayErrorClasses)[number];

/** The top-level `code` of every gateway answer. 40004 is decided by its sub_code. */
export const alipayResponseCodes = ['10000', '20000', '20001', '40001', '40002', '40003', '40004', '40006'] as const;
export type AlipayResponseCode = (typeof alipayResponseCodes)[number];

export const responseCodeMap = {
  '10000': 'success',
  '20000': 'retry', // Service Currently Unavailable
  '20001': 'rejected', // Insufficient Token Permissions
  '40001': 'rejected', // Missing Required Arguments
  '40002': 'rejected', // Invalid Arguments (signature, app id, method, parameters)
  '40003': 'rejected', // Insufficient Conditions
  '40004': 'by_sub_code', // Business Failed
  '40006': 'rejected', // Insufficient Permissions
} as const satisfies Record<AlipayResponseCode, AlipayErrorClass | 'success' | 'by_sub_code'>;

/** The sub_codes of the trade APIs Fen calls. */
export const alipaySubCodes = [
  'ACQ.TRADE_NOT_EXIST',
  'ACQ.SYSTEM_ERROR',
  'aop.ACQ.SYSTEM_ERROR',
  'isp.unknow-error',
  'ACQ.TRADE_STATUS_ERROR',
  'ACQ.TRADE_HAS_SUCCESS',
  'ACQ.TRADE_HAS_CLOSE',
  'ACQ.TRADE_HAS_FINISHED',
  'ACQ.REFUND_AMT_NOT_EQUAL_TOTAL',
  'ACQ.DISCORDANT_REPEAT_REQUEST',
  'ACQ.NOT_ALLOW_PARTIAL_REFUND',
  'ACQ.REFUND_FEE_ERROR',
  'ACQ.SELLER_BALANCE_NOT_ENOUGH',
  'ACQ.REASON_TRADE_BEEN_FREEZEN',
  'ACQ.INVALID_PARAMETER',
  'ACQ.CONTEXT_INCONSISTENT',
  'ACQ.ACCESS_FORBIDDEN',
  'ACQ.EXIST_FORBIDDEN_WORD',
  'ACQ.TOTAL_FEE_EXCEED',
  'ACQ.PARTNER_ERROR',
  'isv.invalid-signature',
  'isv.missing-signature',
  'isv.invalid-signature-type',
  'isv.invalid-app-id',
  'isv.invalid-method',
  'isv.missing-method',
  'isv.invalid-timestamp',
  'isv.invalid-parameter',
  'isv.missing-parameter',
] as const;
export type AlipaySubCode = (typeof alipaySubCodes)[number];

export const subCodeMap = {
  'ACQ.TRADE_NOT_EXIST': 'not_found',
  'ACQ.SYSTEM_ERROR': 'retry',
  'aop.ACQ.SYSTEM_ERROR': 'retry',
  // Alipay's own spelling.
  'isp.unknow-error': 'retry',
  'ACQ.TRADE_STATUS_ERROR': 'rejected',
  'ACQ.TRADE_HAS_SUCCESS': 'state_conflict',
  'ACQ.TRADE_HAS_CLOSE': 'state_conflict',
  'ACQ.TRADE_HAS_FINISHED': 'state_conflict',
  'ACQ.REFUND_AMT_NOT_EQUAL_TOTAL': 'rejected',
  'ACQ.DISCORDANT_REPEAT_REQUEST': 'rejected',
  'ACQ.NOT_ALLOW_PARTIAL_REFUND': 'rejected',
  'ACQ.REFUND_FEE_ERROR': 'rejected',
  'ACQ.SELLER_BALANCE_NOT_ENOUGH': 'rejected',
  'ACQ.REASON_TRADE_BEEN_FREEZEN': 'rejected',
  'ACQ.INVALID_PARAMETER': 'rejected',
  'ACQ.CONTEXT_INCONSISTENT': 'rejected',
  'ACQ.ACCESS_FORBIDDEN': 'rejected',
  'ACQ.EXIST_FORBIDDEN_WORD': 'rejected',
  'ACQ.TOTAL_FEE_EXCEED': 'rejected',
  'ACQ.PARTNER_ERROR': 'rejected',
  'isv.invalid-signature': 'rejected',
  'isv.missing-signature': 'rejected',
  'isv.invalid-signature-type': 'rejected',
  'isv.invalid-app-id': 'rejected',
  'isv.invalid-method': 'rejected',
  'isv.missing-method': 'rejected',
  'isv.invalid-timestamp': 'rejected',
  'isv.invalid-parameter': 'rejected',
  'isv.missing-parameter': 'rejected',
} as const satisfies Record<AlipaySubCode, AlipayErrorClass>;

function lookup<Key extends string, Value>(map: Record<Key, Value>, key: string | undefined): Value | undefined {
  return key !== undefined && Object.hasOwn(map, key) ? map[key as Key] : undefined;
}

export function tradeStatusOf(status: string | undefined): ChannelStatus | undefined {
  return lookup(tradeStatusMap, status);
}

export function refundStatusOf(status: string | undefined): ChannelStatus | undefined {
  return lookup(refundStatusMap, status);
}

export function fundChangeOf(fundChange: string | undefined): ChannelStatus | undefined {
  return lookup(fundChangeMap, fundChange);
}

/** The class of an answer: `success`, an error class, or `undefined` when Alipay used a code not listed here. */
export function answerClassOf(code: string | undefined, subCode: string | undefined): AlipayErrorClass | 'success' | undefined {
  const byCode = lookup(responseCodeMap, code);
  if (byCode === 'success') return 'success';
  // A listed sub_code is more precise than its code: 40002 isv.invalid-signature, 40004 ACQ.TRADE_NOT_EXIST.
  const bySubCode = lookup(subCodeMap, subCode);
  if (bySubCode !== undefined) return bySubCode;
  return byCode === 'by_sub_code' ? undefined : byCode;
}
