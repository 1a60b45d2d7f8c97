import { unixSeconds, type Clock } from '../../platform/clock.js';
import { billFileDownload, tradeBillQuery, type BillFileReply, type WechatpayBillSettings } from './bills.js';
import { takeFault, type ApiOperation } from './faults.js';
import {
  apiError,
  errorReply,
  isApiError,
  parseAuthorization,
  parseRfc3339,
  requestClockSkewSecondsMax,
  requestSignContent,
  verifySha256Rsa,
  withReportedAmount,
  type ApiError,
  type ApiReply,
} from './protocol.js';
import { findMerchant, findMerchantKeys, findRefund, findTrade, type SimMerchant, type SimTradeType } from './store.js';
import { closeTrade, createOrFindOrder, createRefund, currentRefund, expireIfDue, refundFields, transactionFields, type OrderInput, type TradeContext } from './trades.js';

/**
 * WeChat Pay API v3's order and refund endpoints as the simulator answers
 * them: the merchant's WECHATPAY2-SHA256-RSA2048 signature checked against
 * the keys registered for its mchid and serial, WeChat Pay's business rules,
 * and its `{code, message}` errors with their HTTP statuses. The server signs
 * and sends what this returns.
 */

export interface ApiContext extends TradeContext {
  /** Where payers reach the simulator: the code_url and h5_url point here. */
  publicBaseUrl(): string;
  /** The real time, which request signatures are made with (the SDK signs with Date.now()). */
  wallClock: Clock;
  /** How trade bills are priced, when they become available, and how their download URLs are signed. */
  bills: WechatpayBillSettings;
}

export interface ApiRequest {
  operation: ApiOperation;
  httpMethod: string;
  /** The path and query exactly as received: the merchant signed them. */
  url: string;
  authorization: string | undefined;
  rawBody: string;
  /** The path's out_trade_no or out_refund_no. */
  pathNumber: string | undefined;
  query: Record<string, string>;
}

export type ApiOutcome = { kind: 'reply'; reply: ApiReply; holdMs?: number } | { kind: 'http_error'; httpStatus: number };

type Body = Record<string, unknown>;
type Handler = (context: ApiContext, merchant: SimMerchant, request: ApiRequest, body: Body) => Promise<ApiReply>;

const outTradeNoPattern = /^[0-9A-Za-z_\-*]{6,32}$/;
const outRefundNoPattern = /^[0-9A-Za-z_\-|*@]{1,64}$/;
const descriptionLengthMax = 127;
const refundReasonLengthMax = 80;
const defaultExpiryMs = 2 * 60 * 60 * 1000;
const tradeTypes = { native: 'NATIVE', h5: 'H5', jsapi: 'JSAPI' } as const satisfies Partial<Record<ApiOperation, SimTradeType>>;

function record(value: unknown): Body | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Body) : undefined;
}

function text(body: Body | undefined, name: string): string | undefined {
  const value = body?.[name];
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}

function positiveFen(value: unknown): bigint | undefined {
  return typeof value === 'number' && Number.isSafeInteger(value) && value > 0 ? BigInt(value) : undefined;
}

function ok(body: Body | undefined, httpStatus = 200): ApiReply {
  return { httpStatus, body };
}

/** The merchant, or WeChat Pay's answer to a request it cannot attribute to one. */
async function authenticate(context: ApiContext, request: ApiRequest): Promise<SimMerchant | ApiError> {
  const authorization = parseAuthorization(request.authorization);
  if (!authorization) return apiError('SIGN_ERROR', 'Authorization 头缺失或格式错误');
  const merchant = await findMerchant(context.pool, authorization.mchId);
  if (!merchant) return apiError('MCH_NOT_EXISTS');
  const publicKeyPem = (await findMerchantKeys(context.pool, authorization.mchId)).get(authorization.serialNo);
  if (!publicKeyPem) return apiError('SIGN_ERROR', `商户证书序列号 ${authorization.serialNo} 无效`);
  const skewSeconds = Math.abs(unixSeconds(context.wallClock.now()) - Number(authorization.timestamp));
  if (!/^\d{1,12}$/.test(authorization.timestamp) || skewSeconds > requestClockSkewSecondsMax) return apiError('SIGN_ERROR', '签名时间戳与当前时间相差过大');
  const content = requestSignContent(request.httpMethod, request.url, authorization.timestamp, authorization.nonce, request.rawBody);
  if (!verifySha256Rsa(content, authorization.signature, publicKeyPem)) return apiError('SIGN_ERROR', '错误的签名，验签失败');
  return merchant;
}

/** The method's own fields: the payer's IP for H5, the payer's openid for JSAPI. */
function sceneOf(operation: ApiOperation, body: Body): { payerClientIp: string | null; payerOpenId: string | null } | ApiError {
  if (operation === 'h5') {
    const scene = record(body.scene_info);
    const payerClientIp = text(scene, 'payer_client_ip');
    if (!payerClientIp) return apiError('PARAM_ERROR', '输入源“/body/scene_info/payer_client_ip”映射到字段“用户终端IP”必填性规则校验失败，此字段为必填项');
    if (!text(record(scene?.h5_info), 'type')) return apiError('PARAM_ERROR', '输入源“/body/scene_info/h5_info/type”映射到字段“场景类型”必填性规则校验失败，此字段为必填项');
    return { payerClientIp, payerOpenId: null };
  }
  if (operation === 'jsapi') {
    const payerOpenId = text(record(body.payer), 'openid');
    if (!payerOpenId) return apiError('PARAM_ERROR', '输入源“/body/payer/openid”映射到字段“用户标识”必填性规则校验失败，此字段为必填项');
    return { payerClientIp: null, payerOpenId };
  }
  return { payerClientIp: null, payerOpenId: null };
}

/** The order a create request describes, or PARAM_ERROR / APPID_MCHID_NOT_MATCH. */
function orderFrom(context: ApiContext, merchant: SimMerchant, operation: 'native' | 'h5' | 'jsapi', body: Body): OrderInput | ApiError {
  const [appId, outTradeNo, description, notifyUrl] = [text(body, 'appid'), text(body, 'out_trade_no'), text(body, 'description'), text(body, 'notify_url')];
  const amount = record(body.amount);
  const totalFen = positiveFen(amount?.total);
  const currency = text(amount, 'currency') ?? 'CNY';
  if (text(body, 'mchid') !== merchant.mchId) return apiError('PARAM_ERROR', 'mchid 与请求签名中的商户号不一致');
  if (!appId) return apiError('PARAM_ERROR', '输入源“/body/appid”映射到字段“公众号ID”必填性规则校验失败，此字段为必填项');
  if (merchant.appIds.length > 0 && !merchant.appIds.includes(appId)) return apiError('APPID_MCHID_NOT_MATCH');
  if (!outTradeNo || !outTradeNoPattern.test(outTradeNo)) return apiError('PARAM_ERROR', 'out_trade_no 只能是6到32位数字、大小写字母_-*');
  if (!description || Array.from(description).length > descriptionLengthMax) return apiError('PARAM_ERROR', 'description 长度应在1到127个字符之间');
  if (!notifyUrl || !/^https?:\/\/[^\s]+$/.test(notifyUrl)) return apiError('PARAM_ERROR', 'notify_url 必须是可访问的URL');
  if (totalFen === undefined) return apiError('PARAM_ERROR', 'amount.total 必须是正整数（单位：分）');
  if (currency !== 'CNY') return apiError('PARAM_ERROR', 'amount.currency 只支持 CNY');
  const timeExpire = body.time_expire === undefined ? undefined : parseRfc3339(body.time_expire);
  if (body.time_expire !== undefined && timeExpire === undefined) return apiError('PARAM_ERROR', 'time_expire 必须是 RFC 3339 时间');
  const scene = sceneOf(operation, body);
  if (isApiError(scene)) return scene;
  const now = context.clock.now();
  const expiresAt = timeExpire ?? new Date(now.getTime() + defaultExpiryMs);
  return { mchId: merchant.mchId, appId, outTradeNo, tradeType: tradeTypes[operation], description, totalFen, currency, notifyUrl, expiresAt, ...scene };
}

function createHandler(operation: 'native' | 'h5' | 'jsapi'): Handler {
  return async (context, merchant, _request, body) => {
    const order = orderFrom(context, merchant, operation, body);
    if (isApiError(order)) return errorReply(order);
    const trade = await createOrFindOrder(context, order);
    if (isApiError(trade)) return errorReply(trade);
    const base = context.publicBaseUrl();
    switch (operation) {
      case 'native':
        // Real WeChat Pay answers weixin://wxpay/bizpayurl?pr=…; here the "scan" is opening this URL.
        return ok({ code_url: `${base}/wechatpay/pay/${trade.payerToken}` });
      case 'h5':
        return ok({ h5_url: `${base}/wechatpay/h5/${trade.payerToken}?prepay_id=${trade.prepayId}` });
      case 'jsapi':
        return ok({ prepay_id: trade.prepayId });
    }
  };
}

const query: Handler = async (context, merchant, request) => {
  if (request.query.mchid !== merchant.mchId) return errorReply(apiError('PARAM_ERROR', 'mchid 与请求签名中的商户号不一致'));
  const found = request.pathNumber ? await findTrade(context.pool, { mchId: merchant.mchId, outTradeNo: request.pathNumber }) : undefined;
  if (!found) return errorReply(apiError('ORDER_NOT_EXIST'));
  const trade = await expireIfDue(context, found);
  const wrongAmount = await takeFault(context.pool, 'wrong_amount', trade.outTradeNo, (fault) => fault.where !== 'notification');
  const fields = transactionFields(trade);
  return ok(wrongAmount ? withReportedAmount(fields, wrongAmount.amountFen) : fields);
};

const close: Handler = async (context, merchant, request, body) => {
  if (text(body, 'mchid') !== merchant.mchId) return errorReply(apiError('PARAM_ERROR', 'mchid 与请求签名中的商户号不一致'));
  const trade = request.pathNumber ? await findTrade(context.pool, { mchId: merchant.mchId, outTradeNo: request.pathNumber }) : undefined;
  if (!trade) return errorReply(apiError('ORDER_NOT_EXIST'));
  const closed = await closeTrade(context, trade);
  return isApiError(closed) ? errorReply(closed) : ok(undefined, 204);
};

async function refundAnswer(context: ApiContext, mchId: string, outRefundNo: string): Promise<ApiReply> {
  const current = await currentRefund(context, mchId, outRefundNo);
  if (!current) return errorReply(apiError('RESOURCE_NOT_EXISTS', '退款单不存在'));
  const wrongAmount = await takeFault(context.pool, 'wrong_amount', current.trade.outTradeNo, (fault) => fault.where !== 'notification');
  const fields = refundFields(current.trade, current.refund);
  return ok(wrongAmount ? withReportedAmount(fields, wrongAmount.amountFen) : fields);
}

const refund: Handler = async (context, merchant, _request, body) => {
  const [outTradeNo, outRefundNo, reason, notifyUrl] = [text(body, 'out_trade_no'), text(body, 'out_refund_no'), text(body, 'reason'), text(body, 'notify_url')];
  const amount = record(body.amount);
  const [refundFen, totalFen] = [positiveFen(amount?.refund), positiveFen(amount?.total)];
  if (!outTradeNo) return errorReply(apiError('PARAM_ERROR', 'transaction_id 和 out_trade_no 必须二选一'));
  if (!outRefundNo || !outRefundNoPattern.test(outRefundNo)) return errorReply(apiError('PARAM_ERROR', 'out_refund_no 只能是1到64位数字、大小写字母_-|*@'));
  if (refundFen === undefined || totalFen === undefined) return errorReply(apiError('PARAM_ERROR', 'amount.refund 和 amount.total 必须是正整数（单位：分）'));
  if (reason !== undefined && Array.from(reason).length > refundReasonLengthMax) return errorReply(apiError('PARAM_ERROR', 'reason 不能超过80个字符'));
  if (notifyUrl !== undefined && !/^https?:\/\/[^\s]+$/.test(notifyUrl)) return errorReply(apiError('PARAM_ERROR', 'notify_url 必须是可访问的URL'));
  const currency = text(amount, 'currency') ?? 'CNY';
  const created = await createRefund(context, { mchId: merchant.mchId, outTradeNo, outRefundNo, refundFen, totalFen, currency, reason: reason ?? null, notifyUrl: notifyUrl ?? null });
  if (isApiError(created)) return errorReply(created);
  return refundAnswer(context, merchant.mchId, outRefundNo);
};

const refundQuery: Handler = async (context, merchant, request) => {
  if (!request.pathNumber) return errorReply(apiError('RESOURCE_NOT_EXISTS', '退款单不存在'));
  return refundAnswer(context, merchant.mchId, request.pathNumber);
};

/** GET /v3/bill/tradebill: see ./bills.ts. */
const tradebill: Handler = async (context, merchant, request) => tradeBillQuery(context, merchant, request.query);

const handlers: Record<Exclude<ApiOperation, 'bill_download'>, Handler> = {
  native: createHandler('native'),
  h5: createHandler('h5'),
  jsapi: createHandler('jsapi'),
  query,
  close,
  refund,
  refund_query: refundQuery,
  tradebill,
};

/** The order a request is about, for faults aimed at one order. */
async function orderNumberOf(context: ApiContext, request: ApiRequest, body: Body | undefined): Promise<string | undefined> {
  if (request.operation === 'query' || request.operation === 'close') return request.pathNumber;
  if (request.operation === 'refund_query') {
    const found = request.pathNumber ? await findRefund(context.pool, { outRefundNo: request.pathNumber }) : undefined;
    return found ? (await findTrade(context.pool, { id: found.tradeId }))?.outTradeNo : undefined;
  }
  return text(body, 'out_trade_no');
}

function parseBody(rawBody: string): Body | undefined | 'invalid' {
  if (rawBody === '') return undefined;
  try {
    return record(JSON.parse(rawBody)) ?? 'invalid';
  } catch {
    return 'invalid';
  }
}

/** One API request: faults, authentication, then the operation. */
export async function handleApiRequest(context: ApiContext, request: ApiRequest): Promise<ApiOutcome> {
  // A download answers a file, not JSON: it has a handler of its own.
  if (request.operation === 'bill_download') throw new Error('bill downloads go through handleBillDownload');
  const parsed = parseBody(request.rawBody);
  const body = parsed === 'invalid' ? undefined : parsed;
  const outTradeNo = await orderNumberOf(context, request, body);
  const forOperation = (fault: { operation: ApiOperation }) => fault.operation === request.operation;
  const gatewayError = await takeFault(context.pool, 'http_error', outTradeNo, forOperation);
  if (gatewayError) return { kind: 'http_error', httpStatus: gatewayError.httpStatus };
  const merchant = await authenticate(context, request);
  if (isApiError(merchant)) return { kind: 'reply', reply: errorReply(merchant) };
  if (await takeFault(context.pool, 'system_error', outTradeNo, forOperation)) return { kind: 'reply', reply: errorReply(apiError('SYSTEM_ERROR')) };
  const reply =
    parsed === 'invalid' || (request.httpMethod === 'POST' && body === undefined)
      ? errorReply(apiError('PARAM_ERROR', '请求体不是合法的JSON对象'))
      : await handlers[request.operation](context, merchant, request, body ?? {});
  const timeout = await takeFault(context.pool, 'timeout', outTradeNo, forOperation);
  return timeout ? { kind: 'reply', reply, holdMs: timeout.holdMs } : { kind: 'reply', reply };
}

/**
 * GET /v3/billdownload/file: a signed request like every other (WeChat Pay
 * authenticates downloads too), with the same faults; the file itself goes
 * back as it is, unsigned, as WeChat Pay sends it — an error is a signed
 * `{code, message}` answer like any other.
 */
export async function handleBillDownload(context: ApiContext, request: ApiRequest): Promise<ApiOutcome | BillFileReply> {
  const forDownload = (fault: { operation: ApiOperation }) => fault.operation === 'bill_download';
  const gatewayError = await takeFault(context.pool, 'http_error', undefined, forDownload);
  if (gatewayError) return { kind: 'http_error', httpStatus: gatewayError.httpStatus };
  const merchant = await authenticate(context, request);
  if (isApiError(merchant)) return { kind: 'reply', reply: errorReply(merchant) };
  if (await takeFault(context.pool, 'system_error', undefined, forDownload)) return { kind: 'reply', reply: errorReply(apiError('SYSTEM_ERROR')) };
  const served = await billFileDownload(context, merchant, request.query);
  const timeout = await takeFault(context.pool, 'timeout', undefined, forDownload);
  const holdMs = timeout ? { holdMs: timeout.holdMs } : {};
  return 'kind' in served ? { ...served, ...holdMs } : { kind: 'reply', reply: served, ...holdMs };
}
