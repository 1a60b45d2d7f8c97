import { decodeTime } from 'ulid';
import type { Currency, Money } from '../../platform/money.js';
import {
  paymentResultFrom,
  refundResultFrom,
  type ClosePaymentRequest,
  type ClosePaymentResult,
  type CreatePaymentRequest,
  type NotificationEvent,
  type PaymentStatusResult,
  type QueryPaymentRequest,
  type QueryRefundRequest,
  type RefundRequest,
  type RefundResult,
  type ReportedPayment,
  type ReportedRefund,
  type UnknownAnswer,
} from '../connector.js';
import { signMethodCertificate } from './signature.js';
import { answerClassOf, transactionStatusOf, type AnswerClass } from './status-map.js';

/**
 * Pure mapping between Fen's connector types and UnionPay ACP 5.1.0 forms:
 * request fields out, answer fields in. No I/O, no clock, no keys — so every
 * mapping is tested on answers recorded from the simulator
 * (test/fixtures/unionpay). UnionPay writes amounts as whole fen ("txnAmt=1234")
 * and currencies as ISO numeric codes ("156"); both become Money here.
 */

export const unionpayVersion = '5.1.0';
export const unionpayEncoding = 'UTF-8';
export const unionpayCurrency = 'CNY';
const currencyByNumericCode: Record<string, Currency> = { '156': 'CNY' };
export const unionpayCurrencyCode = '156';

export const txnTypes = { query: '00', consume: '01', refund: '04' } as const;
export const txnSubTypes = { query: '00', consume: '01', refund: '00' } as const;
/** 000201: B2C gateway payment; queries use 000000, as UnionPay's own examples do. */
export const bizTypes = { gatewayPayment: '000201', query: '000000' } as const;
/** 07: internet (a desktop browser). */
export const channelTypeInternet = '07';
/** 0: a merchant connecting directly (not through an acquirer). */
export const accessTypeMerchant = '0';

export const unionpayEndpoints = ['frontTransReq', 'backTransReq', 'queryTrans'] as const;
export type UnionpayEndpoint = (typeof unionpayEndpoints)[number];

const beijingOffsetMs = 8 * 60 * 60 * 1000;
const txnAmtPattern = /^\d{1,12}$/;
/**
 * UnionPay's riskRateInfo is `{name=value&…}`: braces, `&` and `=` would break
 * it apart. Control characters go too: a browser posting the form turns a line
 * break into CRLF, and the signature over the field would no longer hold.
 */
const riskRateInfoReserved = /[{}&=\p{Cc}]/gu;
const commodityNameLengthMax = 64;

// ---------------------------------------------------------------------------
// Order numbers and order times
//
// UnionPay's orderId is 8–40 letters and digits, and it identifies a
// transaction only together with txnTime (the time the merchant sent it).
// Fen's numbers are `<prefix>_<ULID>`: dropping the underscore gives a valid
// orderId that maps back one to one, and the ULID carries the time the
// number was made, so txnTime can be recomputed from the number alone for
// every later query, close and refund of it (see the report on the connector
// interface for the alternative).

const fenNumberPattern = /^([a-z]{3})_([0-9a-hjkmnp-tv-z]{26})$/;
const compactFenNumberPattern = /^([a-z]{3})([0-9a-hjkmnp-tv-z]{26})$/;
const orderIdPattern = /^[0-9A-Za-z]{8,40}$/;

/** UnionPay's orderId for a Fen number; `undefined` when no orderId can stand for it unambiguously. */
export function orderIdFor(fenNumber: string): string | undefined {
  const fen = fenNumberPattern.exec(fenNumber);
  if (fen) return `${fen[1]}${fen[2]}`;
  // Anything else goes as it is, unless it could be read back as a Fen number.
  return orderIdPattern.test(fenNumber) && !compactFenNumberPattern.test(fenNumber) ? fenNumber : undefined;
}

/** The Fen number an orderId stands for (the inverse of orderIdFor). */
export function fenNumberFor(orderId: string): string {
  const compact = compactFenNumberPattern.exec(orderId);
  return compact ? `${compact[1]}_${compact[2]}` : orderId;
}

/** txnTime for a Fen number: the time its ULID was made, in Beijing time. */
export function txnTimeFor(fenNumber: string): string | undefined {
  const fen = fenNumberPattern.exec(fenNumber);
  if (!fen) return undefined;
  try {
    return formatBeijingCompact(new Date(decodeTime(fen[2]!.toUpperCase())));
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------
// Amounts and times at the edge

export function txnAmtOf(amount: bigint): string {
  return amount.toString(10);
}

/**
 * txnAmt and currencyCode as Money. An answer without currencyCode is in CNY:
 * the online gateway settles domestic merchants in 156 only, and the refund
 * answer does not repeat it.
 */
export function moneyFromTxnAmt(txnAmt: string | undefined, currencyCode: string | undefined): Money | undefined {
  if (txnAmt === undefined || !txnAmtPattern.test(txnAmt)) return undefined;
  const currency = currencyCode === undefined ? unionpayCurrency : currencyByNumericCode[currencyCode];
  return currency === undefined ? undefined : { amount: BigInt(txnAmt), currency };
}

/** yyyyMMddHHmmss in Beijing time (UTC+8), as txnTime and payTimeout are written. */
export function formatBeijingCompact(date: Date): string {
  return new Date(date.getTime() + beijingOffsetMs).toISOString().slice(0, 19).replace(/[-T:]/g, '');
}

export function parseBeijingCompact(text: string | undefined): Date | undefined {
  if (text === undefined || !/^\d{14}$/.test(text)) return undefined;
  const iso = `${text.slice(0, 4)}-${text.slice(4, 6)}-${text.slice(6, 8)}T${text.slice(8, 10)}:${text.slice(10, 12)}:${text.slice(12, 14)}+08:00`;
  const date = new Date(iso);
  // JavaScript rolls 0230 over into March; a time that does not format back is not a time.
  return Number.isNaN(date.getTime()) || formatBeijingCompact(date) !== text ? undefined : date;
}

/**
 * traceTime (MMddHHmmss, Beijing time) is when UnionPay processed the
 * transaction; it has no year, so the year is the one that puts it nearest to
 * the order's txnTime (a payment made just after New Year's midnight for an
 * order of December 31st lands in the next year).
 */
export function parseTraceTime(traceTime: string | undefined, txnTime: string | undefined): Date | undefined {
  const anchor = parseBeijingCompact(txnTime);
  if (traceTime === undefined || !/^\d{10}$/.test(traceTime) || anchor === undefined) return undefined;
  const year = Number(txnTime!.slice(0, 4));
  const candidates = [year - 1, year, year + 1]
    .map((candidate) => parseBeijingCompact(`${candidate}${traceTime}`))
    .filter((date): date is Date => date !== undefined);
  const distance = (date: Date) => Math.abs(date.getTime() - anchor.getTime());
  return candidates.sort((left, right) => distance(left) - distance(right))[0];
}

// ---------------------------------------------------------------------------
// Requests

/** One gateway request before signing; the connector adds certId and signature. */
export interface UnionpayCall {
  endpoint: UnionpayEndpoint;
  fields: Record<string, string>;
}

export type CallOrRefusal = { ok: true; call: UnionpayCall } | { ok: false; channelCode: string; message: string };

function commonFields(merId: string): Record<string, string> {
  return { version: unionpayVersion, encoding: unionpayEncoding, signMethod: signMethodCertificate, accessType: accessTypeMerchant, merId };
}

/** The subject travels in riskRateInfo's commodityName, the only place ACP has for it. */
export function riskRateInfoFor(subject: string): string {
  const name = subject.replace(riskRateInfoReserved, ' ').trim().slice(0, commodityNameLengthMax);
  return `{commodityName=${name}}`;
}

function orderReference(fenNumber: string): { orderId: string; txnTime: string } | undefined {
  const orderId = orderIdFor(fenNumber);
  const txnTime = txnTimeFor(fenNumber);
  return orderId && txnTime ? { orderId, txnTime } : undefined;
}

/** frontTransReq consumption: the fields the payer's browser posts to UnionPay. */
export function consumeCall(request: CreatePaymentRequest, defaults: { merId: string; notifyUrl: string; frontUrl: string }): CallOrRefusal {
  if (request.amount.currency !== unionpayCurrency) {
    return { ok: false, channelCode: 'unsupported_currency', message: `UnionPay online payment takes CNY, not ${request.amount.currency}` };
  }
  const reference = orderReference(request.outTradeNo);
  if (!reference) return { ok: false, channelCode: 'unsupported_order_number', message: `${request.outTradeNo} is not a Fen number UnionPay can carry` };
  const fields = {
    ...commonFields(defaults.merId),
    txnType: txnTypes.consume,
    txnSubType: txnSubTypes.consume,
    bizType: bizTypes.gatewayPayment,
    channelType: channelTypeInternet,
    currencyCode: unionpayCurrencyCode,
    txnAmt: txnAmtOf(request.amount.amount),
    ...reference,
    payTimeout: formatBeijingCompact(request.expiresAt),
    backUrl: request.notifyUrl ?? defaults.notifyUrl,
    frontUrl: request.returnUrl ?? defaults.frontUrl,
    riskRateInfo: riskRateInfoFor(request.subject),
  };
  return { ok: true, call: { endpoint: 'frontTransReq', fields } };
}

/**
 * backTransReq refund: its own orderId and txnTime (from the refund number, so
 * a retry is the same transaction), the original's queryId, and the payment's
 * orderId in reqReserved, which UnionPay hands back in the refund's notification.
 */
export function refundCall(request: RefundRequest, origQryId: string, defaults: { merId: string; notifyUrl: string }): CallOrRefusal {
  if (request.refundAmount.currency !== unionpayCurrency) {
    return { ok: false, channelCode: 'unsupported_currency', message: `UnionPay refunds CNY, not ${request.refundAmount.currency}` };
  }
  const reference = orderReference(request.outRefundNo);
  if (!reference) return { ok: false, channelCode: 'unsupported_order_number', message: `${request.outRefundNo} is not a Fen number UnionPay can carry` };
  const paymentOrderId = orderIdFor(request.outTradeNo);
  const fields = {
    ...commonFields(defaults.merId),
    txnType: txnTypes.refund,
    txnSubType: txnSubTypes.refund,
    bizType: bizTypes.gatewayPayment,
    channelType: channelTypeInternet,
    ...reference,
    txnAmt: txnAmtOf(request.refundAmount.amount),
    currencyCode: unionpayCurrencyCode,
    origQryId,
    backUrl: defaults.notifyUrl,
    ...(paymentOrderId ? { reqReserved: paymentOrderId } : {}),
  };
  return { ok: true, call: { endpoint: 'backTransReq', fields } };
}

/** queryTrans for any transaction Fen sent (a payment or a refund), by its number. */
export function queryCall(fenNumber: string, merId: string): CallOrRefusal {
  const reference = orderReference(fenNumber);
  if (!reference) return { ok: false, channelCode: 'unsupported_order_number', message: `${fenNumber} is not a Fen number UnionPay can carry` };
  const fields = { ...commonFields(merId), txnType: txnTypes.query, txnSubType: txnSubTypes.query, bizType: bizTypes.query, ...reference };
  return { ok: true, call: { endpoint: 'queryTrans', fields } };
}

function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (character) => `&#${character.charCodeAt(0)};`);
}

/**
 * The page that takes the payer to UnionPay: a form of the signed fields that
 * submits itself, with a visible button for browsers that do not run the script.
 */
export function frontFormHtml(actionUrl: string, fields: Record<string, string>): string {
  const inputs = Object.entries(fields)
    .map(([name, value]) => `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(value)}">`)
    .join('\n');
  return `<!doctype html>
<html lang="zh-CN">
<head><meta charset="utf-8"><title>银联 UnionPay</title></head>
<body>
<form id="unionpay-front-form" action="${escapeHtml(actionUrl)}" method="post" accept-charset="UTF-8">
${inputs}
<button type="submit">前往银联 Continue to UnionPay</button>
</form>
<script>document.getElementById('unionpay-front-form').submit();</script>
</body>
</html>`;
}

// ---------------------------------------------------------------------------
// Answers

/** The fields of a synchronous answer (or a notification), by UnionPay's names. */
export type UnionpayAnswer = Record<string, string>;

/**
 * UnionPay's synchronous answers are `name=value&…` *without* URL encoding
 * (base64 signatures keep their `+`, the certificate its line breaks), and a
 * value may itself be `{a=b&c=d}`. This reads them the way UnionPay's own SDKs
 * do: `&` separates fields only outside braces, and a field's name ends at its
 * first `=`.
 */
export function parseAnswerText(text: string): UnionpayAnswer {
  const fields: UnionpayAnswer = {};
  let depth = 0;
  let start = 0;
  const take = (end: number) => {
    const pair = text.slice(start, end);
    const separator = pair.indexOf('=');
    if (separator > 0) fields[pair.slice(0, separator)] = pair.slice(separator + 1);
  };
  for (let index = 0; index < text.length; index += 1) {
    const character = text[index];
    if (character === '{') depth += 1;
    else if (character === '}') depth = Math.max(0, depth - 1);
    else if (character === '&' && depth === 0) {
      take(index);
      start = index + 1;
    }
  }
  take(text.length);
  return fields;
}

function text(answer: UnionpayAnswer, name: string): string | undefined {
  const value = answer[name];
  return value !== undefined && value.length > 0 ? value : undefined;
}

type AnswerView = { kind: 'success' } | { kind: 'error'; answerClass: Exclude<AnswerClass, 'success'> | undefined; channelCode: string; message: string };

/** Reads respCode/respMsg: success, or an error with its class (undefined for codes not in the status map). */
export function viewAnswer(answer: UnionpayAnswer): AnswerView {
  const respCode = text(answer, 'respCode');
  const answerClass = answerClassOf(respCode);
  if (answerClass === 'success') return { kind: 'success' };
  const channelCode = respCode ?? 'missing_respCode';
  return { kind: 'error', answerClass, channelCode, message: [respCode, text(answer, 'respMsg')].filter(Boolean).join(' ') };
}

function unknownFrom(view: Extract<AnswerView, { kind: 'error' }>): UnknownAnswer {
  if (view.answerClass === undefined) return { status: 'unknown', reason: 'unmapped_status', channelCode: view.channelCode, message: view.message };
  const reason = view.answerClass === 'duplicate' ? 'state_conflict' : 'channel_error';
  return { status: 'unknown', reason, channelCode: view.channelCode, message: view.message };
}

function unparsable(message: string, channelCode?: string): UnknownAnswer {
  return { status: 'unknown', reason: 'unparsable', message, ...(channelCode ? { channelCode } : {}) };
}

/** An answer about another merchant, order or kind of transaction than the one asked about is not believed. */
function namesOtherTransaction(answer: UnionpayAnswer, expected: { merId: string; orderId: string | undefined; txnType: string }): UnknownAnswer | undefined {
  const merId = text(answer, 'merId');
  const orderId = text(answer, 'orderId');
  const txnType = text(answer, 'txnType');
  if (merId !== undefined && merId !== expected.merId) return { status: 'unknown', reason: 'unverifiable', message: `the answer is for merchant ${merId}` };
  if (orderId !== undefined && orderId !== expected.orderId) return { status: 'unknown', reason: 'unverifiable', message: `the answer names order ${orderId}` };
  // A query answer names the queried transaction's type; one that echoes the query's own 00 says nothing against it.
  if (txnType !== undefined && txnType !== expected.txnType && txnType !== txnTypes.query) {
    return unparsable(`the answer is about a transaction of type ${txnType}, not ${expected.txnType}`);
  }
  return undefined;
}

/** The payment facts of a query answer or a back notification: both use the same names. */
export function reportedPaymentOf(fields: UnionpayAnswer, resultCode: string | undefined, fallbackOutTradeNo?: string): ReportedPayment | undefined {
  const amount = moneyFromTxnAmt(text(fields, 'txnAmt'), text(fields, 'currencyCode'));
  const orderId = text(fields, 'orderId');
  const outTradeNo = orderId === undefined ? fallbackOutTradeNo : fenNumberFor(orderId);
  if (amount === undefined || outTradeNo === undefined || resultCode === undefined) return undefined;
  const succeeded = transactionStatusOf(resultCode) === 'succeeded';
  return {
    outTradeNo,
    channelTradeNo: text(fields, 'queryId'),
    amount,
    channelStatus: resultCode,
    paidAt: succeeded ? parseTraceTime(text(fields, 'traceTime'), text(fields, 'txnTime')) : undefined,
    // UnionPay identifies the payer only by a masked card number, which Fen does not keep.
    payerChannelId: undefined,
  };
}

/** queryTrans about a payment: respCode says whether the query ran, origRespCode what became of the payment. */
export function paymentResultFromQuery(answer: UnionpayAnswer, request: QueryPaymentRequest, merId: string): PaymentStatusResult {
  const view = viewAnswer(answer);
  if (view.kind === 'error') {
    // 34 is its own answer: the payer has not submitted the form to UnionPay (yet).
    if (view.answerClass === 'not_found') return { status: 'not_found', channelCode: view.channelCode };
    return unknownFrom(view);
  }
  const other = namesOtherTransaction(answer, { merId, orderId: orderIdFor(request.outTradeNo), txnType: txnTypes.consume });
  if (other) return other;
  const resultCode = text(answer, 'origRespCode');
  const facts = reportedPaymentOf(answer, resultCode, request.outTradeNo);
  if (facts === undefined) return unparsable('payment query answer without origRespCode or a valid txnAmt');
  const status = transactionStatusOf(resultCode) ?? 'unknown';
  return paymentResultFrom({ status, failureReason: status === 'failed' ? 'declined' : undefined, facts }, request.expected);
}

/**
 * ACP has no "close" for an order nobody has paid: UnionPay refuses payment by
 * itself after payTimeout (the order's expiry). So a close is answered from a
 * query of the order: one UnionPay does not know (the payer never submitted
 * the form) is `not_found`, and one that failed can take no money, so it is
 * as good as closed; one that is paid or still being paid cannot be closed, and
 * Fen's close path then queries it. Amounts do not matter for a close.
 */
export function closeResultFromQuery(answer: UnionpayAnswer, request: ClosePaymentRequest, merId: string): ClosePaymentResult {
  const view = viewAnswer(answer);
  if (view.kind === 'error') {
    if (view.answerClass === 'not_found') return { status: 'not_found', channelCode: view.channelCode };
    return unknownFrom(view);
  }
  const other = namesOtherTransaction(answer, { merId, orderId: orderIdFor(request.outTradeNo), txnType: txnTypes.consume });
  if (other) return other;
  const resultCode = text(answer, 'origRespCode');
  if (resultCode === undefined) return unparsable('payment query answer without origRespCode');
  switch (transactionStatusOf(resultCode)) {
    case 'failed':
      return { status: 'succeeded' };
    case 'succeeded':
      return { status: 'failed', reason: 'rejected', channelCode: resultCode, message: 'UnionPay reports the order paid; it cannot be closed' };
    case 'pending':
      return { status: 'failed', reason: 'rejected', channelCode: resultCode, message: 'UnionPay is still processing the order; it cannot be closed' };
    case 'unknown':
    case undefined:
      return { status: 'unknown', reason: 'unmapped_status', channelCode: resultCode, message: `unmapped origRespCode ${resultCode}` };
  }
}

function reportedRefundOf(fields: UnionpayAnswer, resultCode: string, fallback: { outTradeNo: string; outRefundNo: string }): ReportedRefund {
  const orderId = text(fields, 'orderId');
  const paymentOrderId = text(fields, 'reqReserved');
  const succeeded = transactionStatusOf(resultCode) === 'succeeded';
  return {
    outTradeNo: paymentOrderId === undefined ? fallback.outTradeNo : fenNumberFor(paymentOrderId),
    outRefundNo: orderId === undefined ? fallback.outRefundNo : fenNumberFor(orderId),
    channelTradeNo: text(fields, 'origQryId'),
    channelRefundNo: text(fields, 'queryId'),
    amount: moneyFromTxnAmt(text(fields, 'txnAmt'), text(fields, 'currencyCode')),
    totalRefunded: undefined,
    channelStatus: resultCode,
    refundedAt: succeeded ? parseTraceTime(text(fields, 'traceTime'), text(fields, 'txnTime')) : undefined,
  };
}

/**
 * backTransReq refund. respCode 00 means UnionPay *accepted* the refund; its
 * result comes with the back notification or a query (origRespCode), so the
 * answer is at best `pending`. 12 (a transaction with this orderId and txnTime
 * exists) is what a retried refund gets when the first try went through: a
 * query settles it. Any other refusal moved no money.
 */
export function refundResultFromAnswer(answer: UnionpayAnswer, request: RefundRequest, merId: string): RefundResult {
  const view = viewAnswer(answer);
  if (view.kind === 'error') {
    if (view.answerClass === 'duplicate') return { status: 'pending', facts: undefined };
    if (view.answerClass === 'rejected' || view.answerClass === 'not_found') {
      return { status: 'failed', reason: 'rejected', channelCode: view.channelCode, message: view.message };
    }
    return unknownFrom(view);
  }
  const other = namesOtherTransaction(answer, { merId, orderId: orderIdFor(request.outRefundNo), txnType: txnTypes.refund });
  if (other) return other;
  const facts = reportedRefundOf(answer, text(answer, 'respCode')!, request);
  if (facts.amount === undefined) return unparsable('refund answer without a valid txnAmt');
  return refundResultFrom({ status: 'pending', facts }, request.refundAmount);
}

/** queryTrans about a refund, by the refund's own number. */
export function refundResultFromQuery(answer: UnionpayAnswer, request: QueryRefundRequest, merId: string): RefundResult {
  const view = viewAnswer(answer);
  if (view.kind === 'error') {
    if (view.answerClass === 'not_found') return { status: 'not_found', channelCode: view.channelCode };
    return unknownFrom(view);
  }
  const other = namesOtherTransaction(answer, { merId, orderId: orderIdFor(request.outRefundNo), txnType: txnTypes.refund });
  if (other) return other;
  const resultCode = text(answer, 'origRespCode');
  if (resultCode === undefined) return unparsable('refund query answer without origRespCode');
  const facts = reportedRefundOf(answer, resultCode, request);
  if (facts.amount === undefined) return unparsable('refund query answer without a valid txnAmt', resultCode);
  return refundResultFrom({ status: transactionStatusOf(resultCode) ?? 'unknown', facts }, request.expected);
}

// ---------------------------------------------------------------------------
// Notifications

export type ParsedNotification = { ok: true; event: NotificationEvent } | { ok: false; reason: 'malformed' | 'unsupported'; message: string };

/**
 * A back notification (already verified) as a Fen event: txnType 01 is the
 * payment, 04 a refund. UnionPay has no notification id; the transaction's
 * queryId is the same on every retry, so it serves.
 */
export function notificationEventFromForm(form: UnionpayAnswer): ParsedNotification {
  const txnType = text(form, 'txnType');
  const resultCode = text(form, 'respCode');
  if (resultCode === undefined) return { ok: false, reason: 'malformed', message: 'no respCode' };
  const notificationId = text(form, 'queryId');
  const reportedStatus = transactionStatusOf(resultCode) ?? 'unknown';
  if (txnType === txnTypes.consume) {
    const facts = reportedPaymentOf(form, resultCode);
    if (facts === undefined) return { ok: false, reason: 'malformed', message: 'no orderId or valid txnAmt' };
    const failureReason = reportedStatus === 'failed' ? 'declined' : undefined;
    return { ok: true, event: { kind: 'payment', notificationId, reportedStatus, failureReason, facts } };
  }
  if (txnType === txnTypes.refund) {
    const orderId = text(form, 'orderId');
    if (orderId === undefined) return { ok: false, reason: 'malformed', message: 'a refund notification without orderId' };
    // A refund made outside Fen carries no reqReserved; it is still UnionPay's word, so it stays verified.
    const facts = reportedRefundOf(form, resultCode, { outTradeNo: '', outRefundNo: fenNumberFor(orderId) });
    if (facts.amount === undefined) return { ok: false, reason: 'malformed', message: 'a refund notification without a valid txnAmt' };
    return { ok: true, event: { kind: 'refund', notificationId, reportedStatus, facts } };
  }
  return { ok: false, reason: 'unsupported', message: `txnType ${txnType ?? '(none)'}` };
}
