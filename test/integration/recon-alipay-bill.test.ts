import { existsSync } from 'node:fs';
import path from 'node:path';
import { AlipaySdk } from 'alipay-sdk';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { BillLine, ChannelBillTotals, ChannelConnector, CreatePaymentRequest } from '../../src/channels/index.js';
import { ManualClock } from '../../src/platform/clock.js';
import { applyBasisPoints, money } from '../../src/platform/money.js';
import type { FaultSetting } from '../../src/simulators/index.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { startAlipayHarness, type AlipayHarness } from '../fixtures/alipay/harness.js';
import { expectBillLines } from '../helpers/bill-lines.js';

/**
 * Alipay's trade bill end to end: a day of payments and refunds on the
 * simulator, the bill fetched through Fen's connector (alipay-sdk, validateSign
 * on) and the zip streamed through the parser; then each bill fault once, seen
 * in the parsed lines. Time is a ManualClock; nothing waits.
 */

const billDate = '2026-01-14';
const beijing = (text: string) => new Date(`${text}+08:00`);
const feeRateBasisPoints = 60n;

let database: TestDatabase;
let clock: ManualClock;
let harness: AlipayHarness;
let connector: ChannelConnector;

/** The orders of the day, by role: paid on the day before; paid; paid; paid and refunded in full in two parts; closed unpaid. */
const orders: Record<'dayBefore' | 'plain' | 'other' | 'refunded' | 'closed', CreatePaymentRequest> = {} as never;
const tradeNos: Record<string, string> = {};

function order(outTradeNo: string, amount: bigint): CreatePaymentRequest {
  return { method: 'alipay_qr', outTradeNo, amount: money(amount, 'CNY'), subject: `账单测试 ${outTradeNo}`, expiresAt: new Date(clock.now().getTime() + 30 * 60_000) };
}

/** Creates a QR order, has the payer open it, and presses Pay or Cancel on the cashier. */
async function placed(request: CreatePaymentRequest, button: 'pay' | 'cancel'): Promise<void> {
  const created = await connector.createPayment(request);
  if (created.status !== 'pending' || created.action.kind !== 'qr_code') throw new Error(`precreate failed: ${JSON.stringify(created)}`);
  expect((await fetch(created.action.qrCode, { redirect: 'manual' })).status).toBe(302);
  const trade = await harness.simulator.findTrade(request.outTradeNo);
  const pressed = await fetch(`${harness.simulator.baseUrl}/alipay/cashier/${trade!.payerToken}/${button}`, { method: 'POST', redirect: 'manual' });
  expect(pressed.status).toBe(303);
  tradeNos[request.outTradeNo] = trade!.tradeNo;
}

async function refund(request: CreatePaymentRequest, outRefundNo: string, amount: bigint): Promise<void> {
  const result = await connector.refund({ outTradeNo: request.outTradeNo, outRefundNo, refundAmount: money(amount, 'CNY'), paymentAmount: request.amount });
  expect(result.status).toBe('succeeded');
}

/** Downloads a day's bill through the connector and reads it to the end. */
async function bill(date = billDate): Promise<{ lines: BillLine[]; totals: ChannelBillTotals }> {
  const result = await connector.downloadBill!({ billDate: date });
  if (result.status !== 'ready') throw new Error(`bill not ready: ${JSON.stringify(result)}`);
  const lines: BillLine[] = [];
  const reading = result.bill.lines();
  try {
    for (;;) {
      const step = await reading.next();
      if (step.done) return { lines, totals: step.value };
      lines.push(...step.value);
    }
  } finally {
    await result.bill.discard();
  }
}

async function withFault<T>(setting: FaultSetting, work: () => Promise<T>): Promise<T> {
  await harness.simulator.setFault(setting);
  try {
    return await work();
  } finally {
    await harness.simulator.clearFaults();
  }
}

const fee = (amount: bigint) => applyBasisPoints(amount, feeRateBasisPoints);
const lineOf = (lines: BillLine[], outTradeNo: string, kind: 'payment' | 'refund' = 'payment') => lines.filter((line) => line.outTradeNo === outTradeNo && line.kind === kind);

beforeAll(async () => {
  database = await createTestDatabase({ poolSize: 8 });
  clock = new ManualClock(beijing('2026-01-13T23:59:50'));
  harness = await startAlipayHarness({ pool: database.pool, clock });
  connector = harness.connector;
  const prefix = `bill_${Date.now().toString(36)}`;
  orders.dayBefore = order(`${prefix}_before`, 3000n);
  await placed(orders.dayBefore, 'pay');
  clock.set(beijing('2026-01-14T09:00:00'));
  orders.plain = order(`${prefix}_plain`, 1234n);
  orders.other = order(`${prefix}_other`, 5000n);
  orders.refunded = order(`${prefix}_refunded`, 20000n);
  orders.closed = order(`${prefix}_closed`, 888n);
  for (const paid of [orders.plain, orders.other, orders.refunded]) await placed(paid, 'pay');
  await placed(orders.closed, 'cancel');
  clock.set(beijing('2026-01-14T10:00:00'));
  await refund(orders.refunded, `${prefix}_ref1`, 5000n);
  clock.set(beijing('2026-01-14T11:00:00'));
  await refund(orders.refunded, `${prefix}_ref2`, 15000n);
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
  it('is not there until the morning after the day (isp.bill_not_exist), and a bad date is refused', async () => {
    clock.set(beijing('2026-01-14T15:00:00'));
    expect(await connector.downloadBill!({ billDate })).toEqual({ status: 'not_ready', channelCode: 'isp.bill_not_exist', message: '40004 Business Failed isp.bill_not_exist 账单不存在' });
    clock.set(beijing('2026-01-15T08:59:59'));
    expect(await connector.downloadBill!({ billDate })).toMatchObject({ status: 'not_ready' });
    expect(await connector.downloadBill!({ billDate: '2026-02-30' })).toMatchObject({ status: 'failed', reason: 'rejected', channelCode: 'isv.invalid-arguments' });
  });

  it('lists every payment and refund of the day, as the simulator holds them, with its fees', async () => {
    const { lines, totals } = await bill();
    const expected = [
      { kind: 'payment', outTradeNo: orders.plain.outTradeNo, amount: 1234n, fee: fee(1234n), outRefundNo: undefined, at: beijing('2026-01-14T09:00:00') },
      { kind: 'payment', outTradeNo: orders.other.outTradeNo, amount: 5000n, fee: fee(5000n), outRefundNo: undefined, at: beijing('2026-01-14T09:00:00') },
      { kind: 'payment', outTradeNo: orders.refunded.outTradeNo, amount: 20000n, fee: 120n, outRefundNo: undefined, at: beijing('2026-01-14T09:00:00') },
      // The fee is handed back in proportion: 120 × 5000/20000, then the rest.
      { kind: 'refund', outTradeNo: orders.refunded.outTradeNo, amount: 5000n, fee: 30n, outRefundNo: `${orders.refunded.outTradeNo.replace('_refunded', '')}_ref1`, at: beijing('2026-01-14T10:00:00') },
      { kind: 'refund', outTradeNo: orders.refunded.outTradeNo, amount: 15000n, fee: 90n, outRefundNo: `${orders.refunded.outTradeNo.replace('_refunded', '')}_ref2`, at: beijing('2026-01-14T11:00:00') },
    ];
    expectBillLines(lines, expected, tradeNos);
    expect(totals).toEqual({
      lineCount: 5,
      payments: { count: 3, amount: money(26234n, 'CNY'), fee: money(fee(1234n) + fee(5000n) + 120n, 'CNY') },
      refunds: { count: 2, amount: money(20000n, 'CNY'), fee: money(120n, 'CNY') },
      netAmount: money(26234n - 20000n - fee(1234n) - fee(5000n), 'CNY'),
      linesOutsidePeriod: 0,
    });
    const before = await bill('2026-01-13');
    expect(before.lines.map((line) => line.outTradeNo)).toEqual([orders.dayBefore.outTradeNo]);
  });

  it('removes the downloaded file when discarded', async () => {
    const result = await connector.downloadBill!({ billDate });
    if (result.status !== 'ready') throw new Error('not ready');
    expect(result.bill.filePath).toMatch(/fen-alipay-bill-[^/]+\/2088\d{12}0156_20260114\.csv\.zip$/);
    expect(existsSync(result.bill.filePath)).toBe(true);
    await result.bill.discard();
    expect(existsSync(path.dirname(result.bill.filePath))).toBe(false);
  });
});

describe('the download URL', () => {
  async function downloadUrl(): Promise<string> {
    const sdk = new AlipaySdk({ appId: harness.appId, privateKey: harness.appKeys.privateKeyPem, alipayPublicKey: harness.simulator.publicKeyPem, gateway: harness.simulator.gatewayUrl, camelcase: false });
    const answer = await sdk.exec('alipay.data.dataservice.bill.downloadurl.query', { bizContent: { bill_type: 'trade', bill_date: billDate } }, { validateSign: true });
    expect(answer).toMatchObject({ code: '10000' });
    return answer.bill_download_url as string;
  }

  it('serves the zip for 30 seconds and refuses it after, or when tampered with', async () => {
    const url = await downloadUrl();
    expect(url).toMatch(/\/downloadBillFile\.resource\?bizType=trade&userId=2088\d{12}0156&fileType=csv\.zip&bizDates=20260114&/);
    const served = await fetch(url);
    expect(served.status).toBe(200);
    expect(Buffer.from(await served.arrayBuffer()).subarray(0, 4)).toEqual(Buffer.from('PK\x03\x04', 'latin1'));
    const tampered = new URL(url);
    tampered.searchParams.set('bizDates', '20260113');
    expect((await fetch(tampered)).status).toBe(403);
    clock.advanceSeconds(31);
    expect((await fetch(url)).status).toBe(403);
  });
});

describe('bill faults show up in the parsed lines', () => {
  it('a missing line', async () => {
    const { lines } = await withFault({ outTradeNo: orders.plain.outTradeNo, fault: { kind: 'bill_missing_line' } }, () => bill());
    expect(lineOf(lines, orders.plain.outTradeNo)).toEqual([]);
    expect(lines).toHaveLength(4);
  });

  it('a missing refund line, the payment staying', async () => {
    const { lines } = await withFault({ outTradeNo: orders.refunded.outTradeNo, fault: { kind: 'bill_missing_line', line: 'refund', outRequestNo: `${orders.refunded.outTradeNo.replace('_refunded', '')}_ref2` } }, () => bill());
    expect(lineOf(lines, orders.refunded.outTradeNo, 'refund').map((line) => line.amount.amount)).toEqual([5000n]);
    expect(lineOf(lines, orders.refunded.outTradeNo)).toHaveLength(1);
  });

  it('an extra line: a second payment of an order, the same on every download', async () => {
    const first = await withFault({ outTradeNo: orders.other.outTradeNo, fault: { kind: 'bill_extra_line', totalAmount: '50.00' } }, async () => [await bill(), await bill()]);
    for (const { lines } of first) {
      const payments = lineOf(lines, orders.other.outTradeNo);
      expect(payments).toHaveLength(2);
      expect(new Set(payments.map((line) => line.channelTradeNo)).size).toBe(2);
    }
    const extra = (lines: BillLine[]) => lineOf(lines, orders.other.outTradeNo).find((line) => line.channelTradeNo !== tradeNos[orders.other.outTradeNo])!;
    expect(extra(first[1]!.lines).channelTradeNo).toBe(extra(first[0]!.lines).channelTradeNo);
    expect(extra(first[0]!.lines)).toMatchObject({ amount: money(5000n, 'CNY'), fee: money(30n, 'CNY') });
  });

  it('an extra line for an order nobody placed', async () => {
    const { lines } = await withFault({ fault: { kind: 'bill_extra_line', totalAmount: '9.99' } }, () => bill());
    const unknown = lines.filter((line) => !Object.values(orders).some((placedOrder) => placedOrder.outTradeNo === line.outTradeNo));
    expect(unknown).toHaveLength(1);
    expect(unknown[0]).toMatchObject({ kind: 'payment', amount: money(999n, 'CNY'), outTradeNo: expect.stringMatching(/^sim_extra_\d+$/) });
  });

  it('an altered amount', async () => {
    const { lines } = await withFault({ outTradeNo: orders.plain.outTradeNo, fault: { kind: 'bill_wrong_amount', totalAmount: '99.99' } }, () => bill());
    expect(lineOf(lines, orders.plain.outTradeNo)).toMatchObject([{ amount: money(9999n, 'CNY'), fee: money(fee(1234n), 'CNY') }]);
  });

  it('an altered status: a trade closed unpaid listed as paid', async () => {
    expect((await harness.simulator.findTrade(orders.closed.outTradeNo))?.status).toBe('TRADE_CLOSED');
    const { lines } = await withFault({ outTradeNo: orders.closed.outTradeNo, fault: { kind: 'bill_wrong_status' } }, () => bill());
    expect(lineOf(lines, orders.closed.outTradeNo)).toMatchObject([{ kind: 'payment', status: 'succeeded', amount: money(888n, 'CNY'), channelTradeNo: tradeNos[orders.closed.outTradeNo] }]);
  });

  it('a wrong fee', async () => {
    const { lines, totals } = await withFault({ outTradeNo: orders.other.outTradeNo, fault: { kind: 'bill_wrong_fee', serviceFee: '1.00' } }, () => bill());
    expect(lineOf(lines, orders.other.outTradeNo)).toMatchObject([{ amount: money(5000n, 'CNY'), fee: money(100n, 'CNY') }]);
    expect(totals.payments.fee).toEqual(money(fee(1234n) + 100n + 120n, 'CNY'));
  });

  it('a line dated the next day: gone from its day, at the first second of the next', async () => {
    const { before, day } = await withFault({ outTradeNo: orders.dayBefore.outTradeNo, fault: { kind: 'bill_next_day' } }, async () => ({ before: await bill('2026-01-13'), day: await bill() }));
    expect(before.lines).toEqual([]);
    expect(lineOf(day.lines, orders.dayBefore.outTradeNo)).toMatchObject([{ amount: money(3000n, 'CNY'), occurredAt: beijing('2026-01-14T00:00:00') }]);
  });

  it('a switch with times counts down once per bill', async () => {
    await harness.simulator.setFault({ outTradeNo: orders.plain.outTradeNo, times: 1, fault: { kind: 'bill_missing_line' } });
    expect(lineOf((await bill()).lines, orders.plain.outTradeNo)).toHaveLength(0);
    expect(lineOf((await bill()).lines, orders.plain.outTradeNo)).toHaveLength(1);
  });
});
