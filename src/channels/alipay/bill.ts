import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { billLimits, channelBillFromFile } from '../../reconciliation/bills/index.js';
import type { Logger } from '../../platform/logging.js';
import type { BillRequest, BillResult, UnknownAnswer } from '../connector.js';

/**
 * Alipay's trade bill for one day: alipay.data.dataservice.bill.downloadurl.
 * query through the SDK (signed request, verified answer), then a plain GET of
 * the short-lived URL it returns, streamed to a file of its own, then read as
 * a stream by the bill parser. The zip is kept on disk rather than in memory
 * so a bill of any size downloads in bounded memory, and stays until the
 * caller has finished with it.
 */

export const billDownloadUrlQueryMethod = 'alipay.data.dataservice.bill.downloadurl.query';

/** The URL is valid for about 30 seconds, but the download itself may be long. */
const billDownloadTimeoutMs = 10 * 60 * 1000;
const notReadySubCodes = new Set(['isp.bill_not_exist', 'BILL_NOT_EXIST', 'NO_BILL_DATA']);
const retrySubCodes = new Set(['isp.unknow-error', 'ACQ.SYSTEM_ERROR', 'aop.ACQ.SYSTEM_ERROR']);
const billDatePattern = /^\d{4}-\d{2}-\d{2}$/;

export interface AlipayBillDependencies {
  /** Calls the gateway through the SDK with validateSign on; answers the `<method>_response` object. */
  exec(apiMethod: string, bizContent: Record<string, unknown>): Promise<Record<string, unknown>>;
  /** How the connector turns an SDK error into an `unknown` answer. */
  unknownFromError(error: unknown): UnknownAnswer;
  logger: Logger;
}

type UrlOutcome = { ok: true; url: URL } | { ok: false; result: BillResult };

function text(answer: Record<string, unknown>, key: string): string | undefined {
  const value = answer[key];
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}

/** Reads the gateway's answer: a URL, "no bill yet", a refusal, or something to ask again about. */
export function billUrlFromAnswer(answer: Record<string, unknown>): UrlOutcome {
  const code = text(answer, 'code');
  const subCode = text(answer, 'sub_code') ?? code ?? 'missing_code';
  const message = [code, text(answer, 'msg'), text(answer, 'sub_code'), text(answer, 'sub_msg')].filter(Boolean).join(' ');
  if (code === '10000') {
    const url = text(answer, 'bill_download_url');
    if (!url || !URL.canParse(url) || !/^https?:$/.test(new URL(url).protocol)) {
      return { ok: false, result: { status: 'unknown', reason: 'unparsable', message: 'the answer has no usable bill_download_url' } };
    }
    return { ok: true, url: new URL(url) };
  }
  if (notReadySubCodes.has(subCode)) return { ok: false, result: { status: 'not_ready', channelCode: subCode, message } };
  if (code === '20000' || retrySubCodes.has(subCode)) return { ok: false, result: { status: 'unknown', reason: 'channel_error', channelCode: subCode, message } };
  if (code === '40004' || code === '40002') return { ok: false, result: { status: 'failed', reason: 'rejected', channelCode: subCode, message } };
  return { ok: false, result: { status: 'unknown', reason: 'unmapped_status', channelCode: subCode, message } };
}

/** A file name for the download: Alipay's own when it is a plain name, else a fixed one. */
function downloadFileName(url: URL): string {
  const named = url.searchParams.get('downloadFileName') ?? '';
  return /^[\w.-]{1,128}$/.test(named) ? named : 'alipay-trade-bill.csv.zip';
}

/** Counts bytes as they pass and stops a download that grows past the limit. */
function byteLimit(limitBytes: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      seen += chunk.length;
      done(seen > limitBytes ? new Error(`the bill is larger than ${limitBytes} bytes`) : null, chunk);
    },
  });
}

/** GETs the bill into a fresh temporary folder; any failure is `unknown` (ask for a new URL later). */
async function downloadToFile(url: URL): Promise<{ ok: true; filePath: string; directory: string } | { ok: false; unknown: UnknownAnswer }> {
  const directory = await mkdtemp(path.join(os.tmpdir(), 'fen-alipay-bill-'));
  const filePath = path.join(directory, downloadFileName(url));
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(billDownloadTimeoutMs), redirect: 'follow' });
    if (!response.ok || !response.body) {
      await response.body?.cancel();
      await rm(directory, { recursive: true, force: true });
      return { ok: false, unknown: { status: 'unknown', reason: 'http_status', channelCode: `HTTP ${response.status}`, message: `the bill download answered HTTP ${response.status}` } };
    }
    await pipeline(Readable.fromWeb(response.body as WebReadableStream<Uint8Array>), byteLimit(billLimits.fileBytesMax), createWriteStream(filePath));
    return { ok: true, filePath, directory };
  } catch (error) {
    await rm(directory, { recursive: true, force: true });
    const timeout = error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError');
    return { ok: false, unknown: { status: 'unknown', reason: timeout ? 'timeout' : 'network', message: `the bill download failed (${error instanceof Error ? error.message : String(error)})` } };
  }
}

/** The whole operation behind AlipayConnector.downloadBill; never throws for what the channel or network does. */
export async function downloadAlipayBill(request: BillRequest, dependencies: AlipayBillDependencies): Promise<BillResult> {
  if (!billDatePattern.test(request.billDate)) {
    return { status: 'failed', reason: 'rejected', channelCode: 'invalid_bill_date', message: `bill dates are YYYY-MM-DD, not ${request.billDate}` };
  }
  let answer: Record<string, unknown>;
  try {
    answer = await dependencies.exec(billDownloadUrlQueryMethod, { bill_type: 'trade', bill_date: request.billDate });
  } catch (error) {
    return dependencies.unknownFromError(error);
  }
  const outcome = billUrlFromAnswer(answer);
  if (!outcome.ok) {
    dependencies.logger.info({ billDate: request.billDate, status: outcome.result.status }, 'alipay bill not downloaded');
    return outcome.result;
  }
  const downloaded = await downloadToFile(outcome.url);
  if (!downloaded.ok) {
    dependencies.logger.info({ billDate: request.billDate, reason: downloaded.unknown.reason }, `alipay bill download failed: ${downloaded.unknown.message}`);
    return downloaded.unknown;
  }
  dependencies.logger.info({ billDate: request.billDate }, 'alipay bill downloaded');
  const bill = channelBillFromFile({
    channel: 'alipay',
    billDate: request.billDate,
    filePath: downloaded.filePath,
    remove: () => rm(downloaded.directory, { recursive: true, force: true }),
  });
  return { status: 'ready', bill };
}
