import { createHash, createSign, createVerify, randomInt, X509Certificate, type KeyObject } from 'node:crypto';

/**
 * UnionPay ACP 5.1.0 as UnionPay speaks it, written independently of Fen's
 * connector so that each checks the other: signatures over sorted `k=v`
 * strings (SHA-256 hex, then SHA256withRSA), answers as unencoded `k=v&…`
 * text, Beijing times without separators, amounts in fen, and UnionPay's
 * answer codes with the wording UnionPay uses.
 */

export const acpVersion = '5.1.0';
export const signMethodRsa = '01';
const beijingOffsetMs = 8 * 60 * 60 * 1000;

/** Every field but `signature`, sorted by name, `name=value` joined with `&`, values as received. */
export function signContent(fields: Record<string, string>): string {
  return Object.entries(fields)
    .filter(([name]) => name !== 'signature')
    .sort(([left], [right]) => (left < right ? -1 : left > right ? 1 : 0))
    .map(([name, value]) => `${name}=${value}`)
    .join('&');
}

function digestHex(fields: Record<string, string>): string {
  return createHash('sha256').update(Buffer.from(signContent(fields), 'utf8')).digest('hex');
}

export function signAcp(fields: Record<string, string>, privateKey: KeyObject): string {
  return createSign('sha256WithRSAEncryption').update(Buffer.from(digestHex(fields), 'ascii')).sign(privateKey).toString('base64');
}

export function verifyAcp(fields: Record<string, string>, certificatePem: string): boolean {
  if (!fields.signature) return false;
  try {
    const key = new X509Certificate(certificatePem).publicKey;
    return createVerify('sha256WithRSAEncryption').update(Buffer.from(digestHex(fields), 'ascii')).verify(key, Buffer.from(fields.signature, 'base64'));
  } catch {
    return false;
  }
}

/** A signed message from "UnionPay": the signing certificate travels in it and is part of what is signed. */
export function signedMessage(fields: Record<string, string>, signer: { certificatePem: string; privateKey: KeyObject }): Record<string, string> {
  const withCertificate = { ...fields, signMethod: signMethodRsa, signPubKeyCert: signer.certificatePem };
  return { ...withCertificate, signature: signAcp(withCertificate, signer.privateKey) };
}

/** A synchronous answer as UnionPay writes it: `k=v&…` with no URL encoding. */
export function answerText(fields: Record<string, string>): string {
  return Object.entries(fields)
    .map(([name, value]) => `${name}=${value}`)
    .join('&');
}

// ---------------------------------------------------------------------------
// Answer codes

/** The codes this simulator answers with, and UnionPay's wording for them. */
export const respMessages = {
  '00': '成功[0000000]',
  '01': '交易失败。详情请咨询95516[1000001]',
  '03': '交易通讯超时，请发起查询交易[2000003]',
  '04': '交易状态未明，请查询对账结果[2000004]',
  '05': '交易已受理，请稍后查询交易结果[2000005]',
  '10': '报文格式错误[9100010]',
  '11': '验证签名失败[9100011]',
  '12': '重复交易[9100012]',
  '13': '报文交易要素缺失[9100013]',
  '31': '商户状态不正确[9100031]',
  '34': '查无此交易[2011000]',
  '35': '原交易不存在或状态不正确[2011035]',
  '36': '与原交易信息不符[2011036]',
  // The file transfer's answer when the settlement date's files are not there (yet).
  '98': '文件不存在',
} as const;
export type SimRespCode = keyof typeof respMessages;

export interface AcpError {
  respCode: SimRespCode;
  /** What was wrong, added to UnionPay's wording for the developer. */
  detail?: string;
}

export function acpError(respCode: SimRespCode, detail?: string): AcpError {
  return detail === undefined ? { respCode } : { respCode, detail };
}

export function respFields(respCode: SimRespCode, detail?: string): { respCode: string; respMsg: string } {
  return { respCode, respMsg: detail ? `${respMessages[respCode]} ${detail}` : respMessages[respCode] };
}

// ---------------------------------------------------------------------------
// Times, amounts and numbers in UnionPay's formats

/** yyyyMMddHHmmss in Beijing time. */
export function beijingCompact(date: Date): string {
  return new Date(date.getTime() + beijingOffsetMs).toISOString().slice(0, 19).replace(/[-T:]/g, '');
}

export function parseBeijingCompact(text: string | undefined): Date | undefined {
  const match = text === undefined ? null : /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})$/.exec(text);
  if (!match) return undefined;
  const date = new Date(`${match[1]}-${match[2]}-${match[3]}T${match[4]}:${match[5]}:${match[6]}+08:00`);
  return Number.isNaN(date.getTime()) || beijingCompact(date) !== text ? undefined : date;
}

/** traceTime: MMddHHmmss, Beijing time. */
export function traceTimeOf(date: Date): string {
  return beijingCompact(date).slice(4);
}

/** settleDate: MMdd of the Beijing day (UnionPay's cut-off is 23:00, which a simulator need not model). */
export function settleDateOf(date: Date): string {
  return beijingCompact(date).slice(4, 8);
}

/** UnionPay takes 1 fen up to 12 digits of fen. */
export function fenFromTxnAmt(text: string | undefined): bigint | undefined {
  if (text === undefined || !/^[1-9]\d{0,11}$/.test(text)) return undefined;
  return BigInt(text);
}

export function yuanText(fen: bigint): string {
  const whole = fen / 100n;
  const cents = (fen % 100n).toString().padStart(2, '0');
  return `${whole}.${cents}`;
}

function digits(count: number): string {
  let text = '';
  for (let index = 0; index < count; index += 1) text += String(randomInt(10));
  return text;
}

/** A 21-digit queryId: the Beijing time of the transaction, then digits. */
export function newQueryId(now: Date): string {
  return `${beijingCompact(now).slice(2)}${digits(9)}`;
}

export function newTraceNo(): string {
  return digits(6);
}

/** A masked card number as UnionPay shows it in notifications: the simulator's payers all use one test card. */
export const maskedTestCard = '6216********0018';

/** The sub-fields of a `{a=b&c=d}` value such as riskRateInfo. */
export function subFields(value: string | undefined): Record<string, string> {
  if (value === undefined || !value.startsWith('{') || !value.endsWith('}')) return {};
  return Object.fromEntries(
    value
      .slice(1, -1)
      .split('&')
      .map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)] as const)
      .filter(([name]) => name.length > 0),
  );
}
