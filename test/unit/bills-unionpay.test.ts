import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BillFormatError, collectBill, parseBillFile, unionpayZmFileName, unionpayZmLineBytes } from '../../src/reconciliation/bills/index.js';
import { zipEntries } from '../../src/simulators/alipay/bills.js';
import { fixtureDirectory, unionpayFixtureLines, unionpayFixtureMerchant, unionpayFixtureName } from '../fixtures/bills/generate.js';
import { unionpayZmLine } from '../fixtures/bills/writers.js';

/**
 * UnionPay's ZM file: fixed byte widths, GBK, no totals — each line checked
 * on its own. The fixture is checked in under test/fixtures/bills.
 */

const fixture = (name: string) => path.join(fixtureDirectory, name);
const scratch = mkdtempSync(path.join(os.tmpdir(), 'fen-bills-unionpay-'));

afterAll(() => rmSync(scratch, { recursive: true, force: true }));

async function failure(file: string, billDate?: string): Promise<BillFormatError> {
  const error = await collectBill(parseBillFile('unionpay', file, { billDate })).then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(BillFormatError);
  return error as BillFormatError;
}

describe('the UnionPay ZM file', () => {
  it('has lines of 607 bytes: 42 fields at the widths of UnionPay’s SDK, each followed by a space', () => {
    expect(unionpayZmLineBytes).toBe(607);
    expect(readFileSync(fixture(unionpayFixtureName)).length).toBe(4 * (607 + 2));
  });

  it('takes the settlement date and the merchant from the file name', () => {
    expect(unionpayZmFileName(unionpayFixtureName)).toEqual({ billDate: '2026-01-14', merchantId: unionpayFixtureMerchant });
    expect(unionpayZmFileName('bill.txt')).toBeUndefined();
  });

  it('reads payments, refunds and a same-day cancellation, a GBK sub-merchant name shifting nothing', async () => {
    const { records, summary } = await collectBill(parseBillFile('unionpay', fixture(unionpayFixtureName)));
    expect(records.map((record) => [record.kind, record.channelTradeNo, record.outTradeNo, record.outRefundNo, record.amount, record.fee, record.occurredAt])).toEqual(
      unionpayFixtureLines.map((line) => [line.kind, line.channelTradeNo, line.outTradeNo, line.outRefundNo, line.amount, line.fee, line.occurredAt]),
    );
    expect(summary).toMatchObject({
      format: 'unionpay_zm',
      account: unionpayFixtureMerchant,
      payments: { count: 2, amount: 101_234n, fee: 607n },
      refunds: { count: 2, amount: 41_234n, fee: 247n },
      checks: [],
    });
  });

  it('puts a December line of a January file in the year before', async () => {
    const line = { ...unionpayFixtureLines[0]!, occurredAt: new Date('2025-12-31T23:59:59+08:00') };
    const file = path.join(scratch, `INN26010188ZM_${unionpayFixtureMerchant}`);
    writeFileSync(file, Buffer.concat([unionpayZmLine(line, unionpayFixtureMerchant), Buffer.from('\r\n')]));
    const { records } = await collectBill(parseBillFile('unionpay', file));
    expect(records[0]!.occurredAt).toEqual(new Date('2025-12-31T15:59:59Z'));
  });

  it('reads the ZM file out of the archive the file transfer returns', async () => {
    const file = path.join(scratch, 'download.zip');
    writeFileSync(file, zipEntries([
      { name: `INN26011488ZME_${unionpayFixtureMerchant}`, content: Buffer.alloc(0) },
      { name: unionpayFixtureName, content: readFileSync(fixture(unionpayFixtureName)) },
    ], new Date()));
    const { records } = await collectBill(parseBillFile('unionpay', file));
    expect(records).toHaveLength(4);
  });

  it('accepts lines whose blank reserved field was trimmed', async () => {
    const line = unionpayZmLine(unionpayFixtureLines[1]!, unionpayFixtureMerchant);
    const file = path.join(scratch, `INN26011488ZM_${unionpayFixtureMerchant}.trimmed`);
    writeFileSync(file, Buffer.concat([line.subarray(0, line.length - 99), Buffer.from('\n')]));
    const { records } = await collectBill(parseBillFile('unionpay', file));
    expect(records[0]).toMatchObject({ amount: 100_000n, fee: 600n });
  });
});

describe('broken UnionPay files are refused with the line named', () => {
  it('a net amount that is not settlement plus fee', async () => {
    const error = await failure(fixture('unionpay-bad-net.zm'), '2026-01-14');
    expect(error).toMatchObject({ code: 'inconsistent', lineNumber: 2 });
  });

  it('a line of the wrong length', async () => {
    const error = await failure(fixture('unionpay-short-line.zm'), '2026-01-14');
    expect(error.message).toBe('unionpay-short-line.zm: line 2: 200 bytes where a ZM line has 607');
  });

  it('a line of another merchant', async () => {
    const file = path.join(scratch, `INN26011488ZM_${unionpayFixtureMerchant}`);
    writeFileSync(file, Buffer.concat([unionpayZmLine(unionpayFixtureLines[0]!, '898000000000001'), Buffer.from('\r\n')]));
    expect(await failure(file)).toMatchObject({ code: 'inconsistent', lineNumber: 1 });
  });

  it('a refund settled as a credit', async () => {
    const file = path.join(scratch, 'credit-refund.zm');
    const refund = unionpayFixtureLines[2]!;
    writeFileSync(file, unionpayZmLine(refund, unionpayFixtureMerchant, { settlementAmount: 'C000000040000', netAmount: 'C000000040240' }));
    expect((await failure(file, '2026-01-14')).message).toContain('a refund settled C');
  });

  it('a transaction type it has no reading for', async () => {
    const file = path.join(scratch, 'type.zm');
    writeFileSync(file, unionpayZmLine(unionpayFixtureLines[0]!, unionpayFixtureMerchant, { txnType: '02' }));
    expect(await failure(file, '2026-01-14')).toMatchObject({ code: 'unsupported' });
  });

  it('a file whose name does not carry the date, with none given', async () => {
    const error = await failure(fixture('unionpay-bad-net.zm'));
    expect(error.message).toContain('settlement date');
  });
});
