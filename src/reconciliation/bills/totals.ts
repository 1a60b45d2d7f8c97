import type { Currency } from '../../platform/money.js';
import { BillFormatError, type BillChannel, type BillCheck, type BillRecord, type BillSummary } from '../bill.types.js';

/**
 * Running totals of the records a parser has produced, and the comparisons of
 * a file's stated totals with them. Every comparison that fails throws, naming
 * the line where the file states the total.
 */
export class BillTotals {
  readonly payments = { count: 0, amount: 0n, fee: 0n };
  readonly refunds = { count: 0, amount: 0n, fee: 0n };
  readonly checks: BillCheck[] = [];
  linesOutsidePeriod = 0;
  private lines = 0;
  private currency: Currency | undefined;

  constructor(
    private readonly channel: BillChannel,
    private readonly file: string,
  ) {}

  /**
   * Counts one record; a bill mixing currencies is refused because its totals
   * would mean nothing. Every line counts in `lineCount`, but only a line that
   * succeeded counts in the payments and refunds (and so in the net): a
   * payment revoked, a refund closed without paying anything back, one still
   * processing or stuck ABNORMAL — WeChat Pay's ALL bill lists them all — is
   * not, or not yet, money that changed hands. Fen books a payment or a refund
   * when it succeeds and reckons a status difference's delta the same way, so
   * counting such a line would leave the fund flow with a drift that no
   * difference explains.
   */
  add(record: BillRecord, period: { start: Date; end: Date } | undefined): void {
    if (this.currency === undefined) this.currency = record.currency;
    else if (record.currency !== this.currency) {
      throw new BillFormatError('unsupported', this.file, record.lineNumber, `currency ${record.currency} in a ${this.currency} bill`);
    }
    this.lines += 1;
    if (record.status === 'succeeded') {
      const side = record.kind === 'payment' ? this.payments : this.refunds;
      side.count += 1;
      side.amount += record.amount;
      side.fee += record.fee;
    }
    const time = record.occurredAt.getTime();
    if (period && (time < period.start.getTime() || time >= period.end.getTime())) this.linesOutsidePeriod += 1;
  }

  get lineCount(): number {
    return this.lines;
  }

  /** Compares one stated total with its computed value; a difference makes the whole file inconsistent. */
  check(name: string, source: { file: string; lineNumber: number }, stated: bigint, computed: bigint): void {
    if (stated !== computed) {
      throw new BillFormatError('inconsistent', source.file, source.lineNumber, `${name}: the file states ${stated} but its lines add up to ${computed}`);
    }
    this.checks.push({ name, source: `${source.file} line ${source.lineNumber}`, stated, computed });
  }

  summary(details: {
    format: string;
    defaultCurrency: Currency;
    account?: string;
    period?: { start: Date; end: Date };
    hash?: BillSummary['hash'];
  }): BillSummary {
    return {
      channel: this.channel,
      format: details.format,
      currency: this.currency ?? details.defaultCurrency,
      lineCount: this.lineCount,
      payments: { ...this.payments },
      refunds: { ...this.refunds },
      netAmount: this.payments.amount - this.refunds.amount - this.payments.fee + this.refunds.fee,
      account: details.account,
      period: details.period,
      linesOutsidePeriod: this.linesOutsidePeriod,
      checks: [...this.checks],
      hash: details.hash,
    };
  }
}
