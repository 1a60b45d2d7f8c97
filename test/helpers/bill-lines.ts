import { expect } from 'vitest';
import type { BillLine } from '../../src/channels/index.js';

/** A bill line as the day's tests state it: what Fen must read from the channel's file. */
export interface ExpectedBillLine {
  kind: string;
  outTradeNo: string;
  amount: bigint;
  fee: bigint;
  outRefundNo: string | undefined;
  at: Date;
}

const sortKey = (line: { kind: string; outTradeNo: string; outRefundNo?: string | undefined }) => `${line.kind}/${line.outTradeNo}/${line.outRefundNo ?? ''}`;
const byKey = (left: Parameters<typeof sortKey>[0], right: Parameters<typeof sortKey>[0]) => sortKey(left).localeCompare(sortKey(right));

/**
 * The parsed lines are exactly the expected ones, in any order, each a
 * succeeded CNY line carrying the channel's own trade number for its order.
 */
export function expectBillLines(lines: BillLine[], expected: ExpectedBillLine[], channelTradeNos: Record<string, string | undefined>): void {
  expect(
    lines.map((line) => ({ kind: line.kind, outTradeNo: line.outTradeNo, amount: line.amount.amount, fee: line.fee.amount, outRefundNo: line.outRefundNo, at: line.occurredAt })).sort(byKey),
  ).toEqual([...expected].sort(byKey));
  for (const line of lines) {
    expect(line.channelTradeNo).toBe(channelTradeNos[line.outTradeNo]);
    expect(line).toMatchObject({ status: 'succeeded', amount: { currency: 'CNY' } });
  }
}
