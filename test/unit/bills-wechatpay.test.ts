import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { refundStatusMap, wechatpayRefundStatuses } from '../../src/channels/wechatpay/status-map.js';
import { BillFormatError, collectBill, parseBillFile, type BillRecord } from '../../src/reconciliation/bills/index.js';
import { decimalToMinorHalfUp } from '../../src/reconciliation/bills/text.js';

/**
 * WeChat Pay's trade bill: the genuine file from the shared test data, as it
 * is, and broken copies of it written to a temporary folder.
 */

const sharedBill = path.resolve(import.meta.dirname, '../../../shared/testdata/wechatpay/tradebill-ALL.csv');
const sharedBytes = readFileSync(sharedBill);
const scratch = mkdtempSync(path.join(os.tmpdir(), 'fen-bills-wechatpay-'));

afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function variant(name: string, bytes: Buffer | string): string {
  const file = path.join(scratch, name);
  writeFileSync(file, bytes);
  return file;
}

/** The shared bill's text with one replacement made (the text must occur exactly once). */
function edited(from: string, to: string): Buffer {
  const text = sharedBytes.toString('utf8');
  expect(text.split(from)).toHaveLength(2);
  return Buffer.from(text.replace(from, to), 'utf8');
}

async function failure(file: string, options: Parameters<typeof parseBillFile>[2] = {}): Promise<BillFormatError> {
  const error = await collectBill(parseBillFile('wechatpay', file, options)).then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(BillFormatError);
  return error as BillFormatError;
}

describe('the shared WeChat Pay trade bill', () => {
  it('parses into 45 lines whose totals equal the summary row', async () => {
    const { records, summary } = await collectBill(parseBillFile('wechatpay', sharedBill));
    expect(records).toHaveLength(45);
    expect(summary.lineCount).toBe(45);
    // 应结订单总金额 0.47, 退款总金额 0.14, 手续费总金额 0.08 (yuan).
    expect(summary.payments).toEqual({ count: 31, amount: 47n, fee: 8n });
    expect(summary.refunds).toEqual({ count: 14, amount: 14n, fee: 0n });
    const stated = Object.fromEntries(summary.checks.map((check) => [check.name, check]));
    expect(stated['应结订单总金额']).toMatchObject({ stated: 47n, computed: 47n });
    expect(stated['退款总金额']).toMatchObject({ stated: 14n, computed: 14n });
    expect(stated['手续费总金额']).toMatchObject({ stated: 8n, computed: 8n });
    expect(stated['总交易单数']).toMatchObject({ stated: 45n, computed: 45n });
  });

  it('tells refund rows from payments and reads them field by field', async () => {
    const { records } = await collectBill(parseBillFile('wechatpay', sharedBill));
    const refunds = records.filter((record) => record.kind === 'refund');
    expect(refunds).toHaveLength(14);
    for (const refund of refunds) {
      expect(refund.outRefundNo).toMatch(/^REF\d+$/);
      expect(refund.amount).toBe(1n);
    }
    expect(records.filter((record) => record.kind === 'payment').every((record) => record.outRefundNo === undefined)).toBe(true);
    expect(records[0]).toEqual<BillRecord>({
      kind: 'refund',
      channelTradeNo: '4200000263201902167700134212',
      outTradeNo: 'autotest_20190216081946_82335',
      outRefundNo: 'REF4200000263201902167700963919',
      amount: 1n,
      fee: 0n,
      currency: 'CNY',
      status: 'succeeded',
      occurredAt: new Date('2019-02-18T21:01:46Z'),
      lineNumber: 2,
    });
    // 0.03 yuan with a fee of 0.01000: three fen and one fen.
    expect(records[2]).toMatchObject({ kind: 'payment', amount: 3n, fee: 1n, outTradeNo: 'autotest_20190219015232_89201', lineNumber: 4 });
  });

  it('checks the SHA1 the download API gives, when given', async () => {
    const sha1 = createHash('sha1').update(sharedBytes).digest('hex');
    const { summary } = await collectBill(parseBillFile('wechatpay', sharedBill, { expectedSha1: sha1.toUpperCase() }));
    expect(summary.hash).toEqual({ algorithm: 'SHA1', value: sha1 });
    const wrong = await failure(sharedBill, { expectedSha1: '0'.repeat(40) });
    expect(wrong.code).toBe('hash_mismatch');
  });

  it('reads the bill gzipped as it is with tar_type GZIP, hashing the bill itself', async () => {
    const sha1 = createHash('sha1').update(sharedBytes).digest('hex');
    const { records } = await collectBill(parseBillFile('wechatpay', variant('bill.csv.gz', gzipSync(sharedBytes)), { expectedSha1: sha1 }));
    expect(records).toHaveLength(45);
  });
});

describe('broken WeChat Pay bills are refused with the line named', () => {
  it('a summary total that its lines do not add up to', async () => {
    const error = await failure(variant('total.csv', edited('`45.0,`0.47,`0.14', '`45.0,`0.48,`0.14')));
    expect(error.code).toBe('inconsistent');
    expect(error.lineNumber).toBe(48);
    expect(error.message).toContain('应结订单总金额');
  });

  it('a line that was altered after the summary was made', async () => {
    const error = await failure(variant('altered.csv', edited('`NATIVE,`SUCCESS,`OTHERS,`CNY,`0.03,`0.00,`0,`0,`0.00,`0.00,`,`,`autotest,`,`0.01000,`39.00%,`0.03,`0.00,`\r\n`2019-02-19 18:19:32', '`NATIVE,`SUCCESS,`OTHERS,`CNY,`0.03,`0.00,`0,`0,`0.00,`0.00,`,`,`autotest,`,`0.02000,`39.00%,`0.03,`0.00,`\r\n`2019-02-19 18:19:32')));
    expect(error.code).toBe('inconsistent');
    expect(error.message).toContain('手续费总金额');
  });

  it('an amount that is not a number', async () => {
    const error = await failure(variant('amount.csv', edited('`autotest_20190219181930_76386,`oHkLxt5HnHcBDewv4dLc8xivG1DuE,`JSAPI,`SUCCESS,`OTHERS,`CNY,`0.01', '`autotest_20190219181930_76386,`oHkLxt5HnHcBDewv4dLc8xivG1DuE,`JSAPI,`SUCCESS,`OTHERS,`CNY,`0.0l')));
    expect(error.code).toBe('malformed');
    expect(error.lineNumber).toBe(5);
  });

  it('a row with a cell too few', async () => {
    const error = await failure(variant('cells.csv', edited('`autotest_20190219181930_76386,`oHkLxt5HnHcBDewv4dLc8xivG1DuE,', '`autotest_20190219181930_76386,')));
    expect(error.message).toMatch(/line 5: 26 cells where the header has 27/);
  });

  it('a file cut off before its summary', async () => {
    const text = sharedBytes.toString('utf8');
    const error = await failure(variant('cut.csv', text.slice(0, text.indexOf('总交易单数'))));
    expect(error.message).toContain('without its summary rows');
  });

  it.each(['MAYBE', 'toString'])('a status word it does not know: %s', async (word) => {
    const error = await failure(variant(`status-${word}.csv`, edited('`autotest_20190219181930_76386,`oHkLxt5HnHcBDewv4dLc8xivG1DuE,`JSAPI,`SUCCESS', `\`autotest_20190219181930_76386,\`oHkLxt5HnHcBDewv4dLc8xivG1DuE,\`JSAPI,\`${word}`)));
    expect(error).toMatchObject({ code: 'unsupported', lineNumber: 5 });
  });

  it('bytes that are not UTF-8', async () => {
    const broken = Buffer.concat([sharedBytes.subarray(0, 400), Buffer.from([0xff, 0xfe]), sharedBytes.subarray(402)]);
    const error = await failure(variant('bytes.csv', broken));
    expect(error.message).toContain('not valid UTF-8');
  });
});

describe('five-place fees round half-up to the fen', () => {
  it.each([
    ['0.00000', 0n],
    ['0.00499', 0n],
    ['0.00500', 1n],
    ['0.01000', 1n],
    ['0.01499', 1n],
    ['0.01500', 2n],
    ['-0.00500', -1n],
    ['-0.00499', 0n],
    ['12.34567', 1235n],
  ])('%s yuan is %d fen', (text, fen) => {
    expect(decimalToMinorHalfUp(text)).toBe(fen);
  });
});

describe('lines that moved no money', () => {
  // The shared bill's first refund row (line 2), up to its 退款状态, and its one-fen payment row (line 5), up to its 交易状态.
  const refundRow = '`REF4200000263201902167700963919,`0.01,`0.00,`ORIGINAL,`SUCCESS';
  const paymentRow = '`autotest_20190219181930_76386,`oHkLxt5HnHcBDewv4dLc8xivG1DuE,`JSAPI,`SUCCESS';
  const withStatus = (row: string, word: string) => variant(`${word}-${row.length}.csv`, edited(row, row.replace(/SUCCESS$/, word)));

  it.each([
    ['CLOSED', 'failed'],
    ['REFUNDCLOSE', 'failed'],
    ['FAIL', 'failed'],
    ['PROCESSING', 'pending'],
    ['ABNORMAL', 'pending'],
    ['CHANGE', 'pending'],
  ] as const)('a refund %s is %s: listed, checked against the file’s totals, and left out of the money totals and the net', async (word, status) => {
    const { records, summary } = await collectBill(parseBillFile('wechatpay', withStatus(refundRow, word)));
    expect(records[0]).toMatchObject({ kind: 'refund', outRefundNo: 'REF4200000263201902167700963919', amount: 1n, status });
    expect(summary.lineCount).toBe(45);
    expect(summary.refunds).toEqual({ count: 13, amount: 13n, fee: 0n });
    expect(summary.netAmount).toBe(47n - 13n - 8n);
    // The file's own total still counts the row: it states what each row says, whatever its status.
    expect(summary.checks.find((check) => check.name === '退款总金额')).toMatchObject({ stated: 14n, computed: 14n });
  });

  it('a payment REVOKED is listed and left out of the money totals and the net', async () => {
    const { records, summary } = await collectBill(parseBillFile('wechatpay', withStatus(paymentRow, 'REVOKED')));
    expect(records.find((record) => record.lineNumber === 5)).toMatchObject({ kind: 'payment', amount: 1n, status: 'failed' });
    expect(summary.lineCount).toBe(45);
    expect(summary.payments).toEqual({ count: 30, amount: 46n, fee: 8n });
    expect(summary.netAmount).toBe(46n - 14n - 8n);
  });

  it('reads every refund status of the API exactly as the connector does', async () => {
    for (const word of wechatpayRefundStatuses) {
      const { records } = await collectBill(parseBillFile('wechatpay', withStatus(refundRow, word)));
      expect({ word, status: records[0]!.status }).toEqual({ word, status: refundStatusMap[word] });
    }
  });
});
