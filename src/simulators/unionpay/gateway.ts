import { X509Certificate } from 'node:crypto';
import { fileTransfer, type UnionpayBillSettings } from './bills.js';
import { takeFault, type simEndpoints } from './faults.js';
import { transactionFields, withReportedAmount } from './notifier.js';
import { acpError, acpVersion, fenFromTxnAmt, parseBeijingCompact, respFields, respMessages, signMethodRsa, subFields, verifyAcp, type AcpError } from './protocol.js';
import { findMerchant, findTransaction, type SimMerchant, type SimTransaction } from './store.js';
import { createOrFindOrder, expireIfDue, refundPayment, type TransactionContext } from './transactions.js';

/**
 * UnionPay's gateway for the transactions Fen uses: frontTransReq.do (the
 * payer's browser posts the signed consumption form and lands on the payer
 * page), backTransReq.do (refunds), queryTrans.do (the state of any
 * transaction by orderId + txnTime) and fileTransRequest.do (a settlement
 * date's reconciliation files, ./bills.ts). Each checks the merchant's
 * signature with the certificate registered for its merId (and named by
 * certId), applies UnionPay's rules and answers with UnionPay's codes; the
 * server signs what this returns.
 */

export type SimEndpoint = (typeof simEndpoints)[number];

/** What the gateway needs beyond the transactions: how reconciliation files are priced and when they exist. */
export interface GatewayContext extends TransactionContext {
  bills: UnionpayBillSettings;
}

export type GatewayReply =
  | { kind: 'answer'; fields: Record<string, string> }
  | { kind: 'redirect'; location: string }
  | { kind: 'html'; statusCode: number; title: string; message: string }
  | { kind: 'http_error'; statusCode: number };

export interface GatewayOutcome {
  reply: GatewayReply;
  /** A timeout fault: hold the answer this long after doing the work. */
  holdMs?: number;
}

const orderIdPattern = /^[0-9A-Za-z]{8,40}$/;
const echoedFields = ['version', 'encoding', 'bizType', 'txnType', 'txnSubType', 'channelType', 'accessType', 'merId', 'orderId', 'txnTime'] as const;
const commodityNameLengthMax = 256;

function isAcpError(value: unknown): value is AcpError {
  return typeof value === 'object' && value !== null && 'respCode' in value;
}

function echo(fields: Record<string, string>): Record<string, string> {
  return Object.fromEntries(echoedFields.filter((name) => fields[name] !== undefined).map((name) => [name, fields[name]!]));
}

function errorAnswer(fields: Record<string, string>, error: AcpError): GatewayReply {
  return { kind: 'answer', fields: { ...echo(fields), ...respFields(error.respCode, error.detail) } };
}

function isHttpUrl(value: string | undefined): boolean {
  if (value === undefined) return false;
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:';
  } catch {
    return false;
  }
}

/** The merchant, or UnionPay's answer to a request it will not accept from that merchant. */
async function authenticate(context: TransactionContext, fields: Record<string, string>): Promise<SimMerchant | AcpError> {
  if (fields.version !== acpVersion) return acpError('10', `version must be ${acpVersion}`);
  if (fields.signMethod !== signMethodRsa) return acpError('10', 'signMethod must be 01 (certificate)');
  if (!fields.merId || !fields.certId || !fields.signature) return acpError('13', 'merId, certId and signature are required');
  const merchant = await findMerchant(context.pool, fields.merId);
  if (!merchant) return acpError('31', `merchant ${fields.merId} is not registered with the simulator`);
  if (fields.certId !== merchant.certId) return acpError('11', `certId ${fields.certId} is not the merchant's registered certificate`);
  const certificate = new X509Certificate(merchant.certificatePem);
  const now = context.clock.now().getTime();
  if (now < Date.parse(certificate.validFrom) || now > Date.parse(certificate.validTo)) return acpError('11', 'the merchant certificate is not valid now');
  if (!verifyAcp(fields, merchant.certificatePem)) return acpError('11', 'the signature does not verify with the merchant certificate');
  return merchant;
}

// ---------------------------------------------------------------------------
// frontTransReq.do: consumption, opened by the payer's browser

function consumeOrderFrom(context: TransactionContext, fields: Record<string, string>) {
  const txnFen = fenFromTxnAmt(fields.txnAmt);
  const payTimeoutAt = fields.payTimeout === undefined ? null : parseBeijingCompact(fields.payTimeout);
  if (fields.txnType !== '01' || fields.txnSubType !== '01') return acpError('10', 'frontTransReq takes consumption (txnType 01, txnSubType 01) only');
  if (fields.bizType !== '000201' || fields.accessType !== '0') return acpError('10', 'bizType must be 000201 and accessType 0');
  if (fields.channelType !== '07' && fields.channelType !== '08') return acpError('10', 'channelType must be 07 or 08');
  if (fields.currencyCode !== '156') return acpError('10', 'currencyCode must be 156');
  if (txnFen === undefined) return acpError('10', 'txnAmt must be whole fen, at least 1');
  if (!fields.orderId || !orderIdPattern.test(fields.orderId)) return acpError('10', 'orderId must be 8-40 letters and digits');
  if (parseBeijingCompact(fields.txnTime) === undefined) return acpError('10', 'txnTime must be yyyyMMddHHmmss');
  if (!isHttpUrl(fields.backUrl) || (fields.frontUrl !== undefined && !isHttpUrl(fields.frontUrl))) return acpError('10', 'backUrl and frontUrl must be http(s) URLs');
  if (payTimeoutAt === undefined) return acpError('10', 'payTimeout must be yyyyMMddHHmmss');
  if (payTimeoutAt !== null && payTimeoutAt.getTime() <= context.clock.now().getTime()) return acpError('01', 'payTimeout has already passed');
  return {
    merId: fields.merId!,
    orderId: fields.orderId,
    txnTime: fields.txnTime!,
    txnSubType: fields.txnSubType,
    bizType: fields.bizType,
    channelType: fields.channelType,
    txnFen,
    currencyCode: fields.currencyCode,
    commodityName: subFields(fields.riskRateInfo).commodityName?.slice(0, commodityNameLengthMax) ?? null,
    backUrl: fields.backUrl!,
    frontUrl: fields.frontUrl ?? null,
    reqReserved: fields.reqReserved ?? null,
    payTimeoutAt,
  };
}

async function frontTransReq(context: TransactionContext, fields: Record<string, string>): Promise<GatewayReply> {
  const order = consumeOrderFrom(context, fields);
  const transaction = isAcpError(order) ? order : await createOrFindOrder(context, order);
  if (isAcpError(transaction)) return frontErrorPage(transaction);
  return { kind: 'redirect', location: `/unionpay/pay/${transaction.payerToken}` };
}

function frontErrorPage(error: AcpError): GatewayReply {
  return { kind: 'html', statusCode: 400, title: '交易失败 · Payment error', message: `${error.respCode} ${respMessages[error.respCode]}${error.detail ? ` — ${error.detail}` : ''}` };
}

// ---------------------------------------------------------------------------
// backTransReq.do: refunds

async function backTransReq(context: TransactionContext, fields: Record<string, string>): Promise<GatewayReply> {
  if (fields.txnType !== '04') return errorAnswer(fields, acpError('10', 'this simulator takes refunds (txnType 04) on backTransReq'));
  const txnFen = fenFromTxnAmt(fields.txnAmt);
  if (!fields.orderId || !orderIdPattern.test(fields.orderId) || parseBeijingCompact(fields.txnTime) === undefined || !fields.origQryId) {
    return errorAnswer(fields, acpError('13', 'orderId, txnTime and origQryId are required'));
  }
  if (txnFen === undefined) return errorAnswer(fields, acpError('10', 'txnAmt must be whole fen, at least 1'));
  if (fields.currencyCode !== undefined && fields.currencyCode !== '156') return errorAnswer(fields, acpError('10', 'currencyCode must be 156'));
  if (fields.backUrl !== undefined && !isHttpUrl(fields.backUrl)) return errorAnswer(fields, acpError('10', 'backUrl must be an http(s) URL'));
  const outcome = await refundPayment(context, {
    merId: fields.merId!,
    orderId: fields.orderId,
    txnTime: fields.txnTime!,
    txnSubType: fields.txnSubType ?? '00',
    bizType: fields.bizType ?? '000201',
    channelType: fields.channelType ?? '07',
    txnFen,
    currencyCode: '156',
    origQueryId: fields.origQryId,
    backUrl: fields.backUrl ?? null,
    reqReserved: fields.reqReserved ?? null,
  });
  if (isAcpError(outcome)) return errorAnswer(fields, outcome);
  const refund = outcome.transaction;
  const answer = { ...echo(fields), origQryId: refund.origQueryId!, txnAmt: refund.txnFen.toString(), queryId: refund.queryId, ...(refund.reqReserved ? { reqReserved: refund.reqReserved } : {}) };
  return { kind: 'answer', fields: { ...answer, ...respFields('00') } };
}

// ---------------------------------------------------------------------------
// queryTrans.do: any transaction by orderId + txnTime

/** origRespCode: 05 while the payer has the order open, the result code once it is final. */
function resultOf(transaction: SimTransaction): { origRespCode: string; origRespMsg: string } {
  if (transaction.status === 'waiting') return { origRespCode: '05', origRespMsg: respMessages['05'] };
  return { origRespCode: transaction.resultCode ?? '01', origRespMsg: transaction.resultMessage ?? respMessages['01'] };
}

async function queryTrans(context: TransactionContext, fields: Record<string, string>): Promise<GatewayReply> {
  if (fields.txnType !== '00') return errorAnswer(fields, acpError('10', 'queryTrans takes txnType 00'));
  if (!fields.orderId || parseBeijingCompact(fields.txnTime) === undefined) return errorAnswer(fields, acpError('13', 'orderId and txnTime are required'));
  const found = await findTransaction(context.pool, { merId: fields.merId!, orderId: fields.orderId, txnTime: fields.txnTime! });
  if (!found) return errorAnswer(fields, acpError('34'));
  const transaction = found.txnType === '01' ? await expireIfDue(context, found) : found;
  const wrongAmount = await takeFault(context.pool, 'wrong_amount', transaction.orderId, (fault) => fault.where !== 'notification');
  const reported = transactionFields(transaction, null);
  const answer = wrongAmount ? withReportedAmount(reported, wrongAmount.txnAmt) : reported;
  return { kind: 'answer', fields: { ...answer, ...resultOf(transaction), ...respFields('00') } };
}

// ---------------------------------------------------------------------------
// fileTransRequest.do: a settlement date's reconciliation files

async function fileTransRequest(context: GatewayContext, fields: Record<string, string>): Promise<GatewayReply> {
  const files = await fileTransfer(context, fields);
  if (isAcpError(files)) return errorAnswer(fields, files);
  return { kind: 'answer', fields: { ...echo(fields), ...files, ...respFields('00') } };
}

const handlers: Record<SimEndpoint, (context: GatewayContext, fields: Record<string, string>) => Promise<GatewayReply>> = {
  frontTransReq,
  backTransReq,
  queryTrans,
  fileTransRequest,
};

/** One gateway request: faults, authentication, then the endpoint's work. */
export async function handleGatewayRequest(context: GatewayContext, endpoint: SimEndpoint, fields: Record<string, string>): Promise<GatewayOutcome> {
  const orderId = fields.orderId;
  const serverError = await takeFault(context.pool, 'gateway_error', orderId, (fault) => fault.endpoint === endpoint);
  if (serverError) return { reply: { kind: 'http_error', statusCode: serverError.httpStatus } };
  const merchant = await authenticate(context, fields);
  if (isAcpError(merchant)) return { reply: endpoint === 'frontTransReq' ? frontErrorPage(merchant) : errorAnswer(fields, merchant) };
  const forcedCode = await takeFault(context.pool, 'resp_code', orderId, (fault) => fault.endpoint === endpoint);
  let reply: GatewayReply;
  if (forcedCode) {
    if (forcedCode.performed) await handlers[endpoint](context, fields);
    const error = acpError(forcedCode.respCode);
    reply = endpoint === 'frontTransReq' ? frontErrorPage(error) : errorAnswer(fields, error);
  } else {
    reply = await handlers[endpoint](context, fields);
  }
  const timeout = await takeFault(context.pool, 'gateway_timeout', orderId, (fault) => fault.endpoint === endpoint);
  return timeout ? { reply, holdMs: timeout.holdMs } : { reply };
}
