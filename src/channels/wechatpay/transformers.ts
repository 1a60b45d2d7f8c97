import { isCurrency, type Money } from '../../platform/money.js';
import {
  paymentResultFrom,
  refundResultFrom,
  type ClosePaymentRequest,
  type ClosePaymentResult,
  type CreatePaymentRequest,
  type CreatePaymentResult,
  type NotificationEvent,
  type PayerAction,
  type PaymentStatusResult,
  type QueryPaymentRequest,
  type QueryRefundRequest,
  type RefundRequest,
  type RefundResult,
  type ReportedPayment,
  type ReportedRefund,
  type UnknownAnswer,
} from '../connector.js';
import {
  errorClassOf,
  eventKindOf,
  refundStatusOf,
  tradeFailureReasonOf,
  tradeStateOf,
  type WechatpayErrorClass,
} from './status-map.js';

/**
 * Pure mapping between Fen's connector types and WeChat Pay API v3's wire
 * format: request paths and JSON bodies out, `{status, body}` answers in. No
 * I/O, no clock, no SDK — so every mapping is tested on exchanges recorded
 * from the simulator (test/fixtures/wechatpay). Amounts are integer fen on
 * WeChat Pay's wire too, so nothing here converts units; it only checks that a
 * JSON number is a safe non-negative integer before it becomes a bigint.
 */

/** Domestic WeChat Pay trades in CNY only. */
export const wechatpayCurrency = 'CNY';

export const wechatpayOperations = ['native', 'h5', 'jsapi', 'query', 'close', 'refund', 'refund_query'] as const;
export type WechatpayOperation = (typeof wechatpayOperations)[number];

/** The create operation of each payment method. */
export const createOperations = {
  wechat_native: 'native',
  wechat_h5: 'h5',
  wechat_jsapi: 'jsapi',
} as const satisfies Record<string, WechatpayOperation>;
export type WechatpayMethod = keyof typeof createOperations;

/** WeChat Pay limits `description` to 127 characters and `reason` to 80. */
const descriptionLengthMax = 127;
const refundReasonLengthMax = 80;
const beijingOffsetMs = 8 * 60 * 60 * 1000;
const h5SceneType = 'Wap';

// ---------------------------------------------------------------------------
// Times at the edge

/** WeChat Pay writes RFC 3339 times in Beijing time: 2026-01-15T10:00:20+08:00. */
export function formatBeijingRfc3339(date: Date): string {
  return `${new Date(date.getTime() + beijingOffsetMs).toISOString().slice(0, 19)}+08:00`;
}

/** An RFC 3339 time with an explicit offset; `undefined` for anything else (including impossible dates). */
export function parseRfc3339(text: unknown): Date | undefined {
  if (typeof text !== 'string') return undefined;
  const match = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/.exec(text);
  if (!match) return undefined;
  const date = new Date(text);
  if (Number.isNaN(date.getTime())) return undefined;
  // JavaScript rolls 2026-02-30 over into March; a date whose fields do not survive the round trip is not a date.
  const offset = match[8] === 'Z' ? 0 : (match[8]!.startsWith('-') ? -1 : 1) * (Number(match[8]!.slice(1, 3)) * 60 + Number(match[8]!.slice(4, 6)));
  const local = new Date(date.getTime() + offset * 60_000).toISOString();
  return local.slice(0, 19) === `${match[1]}-${match[2]}-${match[3]}T${match[4]}:${match[5]}:${match[6]}` ? date : undefined;
}

// ---------------------------------------------------------------------------
// Amounts at the edge

/** A JSON amount as bigint fen: only a safe, non-negative integer counts. */
export function fenFromJson(value: unknown): bigint | undefined {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? BigInt(value) : undefined;
}

/**
 * WeChat Pay's `amount` object as Money. The refund notification carries no
 * currency at all, and domestic WeChat Pay is CNY only, so an absent currency
 * is CNY; a present one must be a currency Fen knows.
 */
export function moneyFromAmount(amount: unknown, field: 'total' | 'refund'): Money | undefined {
  if (typeof amount !== 'object' || amount === null) return undefined;
  const record = amount as Record<string, unknown>;
  const fen = fenFromJson(record[field]);
  const currency = record.currency ?? wechatpayCurrency;
  if (fen === undefined || typeof currency !== 'string' || !isCurrency(currency)) return undefined;
  return { amount: fen, currency };
}

/** Fen's bigint as WeChat Pay's JSON integer, or `undefined` when it cannot be one. */
function jsonFen(amount: bigint): number | undefined {
  return amount > 0n && amount <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(amount) : undefined;
}

/** Cuts text to a character limit without splitting a character made of two UTF-16 units. */
function truncated(text: string, lengthMax: number): string {
  const characters = Array.from(text);
  return characters.length <= lengthMax ? text : characters.slice(0, lengthMax).join('');
}

// ---------------------------------------------------------------------------
// Requests

/** One API call: its operation (for logs and faults), the path below the base URL, and its JSON body. */
export interface WechatpayCall {
  operation: WechatpayOperation;
  httpMethod: 'GET' | 'POST';
  /** Below the base URL, placeholders already filled in and URL-encoded. */
  path: string;
  query: Record<string, string> | undefined;
  body: Record<string, unknown> | undefined;
  /** The order the call is about, for logs. */
  outTradeNo: string;
}

export interface AccountParameters {
  mchId: string;
  appId: string;
  notifyUrl: string;
}

export type CallOrRefusal = { ok: true; call: WechatpayCall } | { ok: false; refusal: Extract<CreatePaymentResult, { status: 'failed' }> };

function refusal(channelCode: string, message: string): Extract<CallOrRefusal, { ok: false }> {
  return { ok: false, refusal: { status: 'failed', reason: 'rejected', channelCode, message } };
}

/** The method's own part of the order: nothing for Native, the payer's IP for H5, the payer's openid for JSAPI. */
function methodScene(request: CreatePaymentRequest): { ok: true; scene: Record<string, unknown> } | Extract<CallOrRefusal, { ok: false }> {
  switch (request.method) {
    case 'wechat_native':
      return { ok: true, scene: {} };
    case 'wechat_h5':
      // H5 payments are bound to the payer's network address; WeChat Pay refuses them without it.
      if (!request.payerIp) return refusal('missing_payer_ip', 'WeChat H5 payments need the payer’s IP address');
      return { ok: true, scene: { scene_info: { payer_client_ip: request.payerIp, h5_info: { type: h5SceneType } } } };
    case 'wechat_jsapi':
      if (!request.payerChannelId) return refusal('missing_payer_openid', 'WeChat JSAPI payments need the payer’s openid');
      return { ok: true, scene: { payer: { openid: request.payerChannelId } } };
    default:
      return refusal('unsupported_method', `WeChat Pay does not offer ${request.method}`);
  }
}

/** POST /v3/pay/transactions/{native,h5,jsapi}: the order, with Fen's number as out_trade_no. */
export function createCall(request: CreatePaymentRequest, account: AccountParameters): CallOrRefusal {
  if (request.amount.currency !== wechatpayCurrency) return refusal('unsupported_currency', `WeChat Pay takes CNY, not ${request.amount.currency}`);
  const total = jsonFen(request.amount.amount);
  if (total === undefined) return refusal('invalid_amount', 'the amount must be a positive number of fen');
  const scene = methodScene(request);
  if (!scene.ok) return scene;
  const operation = createOperations[request.method as WechatpayMethod];
  return {
    ok: true,
    call: {
      operation,
      httpMethod: 'POST',
      path: `v3/pay/transactions/${operation}`,
      query: undefined,
      body: {
        appid: account.appId,
        mchid: account.mchId,
        description: truncated(request.subject, descriptionLengthMax),
        out_trade_no: request.outTradeNo,
        time_expire: formatBeijingRfc3339(request.expiresAt),
        notify_url: request.notifyUrl ?? account.notifyUrl,
        amount: { total, currency: wechatpayCurrency },
        ...scene.scene,
      },
      outTradeNo: request.outTradeNo,
    },
  };
}

/** GET /v3/pay/transactions/out-trade-no/{out_trade_no}?mchid=… */
export function queryCall(request: QueryPaymentRequest, account: Pick<AccountParameters, 'mchId'>): WechatpayCall {
  return {
    operation: 'query',
    httpMethod: 'GET',
    path: `v3/pay/transactions/out-trade-no/${encodeURIComponent(request.outTradeNo)}`,
    query: { mchid: account.mchId },
    body: undefined,
    outTradeNo: request.outTradeNo,
  };
}

/** POST /v3/pay/transactions/out-trade-no/{out_trade_no}/close with the merchant id as the whole body. */
export function closeCall(request: ClosePaymentRequest, account: Pick<AccountParameters, 'mchId'>): WechatpayCall {
  return {
    operation: 'close',
    httpMethod: 'POST',
    path: `v3/pay/transactions/out-trade-no/${encodeURIComponent(request.outTradeNo)}/close`,
    query: undefined,
    body: { mchid: account.mchId },
    outTradeNo: request.outTradeNo,
  };
}

/**
 * POST /v3/refund/domestic/refunds: a partial or full refund, with Fen's
 * refund number as out_refund_no so a retry is the same refund. WeChat Pay
 * wants the order's total beside the refund, and sends the refund's outcome to
 * its own notify_url.
 */
export function refundCall(request: RefundRequest, account: Pick<AccountParameters, 'notifyUrl'>): CallOrRefusal {
  const currency = request.refundAmount.currency;
  if (currency !== wechatpayCurrency || request.paymentAmount.currency !== wechatpayCurrency) {
    return refusal('unsupported_currency', `WeChat Pay refunds CNY, not ${currency}`);
  }
  const refund = jsonFen(request.refundAmount.amount);
  const total = jsonFen(request.paymentAmount.amount);
  if (refund === undefined || total === undefined) return refusal('invalid_amount', 'the amounts must be positive numbers of fen');
  return {
    ok: true,
    call: {
      operation: 'refund',
      httpMethod: 'POST',
      path: 'v3/refund/domestic/refunds',
      query: undefined,
      body: {
        out_trade_no: request.outTradeNo,
        out_refund_no: request.outRefundNo,
        ...(request.reason ? { reason: truncated(request.reason, refundReasonLengthMax) } : {}),
        notify_url: account.notifyUrl,
        amount: { refund, total, currency: wechatpayCurrency },
      },
      outTradeNo: request.outTradeNo,
    },
  };
}

/** GET /v3/refund/domestic/refunds/{out_refund_no}: the merchant comes from the request signature. */
export function refundQueryCall(request: QueryRefundRequest): WechatpayCall {
  return {
    operation: 'refund_query',
    httpMethod: 'GET',
    path: `v3/refund/domestic/refunds/${encodeURIComponent(request.outRefundNo)}`,
    query: undefined,
    body: undefined,
    outTradeNo: request.outTradeNo,
  };
}

// ---------------------------------------------------------------------------
// Answers

/** One HTTP answer whose signature the SDK checked (2xx) or that carries an error body (4xx, 5xx). */
export interface WechatpayAnswer {
  httpStatus: number;
  /** The parsed JSON body; an empty string for 204, the text itself when it was not JSON. */
  body: unknown;
}

type Fields = Record<string, unknown>;

function isRecord(value: unknown): value is Fields {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function textOf(fields: Fields, key: string): string | undefined {
  const value = fields[key];
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}

type AnswerView =
  | { kind: 'success'; fields: Fields }
  | { kind: 'error'; errorClass: WechatpayErrorClass | undefined; channelCode: string; message: string }
  | { kind: 'http_error'; httpStatus: number };

/**
 * Reads an answer: success (2xx), a WeChat Pay error body `{code, message}`,
 * or an HTTP error without one (a proxy's 502 page). A 5xx never decides
 * anything, whatever code it carries; an unlisted code under a 4xx is
 * `undefined`, which becomes `unknown`.
 */
export function viewAnswer(answer: WechatpayAnswer): AnswerView {
  if (answer.httpStatus >= 200 && answer.httpStatus < 300) return { kind: 'success', fields: isRecord(answer.body) ? answer.body : {} };
  const code = isRecord(answer.body) ? textOf(answer.body, 'code') : undefined;
  if (code === undefined) return { kind: 'http_error', httpStatus: answer.httpStatus };
  const message = `${code} ${(answer.body as Fields).message ?? ''}`.trim();
  const errorClass = answer.httpStatus >= 500 ? 'retry' : errorClassOf(code);
  return { kind: 'error', errorClass, channelCode: code, message };
}

function unknownFrom(view: Exclude<AnswerView, { kind: 'success' }>): UnknownAnswer {
  if (view.kind === 'http_error') {
    return { status: 'unknown', reason: 'http_status', channelCode: `HTTP ${view.httpStatus}`, message: `WeChat Pay answered HTTP ${view.httpStatus}` };
  }
  if (view.errorClass === undefined) return { status: 'unknown', reason: 'unmapped_status', channelCode: view.channelCode, message: view.message };
  const reason = view.errorClass === 'state_conflict' ? 'state_conflict' : 'channel_error';
  return { status: 'unknown', reason, channelCode: view.channelCode, message: view.message };
}

function unparsable(message: string, channelCode?: string): UnknownAnswer {
  return { status: 'unknown', reason: 'unparsable', message, ...(channelCode ? { channelCode } : {}) };
}

/** An answer about a different order than the one asked about is not believed. */
function namesOtherOrder(fields: Fields, outTradeNo: string): UnknownAnswer | undefined {
  const named = textOf(fields, 'out_trade_no');
  if (named === undefined || named === outTradeNo) return undefined;
  return { status: 'unknown', reason: 'unverifiable', message: `the answer names order ${named}, not ${outTradeNo}` };
}

/** How the payer goes on from a created order; `undefined` when the answer lacks the field. */
export interface PayerActionOptions {
  /** Where WeChat's H5 cashier sends the payer back; appended to h5_url as `redirect_url`, as WeChat Pay documents. */
  returnUrl?: string;
  /** Builds the signed parameters for the payer's WeChat client from a prepay_id (JSAPI). */
  jsapiParameters?: (prepayId: string) => Record<string, string>;
}

function payerActionOf(operation: WechatpayOperation, fields: Fields, options: PayerActionOptions): PayerAction | undefined {
  switch (operation) {
    case 'native': {
      const qrCode = textOf(fields, 'code_url');
      return qrCode === undefined ? undefined : { kind: 'qr_code', qrCode };
    }
    case 'h5': {
      const h5Url = textOf(fields, 'h5_url');
      if (h5Url === undefined) return undefined;
      if (!options.returnUrl) return { kind: 'redirect', url: h5Url };
      const separator = h5Url.includes('?') ? '&' : '?';
      return { kind: 'redirect', url: `${h5Url}${separator}redirect_url=${encodeURIComponent(options.returnUrl)}` };
    }
    case 'jsapi': {
      const prepayId = textOf(fields, 'prepay_id');
      if (prepayId === undefined || !options.jsapiParameters) return undefined;
      return { kind: 'client_parameters', parameters: options.jsapiParameters(prepayId) };
    }
    default:
      return undefined;
  }
}

/** The answer to a create call: the payer's next step, or why there is none. */
export function createResultFromAnswer(answer: WechatpayAnswer, call: WechatpayCall, options: PayerActionOptions = {}): CreatePaymentResult {
  const view = viewAnswer(answer);
  if (view.kind !== 'success') {
    // Rejected means WeChat Pay created nothing; anything else (already paid, closed, a system error) is settled by a query.
    if (view.kind === 'error' && view.errorClass === 'rejected') return { status: 'failed', reason: 'rejected', channelCode: view.channelCode, message: view.message };
    return unknownFrom(view);
  }
  const action = payerActionOf(call.operation, view.fields, options);
  if (action === undefined) return unparsable(`the ${call.operation} answer has no payer action`);
  return { status: 'pending', action };
}

/** The order facts of a query answer or a decrypted TRANSACTION notification: both use the same fields. */
export function reportedPaymentOf(fields: Fields): ReportedPayment | undefined {
  const amount = moneyFromAmount(fields.amount, 'total');
  const outTradeNo = textOf(fields, 'out_trade_no');
  const channelStatus = textOf(fields, 'trade_state');
  if (amount === undefined || outTradeNo === undefined || channelStatus === undefined) return undefined;
  const payer = isRecord(fields.payer) ? fields.payer : {};
  return {
    outTradeNo,
    channelTradeNo: textOf(fields, 'transaction_id'),
    amount,
    channelStatus,
    paidAt: parseRfc3339(fields.success_time),
    payerChannelId: textOf(payer, 'openid'),
  };
}

export function paymentResultFromAnswer(answer: WechatpayAnswer, request: QueryPaymentRequest): PaymentStatusResult {
  const view = viewAnswer(answer);
  if (view.kind !== 'success') {
    if (view.kind === 'error' && view.errorClass === 'not_found') return { status: 'not_found', channelCode: view.channelCode };
    // A rejected query (a bad signature, a bad parameter) tells nothing about the order.
    return unknownFrom(view);
  }
  const otherOrder = namesOtherOrder(view.fields, request.outTradeNo);
  if (otherOrder) return otherOrder;
  const facts = reportedPaymentOf(view.fields);
  if (facts === undefined) return unparsable('query answer without out_trade_no, trade_state or a valid amount');
  const status = tradeStateOf(facts.channelStatus) ?? 'unknown';
  return paymentResultFrom({ status, failureReason: tradeFailureReasonOf(facts.channelStatus), facts }, request.expected);
}

/** Close answers 204 without a body; an already-closed order closes again without complaint. */
export function closeResultFromAnswer(answer: WechatpayAnswer): ClosePaymentResult {
  const view = viewAnswer(answer);
  if (view.kind === 'success') return { status: 'succeeded' };
  if (view.kind === 'http_error') return unknownFrom(view);
  switch (view.errorClass) {
    case 'not_found':
      return { status: 'not_found', channelCode: view.channelCode };
    case 'rejected':
    case 'state_conflict':
      // Most often ORDERPAID: the payer paid meanwhile — the caller queries.
      return { status: 'failed', reason: 'rejected', channelCode: view.channelCode, message: view.message };
    case 'retry':
    case undefined:
      return unknownFrom(view);
  }
}

/** The refund facts of a refund answer (create or query) or a decrypted REFUND notification. */
export function reportedRefundOf(fields: Fields, statusField: 'status' | 'refund_status'): ReportedRefund | undefined {
  const amount = moneyFromAmount(fields.amount, 'refund');
  const outTradeNo = textOf(fields, 'out_trade_no');
  const outRefundNo = textOf(fields, 'out_refund_no');
  const channelStatus = textOf(fields, statusField);
  if (amount === undefined || outTradeNo === undefined || outRefundNo === undefined || channelStatus === undefined) return undefined;
  return {
    outTradeNo,
    outRefundNo,
    channelTradeNo: textOf(fields, 'transaction_id'),
    channelRefundNo: textOf(fields, 'refund_id'),
    amount,
    // WeChat Pay reports each refund on its own, never the running total.
    totalRefunded: undefined,
    channelStatus,
    refundedAt: parseRfc3339(fields.success_time),
  };
}

function namesOtherRefund(facts: ReportedRefund, request: { outTradeNo: string; outRefundNo: string }): UnknownAnswer | undefined {
  if (facts.outRefundNo === request.outRefundNo && facts.outTradeNo === request.outTradeNo) return undefined;
  return { status: 'unknown', reason: 'unverifiable', message: `the answer names refund ${facts.outRefundNo} of ${facts.outTradeNo}` };
}

/**
 * The answer to a refund: usually PROCESSING (WeChat Pay refunds
 * asynchronously), and the same refund again for a repeated out_refund_no. The
 * answer also states the order's total, which must be the payment's.
 */
export function refundResultFromAnswer(answer: WechatpayAnswer, request: RefundRequest): RefundResult {
  const view = viewAnswer(answer);
  if (view.kind !== 'success') {
    // A refused refund moved no money; Fen may retry it with the same out_refund_no once the cause is fixed.
    if (view.kind === 'error' && (view.errorClass === 'rejected' || view.errorClass === 'not_found' || view.errorClass === 'state_conflict')) {
      return { status: 'failed', reason: 'rejected', channelCode: view.channelCode, message: view.message };
    }
    return unknownFrom(view);
  }
  const facts = reportedRefundOf(view.fields, 'status');
  if (facts === undefined) return unparsable('refund answer without out_refund_no, status or a valid amount');
  const otherRefund = namesOtherRefund(facts, request);
  if (otherRefund) return otherRefund;
  const status = refundStatusOf(facts.channelStatus) ?? 'unknown';
  const orderTotal = moneyFromAmount(view.fields.amount, 'total');
  if (orderTotal !== undefined && (orderTotal.amount !== request.paymentAmount.amount || orderTotal.currency !== request.paymentAmount.currency)) {
    return { status: 'amount_mismatch', expected: request.paymentAmount, reported: orderTotal, reportedStatus: status, facts };
  }
  return refundResultFrom({ status, facts }, request.refundAmount);
}

export function refundResultFromQuery(answer: WechatpayAnswer, request: QueryRefundRequest): RefundResult {
  const view = viewAnswer(answer);
  if (view.kind !== 'success') {
    if (view.kind === 'error' && view.errorClass === 'not_found') return { status: 'not_found', channelCode: view.channelCode };
    return unknownFrom(view);
  }
  const facts = reportedRefundOf(view.fields, 'status');
  if (facts === undefined) return unparsable('refund query answer without out_refund_no, status or a valid amount');
  const otherRefund = namesOtherRefund(facts, request);
  if (otherRefund) return otherRefund;
  return refundResultFrom({ status: refundStatusOf(facts.channelStatus) ?? 'unknown', facts }, request.expected);
}

// ---------------------------------------------------------------------------
// Notifications

export type ParsedNotification =
  | { ok: true; event: NotificationEvent }
  | { ok: false; reason: 'malformed' | 'unsupported'; message: string };

/**
 * A decrypted notification resource (signature and decryption already
 * checked) as a Fen event: TRANSACTION.SUCCESS carries the transaction as the
 * query answers it, REFUND.* the refund with `refund_status`.
 */
export function notificationEventFromResource(eventType: string, notificationId: string | undefined, resource: unknown): ParsedNotification {
  const kind = eventKindOf(eventType);
  if (kind === undefined) return { ok: false, reason: 'unsupported', message: `event_type ${eventType}` };
  if (!isRecord(resource)) return { ok: false, reason: 'malformed', message: 'the resource is not a JSON object' };
  if (kind === 'payment') {
    const facts = reportedPaymentOf(resource);
    if (facts === undefined) return { ok: false, reason: 'malformed', message: 'no out_trade_no, trade_state or valid amount' };
    const reportedStatus = tradeStateOf(facts.channelStatus) ?? 'unknown';
    return { ok: true, event: { kind: 'payment', notificationId, reportedStatus, failureReason: tradeFailureReasonOf(facts.channelStatus), facts } };
  }
  const facts = reportedRefundOf(resource, 'refund_status');
  if (facts === undefined) return { ok: false, reason: 'malformed', message: 'no out_trade_no, out_refund_no, refund_status or valid amount' };
  return { ok: true, event: { kind: 'refund', notificationId, reportedStatus: refundStatusOf(facts.channelStatus) ?? 'unknown', facts } };
}

/** The text WeChat's client signs for a JSAPI payment: appId, timeStamp, nonceStr and package, each followed by a newline. */
export function jsapiSignContent(parameters: { appId: string; timeStamp: string; nonceStr: string; package: string }): string {
  return `${parameters.appId}\n${parameters.timeStamp}\n${parameters.nonceStr}\n${parameters.package}\n`;
}
