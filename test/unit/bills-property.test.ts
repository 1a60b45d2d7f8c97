import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { collectBill, parseBillFile, type BillRecord, type BillSummary } from '../../src/reconciliation/bills/index.js';
import { alipayBillZip, type AlipayBillLine } from '../../src/simulators/alipay/bills.js';
import { roundedFee, writeUnionpayZm, writeWechatTradeBill, type UnionpayTestLine, type WechatTestLine } from '../fixtures/bills/writers.js';

/**
 * Bills of random lines, written by a writer (Alipay's: the simulator's own)
 * and read back by the parser: every line comes back as written and the
 * parser's totals are those of the lines. A fixed seed keeps runs repeatable.
 */

const seed = 20_260_114;
const numRuns = 40;
const scratch = mkdtempSync(path.join(os.tmpdir(), 'fen-bills-property-'));
let fileCounter = 0;

afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function scratchFile(name: string, bytes: Buffer): string {
  fileCounter += 1;
  const file = path.join(scratch, `${fileCounter}-${name}`);
  writeFileSync(file, bytes);
  return file;
}

const dayStartMs = new Date('2026-01-14T00:00:00+08:00').getTime();
const dayMs = 24 * 60 * 60 * 1000;
const timeInDay = fc.integer({ min: 0, max: dayMs / 1000 - 1 }).map((seconds) => new Date(dayStartMs + seconds * 1000));
const identifier = fc.stringMatching(/^[A-Za-z0-9_]{1,32}$/);
const digits = (count: number) => fc.stringMatching(new RegExp(`^\\d{${count}}$`));
/** Subjects with what CSV has to quote — commas, quotes, line breaks — and a '#' that must not end the rows. */
const subject = fc.string({ unit: fc.constantFrom('a', 'Z', '7', ' ', ',', '"', '\n', '#', '测', '试', '；', '订'), minLength: 1, maxLength: 20 });

function expectTotals(summary: BillSummary, records: { kind: string; amount: bigint; fee: bigint }[]): void {
  const side = (kind: string) => {
    const lines = records.filter((record) => record.kind === kind);
    return { count: lines.length, amount: lines.reduce((sum, line) => sum + line.amount, 0n), fee: lines.reduce((sum, line) => sum + line.fee, 0n) };
  };
  expect(summary.payments).toEqual(side('payment'));
  expect(summary.refunds).toEqual(side('refund'));
  expect(summary.lineCount).toBe(records.length);
}

describe('bills round-trip through writer and parser', () => {
  it('Alipay: the simulator’s zip', async () => {
    const line = fc.record({
      kind: fc.constantFrom('payment' as const, 'refund' as const),
      tradeNo: digits(28),
      outTradeNo: identifier,
      subject,
      createdAt: timeInDay,
      completedAt: timeInDay,
      counterparty: fc.constantFrom('138***@example.com', '', '张**'),
      amountFen: fc.bigInt({ min: 1n, max: 10_000_000_000n }),
      serviceFeeFen: fc.bigInt({ min: 0n, max: 60_000_000n }),
      outRequestNo: identifier,
    }).map((generated): AlipayBillLine => (generated.kind === 'payment' ? { ...generated, outRequestNo: undefined } : generated));
    await fc.assert(
      fc.asyncProperty(fc.array(line, { maxLength: 30 }), async (lines) => {
        const period = { start: new Date(dayStartMs), end: new Date(dayStartMs + dayMs) };
        const file = scratchFile('alipay.csv.zip', alipayBillZip({ account: '20881234567890120156', billDate: '2026-01-14', period, lines, exportedAt: new Date(dayStartMs + dayMs) }));
        const { records, summary } = await collectBill(parseBillFile('alipay', file));
        expect(records.map((record) => [record.kind, record.channelTradeNo, record.outTradeNo, record.outRefundNo, record.amount, record.fee, record.occurredAt])).toEqual(
          lines.map((written) => [written.kind, written.tradeNo, written.outTradeNo, written.outRequestNo, written.amountFen, written.serviceFeeFen, written.completedAt]),
        );
        expectTotals(summary, records);
        expect(summary.checks).toHaveLength(12);
      }),
      { seed, numRuns },
    );
  });

  it('WeChat Pay: backtick CSV with five-place fees', async () => {
    const line = fc.record({
      kind: fc.constantFrom('payment' as const, 'refund' as const),
      channelTradeNo: digits(28),
      outTradeNo: identifier,
      outRefundNo: identifier,
      amount: fc.bigInt({ min: 1n, max: 100_000_000n }),
      feeHundredThousandths: fc.bigInt({ min: 0n, max: 10_000_000n }),
      occurredAt: timeInDay,
    });
    await fc.assert(
      fc.asyncProperty(fc.array(line, { maxLength: 30 }), async (lines: WechatTestLine[]) => {
        const { records, summary } = await collectBill(parseBillFile('wechatpay', scratchFile('wechat.csv', writeWechatTradeBill(lines))));
        expect(records.map((record: BillRecord) => [record.kind, record.channelTradeNo, record.outTradeNo, record.outRefundNo, record.amount, record.fee, record.occurredAt])).toEqual(
          lines.map((written) => [written.kind, written.channelTradeNo, written.outTradeNo, written.kind === 'refund' ? written.outRefundNo : undefined, written.amount, roundedFee(written.feeHundredThousandths), written.occurredAt]),
        );
        expectTotals(summary, records);
      }),
      { seed, numRuns },
    );
  });

  it('UnionPay: the fixed-width ZM file', async () => {
    const line = fc
      .record({
        kind: fc.constantFrom('payment' as const, 'refund' as const),
        channelTradeNo: digits(21),
        outTradeNo: fc.stringMatching(/^[A-Za-z0-9]{8,32}$/),
        outRefundNo: fc.stringMatching(/^[A-Za-z0-9]{8,32}$/),
        amount: fc.bigInt({ min: 1n, max: 999_999_999_999n }),
        feeShare: fc.integer({ min: 0, max: 100 }),
        occurredAt: timeInDay,
        subMerchantName: fc.constantFrom('', '测试门店', 'Shop 12', '银联商务有限公司上海分公司'),
      })
      .map(({ feeShare, ...rest }): UnionpayTestLine => ({ ...rest, fee: (rest.amount * BigInt(feeShare)) / 100n }));
    await fc.assert(
      fc.asyncProperty(fc.array(line, { maxLength: 30 }), async (lines) => {
        const file = scratchFile('INN26011488ZM_777290058110048', writeUnionpayZm(lines, '777290058110048'));
        const { records, summary } = await collectBill(parseBillFile('unionpay', file));
        expect(records.map((record) => [record.kind, record.channelTradeNo, record.outTradeNo, record.outRefundNo, record.amount, record.fee, record.occurredAt])).toEqual(
          lines.map((written) => [written.kind, written.channelTradeNo, written.outTradeNo, written.kind === 'refund' ? written.outRefundNo : undefined, written.amount, written.fee, written.occurredAt]),
        );
        expectTotals(summary, records);
      }),
      { seed, numRuns },
    );
  });
});
