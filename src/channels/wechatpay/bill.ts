import { createHash, type Hash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Logger } from '../../platform/logging.js';
import { money } from '../../platform/money.js';
import { billLimits, channelBillFromFile } from '../../reconciliation/bills/index.js';
import type { BillRequest, BillResult, ChannelBill, ChannelBillTotals, UnknownAnswer } from '../connector.js';
import { viewAnswer, wechatpayCurrency, type WechatpayAnswer } from './transformers.js';

/**
 * WeChat Pay's trade bill for one day, in two signed requests through
 * wechatpay-axios-plugin, as WeChat Pay documents them:
 *
 *  1. `GET /v3/bill/tradebill?bill_date=…&bill_type=ALL`, whose answer the
 *     plugin verifies like every other (platform public key), gives
 *     `{hash_type: "SHA1", hash_value, download_url}`;
 *  2. a GET of the download URL, signed with the same Authorization scheme.
 *     WeChat Pay does not sign the file it sends back (the plugin knows
 *     `/v3/billdownload/file` and leaves it unverified); its integrity is the
 *     SHA1 from the verified answer, checked here as the bytes arrive and once
 *     more by the parser as it reads the file.
 *
 * The file is streamed to a folder of its own, so a bill of any size
 * downloads in bounded memory, and read as a stream by the bill parser.
 */

export const tradeBillPath = 'v3/bill/tradebill';
const billDatePattern = /^\d{4}-\d{2}-\d{2}$/;
/** The download itself may take long; the API's own timeout still bounds each wait for bytes. */
const billDownloadTimeoutMs = 10 * 60 * 1000;
/** An error body of a failed download is read only this far, to find its code. */
const errorBodyBytesMax = 64 * 1024;

/** The plugin's request surface the bill uses: a path below the base URL, then GET. */
export interface WechatpayGetEndpoint {
  get(config: Record<string, unknown>): Promise<{ status: number; data: unknown }>;
}

export interface WechatpayBillDependencies {
  endpoint(path: string): WechatpayGetEndpoint;
  /** The configured base URL: the download goes there, whatever host download_url names, because the request is signed. */
  baseUrl: string;
  /** The account's API timeout, which also bounds every wait for bytes of the download. */
  timeoutMs: number;
  /** How the connector reads a failed call: an error answer to read, or `unknown`. */
  outcomeFromError(error: unknown): { ok: true; answer: WechatpayAnswer } | { ok: false; unknown: UnknownAnswer };
  logger: Logger;
}

export type BillLocation =
  | { kind: 'file'; sha1: string; downloadUrl: URL }
  /** NO_STATEMENT_EXIST: the day had no payment and no refund, so it has no bill. */
  | { kind: 'no_business'; channelCode: string; answerBody: unknown }
  | { kind: 'result'; result: BillResult };

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Reads the tradebill answer. STATEMENT_CREATING (the bill is made after
 * 10:00 the next morning) is "ask again later"; NO_STATEMENT_EXIST is
 * WeChat Pay's word for a day without business, after which its FAQ says to
 * stop asking; a refusal of the request itself (PARAM_ERROR and the like) is
 * `failed`; a 5xx or SYSTEM_ERROR is `unknown`.
 */
export function billLocationFromAnswer(answer: WechatpayAnswer): BillLocation {
  const view = viewAnswer(answer);
  if (view.kind === 'success') {
    const { hash_type: hashType, hash_value: hashValue, download_url: downloadUrl } = view.fields;
    if (hashType !== 'SHA1' || typeof hashValue !== 'string' || !/^[0-9a-fA-F]{40}$/.test(hashValue)) {
      return { kind: 'result', result: { status: 'unknown', reason: 'unparsable', message: `the answer names no SHA1 hash (hash_type ${String(hashType)})` } };
    }
    if (typeof downloadUrl !== 'string' || !URL.canParse(downloadUrl) || !/^https?:$/.test(new URL(downloadUrl).protocol)) {
      return { kind: 'result', result: { status: 'unknown', reason: 'unparsable', message: 'the answer has no usable download_url' } };
    }
    return { kind: 'file', sha1: hashValue.toLowerCase(), downloadUrl: new URL(downloadUrl) };
  }
  if (view.kind === 'http_error') {
    return { kind: 'result', result: { status: 'unknown', reason: 'http_status', channelCode: `HTTP ${view.httpStatus}`, message: `WeChat Pay answered HTTP ${view.httpStatus}` } };
  }
  const { channelCode, message } = view;
  if (channelCode === 'STATEMENT_CREATING') return { kind: 'result', result: { status: 'not_ready', channelCode, message } };
  if (channelCode === 'NO_STATEMENT_EXIST' && answer.httpStatus < 500) return { kind: 'no_business', channelCode, answerBody: answer.body };
  if (view.errorClass === 'rejected') return { kind: 'result', result: { status: 'failed', reason: 'rejected', channelCode, message } };
  if (view.errorClass === 'retry') return { kind: 'result', result: { status: 'unknown', reason: 'channel_error', channelCode, message } };
  return { kind: 'result', result: { status: 'unknown', reason: 'unmapped_status', channelCode, message } };
}

/**
 * Where to GET the file, below the configured base URL: download_url's path
 * less the base URL's own path, and its query. The host is always the
 * configured one, so a signed request never goes to a host nobody configured.
 */
export function downloadPathOf(downloadUrl: URL, baseUrl: string): { path: string; params: URLSearchParams } {
  const basePath = new URL(baseUrl).pathname.replace(/\/?$/, '/');
  const pathname = downloadUrl.pathname;
  const below = pathname.startsWith(basePath) ? pathname.slice(basePath.length) : pathname.replace(/^\/+/, '');
  return { path: below, params: downloadUrl.searchParams };
}

/** Counts and hashes bytes as they pass, and stops a download that grows past the limit. */
function measured(hash: Hash, limitBytes: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      seen += chunk.length;
      if (seen > limitBytes) return done(new Error(`the bill is larger than ${limitBytes} bytes`));
      hash.update(chunk);
      done(null, chunk);
    },
  });
}

function isStream(value: unknown): value is Readable {
  return typeof value === 'object' && value !== null && typeof (value as Readable).pipe === 'function';
}

/** The code of a failed download's error body, read no further than needed. */
async function errorCodeOf(body: unknown): Promise<string | undefined> {
  if (!isStream(body)) return isRecord(body) && typeof body.code === 'string' ? body.code : undefined;
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      chunks.push(Buffer.from(chunk as Uint8Array));
      size += (chunk as Uint8Array).length;
      if (size > errorBodyBytesMax) break;
    }
  } catch {
    return undefined;
  } finally {
    body.destroy();
  }
  try {
    const parsed: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    return isRecord(parsed) && typeof parsed.code === 'string' ? parsed.code : undefined;
  } catch {
    return undefined;
  }
}

type Downloaded = { ok: true; filePath: string } | { ok: false; unknown: UnknownAnswer };

/** GETs the file through the plugin into `filePath`, checking its SHA1 as it arrives; any failure is `unknown` (ask for a new URL later). */
async function downloadToFile(dependencies: WechatpayBillDependencies, location: { sha1: string; downloadUrl: URL }, filePath: string): Promise<Downloaded> {
  const { path: below, params } = downloadPathOf(location.downloadUrl, dependencies.baseUrl);
  const hash = createHash('sha1');
  try {
    const response = await dependencies.endpoint(below).get({
      params,
      responseType: 'stream',
      timeout: dependencies.timeoutMs,
      signal: AbortSignal.timeout(billDownloadTimeoutMs),
    });
    if (!isStream(response.data)) return { ok: false, unknown: { status: 'unknown', reason: 'unparsable', message: 'the download answered no file' } };
    await pipeline(response.data, measured(hash, billLimits.fileBytesMax), createWriteStream(filePath));
  } catch (error) {
    const outcome = dependencies.outcomeFromError(error);
    if (!outcome.ok) return outcome;
    const code = await errorCodeOf(outcome.answer.body);
    const channelCode = code ?? `HTTP ${outcome.answer.httpStatus}`;
    return { ok: false, unknown: { status: 'unknown', reason: code ? 'channel_error' : 'http_status', channelCode, message: `the bill download answered HTTP ${outcome.answer.httpStatus} ${code ?? ''}`.trim() } };
  }
  const actual = hash.digest('hex');
  if (actual !== location.sha1) {
    return { ok: false, unknown: { status: 'unknown', reason: 'unverifiable', message: `the downloaded bill's SHA1 is ${actual}, the signed answer said ${location.sha1}` } };
  }
  return { ok: true, filePath };
}

const zero = money(0n, wechatpayCurrency);
const noTotals: ChannelBillTotals = {
  lineCount: 0,
  payments: { count: 0, amount: zero, fee: zero },
  refunds: { count: 0, amount: zero, fee: zero },
  netAmount: zero,
  linesOutsidePeriod: 0,
};

/**
 * The bill of a day without business: no lines and zero totals. Its
 * evidence file is WeChat Pay's own answer (NO_STATEMENT_EXIST), since there
 * is no bill file to keep.
 */
function billWithoutLines(billDate: string, filePath: string, directory: string): ChannelBill {
  let started = false;
  return {
    billDate,
    filePath,
    async *lines() {
      if (started) throw new Error('a downloaded bill can be read once');
      started = true;
      yield* [];
      return noTotals;
    },
    discard: () => rm(directory, { recursive: true, force: true }),
  };
}

/** The whole operation behind WechatpayConnector.downloadBill; never throws for what the channel or the network does. */
export async function downloadWechatpayBill(request: BillRequest, dependencies: WechatpayBillDependencies): Promise<BillResult> {
  const { billDate } = request;
  if (!billDatePattern.test(billDate)) return { status: 'failed', reason: 'rejected', channelCode: 'invalid_bill_date', message: `bill dates are YYYY-MM-DD, not ${billDate}` };
  let answer: WechatpayAnswer;
  try {
    const response = await dependencies.endpoint(tradeBillPath).get({ params: { bill_date: billDate, bill_type: 'ALL' } });
    answer = { httpStatus: response.status, body: response.data };
  } catch (error) {
    const outcome = dependencies.outcomeFromError(error);
    if (!outcome.ok) {
      dependencies.logger[outcome.unknown.reason === 'unverifiable' ? 'warn' : 'info']({ billDate, reason: outcome.unknown.reason }, `wechatpay bill not located: ${outcome.unknown.message}`);
      return outcome.unknown;
    }
    answer = outcome.answer;
  }
  const location = billLocationFromAnswer(answer);
  if (location.kind === 'result') {
    dependencies.logger.info({ billDate, status: location.result.status }, 'wechatpay bill not downloaded');
    return location.result;
  }
  const directory = await mkdtemp(path.join(os.tmpdir(), 'fen-wechatpay-bill-'));
  const remove = () => rm(directory, { recursive: true, force: true });
  if (location.kind === 'no_business') {
    const evidence = path.join(directory, `${location.channelCode}_${billDate}.json`);
    await writeFile(evidence, JSON.stringify(location.answerBody));
    dependencies.logger.info({ billDate }, 'wechatpay has no bill for a day without business (NO_STATEMENT_EXIST): an empty bill');
    return { status: 'ready', bill: billWithoutLines(billDate, evidence, directory) };
  }
  const downloaded = await downloadToFile(dependencies, location, path.join(directory, `wechatpay-tradebill-ALL-${billDate}.csv`));
  if (!downloaded.ok) {
    await remove();
    const level = downloaded.unknown.reason === 'unverifiable' ? 'warn' : 'info';
    dependencies.logger[level]({ billDate, reason: downloaded.unknown.reason, channelCode: downloaded.unknown.channelCode }, `wechatpay bill download failed: ${downloaded.unknown.message}`);
    return downloaded.unknown;
  }
  dependencies.logger.info({ billDate }, 'wechatpay bill downloaded');
  const bill = channelBillFromFile({ channel: 'wechatpay', billDate, filePath: downloaded.filePath, options: { expectedSha1: location.sha1 }, remove });
  return { status: 'ready', bill };
}
