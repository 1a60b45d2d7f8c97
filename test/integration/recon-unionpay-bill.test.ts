import { createPrivateKey } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { inflateSync } from 'node:zlib';
import yauzl from 'yauzl';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { BillLine, ChannelBillTotals, CreatePaymentRequest } from '../../src/channels/index.js';
import { fileTransferFields, orderIdFor, parseAnswerText, signatureOf, type UnionpayConnector } from '../../src/channels/unionpay/index.js';
import { ManualClock } from '../../src/platform/clock.js';
import { newId } from '../../src/platform/ids.js';
import { money } from '../../src/platform/money.js';
import { unionpayZmFields, type UnionpayZmField } from '../../src/reconciliation/bills/index.js';
import type { UnionpayFaultSetting } from '../../src/simulators/index.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { formOf, startUnionpayHarness, submitForm, testMerId, type UnionpayHarness } from '../fixtures/unionpay/harness.js';
import { expectBillLines } from '../helpers/bill-lines.js';

/**
 * UnionPay's reconciliation file end to end: a day of payments and refunds on
 * the simulator, the file transfer (txnType 76) signed and its answer
 * verified by Fen's connector, the archive in fileContent inflated and its ZM
 * file streamed through the parser; then each bill fault once, seen in the
 * parsed lines. Time is a ManualClock; nothing waits.
 */

const billDate = '2026-01-14';
const beijing = (text: string) => new Date(`${text}+08:00`);

let database: TestDatabase;
let clock: ManualClock;
let harness: UnionpayHarness;
let connector: UnionpayConnector;

/** The orders of the day, by role: paid on the day before; paid; paid; paid and refunded in full in two parts; cancelled unpaid. */
const orders: Record<'dayBefore' | 'plain' | 'other' | 'refunded' | 'cancelled', CreatePaymentRequest> = {} as never;
const queryIds: Record<string, string> = {};
let refundNumbers: { first: string; second: string };

function order(amount: bigint): CreatePaymentRequest {
  // A Fen payment number made at the simulated time: UnionPay's txnTime comes from it.
  return { method: 'unionpay_web', outTradeNo: newId('payment', clock.now().getTime()), amount: money(amount, 'CNY'), subject: '账单测试', expiresAt: new Date(clock.now().getTime() + 30 * 60_000) };
}

const orderIdOf = (fenNumber: string) => orderIdFor(fenNumber)!;

/** The payer's browser posts the consumption form and presses Pay or Cancel on the payer page. */
async function placed(request: CreatePaymentRequest, button: 'pay' | 'cancel'): Promise<void> {
  const created = await connector.createPayment(request);
  if (created.status !== 'pending' || created.action.kind !== 'form') throw new Error(`no form: ${JSON.stringify(created)}`);
  const posted = await submitForm(formOf(created.action.html));
  expect(posted.status).toBe(303);
  const pageUrl = new URL(posted.headers.get('location')!, harness.simulator.baseUrl).toString();
  expect((await fetch(`${pageUrl}/${button}`, { method: 'POST', redirect: 'manual' })).status).toBe(303);
  queryIds[request.outTradeNo] = (await harness.simulator.findTransaction(orderIdOf(request.outTradeNo)))!.queryId;
}

async function refund(request: CreatePaymentRequest, outRefundNo: string, amount: bigint): Promise<void> {
  const result = await connector.refund({ outTradeNo: request.outTradeNo, channelTradeNo: queryIds[request.outTradeNo], outRefundNo, refundAmount: money(amount, 'CNY'), paymentAmount: request.amount });
  expect(['pending', 'succeeded']).toContain(result.status);
}

/** Downloads a day's file through the connector and reads it to the end; `inspect` sees the archive before it is discarded. */
async function bill(date = billDate, inspect?: (filePath: string) => Promise<void>): Promise<{ lines: BillLine[]; totals: ChannelBillTotals }> {
  const result = await connector.downloadBill({ billDate: date });
  if (result.status !== 'ready') throw new Error(`bill not ready: ${JSON.stringify(result)}`);
  const lines: BillLine[] = [];
  const reading = result.bill.lines();
  try {
    for (;;) {
      const step = await reading.next();
      if (step.done) {
        await inspect?.(result.bill.filePath);
        return { lines, totals: step.value };
      }
      lines.push(...step.value);
    }
  } finally {
    await result.bill.discard();
  }
}

async function withFault<T>(setting: UnionpayFaultSetting, work: () => Promise<T>): Promise<T> {
  await harness.simulator.setFault(setting);
  try {
    return await work();
  } finally {
    await harness.simulator.clearFaults();
  }
}

const lineOf = (lines: BillLine[], outTradeNo: string, kind: 'payment' | 'refund' = 'payment') => lines.filter((line) => line.outTradeNo === outTradeNo && line.kind === kind);

/** Every entry of a zip file, by name. */
async function unzipped(archive: Buffer): Promise<Map<string, Buffer>> {
  const zip = await yauzl.fromBufferPromise(archive, { lazyEntries: true });
  const entries = new Map<string, Buffer>();
  for await (const entry of zip.eachEntry()) {
    const chunks: Buffer[] = [];
    for await (const chunk of await zip.openReadStreamPromise(entry)) chunks.push(chunk as Buffer);
    entries.set(entry.fileName, Buffer.concat(chunks));
  }
  return entries;
}

/** A field of a ZM line, sliced by the documented widths (each field followed by one space). */
function zmField(line: Buffer, name: UnionpayZmField): string {
  let start = 0;
  for (const [field, width] of unionpayZmFields) {
    if (field === name) return line.subarray(start, start + width).toString('latin1').trim();
    start += width + 1;
  }
  throw new Error(`no field ${name}`);
}

const signedFen = (text: string) => (text.startsWith('D') ? -BigInt(text.slice(1)) : BigInt(text.slice(1)));

beforeAll(async () => {
  database = await createTestDatabase({ poolSize: 8 });
  clock = new ManualClock(beijing('2026-01-13T23:59:50'));
  harness = await startUnionpayHarness({ pool: database.pool, clock });
  connector = harness.connector;
  orders.dayBefore = order(3000n);
  await placed(orders.dayBefore, 'pay');
  clock.set(beijing('2026-01-14T09:00:00'));
  orders.plain = order(1234n);
  orders.other = order(5000n);
  orders.refunded = order(20000n);
  orders.cancelled = order(888n);
  for (const paid of [orders.plain, orders.other, orders.refunded]) await placed(paid, 'pay');
  await placed(orders.cancelled, 'cancel');
  clock.set(beijing('2026-01-14T10:00:00'));
  refundNumbers = { first: newId('refund', clock.now().getTime()), second: '' };
  await refund(orders.refunded, refundNumbers.first, 5000n);
  clock.set(beijing('2026-01-14T11:00:00'));
  refundNumbers.second = newId('refund', clock.now().getTime());
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

describe('the settlement date’s file through the connector', () => {
  it('is not there until 09:00 the morning after the date (98), and a date that is none is refused', async () => {
    clock.set(beijing('2026-01-14T15:00:00'));
    expect(await connector.downloadBill({ billDate })).toEqual({ status: 'not_ready', channelCode: '98', message: '98 文件不存在' });
    clock.set(beijing('2026-01-15T08:59:59'));
    expect(await connector.downloadBill({ billDate })).toMatchObject({ status: 'not_ready', channelCode: '98' });
    expect(await connector.downloadBill({ billDate: '2026-02-30' })).toMatchObject({ status: 'failed', reason: 'rejected', channelCode: '10' });
    expect(await connector.downloadBill({ billDate: '20260114' })).toMatchObject({ status: 'failed', reason: 'rejected', channelCode: 'invalid_bill_date' });
  });

  it('lists every payment and refund of the date, as the simulator holds them, with fees at 0.6% and Fen’s numbers', async () => {
    const { lines, totals } = await bill();
    const expected = [
      { kind: 'payment', outTradeNo: orders.plain.outTradeNo, amount: 1234n, fee: 7n, outRefundNo: undefined, at: beijing('2026-01-14T09:00:00') },
      { kind: 'payment', outTradeNo: orders.other.outTradeNo, amount: 5000n, fee: 30n, outRefundNo: undefined, at: beijing('2026-01-14T09:00:00') },
      { kind: 'payment', outTradeNo: orders.refunded.outTradeNo, amount: 20000n, fee: 120n, outRefundNo: undefined, at: beijing('2026-01-14T09:00:00') },
      // The fee is handed back in proportion: 120 × 5000/20000, then the rest.
      { kind: 'refund', outTradeNo: orders.refunded.outTradeNo, amount: 5000n, fee: 30n, outRefundNo: refundNumbers.first, at: beijing('2026-01-14T10:00:00') },
      { kind: 'refund', outTradeNo: orders.refunded.outTradeNo, amount: 15000n, fee: 90n, outRefundNo: refundNumbers.second, at: beijing('2026-01-14T11:00:00') },
    ];
    expectBillLines(lines, expected, queryIds);
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

  it('is UnionPay’s archive: a ZM file of 607-byte CRLF lines and an empty ZME file, whose own sums are the parsed totals', async () => {
    let entries = new Map<string, Buffer>();
    const { totals } = await bill(billDate, async (filePath) => {
      expect(path.basename(filePath)).toBe(`${testMerId}_20260114.zip`);
      entries = await unzipped(readFileSync(filePath));
    });
    expect([...entries.keys()].sort()).toEqual([`INN26011488ZME_${testMerId}`, `INN26011488ZM_${testMerId}`]);
    expect(entries.get(`INN26011488ZME_${testMerId}`)).toHaveLength(0);
    const zm = entries.get(`INN26011488ZM_${testMerId}`)!;
    expect(zm.subarray(-2).toString('latin1')).toBe('\r\n');
    const rows = zm.toString('latin1').slice(0, -2).split('\r\n').map((row) => Buffer.from(row, 'latin1'));
    expect(rows.map((row) => row.length)).toEqual([607, 607, 607, 607, 607]);
    const sum = (kind: '01' | '04', field: UnionpayZmField) => rows.filter((row) => zmField(row, 'txnType') === kind).reduce((total, row) => total + signedFen(zmField(row, field)), 0n);
    const amounts = (kind: '01' | '04') => rows.filter((row) => zmField(row, 'txnType') === kind).reduce((total, row) => total + BigInt(zmField(row, 'amount')), 0n);
    expect(amounts('01')).toBe(totals.payments.amount.amount);
    expect(amounts('04')).toBe(totals.refunds.amount.amount);
    expect(-sum('01', 'fee')).toBe(totals.payments.fee.amount);
    expect(sum('04', 'fee')).toBe(totals.refunds.fee.amount);
    expect(sum('01', 'netAmount') + sum('04', 'netAmount')).toBe(totals.netAmount.amount);
    expect(rows.map((row) => zmField(row, 'transactionCode'))).toEqual(['S22', 'S22', 'S22', 'S30', 'S30']);
    expect(rows.every((row) => zmField(row, 'merchantId') === testMerId)).toBe(true);
  });

  it('is empty for a closed date without business', async () => {
    const { lines, totals } = await bill('2026-01-12');
    expect(lines).toEqual([]);
    expect(totals).toMatchObject({ lineCount: 0, netAmount: money(0n, 'CNY') });
  });

  it('removes the downloaded archive when discarded', async () => {
    const result = await connector.downloadBill({ billDate });
    if (result.status !== 'ready') throw new Error('not ready');
    expect(result.bill.filePath).toMatch(new RegExp(`fen-unionpay-bill-[^/]+/${testMerId}_20260114\\.zip$`));
    expect(existsSync(result.bill.filePath)).toBe(true);
    await result.bill.discard();
    expect(existsSync(path.dirname(result.bill.filePath))).toBe(false);
  });

  it('does not take a file of another year for the date asked (settleDate has no year)', async () => {
    // 1231 asked on 2026-01-15 is 2025-12-31; the archive names that date, not 2024-12-31.
    expect(await connector.downloadBill({ billDate: '2024-12-31' })).toMatchObject({ status: 'unknown', reason: 'unparsable', message: expect.stringContaining('for 2024-12-31') });
    expect(await bill('2025-12-31')).toMatchObject({ lines: [] });
  });

  it('is unknown when UnionPay fails: an HTTP error, or a busy answer to ask again about', async () => {
    expect(await withFault({ fault: { kind: 'gateway_error', endpoint: 'fileTransRequest', httpStatus: 502 } }, () => connector.downloadBill({ billDate }))).toMatchObject({
      status: 'unknown',
      reason: 'http_status',
      channelCode: 'HTTP 502',
    });
    expect(await withFault({ fault: { kind: 'resp_code', endpoint: 'fileTransRequest', respCode: '03' } }, () => connector.downloadBill({ billDate }))).toMatchObject({
      status: 'unknown',
      reason: 'channel_error',
      channelCode: '03',
    });
  });

  it('does not believe an answer whose certificate names someone else', async () => {
    const unverifying = harness.connectorWith({ signerName: 'Someone Else' });
    expect(await unverifying.downloadBill({ billDate })).toMatchObject({ status: 'unknown', reason: 'unverifiable', channelCode: '00' });
  });
});

describe('the file transfer answer', () => {
  async function fileTransfer(fields: Record<string, string>): Promise<Record<string, string>> {
    const unsigned = { ...fields, certId: harness.merchant.certId };
    const signed = { ...unsigned, signature: signatureOf(unsigned, createPrivateKey(harness.merchant.privateKeyPem)) };
    const response = await fetch(harness.simulator.endpoints().fileTransUrl, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(signed) });
    expect(response.status).toBe(200);
    return parseAnswerText(await response.text());
  }

  it('carries the archive deflated and base64-encoded, with its name, in a signed message', async () => {
    const answer = await fileTransfer(fileTransferFields(billDate, testMerId, clock.now()));
    expect(answer).toMatchObject({ respCode: '00', txnType: '76', txnSubType: '01', settleDate: '0114', fileType: '00', merId: testMerId, fileName: `${testMerId}_20260114.zip`, signMethod: '01' });
    expect(answer.signature).toMatch(/^[A-Za-z0-9+/]+=*$/);
    const archive = inflateSync(Buffer.from(answer.fileContent!, 'base64'));
    expect(archive.subarray(0, 4).toString('latin1')).toBe('PK\x03\x04');
    expect([...(await unzipped(archive)).keys()]).toContain(`INN26011488ZM_${testMerId}`);
  });

  it('refuses an unsigned request and a file type the simulator does not offer', async () => {
    expect(await fileTransfer({ ...fileTransferFields(billDate, testMerId, clock.now()), fileType: '01' })).toMatchObject({ respCode: '10' });
    const response = await fetch(harness.simulator.endpoints().fileTransUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(fileTransferFields(billDate, testMerId, clock.now())),
    });
    expect(parseAnswerText(await response.text())).toMatchObject({ respCode: '13' });
  });
});

describe('bill faults show up in the parsed lines', () => {
  it('a missing line', async () => {
    const { lines } = await withFault({ orderId: orderIdOf(orders.plain.outTradeNo), fault: { kind: 'bill_missing_line' } }, () => bill());
    expect(lineOf(lines, orders.plain.outTradeNo)).toEqual([]);
    expect(lines).toHaveLength(4);
  });

  it('a missing refund line, the payment staying', async () => {
    const { lines } = await withFault(
      { orderId: orderIdOf(orders.refunded.outTradeNo), fault: { kind: 'bill_missing_line', line: 'refund', refundOrderId: orderIdOf(refundNumbers.second) } },
      () => bill(),
    );
    expect(lineOf(lines, orders.refunded.outTradeNo, 'refund').map((line) => line.amount.amount)).toEqual([5000n]);
    expect(lineOf(lines, orders.refunded.outTradeNo)).toHaveLength(1);
  });

  it('an extra line: a second payment of an order, the same on every download', async () => {
    const downloads = await withFault({ orderId: orderIdOf(orders.other.outTradeNo), fault: { kind: 'bill_extra_line', txnAmt: '5000' } }, async () => [await bill(), await bill()]);
    const extra = (lines: BillLine[]) => lineOf(lines, orders.other.outTradeNo).find((line) => line.channelTradeNo !== queryIds[orders.other.outTradeNo])!;
    for (const { lines } of downloads) expect(lineOf(lines, orders.other.outTradeNo)).toHaveLength(2);
    expect(extra(downloads[1]!.lines).channelTradeNo).toBe(extra(downloads[0]!.lines).channelTradeNo);
    expect(extra(downloads[0]!.lines)).toMatchObject({ amount: money(5000n, 'CNY'), fee: money(30n, 'CNY'), channelTradeNo: expect.stringMatching(/^\d{21}$/) });
  });

  it('an extra line for an order nobody placed', async () => {
    const { lines } = await withFault({ fault: { kind: 'bill_extra_line', txnAmt: '999' } }, () => bill());
    const unknown = lines.filter((line) => !Object.values(orders).some((placedOrder) => placedOrder.outTradeNo === line.outTradeNo));
    expect(unknown).toHaveLength(1);
    expect(unknown[0]).toMatchObject({ kind: 'payment', amount: money(999n, 'CNY'), outTradeNo: expect.stringMatching(/^simextra\d+$/) });
  });

  it('an altered amount', async () => {
    const { lines } = await withFault({ orderId: orderIdOf(orders.plain.outTradeNo), fault: { kind: 'bill_wrong_amount', txnAmt: '9999' } }, () => bill());
    expect(lineOf(lines, orders.plain.outTradeNo)).toMatchObject([{ amount: money(9999n, 'CNY'), fee: money(7n, 'CNY') }]);
  });

  it('an altered status: an order cancelled unpaid listed as paid', async () => {
    expect((await harness.simulator.findTransaction(orderIdOf(orders.cancelled.outTradeNo)))?.status).toBe('failed');
    const { lines } = await withFault({ orderId: orderIdOf(orders.cancelled.outTradeNo), fault: { kind: 'bill_wrong_status' } }, () => bill());
    expect(lineOf(lines, orders.cancelled.outTradeNo)).toMatchObject([{ kind: 'payment', status: 'succeeded', amount: money(888n, 'CNY'), channelTradeNo: queryIds[orders.cancelled.outTradeNo] }]);
  });

  it('a wrong fee', async () => {
    const { lines, totals } = await withFault({ orderId: orderIdOf(orders.other.outTradeNo), fault: { kind: 'bill_wrong_fee', fee: '100' } }, () => bill());
    expect(lineOf(lines, orders.other.outTradeNo)).toMatchObject([{ amount: money(5000n, 'CNY'), fee: money(100n, 'CNY') }]);
    expect(totals.payments.fee).toEqual(money(7n + 100n + 120n, 'CNY'));
  });

  it('a line dated the next day: gone from its date, at the first second of the next', async () => {
    const { before, day } = await withFault({ orderId: orderIdOf(orders.dayBefore.outTradeNo), fault: { kind: 'bill_next_day' } }, async () => ({ before: await bill('2026-01-13'), day: await bill() }));
    expect(before.lines).toEqual([]);
    expect(lineOf(day.lines, orders.dayBefore.outTradeNo)).toMatchObject([{ amount: money(3000n, 'CNY'), occurredAt: beijing('2026-01-14T00:00:00') }]);
  });

  it('a switch with times counts down once per file', async () => {
    await harness.simulator.setFault({ orderId: orderIdOf(orders.plain.outTradeNo), times: 1, fault: { kind: 'bill_missing_line' } });
    expect(lineOf((await bill()).lines, orders.plain.outTradeNo)).toHaveLength(0);
    expect(lineOf((await bill()).lines, orders.plain.outTradeNo)).toHaveLength(1);
  });
});
