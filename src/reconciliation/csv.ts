import type { DifferenceRow } from './batches.repository.js';

/**
 * A batch's differences as CSV (RFC 4180, UTF-8 with a BOM so spreadsheet
 * programs read the Chinese text right), one row per difference. Amounts are
 * integers of minor units, as everywhere in Fen. A cell that a spreadsheet
 * would run as a formula (=, +, -, @ first) is prefixed with an apostrophe:
 * bill identifiers come from outside.
 */
export const differenceCsvColumns = [
  'id', 'batch_id', 'bill_date', 'kind', 'status', 'line_kind', 'channel_trade_no', 'out_trade_no', 'out_refund_no', 'payment_id', 'refund_id',
  'merchant_id', 'currency', 'channel_amount', 'local_amount', 'channel_fee', 'expected_fee', 'channel_status', 'local_status', 'delta',
  'occurred_at', 'line_number', 'detail', 'resolution', 'resolution_reason', 'resolved_by', 'resolved_at', 'entry_id',
] as const;

function text(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (value instanceof Date) return value.toISOString();
  return String(value);
}

export function csvCell(value: unknown): string {
  let cell = text(value);
  // A negative amount is a number, not a formula; anything else starting so is neutralised.
  if (/^[=+\-@\t\r]/.test(cell) && !/^-\d+$/.test(cell)) cell = `'${cell}`;
  return /[",\r\n]/.test(cell) ? `"${cell.replaceAll('"', '""')}"` : cell;
}

export function differencesCsv(rows: readonly DifferenceRow[], options: { header: boolean }): string {
  const lines = rows.map((row) => differenceCsvColumns.map((column) => csvCell(row[column])).join(','));
  if (options.header) lines.unshift(`\uFEFF${differenceCsvColumns.join(',')}`);
  return lines.length === 0 ? '' : `${lines.join('\r\n')}\r\n`;
}
