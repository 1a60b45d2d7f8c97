import { describe, expect, it } from 'vitest';
import { money } from '../../src/platform/money.js';
import { addDays, beijingDateOf, isBillDate } from '../../src/reconciliation/index.js';
import { csvCell, differencesCsv } from '../../src/reconciliation/csv.js';
import { lineRow } from '../../src/reconciliation/matching.js';

/** The small pieces of the matching that need no database: CSV cells, the line format lines travel in, Beijing dates. */
describe('the differences CSV', () => {
  it('quotes what must be quoted and neutralises formulas, but not negative amounts', () => {
    expect(csvCell('plain')).toBe('plain');
    expect(csvCell('a,b')).toBe('"a,b"');
    expect(csvCell('say "hi"')).toBe('"say ""hi"""');
    expect(csvCell('=HYPERLINK("x")')).toBe(`"'=HYPERLINK(""x"")"`);
    expect(csvCell('@sum')).toBe("'@sum");
    expect(csvCell(-2500n)).toBe('-2500');
    expect(csvCell(null)).toBe('');
    expect(csvCell(new Date('2026-01-14T01:02:03.000Z'))).toBe('2026-01-14T01:02:03.000Z');
  });

  it('writes a header with a BOM only when asked, CRLF line ends', () => {
    expect(differencesCsv([], { header: true })).toMatch(/^\uFEFFid,batch_id,bill_date,kind,status,.*,entry_id\r\n$/);
    expect(differencesCsv([], { header: false })).toBe('');
  });
});

describe('bill lines on their way to PostgreSQL', () => {
  const line = {
    kind: 'refund' as const,
    outTradeNo: 'pay_1',
    outRefundNo: 'ref\t1\n',
    channelTradeNo: 'back\\slash',
    amount: money(1234n, 'CNY'),
    fee: money(7n, 'CNY'),
    status: 'succeeded' as const,
    occurredAt: new Date(1_768_320_000_000),
    lineNumber: 42,
  };

  it('are one row of ten tab-separated fields, whatever the file put in an identifier', () => {
    const row = lineRow(line);
    expect(row.split('\t')).toEqual(['refund', 'back slash', 'pay_1', 'ref 1 ', '1234', '7', 'CNY', 'succeeded', '1768320000000', '42']);
    expect(row).not.toMatch(/[\n\r\\]/);
  });
});

describe('Beijing dates', () => {
  it('fall on the Beijing day, not the UTC one', () => {
    expect(beijingDateOf(new Date('2026-01-13T16:00:00.000Z'))).toBe('2026-01-14');
    expect(beijingDateOf(new Date('2026-01-13T15:59:59.999Z'))).toBe('2026-01-13');
    expect(addDays('2026-02-28', 1)).toBe('2026-03-01');
    expect(addDays('2026-01-01', -1)).toBe('2025-12-31');
    expect(isBillDate('2026-02-29')).toBe(false);
    expect(isBillDate('2024-02-29')).toBe(true);
    expect(isBillDate('2026-1-1')).toBe(false);
  });
});
