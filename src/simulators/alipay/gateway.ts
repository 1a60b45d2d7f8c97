import { billDownloadUrlQuery, type AlipayBillSettings } from './bills.js';
import { takeFault } from './faults.js';
import {
  errorBody,
  fenFromYuan,
  gatewayError,
  parseBeijingTime,
  parseTimeoutExpress,
  requestSignContent,
  responseKeyOf,
  signTypeRsa2,
  successBody,
  verifyRsa2,
  yuanFromFen,
  beijingTime,
  type GatewayError,
} from './protocol.js';
import { findApp, findRefund, findTrade, insertRefund, updateTrade, withTransaction, type SimApp, type SimTrade } from './store.js';
import { closeWaitingTrade, createOrFindOrder, expireIfDue, visibleToQueries, type TradeContext } from './trades.js';

/**
 * `/gateway.do`: Alipay's openapi gateway for the trade APIs Fen uses. It
 * checks the app's RSA2 signature over all parameters (query string and form
 * body together), applies Alipay's business rules, and answers with Alipay's
 * codes; the server signs and sends what this returns.
 */

export interface GatewayContext extends TradeContext {
  /** Where payers reach the simulator: the QR code and the cashier live here. */
  publicBaseUrl(): string;
  /** How trade bills are priced, when they become available, and how their URLs are signed. */
  bills: AlipayBillSettings;
}

export type GatewayReply =
  | { kind: 'json'; responseKey: string; body: Record<string, unknown> }
  | { kind: 'redirect'; location: string }
  | { kind: 'html'; statusCode: number; title: string; message: string }
  | { kind: 'http_error'; statusCode: number };

export interface GatewayOutcome {
  reply: GatewayReply;
  /** A timeout fault: hold the answer this long after doing the work. */
  holdMs?: number;
}

const pagePayMethod = 'alipay.trade.page.pay';
const defaultExpiryMs = 2 * 60 * 60 * 1000;
const outTradeNoPattern = /^[A-Za-z0-9_-]{1,64}$/;
const subjectLengthMax = 256;

type BizContent = Record<string, unknown>;
type Handler = (context: GatewayContext, app: SimApp, bizContent: BizContent, parameters: Record<string, string>) => Promise<Record<string, unknown>>;

function text(bizContent: BizContent, name: string): string | undefined {
  const value = bizContent[name];
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}

function parseBizContent(raw: string | undefined): BizContent | undefined {
  if (raw === undefined) return undefined;
  try {
    const parsed: unknown = JSON.parse(raw);
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? (parsed as BizContent) : undefined;
  } catch {
    return undefined;
  }
}

/** The app, or Alipay's answer to a request it will not accept from that app. */
async function authenticate(context: GatewayContext, parameters: Record<string, string>): Promise<SimApp | GatewayError> {
  const appId = parameters.app_id;
  if (!appId) return gatewayError('missingArguments', 'isv.missing-app-id', '缺少AppID参数');
  const app = await findApp(context.pool, appId);
  if (!app) return gatewayError('invalidArguments', 'isv.invalid-app-id', '无效的AppID参数');
  if (!parameters.sign) return gatewayError('missingArguments', 'isv.missing-signature', '缺少签名参数');
  if (parameters.sign_type !== signTypeRsa2) return gatewayError('invalidArguments', 'isv.invalid-signature-type', '无效的签名类型');
  const content = requestSignContent(parameters);
  if (!verifyRsa2(content, parameters.sign, app.publicKeyPem)) {
    // Alipay quotes the string it verified, which is how developers find their mistake.
    return gatewayError('invalidArguments', 'isv.invalid-signature', `验签出错，建议检查签名字符串或签名私钥与应用公钥是否匹配，网关生成的验签字符串为：${content}`);
  }
  return app;
}

function isGatewayError(value: unknown): value is GatewayError {
  return typeof value === 'object' && value !== null && 'subCode' in value;
}

/** The order described by a precreate or page.pay request, or ACQ.INVALID_PARAMETER. */
function orderFrom(context: GatewayContext, app: SimApp, bizContent: BizContent, parameters: Record<string, string>, openNow: boolean) {
  const outTradeNo = text(bizContent, 'out_trade_no');
  const totalFen = fenFromYuan(text(bizContent, 'total_amount'));
  const subject = text(bizContent, 'subject');
  if (!outTradeNo || !outTradeNoPattern.test(outTradeNo)) return gatewayError('businessFailed', 'ACQ.INVALID_PARAMETER', '参数无效: out_trade_no');
  if (totalFen === undefined) return gatewayError('businessFailed', 'ACQ.INVALID_PARAMETER', '参数无效: total_amount');
  if (!subject || subject.length > subjectLengthMax) return gatewayError('businessFailed', 'ACQ.INVALID_PARAMETER', '参数无效: subject');
  const now = context.clock.now();
  const expiresAt =
    parseBeijingTime(text(bizContent, 'time_expire')) ??
    parseTimeoutExpress(text(bizContent, 'timeout_express'), now) ??
    parseTimeoutExpress(text(bizContent, 'qr_code_timeout_express'), now) ??
    new Date(now.getTime() + defaultExpiryMs);
  return {
    appId: app.appId,
    outTradeNo,
    productCode: text(bizContent, 'product_code') ?? (openNow ? 'FAST_INSTANT_TRADE_PAY' : 'FACE_TO_FACE_PAYMENT'),
    subject,
    body: text(bizContent, 'body') ?? null,
    totalFen,
    notifyUrl: parameters.notify_url || null,
    returnUrl: parameters.return_url || null,
    expiresAt,
    openNow,
  };
}

const precreate: Handler = async (context, app, bizContent, parameters) => {
  const order = orderFrom(context, app, bizContent, parameters, false);
  if (isGatewayError(order)) return errorBody(order);
  const trade = await createOrFindOrder(context, order);
  if (isGatewayError(trade)) return errorBody(trade, { out_trade_no: order.outTradeNo });
  return successBody({ out_trade_no: trade.outTradeNo, qr_code: `${context.publicBaseUrl()}/alipay/qr/${trade.payerToken}` });
};

/** The trade a query-type request names, as Alipay's query sees it (a QR order only after the scan). */
async function namedTrade(context: GatewayContext, app: SimApp, bizContent: BizContent): Promise<SimTrade | undefined> {
  const outTradeNo = text(bizContent, 'out_trade_no');
  const tradeNo = text(bizContent, 'trade_no');
  if (!outTradeNo && !tradeNo) return undefined;
  const trade = await findTrade(context.pool, { appId: app.appId, outTradeNo, tradeNo });
  if (!trade) return undefined;
  const current = await expireIfDue(context, trade);
  return visibleToQueries(current) ? current : undefined;
}

function notFound(bizContent: BizContent): Record<string, unknown> {
  return errorBody(gatewayError('businessFailed', 'ACQ.TRADE_NOT_EXIST', '交易不存在'), {
    out_trade_no: text(bizContent, 'out_trade_no'),
    buyer_pay_amount: '0.00',
    invoice_amount: '0.00',
    point_amount: '0.00',
    receipt_amount: '0.00',
  });
}

function paidFields(trade: SimTrade, total: string): Record<string, unknown> {
  if (trade.paidAt === null) return { buyer_pay_amount: '0.00', invoice_amount: '0.00', point_amount: '0.00', receipt_amount: '0.00' };
  return {
    buyer_logon_id: trade.buyerLogonId,
    buyer_user_id: trade.buyerId,
    buyer_user_type: 'PRIVATE',
    buyer_pay_amount: total,
    invoice_amount: total,
    point_amount: '0.00',
    receipt_amount: total,
    send_pay_date: beijingTime(trade.paidAt),
    fund_bill_list: [{ fund_channel: 'ALIPAYACCOUNT', amount: total }],
  };
}

const query: Handler = async (context, app, bizContent) => {
  const trade = await namedTrade(context, app, bizContent);
  if (!trade) return notFound(bizContent);
  const wrongAmount = await takeFault(context.pool, 'wrong_amount', trade.outTradeNo, (fault) => fault.where !== 'notification');
  const total = wrongAmount?.totalAmount ?? yuanFromFen(trade.totalFen);
  return successBody({
    trade_no: trade.tradeNo,
    out_trade_no: trade.outTradeNo,
    // The public status word: an unscanned QR order never gets here.
    trade_status: trade.status,
    total_amount: total,
    ...paidFields(trade, total),
  });
};

const close: Handler = async (context, app, bizContent) => {
  const trade = await namedTrade(context, app, bizContent);
  if (!trade) return notFound(bizContent);
  const closed = trade.status === 'WAIT_BUYER_PAY' ? await closeWaitingTrade(context, trade) : undefined;
  if (!closed) return errorBody(gatewayError('businessFailed', 'ACQ.TRADE_STATUS_ERROR', '交易状态不合法'), { out_trade_no: trade.outTradeNo });
  return successBody({ trade_no: closed.tradeNo, out_trade_no: closed.outTradeNo });
};

function refundStateError(trade: SimTrade): GatewayError | undefined {
  switch (trade.status) {
    case 'TRADE_SUCCESS':
      return undefined;
    case 'TRADE_CLOSED':
      return gatewayError('businessFailed', 'ACQ.TRADE_HAS_CLOSE', '交易已经关闭');
    case 'TRADE_FINISHED':
      return gatewayError('businessFailed', 'ACQ.TRADE_HAS_FINISHED', '交易已完结');
    case 'PRECREATED':
    case 'WAIT_BUYER_PAY':
      return gatewayError('businessFailed', 'ACQ.TRADE_STATUS_ERROR', '交易状态不合法');
  }
}

function refundAnswer(trade: SimTrade, refundFen: bigint, fundChange: 'Y' | 'N', refundedAt: Date): Record<string, unknown> {
  return successBody({
    trade_no: trade.tradeNo,
    out_trade_no: trade.outTradeNo,
    buyer_logon_id: trade.buyerLogonId,
    buyer_user_id: trade.buyerId,
    fund_change: fundChange,
    refund_fee: yuanFromFen(trade.refundedFen),
    send_back_fee: yuanFromFen(refundFen),
    gmt_refund_pay: beijingTime(refundedAt),
  });
}

/**
 * Partial refunds up to the total, idempotent per out_request_no (a repeat
 * answers fund_change N: no money moved this time). A refund that completes
 * the total closes the trade, as Alipay does. No notification: Alipay answers
 * an API refund synchronously.
 */
const refund: Handler = async (context, app, bizContent) => {
  const found = await namedTrade(context, app, bizContent);
  if (!found) return notFound(bizContent);
  const refundFen = fenFromYuan(text(bizContent, 'refund_amount'));
  if (refundFen === undefined) return errorBody(gatewayError('businessFailed', 'ACQ.INVALID_PARAMETER', '参数无效: refund_amount'));
  const outRequestNo = text(bizContent, 'out_request_no') ?? found.outTradeNo;
  return withTransaction(context.pool, async (client) => {
    const trade = await findTrade(client, { tradeNo: found.tradeNo }, true);
    if (!trade) return notFound(bizContent);
    const existing = await findRefund(client, trade.tradeNo, outRequestNo);
    if (existing) {
      if (existing.refundFen !== refundFen) return errorBody(gatewayError('businessFailed', 'ACQ.DISCORDANT_REPEAT_REQUEST', '不一致的请求'));
      return refundAnswer(trade, refundFen, 'N', existing.refundedAt);
    }
    const stateError = refundStateError(trade);
    if (stateError) return errorBody(stateError, { out_trade_no: trade.outTradeNo });
    const refundedFen = trade.refundedFen + refundFen;
    if (refundedFen > trade.totalFen) return errorBody(gatewayError('businessFailed', 'ACQ.REFUND_AMT_NOT_EQUAL_TOTAL', '退款金额超限'));
    const now = context.clock.now();
    await insertRefund(client, { tradeNo: trade.tradeNo, outRequestNo, refundFen, refundReason: text(bizContent, 'refund_reason') ?? null, refundedAt: now });
    const full = refundedFen === trade.totalFen;
    const updated = await updateTrade(client, trade.tradeNo, trade.status, { refundedFen, ...(full ? { status: 'TRADE_CLOSED', closedAt: now } : {}) });
    return refundAnswer(updated ?? trade, refundFen, 'Y', now);
  });
};

/** An unknown out_request_no is not an error: Alipay answers 10000 with no refund in it. */
const refundQuery: Handler = async (context, app, bizContent) => {
  const trade = await namedTrade(context, app, bizContent);
  if (!trade) return notFound(bizContent);
  const outRequestNo = text(bizContent, 'out_request_no') ?? trade.outTradeNo;
  const found = await findRefund(context.pool, trade.tradeNo, outRequestNo);
  if (!found) return successBody({});
  return successBody({
    trade_no: trade.tradeNo,
    out_trade_no: trade.outTradeNo,
    out_request_no: found.outRequestNo,
    total_amount: yuanFromFen(trade.totalFen),
    refund_amount: yuanFromFen(found.refundFen),
    refund_status: 'REFUND_SUCCESS',
    gmt_refund_pay: beijingTime(found.refundedAt),
  });
};

const jsonHandlers: Record<string, Handler> = {
  'alipay.trade.precreate': precreate,
  'alipay.trade.query': query,
  'alipay.trade.close': close,
  'alipay.trade.refund': refund,
  'alipay.trade.fastpay.refund.query': refundQuery,
  'alipay.data.dataservice.bill.downloadurl.query': billDownloadUrlQuery,
};

export const supportedApiMethods = [...Object.keys(jsonHandlers), pagePayMethod];

/** page.pay is opened by the payer's browser: the answer is a page (here, a redirect to the cashier). */
async function pagePay(context: GatewayContext, app: SimApp, bizContent: BizContent, parameters: Record<string, string>): Promise<GatewayReply> {
  const order = orderFrom(context, app, bizContent, parameters, true);
  const trade = isGatewayError(order) ? order : await createOrFindOrder(context, order);
  if (isGatewayError(trade)) return { kind: 'html', statusCode: 400, title: '支付失败 · Payment error', message: `${trade.subCode}: ${trade.subMessage}` };
  return { kind: 'redirect', location: `/alipay/cashier/${trade.payerToken}` };
}

const systemErrors = {
  service_unavailable: gatewayError('unavailable', 'isp.unknow-error', '服务暂不可用'),
  acq_system_error: gatewayError('businessFailed', 'ACQ.SYSTEM_ERROR', '系统错误'),
} as const;

function errorReply(apiMethod: string | undefined, error: GatewayError): GatewayReply {
  if (apiMethod === pagePayMethod) return { kind: 'html', statusCode: 400, title: '支付失败 · Payment error', message: `${error.subCode}: ${error.subMessage}` };
  return { kind: 'json', responseKey: apiMethod && jsonHandlers[apiMethod] ? responseKeyOf(apiMethod) : 'error_response', body: errorBody(error) };
}

/** One gateway request: faults, authentication, then the API method. */
export async function handleGatewayRequest(context: GatewayContext, parameters: Record<string, string>): Promise<GatewayOutcome> {
  const apiMethod = parameters.method;
  if (!apiMethod) return { reply: errorReply(undefined, gatewayError('missingArguments', 'isv.missing-method', '缺少方法名参数')) };
  if (!supportedApiMethods.includes(apiMethod)) return { reply: errorReply(undefined, gatewayError('invalidArguments', 'isv.invalid-method', '不存在的方法名')) };
  const bizContent = parseBizContent(parameters.biz_content);
  const outTradeNo = bizContent ? text(bizContent, 'out_trade_no') : undefined;
  const serverError = await takeFault(context.pool, 'gateway_error', outTradeNo, (fault) => fault.apiMethod === apiMethod);
  if (serverError) return { reply: { kind: 'http_error', statusCode: serverError.httpStatus } };
  const app = await authenticate(context, parameters);
  const systemError = isGatewayError(app) ? undefined : await takeFault(context.pool, 'system_error', outTradeNo, (fault) => fault.apiMethod === apiMethod);
  if (systemError) return { reply: errorReply(apiMethod, systemErrors[systemError.variant]) };
  let reply: GatewayReply;
  if (isGatewayError(app)) reply = errorReply(apiMethod, app);
  else if (!bizContent) reply = errorReply(apiMethod, gatewayError('businessFailed', 'ACQ.INVALID_PARAMETER', '参数无效: biz_content'));
  else if (apiMethod === pagePayMethod) reply = await pagePay(context, app, bizContent, parameters);
  else reply = { kind: 'json', responseKey: responseKeyOf(apiMethod), body: await jsonHandlers[apiMethod]!(context, app, bizContent, parameters) };
  const timeout = await takeFault(context.pool, 'gateway_timeout', outTradeNo, (fault) => fault.apiMethod === apiMethod);
  return timeout ? { reply, holdMs: timeout.holdMs } : { reply };
}
