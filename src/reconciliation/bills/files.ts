import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { createGunzip } from 'node:zlib';
import { BillFormatError, type BillChannel, type BillParse, type BillRecord, type BillSummary } from '../bill.types.js';
import { parseAlipayDetail, readAlipaySummary } from './alipay.js';
import { parseUnionpayZm, unionpayZmFileName } from './unionpay.js';
import { parseWechatpayTradeBill } from './wechatpay.js';
import { looksLikeZip, openBillZip, type BillZip, type BillZipEntry } from './zip.js';

/**
 * Bills as files on disk, in the shapes the channels deliver them: Alipay's
 * zip (or its detail CSV alone), WeChat Pay's CSV (or gzipped), UnionPay's ZM
 * file (or the archive it comes in). Everything streams from the file.
 */

export interface ParseBillFileOptions {
  /** UnionPay: the settlement date, when the file name does not tell it. */
  billDate?: string;
  /** WeChat Pay: the SHA1 hash_value from the download API. */
  expectedSha1?: string;
}

const readChunkBytes = 256 * 1024;

async function firstBytes(filePath: string): Promise<Uint8Array> {
  const handle = await open(filePath, 'r');
  try {
    const buffer = Buffer.alloc(4);
    const { bytesRead } = await handle.read(buffer, 0, 4, 0);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

function fileStream(filePath: string): AsyncIterable<Uint8Array> {
  return createReadStream(filePath, { highWaterMark: readChunkBytes });
}

function onlyEntry(zip: BillZip, file: string, matches: (name: string) => boolean, what: string): BillZipEntry {
  const found = zip.entries.filter((entry) => matches(entry.name));
  if (found.length !== 1) throw new BillFormatError('malformed', file, undefined, `${found.length === 0 ? 'no' : 'more than one'} ${what} in the zip`);
  return found[0]!;
}

async function* alipayBill(filePath: string, label: string): BillParse {
  if (!looksLikeZip(await firstBytes(filePath))) return yield* parseAlipayDetail(fileStream(filePath), { file: label });
  const zip = await openBillZip(filePath, label);
  try {
    const detail = onlyEntry(zip, label, (name) => name.endsWith('_业务明细.csv'), '…_业务明细.csv');
    const summaryEntry = onlyEntry(zip, label, (name) => name.endsWith('_业务明细(汇总).csv'), '…_业务明细(汇总).csv');
    const summary = await readAlipaySummary(zip.read(summaryEntry), summaryEntry.name);
    return yield* parseAlipayDetail(zip.read(detail), { file: detail.name, summary });
  } finally {
    zip.close();
  }
}

async function* wechatpayBill(filePath: string, label: string, options: ParseBillFileOptions): BillParse {
  const head = await firstBytes(filePath);
  // A gzip download (tar_type GZIP) is read through gunzip; WeChat hashes the bill itself, not the archive.
  const gzipped = head[0] === 0x1f && head[1] === 0x8b;
  const source = gzipped ? createReadStream(filePath, { highWaterMark: readChunkBytes }).pipe(createGunzip()) : fileStream(filePath);
  return yield* parseWechatpayTradeBill(source, { file: label, expectedSha1: options.expectedSha1 });
}

async function* unionpayBill(filePath: string, label: string, options: ParseBillFileOptions): BillParse {
  const context = (name: string) => {
    const named = unionpayZmFileName(name);
    const billDate = options.billDate ?? named?.billDate;
    if (!billDate) throw new BillFormatError('unsupported', name, undefined, 'the settlement date is neither in the file name (INN<yyMMdd>88ZM_<merId>) nor given');
    return { file: name, billDate, merchantId: named?.merchantId };
  };
  if (!looksLikeZip(await firstBytes(filePath))) return yield* parseUnionpayZm(fileStream(filePath), context(label));
  const zip = await openBillZip(filePath, label);
  try {
    const entry = onlyEntry(zip, label, (name) => /ZM_\d{15}(\.\w+)?$/.test(name), 'ZM file');
    return yield* parseUnionpayZm(zip.read(entry), context(entry.name));
  } finally {
    zip.close();
  }
}

/** Parses a bill file of a channel as a stream of records and a checked summary. */
export function parseBillFile(channel: BillChannel, filePath: string, options: ParseBillFileOptions = {}): BillParse {
  const label = path.basename(filePath);
  switch (channel) {
    case 'alipay':
      return alipayBill(filePath, label);
    case 'wechatpay':
      return wechatpayBill(filePath, label, options);
    case 'unionpay':
      return unionpayBill(filePath, label, options);
  }
}

/** Runs a parse to the end, handing each batch of records on; returns the summary once every check has passed. */
export async function forEachBillBatch(parse: BillParse, onBatch: (records: BillRecord[]) => void | Promise<void>): Promise<BillSummary> {
  for (;;) {
    const step = await parse.next();
    if (step.done) return step.value;
    await onBatch(step.value);
  }
}

/** Every record in memory: for tests and small files only. */
export async function collectBill(parse: BillParse): Promise<{ records: BillRecord[]; summary: BillSummary }> {
  const records: BillRecord[] = [];
  const summary = await forEachBillBatch(parse, (batch) => {
    for (const record of batch) records.push(record);
  });
  return { records, summary };
}
