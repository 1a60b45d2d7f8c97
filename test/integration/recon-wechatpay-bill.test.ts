import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Wechatpay } from 'wechatpay-axios-plugin';
import type { BillLine, ChannelBillTotals, CreatePaymentRequest } from '../../src/channels/index.js';
import { downloadWechatpayBill, outcomeFromError, type WechatpayConnector } from '../../src/channels/wechatpay/index.js';
import { ManualClock } from '../../src/platform/clock.js';
import { money } from '../../src/platform/money.js';
import type { WechatpayFaultSetting } from '../../src/simulators/index.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { payerToken, startWechatpayHarness, type WechatpayHarness } from '../fixtures/wechatpay/harness.js';
import { expectBillLines } from '../helpers/bill-lines.js';

/**
 * WeChat Pay's trade bill end to end: a day of payments and refunds on the
 * simulator, the bill located through Fen's connector (wechatpay-axios-plugin,
 * the JSON answer verified with the platform public key), downloaded with a
 * signed GET, its SHA1 checked and the file streamed through the parser; then
 * each bill fault once, seen in the parsed lines. Time is a ManualClock;
 * nothing waits.
 */

const billDate = '2026-01-14';
const beijing = (text: string) => new Date(`${text}+08:00`);
const sharedBill = path.resolve(import.meta.dirname, '../../../shared/testdata/wechatpay/tradebill-ALL.csv');

let database: TestDatabase;
let clock: ManualClock;
let harness: WechatpayHarness;
let connector: WechatpayConnector;

/** The orders of the day, by role: paid on the day before; paid; paid; paid and refunded in full in two parts; closed unpaid. */
const orders: Record<'dayBefore' | 'plain' | 'other' | 'refunded' | 'closed', CreatePaymentRequest> = {} as never;
const transactionIds: Record<string, string> = {};
let refundNumbers: { first: string; second: string };

function order(outTradeNo: string, amount: bigint): CreatePaymentRequest {
  return { method: 'wechat_native', outTradeNo, amount: money(amount, 'CNY'), subject: `账单测试, ${outTradeNo}`, expiresAt: new Date(clock.now().getTime() + 30 * 60_000) };
}

/** Creates a Native order and has the payer press Pay, or has Fen close it unpaid. */
async function placed(request: CreatePaymentRequest, outcome: 'pay' | 'close'): Promise<void> {
  const created = await connector.createPayment(request);
  if (created.status !== 'pending' || created.action.kind !== 'qr_code') throw new Error(`create failed: ${JSON.stringify(created)}`);
  if (outcome === 'close') {
    expect(await connector.closePayment({ outTradeNo: request.outTradeNo })).toEqual({ status: 'succeeded' });
    return;
  }
  const pressed = await fetch(`${harness.simulator.baseUrl}/wechatpay/pay/${payerToken(created.action.qrCode)}/pay`, { method: 'POST', redirect: 'manual' });
  expect(pressed.status).toBe(303);
  transactionIds[request.outTradeNo] = (await harness.simulator.findTrade(request.outTradeNo))!.transactionId!;
}

/** A refund, completed at once (WeChat Pay completes refunds a little later; the simulator does it when told). */
async function refund(request: CreatePaymentRequest, outRefundNo: string, amount: bigint): Promise<void> {
  const result = await connector.refund({ outTradeNo: request.outTradeNo, outRefundNo, refundAmount: money(amount, 'CNY'), paymentAmount: request.amount });
  expect(result.status).toBe('pending');
  expect(await harness.simulator.completeRefunds({ outRefundNo })).toBe(1);
}

/** Downloads a day's bill through the connector and reads it to the end; `inspect` sees the file before it is discarded. */
async function bill(date = billDate, inspect?: (filePath: string) => void): Promise<{ lines: BillLine[]; totals: ChannelBillTotals }> {
  const result = await connector.downloadBill({ billDate: date });
  if (result.status !== 'ready') throw new Error(`bill not ready: ${JSON.stringify(result)}`);
  const lines: BillLine[] = [];
  const reading = result.bill.lines();
  try {
    for (;;) {
      const step = await reading.next();
      if (step.done) {
        inspect?.(result.bill.filePath);
        return { lines, totals: step.value };
      }
      lines.push(...step.value);
    }
  } finally {
    await result.bill.discard();
  }
}

async function withFault<T>(setting: WechatpayFaultSetting, work: () => Promise<T>): Promise<T> {
  await harness.simulator.setFault(setting);
  try {
    return await work();
  } finally {
    await harness.simulator.clearFaults();
  }
}

const lineOf = (lines: BillLine[], outTradeNo: string, kind: 'payment' | 'refund' = 'payment') => lines.filter((line) => line.outTradeNo === outTradeNo && line.kind === kind);
/** The CSV cells of a line of the file; the simulator's cells hold no quotes but the subject's comma. */
const cellsOf = (line: string) => line.match(/("(?:[^"]|"")*"|[^,]*)(?:,|$)/g)!.slice(0, -1).map((cell) => cell.replace(/,$/, ''));

/** A client of the merchant's own, for what the connector does not expose: the raw answers and the download URL. */
function merchantClient(): Wechatpay {
  const config = harness.accountConfig;
  return new Wechatpay({
    mchid: config.mchId,
    serial: config.merchantSerialNo,
    privateKey: config.merchantPrivateKeyPem,
    certs: { [config.platformPublicKeyId]: config.platformPublicKeyPem },
    baseURL: `${config.baseUrl}/`,
  });
}

type Endpoint = { get(config?: Record<string, unknown>): Promise<{ status: number; data: unknown }> };
const endpoint = (client: Wechatpay, pathBelowBase: string) => client.chain(pathBelowBase) as unknown as Endpoint;

/** The HTTP status and JSON body of a call the plugin rejected (any non-2xx), whatever responseType it asked for. */
async function failure(call: Promise<unknown>): Promise<{ status: number; data: unknown }> {
  const error = await call.then(
    () => undefined,
    (caught: unknown) => caught as { response?: { status: number; data: unknown } },
  );
  if (!error?.response) throw new Error('expected an error answer');
  const { status, data } = error.response;
  const bytes = data instanceof ArrayBuffer || Buffer.isBuffer(data) ? Buffer.from(data as ArrayBuffer) : undefined;
  return { status, data: bytes ? (JSON.parse(bytes.toString('utf8')) as unknown) : data };
}

beforeAll(async () => {
  database = await createTestDatabase({ poolSize: 8 });
  clock = new ManualClock(beijing('2026-01-13T23:59:50'));
  harness = await startWechatpayHarness({ pool: database.pool, clock });
  connector = harness.connector;
  const prefix = `bill_${Date.now().toString(36)}`;
  refundNumbers = { first: `${prefix}_ref1`, second: `${prefix}_ref2` };
  orders.dayBefore = order(`${prefix}_before`, 3000n);
  await placed(orders.dayBefore, 'pay');
  clock.set(beijing('2026-01-14T09:00:00'));
  orders.plain = order(`${prefix}_plain`, 1234n);
  orders.other = order(`${prefix}_other`, 5000n);
  orders.refunded = order(`${prefix}_refunded`, 20000n);
  orders.closed = order(`${prefix}_closed`, 888n);
  for (const paid of [orders.plain, orders.other, orders.refunded]) await placed(paid, 'pay');
  await placed(orders.closed, 'close');
  clock.set(beijing('2026-01-14T10:00:00'));
  await refund(orders.refunded, refundNumbers.first, 5000n);
  clock.set(beijing('2026-01-14T11:00:00'));
  await refund(orders.refunded, refundNumbers.second, 15000n);
});

afterEach(async () => {
  await harness.simulator.clearFaults();
  clock.set(beijing('2026-01-15T10:00:00'));
});

afterAll(async () => {
  await harness?.close();
  await database?.close();
});

describe('the day’s bill through the connector', () => {
  it('is not there until 10:00 the morning after the day (STATEMENT_CREATING), and a bad date is refused', async () => {
    clock.set(beijing('2026-01-14T15:00:00'));
    expect(await connector.downloadBill({ billDate })).toEqual({ status: 'not_ready', channelCode: 'STATEMENT_CREATING', message: 'STATEMENT_CREATING 账单生成中' });
    clock.set(beijing('2026-01-15T09:59:59'));
    expect(await connector.downloadBill({ billDate })).toMatchObject({ status: 'not_ready' });
    expect(await connector.downloadBill({ billDate: '2026-02-30' })).toMatchObject({ status: 'failed', reason: 'rejected', channelCode: 'PARAM_ERROR' });
    expect(await connector.downloadBill({ billDate: '20260114' })).toMatchObject({ status: 'failed', reason: 'rejected', channelCode: 'invalid_bill_date' });
  });

  it('is empty for a day without business (NO_STATEMENT_EXIST), with WeChat Pay’s answer kept as the evidence', async () => {
    const result = await connector.downloadBill({ billDate: '2026-01-12' });
    if (result.status !== 'ready') throw new Error(`expected an empty bill: ${JSON.stringify(result)}`);
    expect(result.bill.filePath).toMatch(/fen-wechatpay-bill-[^/]+\/NO_STATEMENT_EXIST_2026-01-12\.json$/);
    expect(JSON.parse(readFileSync(result.bill.filePath, 'utf8'))).toEqual({ code: 'NO_STATEMENT_EXIST', message: '请求的账单文件不存在' });
    const reading = result.bill.lines();
    const step = await reading.next();
    expect(step).toEqual({
      done: true,
      value: { lineCount: 0, payments: { count: 0, amount: money(0n, 'CNY'), fee: money(0n, 'CNY') }, refunds: { count: 0, amount: money(0n, 'CNY'), fee: money(0n, 'CNY') }, netAmount: money(0n, 'CNY'), linesOutsidePeriod: 0 },
    });
    await result.bill.discard();
    expect(existsSync(path.dirname(result.bill.filePath))).toBe(false);
  });

  it('lists every payment and refund of the day, as the simulator holds them, with fees at 0.6%', async () => {
    const { lines, totals } = await bill();
    const prefix = orders.refunded.outTradeNo.replace('_refunded', '');
    const expected = [
      // 12.34 × 0.6% = 0.07404 yuan: 7 fen once rounded.
      { kind: 'payment', outTradeNo: orders.plain.outTradeNo, amount: 1234n, fee: 7n, outRefundNo: undefined, at: beijing('2026-01-14T09:00:00') },
      { kind: 'payment', outTradeNo: orders.other.outTradeNo, amount: 5000n, fee: 30n, outRefundNo: undefined, at: beijing('2026-01-14T09:00:00') },
      { kind: 'payment', outTradeNo: orders.refunded.outTradeNo, amount: 20000n, fee: 120n, outRefundNo: undefined, at: beijing('2026-01-14T09:00:00') },
      // The fee is handed back in proportion: 120 × 5000/20000, then the rest.
      { kind: 'refund', outTradeNo: orders.refunded.outTradeNo, amount: 5000n, fee: 30n, outRefundNo: `${prefix}_ref1`, at: beijing('2026-01-14T10:00:00') },
      { kind: 'refund', outTradeNo: orders.refunded.outTradeNo, amount: 15000n, fee: 90n, outRefundNo: `${prefix}_ref2`, at: beijing('2026-01-14T11:00:00') },
    ];
    expectBillLines(lines, expected, transactionIds);
    expect(totals).toEqual({
      lineCount: 5,
      payments: { count: 3, amount: money(26234n, 'CNY'), fee: money(157n, 'CNY') },
      refunds: { count: 2, amount: money(20000n, 'CNY'), fee: money(120n, 'CNY') },
      netAmount: money(26234n - 20000n - 157n + 120n, 'CNY'),
      linesOutsidePeriod: 0,
    });
    const before = await bill('2026-01-13');
    expect(before.lines.map((line) => line.outTradeNo)).toEqual([orders.dayBefore.outTradeNo]);
  });

  it('is WeChat Pay’s file: BOM, CRLF, the genuine bill’s headers, backtick cells, and a summary row equal to the parsed totals', async () => {
    let text = '';
    const { totals } = await bill(billDate, (filePath) => {
      text = readFileSync(filePath, 'utf8');
    });
    const genuine = readFileSync(sharedBill, 'utf8').split('\r\n');
    expect(text.startsWith('\ufeff')).toBe(true);
    expect(text.endsWith('\r\n')).toBe(true);
    const rows = text.slice(0, -2).split('\r\n');
    expect(rows.every((row) => !row.includes('\n'))).toBe(true);
    expect(rows[0]).toBe(genuine[0]);
    expect(rows.at(-2)).toBe(genuine.at(-3));
    const data = rows.slice(1, -2).map(cellsOf);
    expect(data).toHaveLength(5);
    for (const cells of data) {
      expect(cells).toHaveLength(27);
      expect(cells.every((cell) => cell.startsWith('`') || cell.startsWith('"`'))).toBe(true);
    }
    // The subject has a comma, so its cell is quoted around the backtick, as RFC 4180 has it.
    expect(data[0]![20]).toBe(`"\`账单测试, ${orders.plain.outTradeNo}"`);
    expect(data.map((cells) => cells[22]).sort()).toEqual(['`-0.30000', '`-0.90000', '`0.07404', '`0.30000', '`1.20000']);
    const stated = cellsOf(rows.at(-1)!).map((cell) => cell.slice(1));
    const yuan = (fen: bigint) => `${fen / 100n}.${(fen % 100n).toString().padStart(2, '0')}`;
    expect(stated).toEqual([
      String(totals.lineCount),
      yuan(totals.payments.amount.amount),
      yuan(totals.refunds.amount.amount),
      '0.00',
      yuan(totals.payments.fee.amount - totals.refunds.fee.amount),
      yuan(totals.payments.amount.amount),
      yuan(totals.refunds.amount.amount),
    ]);
  });

  it('lists a refund that did not go through with its own status, paying nothing back', async () => {
    // A day of its own, so the other tests' day stays as it is.
    clock.set(beijing('2026-01-16T09:00:00'));
    const paid = order(`bill_${Date.now().toString(36)}_closedrefund`, 2000n);
    await placed(paid, 'pay');
    const outRefundNo = `${paid.outTradeNo}_r`;
    await withFault({ outTradeNo: paid.outTradeNo, fault: { kind: 'refund_outcome', status: 'CLOSED' } }, () => refund(paid, outRefundNo, 500n));
    expect((await harness.simulator.findRefund(outRefundNo))?.status).toBe('CLOSED');
    clock.set(beijing('2026-01-17T10:00:00'));
    let refundRow: string[] = [];
    const { lines } = await bill('2026-01-16', (filePath) => {
      refundRow = cellsOf(readFileSync(filePath, 'utf8').split('\r\n')[2]!);
    });
    expect(lines).toMatchObject([
      { kind: 'payment', outTradeNo: paid.outTradeNo, status: 'succeeded', amount: money(2000n, 'CNY'), fee: money(12n, 'CNY') },
      { kind: 'refund', outTradeNo: paid.outTradeNo, outRefundNo, status: 'failed', amount: money(500n, 'CNY'), fee: money(0n, 'CNY') },
    ]);
    // 退款金额 (what was paid back) is nothing; 申请退款金额 keeps what was asked for.
    expect([refundRow[9], refundRow[16], refundRow[19], refundRow[25]]).toEqual(['`REFUND', '`0.00', '`CLOSED', '`5.00']);
  });

  it('removes the downloaded file when discarded', async () => {
    const result = await connector.downloadBill({ billDate });
    if (result.status !== 'ready') throw new Error('not ready');
    expect(result.bill.filePath).toMatch(/fen-wechatpay-bill-[^/]+\/wechatpay-tradebill-ALL-2026-01-14\.csv$/);
    expect(existsSync(result.bill.filePath)).toBe(true);
    await result.bill.discard();
    expect(existsSync(path.dirname(result.bill.filePath))).toBe(false);
  });

  it('is unknown when WeChat Pay fails: SYSTEM_ERROR on the tradebill request, a bare HTTP error on the download', async () => {
    expect(await withFault({ fault: { kind: 'system_error', operation: 'tradebill' } }, () => connector.downloadBill({ billDate }))).toMatchObject({
      status: 'unknown',
      reason: 'channel_error',
      channelCode: 'SYSTEM_ERROR',
    });
    expect(await withFault({ fault: { kind: 'http_error', operation: 'bill_download', httpStatus: 502 } }, () => connector.downloadBill({ billDate }))).toMatchObject({
      status: 'unknown',
      reason: 'http_status',
      channelCode: 'HTTP 502',
    });
  });

  it('does not believe an answer signed with another key', async () => {
    // Any key but the platform's will do: the merchant's own public key is at hand.
    const unverifying = harness.connectorWith({ platformPublicKeyPem: harness.merchantKeys.publicKeyPem });
    expect(await unverifying.downloadBill({ billDate })).toMatchObject({ status: 'unknown', reason: 'unverifiable', channelCode: 'EV3_RES_HEADER_SIGNATURE_DIGEST' });
  });
});

describe('the tradebill answer and the download URL', () => {
  async function located(query: Record<string, string> = {}): Promise<{ hash_type: string; hash_value: string; download_url: string }> {
    const answer = await endpoint(merchantClient(), 'v3/bill/tradebill').get({ params: { bill_date: billDate, bill_type: 'ALL', ...query } });
    expect(answer.status).toBe(200);
    return answer.data as { hash_type: string; hash_value: string; download_url: string };
  }

  it('serves the file to a signed GET for five minutes, whose SHA1 is hash_value, and refuses it unsigned, tampered with or late', async () => {
    const answer = await located();
    expect(answer).toMatchObject({ hash_type: 'SHA1', hash_value: expect.stringMatching(/^[0-9a-f]{40}$/) });
    const url = new URL(answer.download_url);
    expect(url.pathname).toBe('/v3/billdownload/file');
    const download = (target: URL) => endpoint(merchantClient(), target.pathname.slice(1)).get({ params: target.searchParams, responseType: 'arraybuffer' });
    const served = await download(url);
    expect(served.status).toBe(200);
    expect(createHash('sha1').update(Buffer.from(served.data as ArrayBuffer)).digest('hex')).toBe(answer.hash_value);
    expect((await fetch(url)).status).toBe(401);
    const tampered = new URL(url);
    tampered.searchParams.set('token', url.searchParams.get('token')!.replace(/^\d+/, (id) => String(Number(id) + 1)));
    expect(await failure(download(tampered))).toMatchObject({ status: 400, data: { code: 'INVALID_REQUEST' } });
    clock.advanceSeconds(5 * 60 + 1);
    expect(await failure(download(url))).toMatchObject({ status: 400, data: { code: 'INVALID_REQUEST' } });
  });

  it('gzips the file for tar_type GZIP, hash_value still naming the bill itself', async () => {
    const answer = await located({ tar_type: 'GZIP' });
    const url = new URL(answer.download_url);
    expect(url.searchParams.get('tartype')).toBe('gzip');
    const served = await endpoint(merchantClient(), url.pathname.slice(1)).get({ params: url.searchParams, responseType: 'arraybuffer' });
    const bytes = gunzipSync(Buffer.from(served.data as ArrayBuffer));
    expect(createHash('sha1').update(bytes).digest('hex')).toBe(answer.hash_value);
    expect(bytes.subarray(0, 3)).toEqual(Buffer.from([0xef, 0xbb, 0xbf]));
  });

  it('refuses bill types the simulator does not offer', async () => {
    expect(await failure(endpoint(merchantClient(), 'v3/bill/tradebill').get({ params: { bill_date: billDate, bill_type: 'SUCCESS' } }))).toMatchObject({
      status: 400,
      data: { code: 'PARAM_ERROR' },
    });
  });
});

describe('bill faults show up in the parsed lines', () => {
  it('a missing line', async () => {
    const { lines } = await withFault({ outTradeNo: orders.plain.outTradeNo, fault: { kind: 'bill_missing_line' } }, () => bill());
    expect(lineOf(lines, orders.plain.outTradeNo)).toEqual([]);
    expect(lines).toHaveLength(4);
  });

  it('a missing refund line, the payment staying', async () => {
    const { lines } = await withFault({ outTradeNo: orders.refunded.outTradeNo, fault: { kind: 'bill_missing_line', line: 'refund', outRefundNo: refundNumbers.second } }, () => bill());
    expect(lineOf(lines, orders.refunded.outTradeNo, 'refund').map((line) => line.amount.amount)).toEqual([5000n]);
    expect(lineOf(lines, orders.refunded.outTradeNo)).toHaveLength(1);
  });

  it('an extra line: a second payment of an order, the same on every download', async () => {
    const downloads = await withFault({ outTradeNo: orders.other.outTradeNo, fault: { kind: 'bill_extra_line', amountFen: 5000 } }, async () => [await bill(), await bill()]);
    const extra = (lines: BillLine[]) => lineOf(lines, orders.other.outTradeNo).find((line) => line.channelTradeNo !== transactionIds[orders.other.outTradeNo])!;
    for (const { lines } of downloads) expect(lineOf(lines, orders.other.outTradeNo)).toHaveLength(2);
    expect(extra(downloads[1]!.lines).channelTradeNo).toBe(extra(downloads[0]!.lines).channelTradeNo);
    expect(extra(downloads[0]!.lines)).toMatchObject({ amount: money(5000n, 'CNY'), fee: money(30n, 'CNY'), channelTradeNo: expect.stringMatching(/^4200\d{6}20260114\d{10}$/) });
  });

  it('an extra line for an order nobody placed', async () => {
    const { lines } = await withFault({ fault: { kind: 'bill_extra_line', amountFen: 999 } }, () => bill());
    const unknown = lines.filter((line) => !Object.values(orders).some((placedOrder) => placedOrder.outTradeNo === line.outTradeNo));
    expect(unknown).toHaveLength(1);
    expect(unknown[0]).toMatchObject({ kind: 'payment', amount: money(999n, 'CNY'), outTradeNo: expect.stringMatching(/^sim_extra_\d+$/) });
  });

  it('an altered amount', async () => {
    const { lines } = await withFault({ outTradeNo: orders.plain.outTradeNo, fault: { kind: 'bill_wrong_amount', amountFen: 9999 } }, () => bill());
    expect(lineOf(lines, orders.plain.outTradeNo)).toMatchObject([{ amount: money(9999n, 'CNY'), fee: money(7n, 'CNY') }]);
  });

  it('an altered status: an order closed unpaid listed as paid', async () => {
    expect((await harness.simulator.findTrade(orders.closed.outTradeNo))?.tradeState).toBe('CLOSED');
    const { lines } = await withFault({ outTradeNo: orders.closed.outTradeNo, fault: { kind: 'bill_wrong_status' } }, () => bill());
    expect(lineOf(lines, orders.closed.outTradeNo)).toMatchObject([{ kind: 'payment', status: 'succeeded', amount: money(888n, 'CNY'), channelTradeNo: expect.stringMatching(/^4200\d{24}$/) }]);
  });

  it('a wrong fee', async () => {
    const { lines, totals } = await withFault({ outTradeNo: orders.other.outTradeNo, fault: { kind: 'bill_wrong_fee', feeFen: 100 } }, () => bill());
    expect(lineOf(lines, orders.other.outTradeNo)).toMatchObject([{ amount: money(5000n, 'CNY'), fee: money(100n, 'CNY') }]);
    expect(totals.payments.fee).toEqual(money(7n + 100n + 120n, 'CNY'));
  });

  it('a line dated the next day: gone from its day, at the first second of the next', async () => {
    const { before, day } = await withFault({ outTradeNo: orders.dayBefore.outTradeNo, fault: { kind: 'bill_next_day' } }, async () => ({
      before: await connector.downloadBill({ billDate: '2026-01-13' }),
      day: await bill(),
    }));
    // The day before had only that payment: without it the day has no business, so no bill.
    expect(before).toMatchObject({ status: 'ready', bill: { filePath: expect.stringMatching(/NO_STATEMENT_EXIST_2026-01-13\.json$/) } });
    if (before.status === 'ready') await before.bill.discard();
    expect(lineOf(day.lines, orders.dayBefore.outTradeNo)).toMatchObject([{ amount: money(3000n, 'CNY'), occurredAt: beijing('2026-01-14T00:00:00') }]);
  });

  it('a switch with times counts down once per bill', async () => {
    await harness.simulator.setFault({ outTradeNo: orders.plain.outTradeNo, times: 1, fault: { kind: 'bill_missing_line' } });
    expect(lineOf((await bill()).lines, orders.plain.outTradeNo)).toHaveLength(0);
    expect(lineOf((await bill()).lines, orders.plain.outTradeNo)).toHaveLength(1);
  });
});

describe('a download that does not match its hash', () => {
  it('is unknown, and nothing is kept of it', async () => {
    // A temporary folder of the test's own, to see that the download's folder is gone again.
    const temporary = mkdtempSync(path.join(os.tmpdir(), 'fen-test-sha1-'));
    const previous = process.env.TMPDIR;
    process.env.TMPDIR = temporary;
    const answers: Record<string, { status: number; data: unknown }> = {
      'v3/bill/tradebill': { status: 200, data: { hash_type: 'SHA1', hash_value: 'a'.repeat(40), download_url: 'https://api.mch.weixin.qq.com/v3/billdownload/file?token=t' } },
      'v3/billdownload/file': { status: 200, data: Readable.from([Buffer.from('\ufeff交易时间\r\n')]) },
    };
    try {
      const result = await downloadWechatpayBill(
        { billDate },
        { endpoint: (below) => ({ get: async () => answers[below]! }), baseUrl: 'https://api.mch.weixin.qq.com/', timeoutMs: 1000, outcomeFromError, logger: pino({ level: 'silent' }) },
      );
      expect(result).toMatchObject({ status: 'unknown', reason: 'unverifiable', message: expect.stringContaining(`the signed answer said ${'a'.repeat(40)}`) });
      expect(readdirSync(temporary)).toEqual([]);
    } finally {
      if (previous === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = previous;
      rmSync(temporary, { recursive: true, force: true });
    }
  });
});
