import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createInflate } from 'node:zlib';
import yauzl from 'yauzl';
import type { Logger } from '../../platform/logging.js';
import { billLimits, channelBillFromFile, unionpayZmFileName } from '../../reconciliation/bills/index.js';
import type { BillLine, BillRequest, BillResult, ChannelBill, UnknownAnswer } from '../connector.js';
import { signMethodCertificate, type MessageCheck } from './signature.js';
import { accessTypeMerchant, fenNumberFor, formatBeijingCompact, parseAnswerText, unionpayEncoding, unionpayVersion, type UnionpayAnswer } from './transformers.js';

/**
 * UnionPay's reconciliation file for one settlement date, through the file
 * transfer (文件传输): a signed request (txnType 76, txnSubType 01, fileType
 * 00, settleDate MMDD) posted to the file-transfer URL; the answer, verified
 * like every UnionPay answer (the certificate it carries must chain to the
 * configured root, its signature must hold), carries the archive of the
 * date's files in `fileContent` — deflated and base64-encoded, as UnionPay's
 * SDKs decode it — and its name in `fileName`. The archive is inflated
 * straight to a folder of its own, the ZM file in it (`INN<yyMMdd>88ZM_<merId>`)
 * is checked to be this merchant's for the asked date, and the parser reads it
 * as a stream.
 *
 * UnionPay puts the whole archive inside the signed message, so the answer
 * is held in memory while its signature is checked (bounded by
 * `answerBytesMax`); everything after that streams.
 *
 * The ZM file carries UnionPay's orderIds, which for Fen's numbers are the
 * numbers without their underscore (transformers.ts, orderIdFor); the lines
 * come out with Fen's numbers again (fenNumberFor).
 */

const billDatePattern = /^\d{4}-\d{2}-\d{2}$/;
/** The answer carries the compressed archive; a day of a few million lines stays far below this. */
export const answerBytesMax = 256 * 1024 * 1024;
/** The answer of a big day is large: it gets the time a download gets, not that of a gateway call. */
const fileTransferTimeoutMs = 10 * 60 * 1000;
const fileTransferTxnType = '76';
const reconciliationFileType = '00';

/** Answer codes of the file transfer: 98 is UnionPay's "no such file (yet)". */
const notReadyCodes = new Set(['98']);
const retryCodes = new Set(['02', '03', '04', '05', '06', '37', '83']);
const rejectedCodes = new Set(['10', '11', '13', '14', '31', '32', '43']);

export interface UnionpayBillDependencies {
  merId: string;
  fileTransUrl: string;
  /** Adds certId and the signature, as every request of the account is signed. */
  sign(fields: Record<string, string>): Record<string, string>;
  /** Checks an answer's certificate and signature at the connector's time. */
  verify(answer: UnionpayAnswer): MessageCheck;
  now(): Date;
  logger: Logger;
}

/** The request's fields before signing. */
export function fileTransferFields(billDate: string, merId: string, now: Date): Record<string, string> {
  return {
    version: unionpayVersion,
    encoding: unionpayEncoding,
    signMethod: signMethodCertificate,
    txnType: fileTransferTxnType,
    txnSubType: '01',
    bizType: '000000',
    accessType: accessTypeMerchant,
    merId,
    txnTime: formatBeijingCompact(now),
    settleDate: `${billDate.slice(5, 7)}${billDate.slice(8, 10)}`,
    fileType: reconciliationFileType,
  };
}

type Answered = { ok: true; answer: UnionpayAnswer } | { ok: false; unknown: UnknownAnswer };

function unknownFromFetchError(error: unknown): UnknownAnswer {
  const name = (error as Error)?.name ?? 'Error';
  if (name === 'TimeoutError' || name === 'AbortError') return { status: 'unknown', reason: 'timeout', message: 'no answer within the timeout' };
  return { status: 'unknown', reason: 'network', message: `the request failed (${name})` };
}

/** The answer's text, read no further than `answerBytesMax`. */
async function cappedText(response: Response): Promise<string | undefined> {
  if (!response.body) return '';
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
    size += chunk.length;
    if (size > answerBytesMax) {
      await response.body.cancel().catch(() => {});
      return undefined;
    }
    chunks.push(Buffer.from(chunk));
  }
  return Buffer.concat(chunks).toString('utf8');
}

async function post(dependencies: UnionpayBillDependencies, fields: Record<string, string>): Promise<Answered> {
  let status: number;
  let body: string | undefined;
  try {
    const response = await fetch(dependencies.fileTransUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded; charset=UTF-8' },
      body: new URLSearchParams(dependencies.sign(fields)).toString(),
      signal: AbortSignal.timeout(fileTransferTimeoutMs),
    });
    status = response.status;
    body = await cappedText(response);
  } catch (error) {
    return { ok: false, unknown: unknownFromFetchError(error) };
  }
  if (status !== 200) return { ok: false, unknown: { status: 'unknown', reason: 'http_status', channelCode: `HTTP ${status}`, message: `UnionPay answered HTTP ${status}` } };
  if (body === undefined) return { ok: false, unknown: { status: 'unknown', reason: 'unparsable', message: `the answer is larger than ${answerBytesMax} bytes` } };
  const answer = parseAnswerText(body.trim());
  if (answer.respCode === undefined) return { ok: false, unknown: { status: 'unknown', reason: 'unparsable', message: 'the answer was not a UnionPay form' } };
  const check = dependencies.verify(answer);
  if (!check.ok) return { ok: false, unknown: { status: 'unknown', reason: 'unverifiable', channelCode: answer.respCode, message: check.problem } };
  return { ok: true, answer };
}

/**
 * A verified answer that is not a file: 98 (no file for the date yet) is
 * "ask again later"; a refusal of the request itself is `failed`; busy or
 * undecided codes are `unknown`.
 */
export function resultOfNonFileAnswer(answer: UnionpayAnswer): BillResult {
  const channelCode = answer.respCode ?? 'missing_code';
  const message = `${channelCode} ${answer.respMsg ?? ''}`.trim();
  if (notReadyCodes.has(channelCode)) return { status: 'not_ready', channelCode, message };
  if (rejectedCodes.has(channelCode)) return { status: 'failed', reason: 'rejected', channelCode, message };
  if (retryCodes.has(channelCode)) return { status: 'unknown', reason: 'channel_error', channelCode, message };
  return { status: 'unknown', reason: 'unmapped_status', channelCode, message };
}

/** A plain file name for the archive: UnionPay's own when it is one, else a fixed one. */
function archiveName(fileName: string | undefined, billDate: string): string {
  return fileName !== undefined && /^[\w.-]{1,128}$/.test(fileName) && !fileName.startsWith('.') ? fileName : `unionpay-files-${billDate}.zip`;
}

/** Counts bytes as they pass and stops an archive that inflates past the limit. */
function byteLimit(limitBytes: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      seen += chunk.length;
      done(seen > limitBytes ? new Error(`the archive inflates past ${limitBytes} bytes`) : null, chunk);
    },
  });
}

async function zipEntryNames(filePath: string): Promise<string[]> {
  const zip = await yauzl.openPromise(filePath, { autoClose: false, lazyEntries: true });
  try {
    const names: string[] = [];
    for await (const entry of zip.eachEntry()) names.push(entry.fileName);
    return names;
  } finally {
    zip.close();
  }
}

/** The lines with Fen's numbers where UnionPay carries them as orderIds. */
function withFenNumbers(bill: ChannelBill): ChannelBill {
  const renumbered = (line: BillLine): BillLine => ({
    ...line,
    outTradeNo: fenNumberFor(line.outTradeNo),
    outRefundNo: line.outRefundNo === undefined ? undefined : fenNumberFor(line.outRefundNo),
  });
  return {
    billDate: bill.billDate,
    filePath: bill.filePath,
    async *lines() {
      const reading = bill.lines();
      for (;;) {
        const step = await reading.next();
        if (step.done) return step.value;
        yield step.value.map(renumbered);
      }
    },
    discard: () => bill.discard(),
  };
}

/** The whole operation behind UnionpayConnector.downloadBill; never throws for what the channel or the network does. */
export async function downloadUnionpayBill(request: BillRequest, dependencies: UnionpayBillDependencies): Promise<BillResult> {
  const { billDate } = request;
  if (!billDatePattern.test(billDate)) return { status: 'failed', reason: 'rejected', channelCode: 'invalid_bill_date', message: `bill dates are YYYY-MM-DD, not ${billDate}` };
  const fields = fileTransferFields(billDate, dependencies.merId, dependencies.now());
  const answered = await post(dependencies, fields);
  if (!answered.ok) {
    dependencies.logger[answered.unknown.reason === 'unverifiable' ? 'warn' : 'info']({ billDate, reason: answered.unknown.reason }, `unionpay file transfer failed: ${answered.unknown.message}`);
    return answered.unknown;
  }
  const { answer } = answered;
  if (answer.respCode !== '00') {
    const result = resultOfNonFileAnswer(answer);
    dependencies.logger.info({ billDate, status: result.status, respCode: answer.respCode }, 'unionpay reconciliation file not downloaded');
    return result;
  }
  // A verified answer about another merchant or date would be a bill of something else.
  if (answer.merId !== dependencies.merId || answer.settleDate !== fields.settleDate || answer.fileType !== reconciliationFileType || !answer.fileContent) {
    return { status: 'unknown', reason: 'unparsable', message: `the answer is not merchant ${dependencies.merId}'s file ${reconciliationFileType} for ${fields.settleDate}` };
  }
  const directory = await mkdtemp(path.join(os.tmpdir(), 'fen-unionpay-bill-'));
  const remove = () => rm(directory, { recursive: true, force: true });
  const filePath = path.join(directory, archiveName(answer.fileName, billDate));
  try {
    await pipeline(Readable.from([Buffer.from(answer.fileContent, 'base64')]), createInflate(), byteLimit(billLimits.fileBytesMax), createWriteStream(filePath));
  } catch (error) {
    await remove();
    return { status: 'unknown', reason: 'unparsable', message: `fileContent does not inflate (${(error as Error)?.message ?? 'error'})` };
  }
  let zmFiles: ReturnType<typeof unionpayZmFileName>[];
  try {
    zmFiles = (await zipEntryNames(filePath)).map((name) => unionpayZmFileName(path.basename(name))).filter((named) => named !== undefined);
  } catch {
    await remove();
    return { status: 'unknown', reason: 'unparsable', message: 'fileContent is not a zip archive' };
  }
  if (zmFiles.length !== 1 || zmFiles[0]!.billDate !== billDate || zmFiles[0]!.merchantId !== dependencies.merId) {
    await remove();
    return { status: 'unknown', reason: 'unparsable', message: `the archive does not hold exactly one ZM file of merchant ${dependencies.merId} for ${billDate}` };
  }
  dependencies.logger.info({ billDate }, 'unionpay reconciliation file downloaded');
  return { status: 'ready', bill: withFenNumbers(channelBillFromFile({ channel: 'unionpay', billDate, filePath, options: { billDate }, remove })) };
}
