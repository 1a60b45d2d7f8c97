import { describe, expect, it } from 'vitest';
import { money } from '../../src/platform/money.js';
import { lineRow, workTablesOf } from '../../src/reconciliation/matching.js';

/** The pieces of the matching that need no database: the COPY row of a line, the names of a batch's work tables. */
describe('a bill line as a COPY row', () => {
  const line = {
    kind: 'payment' as const,
    outTradeNo: 'pay_1',
    outRefundNo: undefined,
    channelTradeNo: '2026011422001400000000000001',
    amount: money(1234n, 'CNY'),
    fee: money(7n, 'CNY'),
    status: 'succeeded' as const,
    occurredAt: new Date(1_768_320_000_000),
    lineNumber: 5,
  };

  it('has NULL (\\N) for a missing refund number, never an empty string', () => {
    expect(lineRow(line).split('\t')).toEqual(['payment', '2026011422001400000000000001', 'pay_1', '\\N', '1234', '7', 'CNY', 'succeeded', '1768320000000', '5']);
    expect(lineRow({ ...line, outRefundNo: '' }).split('\t')[3]).toBe('\\N');
  });

  it('keeps a refund number, with what would break the row made a space', () => {
    expect(lineRow({ ...line, kind: 'refund', outRefundNo: 'ref\\1' }).split('\t')[3]).toBe('ref 1');
  });
});

describe('a batch’s work tables', () => {
  it('are named after the batch in schema recon_work', () => {
    expect(workTablesOf('rcb_01kb0000000000000000000000')).toEqual({
      lines: 'recon_work.lines_rcb_01kb0000000000000000000000',
      fen: 'recon_work.fen_rcb_01kb0000000000000000000000',
      kept: 'recon_work.kept_rcb_01kb0000000000000000000000',
    });
  });

  it('refuse anything but a batch id, which becomes part of a table name', () => {
    expect(() => workTablesOf('rcb_1; DROP TABLE payments')).toThrow(/not a batch id/);
  });
});
