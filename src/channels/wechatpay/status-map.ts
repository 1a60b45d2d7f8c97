import type { ChannelStatus, PaymentFailureReason } from '../connector.js';

/**
 * Every word WeChat Pay API v3 uses for the state of a transaction or a
 * refund, every error code of the APIs Fen calls, and every notification
 * event type, mapped onto Fen's outcomes. The maps are checked by the compiler
 * (`satisfies Record<…>`), so a word added to a list without a decision does
 * not build; a word WeChat Pay sends that is not listed here is looked up as
 * `undefined`, which the transformers turn into `unknown` (and the connector
 * logs), never into a success or a failure.
 */

/** trade_state of the transaction query and of TRANSACTION.* notifications. */
export const wechatpayTradeStates = ['SUCCESS', 'REFUND', 'NOTPAY', 'CLOSED', 'REVOKED', 'USERPAYING', 'PAYERROR'] as const;
export type WechatpayTradeState = (typeof wechatpayTradeStates)[number];

export const tradeStateMap = {
  SUCCESS: 'succeeded',
  // "转入退款": the payment succeeded and at least one refund was applied to it
  // since. The payment's own fact is still a success (it carries success_time);
  // how much was refunded is what refund queries and notifications say, so this
  // is not `refunded_in_full` — a partial refund reads the same.
  REFUND: 'succeeded',
  // Created and not paid (yet); the payer may still pay.
  NOTPAY: 'pending',
  // The payer is entering a password (payment-code flows): not decided yet.
  USERPAYING: 'pending',
  // Closed unpaid, by the merchant's close or by expiry.
  CLOSED: 'failed',
  // Revoked (payment-code flows): no money was taken.
  REVOKED: 'failed',
  // The payment was attempted and failed (the bank declined it).
  PAYERROR: 'failed',
} as const satisfies Record<WechatpayTradeState, ChannelStatus>;

/** Why a failed trade state failed, for PaymentStatusResult's `reason`. */
export const tradeFailureReasonMap = {
  CLOSED: 'closed',
  REVOKED: 'closed',
  PAYERROR: 'declined',
} as const satisfies Record<Extract<WechatpayTradeState, 'CLOSED' | 'REVOKED' | 'PAYERROR'>, PaymentFailureReason>;

/** status of a refund (create and query answers) and refund_status of REFUND.* notifications. */
export const wechatpayRefundStatuses = ['SUCCESS', 'PROCESSING', 'ABNORMAL', 'CLOSED'] as const;
export type WechatpayRefundStatus = (typeof wechatpayRefundStatuses)[number];

export const refundStatusMap = {
  SUCCESS: 'succeeded',
  // WeChat Pay accepts a refund and completes it asynchronously.
  PROCESSING: 'pending',
  // The money left the merchant's balance but could not reach the payer (a
  // cancelled card, a frozen account). It is settled by hand on the merchant
  // platform or through the abnormal-refund API, after which it reads SUCCESS.
  // Neither outcome is known yet: `failed` would let Fen offer the amount for
  // refunding again, `succeeded` would tell the payer they have been paid back.
  // The connector logs it as a warning so that an operator sees it.
  ABNORMAL: 'pending',
  // Closed without paying anything back: no money moved.
  CLOSED: 'failed',
} as const satisfies Record<WechatpayRefundStatus, ChannelStatus>;

/**
 * What an error answer (`{code, message}` with a 4xx or 5xx status) means for
 * the request that got it, as in the Alipay channel:
 *  - `not_found`: WeChat Pay has no such order (or refund);
 *  - `rejected`: WeChat Pay refused this request and changed nothing;
 *  - `state_conflict`: the order is already in a state the request does not
 *    fit (paid, closed) — the truth is one query away;
 *  - `retry`: WeChat Pay could not answer; the result is unknown.
 */
export const wechatpayErrorClasses = ['not_found', 'rejected', 'state_conflict', 'retry'] as const;
export type WechatpayErrorClass = (typeof wechatpayErrorClasses)[number];

/**
 * The error codes of the order, close and refund APIs. WeChat Pay's own
 * documentation spells several of them two ways (ORDER_NOT_EXIST and
 * ORDERNOTEXIST, SYSTEM_ERROR and SYSTEMERROR, NOT_ENOUGH and NOTENOUGH), so
 * both spellings are listed with the same meaning.
 */
export const wechatpayErrorCodes = [
  'ORDER_NOT_EXIST',
  'ORDERNOTEXIST',
  'RESOURCE_NOT_EXISTS',
  'PARAM_ERROR',
  'INVALID_REQUEST',
  'SIGN_ERROR',
  'APPID_MCHID_NOT_MATCH',
  'MCH_NOT_EXISTS',
  'NO_AUTH',
  'OUT_TRADE_NO_USED',
  'RULE_LIMIT',
  'RULELIMIT',
  'TRADE_ERROR',
  'ACCOUNT_ERROR',
  'ACCOUNTERROR',
  'OPENID_MISMATCH',
  'NOT_ENOUGH',
  'NOTENOUGH',
  'USER_ACCOUNT_ABNORMAL',
  'ORDERPAID',
  'ORDER_CLOSED',
  'ORDERCLOSED',
  'SYSTEM_ERROR',
  'SYSTEMERROR',
  'BANK_ERROR',
  'BANKERROR',
  'FREQUENCY_LIMITED',
] as const;
export type WechatpayErrorCode = (typeof wechatpayErrorCodes)[number];

export const errorCodeMap = {
  ORDER_NOT_EXIST: 'not_found',
  ORDERNOTEXIST: 'not_found',
  // The refund APIs' word for an order or refund they do not know.
  RESOURCE_NOT_EXISTS: 'not_found',
  PARAM_ERROR: 'rejected',
  // Well-formed but against a business rule (more than is left to refund, a repeated number with other parameters).
  INVALID_REQUEST: 'rejected',
  // WeChat Pay could not verify Fen's request signature: it did nothing.
  SIGN_ERROR: 'rejected',
  APPID_MCHID_NOT_MATCH: 'rejected',
  MCH_NOT_EXISTS: 'rejected',
  NO_AUTH: 'rejected',
  OUT_TRADE_NO_USED: 'rejected',
  RULE_LIMIT: 'rejected',
  RULELIMIT: 'rejected',
  TRADE_ERROR: 'rejected',
  ACCOUNT_ERROR: 'rejected',
  ACCOUNTERROR: 'rejected',
  OPENID_MISMATCH: 'rejected',
  // The merchant's balance cannot cover the refund: nothing was refunded.
  NOT_ENOUGH: 'rejected',
  NOTENOUGH: 'rejected',
  USER_ACCOUNT_ABNORMAL: 'rejected',
  ORDERPAID: 'state_conflict',
  ORDER_CLOSED: 'state_conflict',
  ORDERCLOSED: 'state_conflict',
  SYSTEM_ERROR: 'retry',
  SYSTEMERROR: 'retry',
  BANK_ERROR: 'retry',
  BANKERROR: 'retry',
  FREQUENCY_LIMITED: 'retry',
} as const satisfies Record<WechatpayErrorCode, WechatpayErrorClass>;

/** event_type of the notifications Fen subscribes to, and what each carries. */
export const wechatpayEventTypes = ['TRANSACTION.SUCCESS', 'REFUND.SUCCESS', 'REFUND.ABNORMAL', 'REFUND.CLOSED'] as const;
export type WechatpayEventType = (typeof wechatpayEventTypes)[number];

export const eventTypeMap = {
  'TRANSACTION.SUCCESS': 'payment',
  'REFUND.SUCCESS': 'refund',
  'REFUND.ABNORMAL': 'refund',
  'REFUND.CLOSED': 'refund',
} as const satisfies Record<WechatpayEventType, 'payment' | 'refund'>;

function lookup<Key extends string, Value>(map: Record<Key, Value>, key: string | undefined): Value | undefined {
  return key !== undefined && Object.hasOwn(map, key) ? map[key as Key] : undefined;
}

export function tradeStateOf(state: string | undefined): ChannelStatus | undefined {
  return lookup(tradeStateMap, state);
}

export function tradeFailureReasonOf(state: string | undefined): PaymentFailureReason | undefined {
  return lookup(tradeFailureReasonMap, state);
}

export function refundStatusOf(status: string | undefined): ChannelStatus | undefined {
  return lookup(refundStatusMap, status);
}

export function errorClassOf(code: string | undefined): WechatpayErrorClass | undefined {
  return lookup(errorCodeMap, code);
}

export function eventKindOf(eventType: string | undefined): 'payment' | 'refund' | undefined {
  return lookup(eventTypeMap, eventType);
}
