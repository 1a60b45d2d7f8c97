import { formatMinorAsDecimal, parseDecimalToMinor, type Money } from '../../platform/money.js';
import {
  paymentResultFrom,
  refundResultFrom,
  type ClosePaymentRequest,
  type ClosePaymentResult,
  type CreatePaymentRequest,
  type CreatePaymentResult,
  type NotificationEvent,
  type PaymentFailureReason,
  type PaymentStatusResult,
  type QueryPaymentRequest,
  type QueryRefundRequest,
  type RefundRequest,
  type RefundResult,
  type ReportedPayment,
  type ReportedRefund,
  type UnknownAnswer,
} from '../connector.js';
import { answerClassOf, fundChangeOf, refundStatusOf, tradeStatusOf, type AlipayErrorClass } from './status-map.js';

/**
 * Pure mapping between Fen's connector types and Alipay's wire format: request
 * parameters out, answer objects in. No I/O, no clock, no SDK — so every
 * mapping is tested on answers recorded from the simulator
 * (test/fixtures/alipay). This file and its siblings are the only place where
 * yuan strings ("12.34") exist; everything leaving it is bigint fen.
 */

export const alipayApiMethods = {
  precreate: 'alipay.trade.precreate',
  pagePay: 'alipay.trade.page.pay',
  query: 'alipay.trade.query',
  close: 'alipay.trade.close',
  refund: 'alipay.trade.refund',
  refundQuery: 'alipay.trade.fastpay.refund.query',
} as const;
export type AlipayApiMethod = (typeof alipayApiMethods)[keyof typeof alipayApiMethods];

export const alipayProductCodes = {
  alipay_qr: 'FACE_TO_FACE_PAYMENT',
  alipay_page: 'FAST_INSTANT_TRADE_PAY',
} as const;

/** Alipay trades domestically in CNY; amounts are yuan with two decimals. */
export const alipayCurrency = 'CNY';

/** Alipay accepts an order's time limit between one minute and fifteen days. */
const timeoutMinutesMin = 1;
const timeoutMinutesMax = 15 * 24 * 60;
const beijingOffsetMs = 8 * 60 * 60 * 1000;

/** The `<method>_response` key of the answer to a gateway call. */
export function responseKeyOf(apiMethod: string): string {
  return `${apiMethod.replaceAll('.', '_')}_response`;
}

// ---------------------------------------------------------------------------
// Amounts and times at the edge

/** Fen's minor units as Alipay's yuan string; only CNY exists on Alipay's side. */
export function yuanFromMinor(amount: bigint): string {
  return formatMinorAsDecimal(amount, alipayCurrency);
}

/** Alipay's yuan string as Money; `undefined` for anything that is not an exact, non-negative amount. */
export function moneyFromYuan(text: unknown): Money | undefined {
  // Stricter than the platform parser: Alipay writes plain digits with at most two decimals, nothing else.
  if (typeof text !== 'string' || !/^\d+(\.\d{1,2})?$/.test(text)) return undefined;
  const parsed = parseDecimalToMinor(text, alipayCurrency);
  return parsed.ok ? { amount: parsed.value, currency: alipayCurrency } : undefined;
}

/** Alipay writes times as "yyyy-MM-dd HH:mm:ss" in Beijing time (UTC+8), without a zone (gmt_refund adds ".SSS"). */
export function formatBeijingTime(date: Date): string {
  return new Date(date.getTime() + beijingOffsetMs).toISOString().slice(0, 19).replace('T', ' ');
}

export function parseBeijingTime(text: unknown): Date | undefined {
  if (typeof text !== 'string') return undefined;
  const match = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})(\.\d{1,3})?$/.exec(text);
  if (!match) return undefined;
  const milliseconds = match[3] ? match[3].padEnd(4, '0') : '';
  const date = new Date(`${match[1]}T${match[2]}${milliseconds}+08:00`);
  // JavaScript rolls 2019-02-30 over into March; a date that does not format back is not a date.
  return Number.isNaN(date.getTime()) || formatBeijingTime(date) !== `${match[1]} ${match[2]}` ? undefined : date;
}

// ---------------------------------------------------------------------------
// Requests

/** One gateway call: the API method, its biz_content, and the public parameters that travel beside it. */
export interface AlipayCall {
  apiMethod: AlipayApiMethod;
  bizContent: Record<string, unknown>;
  notifyUrl?: string;
  returnUrl?: string;
}

/** Whole minutes from now to the order's expiry, within what Alipay accepts. */
export function timeoutExpressFor(expiresAt: Date, now: Date): string {
  const minutes = Math.ceil((expiresAt.getTime() - now.getTime()) / 60_000);
  return `${Math.min(timeoutMinutesMax, Math.max(timeoutMinutesMin, minutes))}m`;
}

function orderBizContent(request: CreatePaymentRequest): Record<string, unknown> {
  return {
    out_trade_no: request.outTradeNo,
    total_amount: yuanFromMinor(request.amount.amount),
    subject: request.subject,
    ...(request.description ? { body: request.description } : {}),
  };
}

/** alipay.trade.precreate: Alipay answers with a QR code for the payer to scan. */
export function precreateCall(request: CreatePaymentRequest, defaults: { notifyUrl: string }, now: Date): AlipayCall {
  return {
    apiMethod: alipayApiMethods.precreate,
    bizContent: {
      ...orderBizContent(request),
      product_code: alipayProductCodes.alipay_qr,
      timeout_express: timeoutExpressFor(request.expiresAt, now),
    },
    notifyUrl: request.notifyUrl ?? defaults.notifyUrl,
  };
}

/** alipay.trade.page.pay: a signed URL the payer's browser opens; nothing is sent to Alipay until then. */
export function pagePayCall(request: CreatePaymentRequest, defaults: { notifyUrl: string; returnUrl?: string }): AlipayCall {
  const returnUrl = request.returnUrl ?? defaults.returnUrl;
  return {
    apiMethod: alipayApiMethods.pagePay,
    bizContent: {
      ...orderBizContent(request),
      product_code: alipayProductCodes.alipay_page,
      time_expire: formatBeijingTime(request.expiresAt),
    },
    notifyUrl: request.notifyUrl ?? defaults.notifyUrl,
    ...(returnUrl ? { returnUrl } : {}),
  };
}

function tradeReference(request: { outTradeNo: string; channelTradeNo?: string }): Record<string, string> {
  return { out_trade_no: request.outTradeNo, ...(request.channelTradeNo ? { trade_no: request.channelTradeNo } : {}) };
}

export function queryCall(request: QueryPaymentRequest): AlipayCall {
  return { apiMethod: alipayApiMethods.query, bizContent: tradeReference(request) };
}

export function closeCall(request: ClosePaymentRequest): AlipayCall {
  return { apiMethod: alipayApiMethods.close, bizContent: tradeReference(request) };
}

/** A partial refund, with Fen's refund number as out_request_no so a retry is the same refund. */
export function refundCall(request: RefundRequest): AlipayCall {
  return {
    apiMethod: alipayApiMethods.refund,
    bizContent: {
      ...tradeReference(request),
      refund_amount: yuanFromMinor(request.refundAmount.amount),
      out_request_no: request.outRefundNo,
      ...(request.reason ? { refund_reason: request.reason } : {}),
    },
  };
}

export function refundQueryCall(request: QueryRefundRequest): AlipayCall {
  return {
    apiMethod: alipayApiMethods.refundQuery,
    bizContent: { ...tradeReference(request), out_request_no: request.outRefundNo, query_options: ['gmt_refund_pay'] },
  };
}

// ---------------------------------------------------------------------------
// Answers

/** The `<method>_response` object of a gateway answer, with Alipay's snake_case keys. */
export type AlipayAnswer = Record<string, unknown>;

function textOf(answer: Record<string, unknown>, key: string): string | undefined {
  const value = answer[key];
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}

type AnswerView = { kind: 'success' } | { kind: 'error'; errorClass: AlipayErrorClass | undefined; channelCode: string; message: string };

/** Reads code/sub_code: success, or an error with its class (undefined for codes not in the status map). */
export function viewAnswer(answer: AlipayAnswer): AnswerView {
  const code = textOf(answer, 'code');
  const subCode = textOf(answer, 'sub_code');
  const answerClass = answerClassOf(code, subCode);
  if (answerClass === 'success') return { kind: 'success' };
  const channelCode = subCode ?? code ?? 'missing_code';
  const message = [code, textOf(answer, 'msg'), subCode, textOf(answer, 'sub_msg')].filter(Boolean).join(' ');
  return { kind: 'error', errorClass: answerClass, channelCode, message };
}

function unknownFrom(view: Extract<AnswerView, { kind: 'error' }>): UnknownAnswer {
  if (view.errorClass === undefined) {
    return { status: 'unknown', reason: 'unmapped_status', channelCode: view.channelCode, message: view.message };
  }
  const reason = view.errorClass === 'state_conflict' ? 'state_conflict' : 'channel_error';
  return { status: 'unknown', reason, channelCode: view.channelCode, message: view.message };
}

function unparsable(message: string, channelCode?: string): UnknownAnswer {
  return { status: 'unknown', reason: 'unparsable', message, ...(channelCode ? { channelCode } : {}) };
}

/** An answer about a different trade than the one asked about is not believed. */
function namesOtherTrade(answer: AlipayAnswer, outTradeNo: string): UnknownAnswer | undefined {
  const named = textOf(answer, 'out_trade_no');
  if (named === undefined || named === outTradeNo) return undefined;
  return { status: 'unknown', reason: 'unverifiable', message: `the answer names trade ${named}, not ${outTradeNo}` };
}

export function createResultFromPrecreate(answer: AlipayAnswer, request: CreatePaymentRequest): CreatePaymentResult {
  const view = viewAnswer(answer);
  if (view.kind === 'error') {
    // Rejected means Alipay created nothing; anything else (already paid, system error) is settled by a query.
    if (view.errorClass === 'rejected') return { status: 'failed', reason: 'rejected', channelCode: view.channelCode, message: view.message };
    return unknownFrom(view);
  }
  const otherTrade = namesOtherTrade(answer, request.outTradeNo);
  if (otherTrade) return otherTrade;
  const qrCode = textOf(answer, 'qr_code');
  if (qrCode === undefined) return unparsable('precreate succeeded without a qr_code');
  return { status: 'pending', action: { kind: 'qr_code', qrCode } };
}

function failureReasonOf(tradeStatus: string | undefined, paidAt: Date | undefined): PaymentFailureReason | undefined {
  if (tradeStatus !== 'TRADE_CLOSED') return undefined;
  // Alipay closes a trade that was refunded in full; it still carries the time it was paid.
  return paidAt === undefined ? 'closed' : 'refunded_in_full';
}

/** The trade facts of a query answer or a notification: both use the same field names. */
export function reportedPaymentOf(fields: Record<string, unknown>, fallbackOutTradeNo?: string): ReportedPayment | undefined {
  const amount = moneyFromYuan(fields.total_amount);
  const outTradeNo = textOf(fields, 'out_trade_no') ?? fallbackOutTradeNo;
  const channelStatus = textOf(fields, 'trade_status');
  if (amount === undefined || outTradeNo === undefined || channelStatus === undefined) return undefined;
  return {
    outTradeNo,
    channelTradeNo: textOf(fields, 'trade_no'),
    amount,
    channelStatus,
    // The query calls it send_pay_date, the notification gmt_payment.
    paidAt: parseBeijingTime(fields.send_pay_date) ?? parseBeijingTime(fields.gmt_payment),
    payerChannelId: textOf(fields, 'buyer_user_id') ?? textOf(fields, 'buyer_id') ?? textOf(fields, 'buyer_open_id'),
  };
}

export function paymentResultFromQuery(answer: AlipayAnswer, request: QueryPaymentRequest): PaymentStatusResult {
  const view = viewAnswer(answer);
  if (view.kind === 'error') {
    // TRADE_NOT_EXIST is its own answer: for a QR order nobody has scanned yet it is the normal state.
    if (view.errorClass === 'not_found') return { status: 'not_found', channelCode: view.channelCode };
    return unknownFrom(view);
  }
  const otherTrade = namesOtherTrade(answer, request.outTradeNo);
  if (otherTrade) return otherTrade;
  const facts = reportedPaymentOf(answer, request.outTradeNo);
  if (facts === undefined) return unparsable('trade query answer without trade_status or a valid total_amount');
  const status = tradeStatusOf(facts.channelStatus) ?? 'unknown';
  return paymentResultFrom({ status, failureReason: failureReasonOf(facts.channelStatus, facts.paidAt), facts }, request.expected);
}

export function closeResultFromAnswer(answer: AlipayAnswer, request: ClosePaymentRequest): ClosePaymentResult {
  const view = viewAnswer(answer);
  if (view.kind === 'success') return namesOtherTrade(answer, request.outTradeNo) ?? { status: 'succeeded' };
  switch (view.errorClass) {
    case 'not_found':
      return { status: 'not_found', channelCode: view.channelCode };
    case 'rejected':
    case 'state_conflict':
      // Most often ACQ.TRADE_STATUS_ERROR: the trade is no longer waiting — it may have been paid.
      return { status: 'failed', reason: 'rejected', channelCode: view.channelCode, message: view.message };
    case 'retry':
    case undefined:
      return unknownFrom(view);
  }
}

function totalRefundedOf(answer: AlipayAnswer): Money | undefined {
  return moneyFromYuan(answer.refund_fee);
}

/**
 * alipay.trade.refund. The answer carries the running total (refund_fee) and,
 * where Alipay sends it, this refund's amount (send_back_fee). Without the
 * latter the running total must at least cover the refund and stay within
 * the payment, or the answer is an amount mismatch.
 */
export function refundResultFromAnswer(answer: AlipayAnswer, request: RefundRequest): RefundResult {
  const view = viewAnswer(answer);
  if (view.kind === 'error') {
    // A refused refund moved no money (Alipay's advice: retry with the same out_request_no once fixed).
    if (view.errorClass === 'rejected' || view.errorClass === 'not_found' || view.errorClass === 'state_conflict') {
      return { status: 'failed', reason: 'rejected', channelCode: view.channelCode, message: view.message };
    }
    return unknownFrom(view);
  }
  const otherTrade = namesOtherTrade(answer, request.outTradeNo);
  if (otherTrade) return otherTrade;
  const channelStatus = textOf(answer, 'fund_change');
  const totalRefunded = totalRefundedOf(answer);
  if (channelStatus === undefined || totalRefunded === undefined) return unparsable('refund answer without fund_change or refund_fee');
  const thisRefund = answer.send_back_fee === undefined ? undefined : moneyFromYuan(answer.send_back_fee);
  if (answer.send_back_fee !== undefined && thisRefund === undefined) return unparsable('refund answer with an invalid send_back_fee');
  const totalOutOfRange = totalRefunded.amount < request.refundAmount.amount || totalRefunded.amount > request.paymentAmount.amount;
  // With send_back_fee the check is exact; without it, a running total out of range is reported as the mismatch.
  const amount = thisRefund ?? (totalOutOfRange ? totalRefunded : request.refundAmount);
  const facts: ReportedRefund = {
    outTradeNo: request.outTradeNo,
    outRefundNo: request.outRefundNo,
    channelTradeNo: textOf(answer, 'trade_no'),
    channelRefundNo: undefined,
    amount,
    totalRefunded,
    channelStatus,
    refundedAt: parseBeijingTime(answer.gmt_refund_pay),
  };
  return refundResultFrom({ status: fundChangeOf(channelStatus) ?? 'unknown', facts }, request.refundAmount);
}

/** alipay.trade.fastpay.refund.query: no refund_status means Alipay has not received (or refused) the refund. */
export function refundResultFromQuery(answer: AlipayAnswer, request: QueryRefundRequest): RefundResult {
  const view = viewAnswer(answer);
  if (view.kind === 'error') {
    if (view.errorClass === 'not_found') return { status: 'not_found', channelCode: view.channelCode };
    return unknownFrom(view);
  }
  const otherTrade = namesOtherTrade(answer, request.outTradeNo);
  if (otherTrade) return otherTrade;
  const channelStatus = textOf(answer, 'refund_status');
  if (channelStatus === undefined) return { status: 'not_found', channelCode: 'REFUND_NOT_FOUND' };
  const amount = moneyFromYuan(answer.refund_amount);
  if (amount === undefined) return unparsable('refund query answer without a valid refund_amount', channelStatus);
  const facts: ReportedRefund = {
    outTradeNo: request.outTradeNo,
    outRefundNo: textOf(answer, 'out_request_no') ?? request.outRefundNo,
    channelTradeNo: textOf(answer, 'trade_no'),
    channelRefundNo: undefined,
    amount,
    totalRefunded: undefined,
    channelStatus,
    refundedAt: parseBeijingTime(answer.gmt_refund_pay),
  };
  if (facts.outRefundNo !== request.outRefundNo) return unparsable(`the answer names refund ${facts.outRefundNo}`);
  return refundResultFrom({ status: refundStatusOf(channelStatus) ?? 'unknown', facts }, request.expected);
}

// ---------------------------------------------------------------------------
// Notifications

export type ParsedNotification =
  | { ok: true; event: NotificationEvent }
  | { ok: false; reason: 'malformed' | 'unsupported'; message: string };

/**
 * A trade_status_sync notification (already verified) as a Fen event. After a
 * refund Alipay sends the same notification type carrying out_biz_no (the
 * refund request number), refund_fee (the running total) and gmt_refund; that
 * becomes a refund event which a refund query confirms.
 */
export function notificationEventFromForm(form: Record<string, string>): ParsedNotification {
  const notifyType = textOf(form, 'notify_type');
  if (notifyType !== 'trade_status_sync') return { ok: false, reason: 'unsupported', message: `notify_type ${notifyType ?? '(none)'}` };
  const facts = reportedPaymentOf(form);
  if (facts === undefined) return { ok: false, reason: 'malformed', message: 'no out_trade_no, trade_status or valid total_amount' };
  const notificationId = textOf(form, 'notify_id');
  const outRefundNo = textOf(form, 'out_biz_no');
  if (outRefundNo !== undefined && (form.refund_fee !== undefined || form.gmt_refund !== undefined)) {
    const refund: ReportedRefund = {
      outTradeNo: facts.outTradeNo,
      outRefundNo,
      channelTradeNo: facts.channelTradeNo,
      channelRefundNo: undefined,
      amount: undefined,
      totalRefunded: moneyFromYuan(form.refund_fee),
      channelStatus: facts.channelStatus,
      refundedAt: parseBeijingTime(form.gmt_refund),
    };
    return { ok: true, event: { kind: 'refund', notificationId, reportedStatus: 'pending', facts: refund } };
  }
  const reportedStatus = tradeStatusOf(facts.channelStatus) ?? 'unknown';
  const failureReason = failureReasonOf(facts.channelStatus, facts.paidAt);
  return { ok: true, event: { kind: 'payment', notificationId, reportedStatus, failureReason, facts } };
}
