import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import iconv from 'iconv-lite';
import { afterAll, describe, expect, it } from 'vitest';
import { BillFormatError, collectBill, parseBillFile, type BillRecord } from '../../src/reconciliation/bills/index.js';
import { zipEntries } from '../../src/simulators/alipay/bills.js';
import { alipayFixtureAccount, alipayFixtureLines, alipayFixturePeriod, fixtureDirectory } from '../fixtures/bills/generate.js';

/**
 * Alipay's trade bill: the zip and detail files checked in under
 * test/fixtures/bills (GBK bytes, made by the simulator's writer), and broken
 * variants of them.
 */

const fixture = (name: string) => path.join(fixtureDirectory, name);
const zipFixture = fixture(`${alipayFixtureAccount}_20260114.csv.zip`);
const scratch = mkdtempSync(path.join(os.tmpdir(), 'fen-bills-alipay-'));

afterAll(() => rmSync(scratch, { recursive: true, force: true }));

async function failure(file: string): Promise<BillFormatError> {
  const error = await collectBill(parseBillFile('alipay', file)).then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(BillFormatError);
  return error as BillFormatError;
}

function detailText(): string {
  return iconv.decode(readFileSync(fixture('alipay-detail-20260114.csv')), 'gbk');
}

function gbkVariant(name: string, text: string): string {
  const file = path.join(scratch, name);
  writeFileSync(file, iconv.encode(text, 'gbk'));
  return file;
}

describe('the Alipay trade bill zip', () => {
  it('reads both GBK files, with their GBK names, into the lines written', async () => {
    const { records, summary } = await collectBill(parseBillFile('alipay', zipFixture));
    expect(records.map((record) => [record.kind, record.channelTradeNo, record.outTradeNo, record.outRefundNo, record.amount, record.fee])).toEqual(
      alipayFixtureLines.map((line) => [line.kind, line.tradeNo, line.outTradeNo, line.outRequestNo, line.amountFen, line.serviceFeeFen]),
    );
    expect(records.map((record) => record.occurredAt)).toEqual(alipayFixtureLines.map((line) => line.completedAt));
    expect(summary).toMatchObject({
      format: 'alipay_trade_zip',
      account: alipayFixtureAccount,
      period: alipayFixturePeriod,
      payments: { count: 3, amount: 1_006_234n, fee: 6037n },
      refunds: { count: 2, amount: 2099n, fee: 13n },
      netAmount: 1_006_234n - 2099n - 6037n + 13n,
      linesOutsidePeriod: 0,
    });
    // The footer's two totals lines and the summary file's 合计 row, every figure compared.
    expect(summary.checks.map((check) => check.name)).toEqual([
      '交易合计 count', '交易合计 商家实收', '交易合计 商家优惠', '退款合计 count', '退款合计 商家实收', '退款合计 商家优惠',
      '汇总 交易订单总笔数', '汇总 退款订单总笔数', '汇总 订单金额', '汇总 商家实收', '汇总 服务费', '汇总 实收净额',
    ]);
    expect(summary.checks.find((check) => check.name === '汇总 实收净额')).toMatchObject({ stated: 1_006_234n - 2099n - 6037n + 13n });
  });

  it('reads a quoted subject with a comma and quotes, and trims Alipay’s trailing tabs', async () => {
    const { records } = await collectBill(parseBillFile('alipay', zipFixture));
    expect(records[1]).toEqual<BillRecord>({
      kind: 'payment',
      channelTradeNo: '2026011422001400000000000002',
      outTradeNo: 'pay_01JH00000000000000000002',
      outRefundNo: undefined,
      amount: 5000n,
      fee: 30n,
      currency: 'CNY',
      status: 'succeeded',
      occurredAt: new Date('2026-01-14T02:15:30Z'),
      lineNumber: 7,
    });
  });

  it('reads the detail file alone, checked against its footer', async () => {
    const { records, summary } = await collectBill(parseBillFile('alipay', fixture('alipay-detail-20260114.csv')));
    expect(records).toHaveLength(5);
    expect(summary.format).toBe('alipay_detail_csv');
    expect(summary.checks).toHaveLength(6);
  });

  it('finds columns by name, whatever their order', async () => {
    const lines = detailText().split('\r\n');
    const headerIndex = lines.findIndex((line) => line.startsWith('支付宝交易号'));
    const swap = (line: string) => {
      const cells = line.split(/,(?=(?:[^"]*"[^"]*")*[^"]*$)/);
      [cells[0], cells[1]] = [cells[1]!, cells[0]!];
      [cells[11], cells[22]] = [cells[22]!, cells[11]!];
      return cells.join(',');
    };
    const reordered = lines.map((line, index) => (index >= headerIndex && index < headerIndex + 6 ? swap(line) : line)).join('\r\n');
    const { records } = await collectBill(parseBillFile('alipay', gbkVariant('reordered.csv', reordered)));
    expect(records.map((record) => [record.channelTradeNo, record.amount, record.fee])).toEqual(alipayFixtureLines.map((line) => [line.tradeNo, line.amountFen, line.serviceFeeFen]));
  });

  it('counts lines dated outside the period it states, without refusing them', async () => {
    const moved = detailText().replace('2026-01-14 23:59:59', '2026-01-15 00:00:00');
    const { summary } = await collectBill(parseBillFile('alipay', gbkVariant('next-day.csv', moved)));
    expect(summary.linesOutsidePeriod).toBe(1);
  });
});

describe('broken Alipay bills are refused with the line named', () => {
  it('a file cut off before its end marker', async () => {
    const error = await failure(fixture('alipay-detail-truncated.csv'));
    expect(error).toMatchObject({ code: 'malformed', lineNumber: 10 });
    expect(error.message).toContain('业务明细列表结束');
  });

  it('an amount that is not one', async () => {
    const error = await failure(fixture('alipay-detail-bad-amount.csv'));
    expect(error.message).toBe('alipay-detail-bad-amount.csv: line 7: 订单金额 is not an amount in yuan: "50.0x"');
  });

  it('a footer that disagrees with the rows', async () => {
    const error = await failure(fixture('alipay-detail-wrong-total.csv'));
    expect(error).toMatchObject({ code: 'inconsistent', lineNumber: 12 });
    expect(error.message).toContain('交易合计 count: the file states 2 but its lines add up to 3');
  });

  it('a summary file that disagrees with the detail file', async () => {
    const error = await failure(fixture('alipay-summary-mismatch.csv.zip'));
    expect(error).toMatchObject({ code: 'inconsistent', file: `${alipayFixtureAccount}_20260114_业务明细(汇总).csv`, lineNumber: 7 });
  });

  it('a business type other than 交易 and 退款', async () => {
    const error = await failure(gbkVariant('type.csv', detailText().replace(',交易,', ',转账,')));
    expect(error).toMatchObject({ code: 'unsupported', lineNumber: 6 });
  });

  it('a header without a column it needs', async () => {
    const error = await failure(gbkVariant('header.csv', detailText().replace('服务费（元）', '费用（元）')));
    expect(error).toMatchObject({ lineNumber: 5 });
    expect(error.message).toContain('no column 服务费（元）');
  });

  it('a row after the end marker', async () => {
    const error = await failure(gbkVariant('after.csv', `${detailText()}2026011422001400000000000099,x,交易\r\n`));
    expect(error.message).toContain('a row after the 业务明细列表结束 line');
  });

  it('a zip whose entry does not match its CRC-32', async () => {
    const zip = Buffer.from(readFileSync(zipFixture));
    // The central directory's first record (the detail file) carries its CRC-32 at offset 16.
    const directoryOffset = zip.readUInt32LE(zip.length - 22 + 16);
    zip.writeUInt32LE((zip.readUInt32LE(directoryOffset + 16) ^ 1) >>> 0, directoryOffset + 16);
    const file = path.join(scratch, 'crc.csv.zip');
    writeFileSync(file, zip);
    const error = await failure(file);
    expect(error).toMatchObject({ code: 'inconsistent', file: `crc.csv.zip!${alipayFixtureAccount}_20260114_业务明细.csv` });
    expect(error.message).toContain('CRC-32');
  });

  it('a file that is not a zip at all, named like one', async () => {
    const file = path.join(scratch, 'fake.csv.zip');
    writeFileSync(file, Buffer.concat([Buffer.from('PK\x03\x04', 'latin1'), Buffer.alloc(100)]));
    const error = await failure(file);
    expect(error.message).toContain('not a readable zip');
  });

  it('a zip without the summary file', async () => {
    const file = path.join(scratch, 'lonely.csv.zip');
    writeFileSync(file, zipEntries([{ name: `${alipayFixtureAccount}_20260114_业务明细.csv`, content: readFileSync(fixture('alipay-detail-20260114.csv')) }], new Date()));
    const error = await failure(file);
    expect(error.message).toContain('no …_业务明细(汇总).csv in the zip');
  });

  it('bytes that are not GBK', async () => {
    const bytes = readFileSync(fixture('alipay-detail-20260114.csv'));
    const at = bytes.indexOf(Buffer.from('pay_01JH00000000000000000003'));
    const broken = Buffer.concat([bytes.subarray(0, at), Buffer.from([0x81, 0x0a]), bytes.subarray(at + 2)]);
    const file = path.join(scratch, 'bytes.csv');
    writeFileSync(file, broken);
    const error = await failure(file);
    expect(error.code).toBe('malformed');
  });
});
