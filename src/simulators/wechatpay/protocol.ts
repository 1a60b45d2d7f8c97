import { createCipheriv, createSign, createVerify, randomBytes, randomInt } from 'node:crypto';
import { formatMinorAsDecimal } from '../../platform/money.js';

/**
 * WeChat Pay API v3 as WeChat Pay speaks it, written independently of Fen's
 * connector (which uses wechatpay-axios-plugin), so that each checks the
 * other: the WECHATPAY2-SHA256-RSA2048 Authorization header on requests,
 * RSA-SHA256 over `timestamp\nnonce\nbody\n` in the Wechatpay-* headers of
 * answers and notifications, AEAD_AES_256_GCM resources, RFC 3339 Beijing
 * times, `{code, message}` error bodies with their HTTP statuses, and the
 * shapes of WeChat Pay's numbers.
 */

export const authorizationScheme = 'WECHATPAY2-SHA256-RSA2048';
const rsaAlgorithm = 'RSA-SHA256';
const beijingOffsetMs = 8 * 60 * 60 * 1000;
/** WeChat Pay refuses a request signed more than five minutes from its own time. */
export const requestClockSkewSecondsMax = 300;

// ---------------------------------------------------------------------------
// Signatures

export interface RequestAuthorization {
  mchId: string;
  serialNo: string;
  timestamp: string;
  nonce: string;
  signature: string;
}

/** `WECHATPAY2-SHA256-RSA2048 mchid="…",serial_no="…",timestamp="…",nonce_str="…",signature="…"`, in any order. */
export function parseAuthorization(header: string | undefined): RequestAuthorization | undefined {
  if (header === undefined || !header.startsWith(`${authorizationScheme} `)) return undefined;
  const fields = new Map<string, string>();
  for (const match of header.slice(authorizationScheme.length + 1).matchAll(/\s*([a-z_]+)="([^"]*)"\s*(?:,|$)/g)) fields.set(match[1]!, match[2]!);
  const [mchId, serialNo, timestamp, nonce, signature] = ['mchid', 'serial_no', 'timestamp', 'nonce_str', 'signature'].map((name) => fields.get(name));
  if (!mchId || !serialNo || !timestamp || !nonce || !signature) return undefined;
  return { mchId, serialNo, timestamp, nonce, signature };
}

/** What a merchant signs: method, path with query, timestamp, nonce and body, each followed by a newline. */
export function requestSignContent(httpMethod: string, pathAndQuery: string, timestamp: string, nonce: string, body: string): string {
  return `${httpMethod}\n${pathAndQuery}\n${timestamp}\n${nonce}\n${body}\n`;
}

/** What WeChat Pay signs on answers and notifications. */
export function responseSignContent(timestamp: string, nonce: string, body: string): string {
  return `${timestamp}\n${nonce}\n${body}\n`;
}

export function signSha256Rsa(content: string, privateKeyPem: string): string {
  return createSign(rsaAlgorithm).update(content, 'utf8').sign(privateKeyPem, 'base64');
}

export function verifySha256Rsa(content: string, signature: string, publicKeyPem: string): boolean {
  try {
    return createVerify(rsaAlgorithm).update(content, 'utf8').verify(publicKeyPem, signature, 'base64');
  } catch {
    return false;
  }
}

/** What a merchant signs for a JSAPI payment, for the payer's WeChat client to check: appId, timeStamp, nonceStr and package. */
export function jsapiSignContent(appId: string, timeStamp: string, nonceStr: string, packageText: string): string {
  return `${appId}\n${timeStamp}\n${nonceStr}\n${packageText}\n`;
}

export interface PlatformKey {
  /** PUB_KEY_ID_…: the id Fen configures beside the public key, sent as Wechatpay-Serial. */
  publicKeyId: string;
  privateKeyPem: string;
  publicKeyPem: string;
}

/** A 32-character nonce of letters and digits, as WeChat Pay's own. */
export function newNonce(length = 32): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  let text = '';
  for (let index = 0; index < length; index += 1) text += alphabet[randomInt(alphabet.length)];
  return text;
}

/** The Wechatpay-* headers for a body signed at `signedAt`. */
export function signedHeaders(body: string, key: PlatformKey, signedAt: Date): Record<string, string> {
  const timestamp = String(Math.floor(signedAt.getTime() / 1000));
  const nonce = newNonce();
  return {
    'Wechatpay-Timestamp': timestamp,
    'Wechatpay-Nonce': nonce,
    'Wechatpay-Signature': signSha256Rsa(responseSignContent(timestamp, nonce, body), key.privateKeyPem),
    'Wechatpay-Serial': key.publicKeyId,
    'Wechatpay-Signature-Type': authorizationScheme,
  };
}

// ---------------------------------------------------------------------------
// Encrypted resources

export interface EncryptedResource {
  original_type: string;
  algorithm: 'AEAD_AES_256_GCM';
  ciphertext: string;
  associated_data: string;
  nonce: string;
}

/** AES-256-GCM under the merchant's APIv3 key; the ciphertext is base64 of the encrypted bytes followed by the 16-byte tag. */
export function encryptResource(plaintext: string, apiV3Key: string, originalType: string): EncryptedResource {
  const nonce = newNonce(12);
  const cipher = createCipheriv('aes-256-gcm', Buffer.from(apiV3Key, 'utf8'), Buffer.from(nonce, 'utf8'), { authTagLength: 16 });
  cipher.setAAD(Buffer.from(originalType, 'utf8'));
  const encrypted = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]);
  return { original_type: originalType, algorithm: 'AEAD_AES_256_GCM', ciphertext: encrypted.toString('base64'), associated_data: originalType, nonce };
}

// ---------------------------------------------------------------------------
// Errors

/** WeChat Pay's error codes with the HTTP status each comes with and its usual wording. */
export const apiErrors = {
  PARAM_ERROR: { httpStatus: 400, message: '参数错误' },
  INVALID_REQUEST: { httpStatus: 400, message: '无效请求' },
  APPID_MCHID_NOT_MATCH: { httpStatus: 400, message: 'appid和mch_id不匹配' },
  MCH_NOT_EXISTS: { httpStatus: 400, message: '商户号不存在' },
  ORDERPAID: { httpStatus: 400, message: '该订单已支付' },
  ORDER_CLOSED: { httpStatus: 400, message: '订单已关闭' },
  SIGN_ERROR: { httpStatus: 401, message: '签名错误' },
  OUT_TRADE_NO_USED: { httpStatus: 403, message: '商户订单号重复' },
  NOT_ENOUGH: { httpStatus: 403, message: '基本账户余额不足，请充值后重新发起' },
  ORDER_NOT_EXIST: { httpStatus: 404, message: '订单不存在' },
  RESOURCE_NOT_EXISTS: { httpStatus: 404, message: '资源不存在' },
  NOT_FOUND: { httpStatus: 404, message: '请求的资源不存在' },
  // The trade bill's answers: not produced yet (before 10:00 the next morning), and no bill because the day had no business.
  STATEMENT_CREATING: { httpStatus: 400, message: '账单生成中' },
  NO_STATEMENT_EXIST: { httpStatus: 400, message: '请求的账单文件不存在' },
  SYSTEM_ERROR: { httpStatus: 500, message: '系统错误' },
} as const;
export type ApiErrorCode = keyof typeof apiErrors;

export interface ApiError {
  code: ApiErrorCode;
  message: string;
}

export function apiError(code: ApiErrorCode, message?: string): ApiError {
  return { code, message: message ?? apiErrors[code].message };
}

export function isApiError(value: unknown): value is ApiError {
  return typeof value === 'object' && value !== null && 'code' in value && Object.hasOwn(apiErrors, (value as ApiError).code);
}

/** An answer before signing: a status and, except for 204, a JSON body. */
export interface ApiReply {
  httpStatus: number;
  body: Record<string, unknown> | undefined;
}

export function errorReply(error: ApiError): ApiReply {
  return { httpStatus: apiErrors[error.code].httpStatus, body: { code: error.code, message: error.message } };
}

// ---------------------------------------------------------------------------
// Times and numbers in WeChat Pay's formats

/** "2026-01-15T10:00:20+08:00": RFC 3339 in Beijing time, as in every WeChat Pay time. */
export function beijingRfc3339(date: Date): string {
  return `${new Date(date.getTime() + beijingOffsetMs).toISOString().slice(0, 19)}+08:00`;
}

/** An RFC 3339 time with an offset, as merchants send time_expire. */
export function parseRfc3339(text: unknown): Date | undefined {
  if (typeof text !== 'string' || !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(text)) return undefined;
  const date = new Date(text);
  return Number.isNaN(date.getTime()) ? undefined : date;
}

function digits(count: number): string {
  let text = '';
  for (let index = 0; index < count; index += 1) text += String(randomInt(10));
  return text;
}

function beijingDate(now: Date): string {
  return beijingRfc3339(now).slice(0, 10).replaceAll('-', '');
}

/** A 28-digit transaction_id: "4200", a bank-ish block, the Beijing date, then digits. */
export function newTransactionId(now: Date): string {
  return `4200${digits(6)}${beijingDate(now)}${digits(10)}`;
}

/** A 29-digit refund_id: "5000", a block, the Beijing date, then digits. */
export function newRefundId(now: Date): string {
  return `5000${digits(6)}${beijingDate(now)}${digits(11)}`;
}

/** prepay_id: "wx", the Beijing date and time to the second, then 20 hex digits. */
export function newPrepayId(now: Date): string {
  return `wx${beijingRfc3339(now).slice(0, 19).replace(/\D/g, '')}${randomBytes(10).toString('hex')}`;
}

/** A 28-character openid of the payer under the app. */
export function newOpenId(): string {
  return `o${randomBytes(21).toString('base64url').slice(0, 27)}`;
}

/** A notification id in the documented shape, EV- and digits. */
export function newNotificationId(now: Date): string {
  return `EV-${beijingRfc3339(now).slice(0, 19).replace(/\D/g, '')}${digits(7)}`;
}

export function newRequestId(): string {
  return randomBytes(16).toString('hex').toUpperCase();
}

/**
 * A transaction or refund with a different amount reported (the wrong-amount
 * fault): the order's total for a transaction, the refund's amount for a
 * refund — whichever the `amount` object describes.
 */
export function withReportedAmount(fields: Record<string, unknown>, amountFen: number): Record<string, unknown> {
  const amount = { ...(fields.amount as Record<string, unknown>) };
  const names = 'refund' in amount ? (['refund', 'payer_refund'] as const) : (['total', 'payer_total'] as const);
  for (const name of names) if (name in amount) amount[name] = amountFen;
  return { ...fields, amount };
}

/** Yuan for the payer's page only; the API speaks fen. */
export function yuanText(fen: bigint): string {
  return formatMinorAsDecimal(fen, 'CNY');
}
