import { rm } from 'node:fs/promises';
import type { BillLine, ChannelBill, ChannelBillTotals } from '../../channels/index.js';
import { money } from '../../platform/money.js';
import { BillFormatError, type BillChannel, type BillRecord, type BillSummary } from '../bill.types.js';
import { parseBillFile, type ParseBillFileOptions } from './files.js';
import { beijingDayOf } from './text.js';

/**
 * A bill file a connector has downloaded, as the connector interface's
 * ChannelBill: records become BillLines (Money), the summary the totals, and
 * the file must say it covers the day that was asked for.
 */

function billLineOf(record: BillRecord): BillLine {
  return {
    kind: record.kind,
    outTradeNo: record.outTradeNo,
    outRefundNo: record.outRefundNo,
    channelTradeNo: record.channelTradeNo,
    amount: money(record.amount, record.currency),
    fee: money(record.fee, record.currency),
    status: record.status,
    occurredAt: record.occurredAt,
    lineNumber: record.lineNumber,
  };
}

function totalsOf(summary: BillSummary): ChannelBillTotals {
  const side = (totals: BillSummary['payments']) => ({ count: totals.count, amount: money(totals.amount, summary.currency), fee: money(totals.fee, summary.currency) });
  return {
    lineCount: summary.lineCount,
    payments: side(summary.payments),
    refunds: side(summary.refunds),
    netAmount: money(summary.netAmount, summary.currency),
    linesOutsidePeriod: summary.linesOutsidePeriod,
  };
}

/** A file that names its period must name the day asked for: a bill of another day would match nothing and look like a day of differences. */
function checkPeriod(summary: BillSummary, billDate: string): void {
  const day = beijingDayOf(billDate);
  if (!summary.period || !day) return;
  if (summary.period.start.getTime() !== day.start.getTime() || summary.period.end.getTime() !== day.end.getTime()) {
    throw new BillFormatError('inconsistent', summary.format, undefined, `the bill covers ${summary.period.start.toISOString()} to ${summary.period.end.toISOString()}, not ${billDate}`);
  }
}

export function channelBillFromFile(input: {
  channel: BillChannel;
  billDate: string;
  filePath: string;
  options?: ParseBillFileOptions;
  /** Removes the file (and its folder); called by discard(). */
  remove?: () => Promise<void>;
}): ChannelBill {
  let started = false;
  return {
    billDate: input.billDate,
    filePath: input.filePath,
    async *lines() {
      if (started) throw new Error('a downloaded bill can be read once');
      started = true;
      const parse = parseBillFile(input.channel, input.filePath, input.options);
      for (;;) {
        const step = await parse.next();
        if (step.done) {
          checkPeriod(step.value, input.billDate);
          return totalsOf(step.value);
        }
        yield step.value.map(billLineOf);
      }
    },
    discard: input.remove ?? (() => rm(input.filePath, { force: true })),
  };
}
