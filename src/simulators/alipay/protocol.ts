import { createPrivateKey, createPublicKey, createSign, createVerify, randomInt, type KeyObject } from 'node:crypto';
import { formatMinorAsDecimal, parseDecimalToMinor } from '../../platform/money.js';

/**
 * Alipay's openapi gateway protocol as Alipay speaks it, written independently
 * of Fen's connector (which uses the official SDK), so that each checks the
 * other: RSA2 over sorted `k=v` pairs for requests and notifications, RSA2
 * over the exact JSON text of the `<method>_response` object for answers,
 * Beijing-time timestamps, yuan amounts and Alipay's error codes.
 */

export const signTypeRsa2 = 'RSA2';
const rsa2Algorithm = 'RSA-SHA256';
const beijingOffsetMs = 8 * 60 * 60 * 1000;

/**
 * The string Alipay signs for a request: every parameter except `sign`, empty
 * values left out, sorted by name, `name=value` joined with `&`, values as
 * received (not URL-encoded). `sign_type` is part of it for requests.
 */
export function requestSignContent(parameters: Record<string, string>): string {
  return Object.keys(parameters)
    .filter((name) => name !== 'sign' && parameters[name] !== '')
    .sort()
    .map((name) => `${name}=${parameters[name]}`)
    .join('&');
}

/** The string Alipay signs for a notification: as for a request, but without `sign_type` either. */
export function notificationSignContent(fields: Record<string, string>): string {
  const withoutSignType = Object.fromEntries(Object.entries(fields).filter(([name]) => name !== 'sign_type'));
  return requestSignContent(withoutSignType);
}

/**
 * Keys are parsed once. Given PEM text, OpenSSL parses it again on every sign
 * and verify, which costs several times the RSA operation itself (on Node 20,
 * about 3 ms per RSA2 signature against 0.6 ms with a parsed key; found by the
 * CPU accounting of `npm run bench`). Only a handful of keys is ever in use;
 * the bound only keeps a misuse from growing the cache without end.
 */
const parsedKeysMax = 256;
const parsedPrivateKeys = new Map<string, KeyObject>();
const parsedPublicKeys = new Map<string, KeyObject>();

function parsedKey(cache: Map<string, KeyObject>, pem: string, parse: (pem: string) => KeyObject): KeyObject {
  let key = cache.get(pem);
  if (!key) {
    key = parse(pem);
    if (cache.size >= parsedKeysMax) cache.clear();
    cache.set(pem, key);
  }
  return key;
}

export function signRsa2(content: string, privateKeyPem: string): string {
  return createSign(rsa2Algorithm).update(content, 'utf8').sign(parsedKey(parsedPrivateKeys, privateKeyPem, createPrivateKey), 'base64');
}

export function verifyRsa2(content: string, signature: string, publicKeyPem: string): boolean {
  try {
    return createVerify(rsa2Algorithm).update(content, 'utf8').verify(parsedKey(parsedPublicKeys, publicKeyPem, createPublicKey), signature, 'base64');
  } catch {
    return false;
  }
}

export function responseKeyOf(apiMethod: string): string {
  return `${apiMethod.replaceAll('.', '_')}_response`;
}

/**
 * A gateway answer: `{"<method>_response":{…},"sign":"…"}`, where the
 * signature covers exactly the characters of the inner object as sent.
 */
export function signedResponseText(responseKey: string, body: Record<string, unknown>, privateKeyPem: string): string {
  const bodyText = JSON.stringify(body);
  const signature = signRsa2(bodyText, privateKeyPem);
  return `{"${responseKey}":${bodyText},"sign":${JSON.stringify(signature)}}`;
}

/** Alipay's answer codes, with the wording Alipay uses. */
export const gatewayCodes = {
  success: { code: '10000', msg: 'Success' },
  unavailable: { code: '20000', msg: 'Service Currently Unavailable' },
  missingArguments: { code: '40001', msg: 'Missing Required Arguments' },
  invalidArguments: { code: '40002', msg: 'Invalid Arguments' },
  businessFailed: { code: '40004', msg: 'Business Failed' },
} as const;

export interface GatewayError {
  code: keyof typeof gatewayCodes;
  subCode: string;
  subMessage: string;
}

export function gatewayError(code: GatewayError['code'], subCode: string, subMessage: string): GatewayError {
  return { code, subCode, subMessage };
}

export function errorBody(error: GatewayError, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { ...gatewayCodes[error.code], sub_code: error.subCode, sub_msg: error.subMessage, ...extra };
}

export function successBody(fields: Record<string, unknown>): Record<string, unknown> {
  return { ...gatewayCodes.success, ...fields };
}

// ---------------------------------------------------------------------------
// Amounts, times and numbers in Alipay's formats

/** Alipay accepts amounts from 0.01 to 100,000,000.00 yuan. */
const amountMaxFen = 10_000_000_000n;

export function fenFromYuan(text: string | undefined): bigint | undefined {
  if (text === undefined || !/^\d+(\.\d{1,2})?$/.test(text)) return undefined;
  const parsed = parseDecimalToMinor(text, 'CNY');
  if (!parsed.ok || parsed.value <= 0n || parsed.value > amountMaxFen) return undefined;
  return parsed.value;
}

export function yuanFromFen(amount: bigint): string {
  return formatMinorAsDecimal(amount, 'CNY');
}

/** "yyyy-MM-dd HH:mm:ss" in Beijing time, as in every Alipay timestamp. */
export function beijingTime(date: Date): string {
  return new Date(date.getTime() + beijingOffsetMs).toISOString().slice(0, 19).replace('T', ' ');
}

export function parseBeijingTime(text: string | undefined): Date | undefined {
  const match = text === undefined ? null : /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})$/.exec(text);
  if (!match) return undefined;
  const date = new Date(`${match[1]}T${match[2]}+08:00`);
  return Number.isNaN(date.getTime()) || beijingTime(date) !== `${match[1]} ${match[2]}` ? undefined : date;
}

/** timeout_express: "90m", "2h", "1d" (and "1c": until the end of the Beijing day). */
export function parseTimeoutExpress(text: string | undefined, now: Date): Date | undefined {
  const match = text === undefined ? null : /^(\d+)([mhdc])$/.exec(text);
  if (!match) return undefined;
  const count = Number(match[1]);
  const unitMs = { m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
  const unit = match[2] as 'm' | 'h' | 'd' | 'c';
  if (unit === 'c') {
    const beijingMidnight = new Date(`${beijingTime(now).slice(0, 10)}T00:00:00+08:00`);
    return new Date(beijingMidnight.getTime() + 86_400_000);
  }
  return new Date(now.getTime() + count * unitMs[unit]);
}

function digits(count: number): string {
  let text = '';
  for (let index = 0; index < count; index += 1) text += String(randomInt(10));
  return text;
}

/** A 28-digit trade number in Alipay's shape: the Beijing date, "2200", then digits. */
export function newTradeNo(now: Date): string {
  return `${beijingTime(now).slice(0, 10).replaceAll('-', '')}2200${digits(16)}`;
}

/** A 16-digit Alipay user id (they all start with 2088). */
export function newBuyerId(): string {
  return `2088${digits(12)}`;
}

export function newNotifyId(now: Date): string {
  return `${beijingTime(now).slice(0, 10).replaceAll('-', '')}${digits(26)}`;
}
