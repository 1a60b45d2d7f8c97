import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { runBillParse, type BillCommandOutput } from '../../src/cli/bill.js';
import { jsonWithBigints } from '../../src/reconciliation/bills/index.js';
import { alipayFixtureAccount, fixtureDirectory, unionpayFixtureName } from '../fixtures/bills/generate.js';
import { repositoryRoot } from '../helpers/process.js';

/**
 * `fen bill parse`: one JSON object per line, then the summary; exit 1 and a
 * message naming the line for a bad file, exit 2 for a usage mistake.
 */

const sharedBill = path.resolve(repositoryRoot, '../shared/testdata/wechatpay/tradebill-ALL.csv');

function capture(): BillCommandOutput & { out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return {
    stdout: { write: (text: string) => ((out += text), true), once: () => undefined },
    stderr: { write: (text: string) => ((err += text), true) },
    out: () => out,
    err: () => err,
  };
}

describe('fen bill parse', () => {
  it('prints the 45 lines of the shared WeChat Pay bill and then its summary', async () => {
    const output = capture();
    expect(await runBillParse(['--channel', 'wechatpay', sharedBill], output)).toBe(0);
    const objects = output.out().trimEnd().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(objects).toHaveLength(46);
    expect(objects[0]).toEqual({
      kind: 'refund',
      channel_trade_no: '4200000263201902167700134212',
      out_trade_no: 'autotest_20190216081946_82335',
      out_refund_no: 'REF4200000263201902167700963919',
      amount: 1,
      fee: 0,
      currency: 'CNY',
      status: 'succeeded',
      occurred_at: '2019-02-18T21:01:46.000Z',
      line: 2,
    });
    expect(objects[2]).not.toHaveProperty('out_refund_no');
    expect(objects[45]).toMatchObject({ kind: 'summary', lines: 45, payments: { count: 31, amount: 47, fee: 8 }, refunds: { count: 14, amount: 14, fee: 0 } });
    expect(output.err()).toBe('');
  });

  it('prints Alipay’s zip and UnionPay’s ZM file', async () => {
    const alipay = capture();
    expect(await runBillParse(['--channel', 'alipay', path.join(fixtureDirectory, `${alipayFixtureAccount}_20260114.csv.zip`)], alipay)).toBe(0);
    expect(alipay.out().trimEnd().split('\n')).toHaveLength(6);
    const unionpay = capture();
    expect(await runBillParse(['--channel', 'unionpay', path.join(fixtureDirectory, unionpayFixtureName)], unionpay)).toBe(0);
    expect(JSON.parse(unionpay.out().trimEnd().split('\n').at(-1)!)).toMatchObject({ kind: 'summary', account: '777290058110048', lines: 4 });
  });

  it('exits 1 naming the file and line of a malformed or inconsistent file', async () => {
    const output = capture();
    expect(await runBillParse(['--channel', 'alipay', path.join(fixtureDirectory, 'alipay-detail-wrong-total.csv')], output)).toBe(1);
    expect(output.err()).toBe('fen bill parse: alipay-detail-wrong-total.csv: line 12: 交易合计 count: the file states 2 but its lines add up to 3\n');
  });

  it('exits 2 for a usage mistake or a file it cannot read', async () => {
    for (const args of [[], ['--channel', 'paypal', 'x.csv'], ['--channel', 'alipay'], ['--channel', 'alipay', 'a', 'b'], ['--bogus']]) {
      const output = capture();
      expect(await runBillParse(args, output)).toBe(2);
      expect(output.err()).toContain('usage: fen bill parse');
    }
    const missing = capture();
    expect(await runBillParse(['--channel', 'wechatpay', '/nonexistent/bill.csv'], missing)).toBe(2);
    expect(missing.err()).toContain('cannot read /nonexistent/bill.csv');
  });

  it('sets the exit status of the real command', async () => {
    const run = promisify(execFile);
    const ok = await run(process.execPath, ['bin/fen.mjs', 'bill', 'parse', '--channel', 'wechatpay', sharedBill], { cwd: repositoryRoot });
    expect(ok.stdout.trimEnd().split('\n')).toHaveLength(46);
    const failed = await run(process.execPath, ['bin/fen.mjs', 'bill', 'parse', '--channel', 'alipay', path.join(fixtureDirectory, 'alipay-detail-truncated.csv')], { cwd: repositoryRoot }).then(
      () => undefined,
      (error: { code: number; stderr: string }) => error,
    );
    expect(failed?.code).toBe(1);
    expect(failed?.stderr).toContain('line 10: the file ends before the 业务明细列表结束 line');
  });

  it('writes bigints as exact integers, even past 2^53', () => {
    expect(jsonWithBigints({ amount: 9_007_199_254_740_993n, nested: [-5n], text: 'x' })).toBe('{"amount":9007199254740993,"nested":[-5],"text":"x"}');
  });
});
