import type { BillRecord, BillSummary } from '../bill.types.js';

/**
 * The JSON shapes `fen bill parse` prints: snake_case, amounts as integers of
 * minor units. Bigints are written as bare integer literals, so a total of a
 * million lines stays exact even past 2^53.
 */

const bigintMarker = '\u0000bigint:';

export function jsonWithBigints(value: unknown): string {
  const text = JSON.stringify(value, (_key, item: unknown) => (typeof item === 'bigint' ? `${bigintMarker}${item.toString()}` : item));
  return text.replace(/"\\u0000bigint:(-?\d+)"/g, '$1');
}

export function billRecordJson(record: BillRecord): Record<string, unknown> {
  return {
    kind: record.kind,
    channel_trade_no: record.channelTradeNo,
    out_trade_no: record.outTradeNo,
    ...(record.outRefundNo === undefined ? {} : { out_refund_no: record.outRefundNo }),
    amount: record.amount,
    fee: record.fee,
    currency: record.currency,
    status: record.status,
    occurred_at: record.occurredAt.toISOString(),
    line: record.lineNumber,
  };
}

export function billSummaryJson(summary: BillSummary): Record<string, unknown> {
  const side = (totals: BillSummary['payments']) => ({ count: totals.count, amount: totals.amount, fee: totals.fee });
  return {
    kind: 'summary',
    channel: summary.channel,
    format: summary.format,
    currency: summary.currency,
    lines: summary.lineCount,
    payments: side(summary.payments),
    refunds: side(summary.refunds),
    net_amount: summary.netAmount,
    ...(summary.account === undefined ? {} : { account: summary.account }),
    ...(summary.period === undefined ? {} : { period: { start: summary.period.start.toISOString(), end: summary.period.end.toISOString() } }),
    lines_outside_period: summary.linesOutsidePeriod,
    // Each total as the file states it beside the same total computed from the lines.
    checks: summary.checks.map((check) => ({ name: check.name, source: check.source, stated: check.stated, computed: check.computed })),
    ...(summary.hash === undefined ? {} : { hash: { type: summary.hash.algorithm, value: summary.hash.value, verified: true } }),
  };
}
