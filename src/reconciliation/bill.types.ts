import type { Currency } from '../platform/money.js';

/**
 * What every channel bill becomes, whatever its wire format: one record per
 * line, amounts in minor units, and a summary that puts the file's own totals
 * beside the totals computed from its lines. The parsers under ./bills turn
 * Alipay's GBK zip, WeChat Pay's backtick CSV and UnionPay's fixed-width file
 * into these; nothing past them knows a bill's format.
 */

export const billChannels = ['alipay', 'wechatpay', 'unionpay'] as const;
export type BillChannel = (typeof billChannels)[number];

export type BillLineKind = 'payment' | 'refund';

/**
 * What the bill says happened to the line. Alipay and UnionPay list only
 * completed business (always `succeeded`); WeChat Pay's ALL bill also lists
 * refunds still processing and payments revoked.
 */
export type BillLineStatus = 'succeeded' | 'pending' | 'failed';

export interface BillRecord {
  /** Told from the line's business type, never from the sign of its amount. */
  kind: BillLineKind;
  /** The channel's number for the payment; for a refund line, the payment it refunds. */
  channelTradeNo: string;
  outTradeNo: string;
  /** Fen's refund number as the channel echoes it; only on refund lines. */
  outRefundNo: string | undefined;
  /** Minor units, never negative: the payment's total or the refund's amount. */
  amount: bigint;
  /** Minor units, never negative: the fee charged (payment) or handed back (refund). */
  fee: bigint;
  currency: Currency;
  status: BillLineStatus;
  occurredAt: Date;
  /** The physical line of the file the record came from (1-based), for people chasing a difference. */
  lineNumber: number;
}

/** One of the file's own totals beside the same total computed from its lines. */
export interface BillCheck {
  name: string;
  /** Where the file states it, e.g. "业务明细.csv line 57". */
  source: string;
  stated: bigint;
  computed: bigint;
}

export interface BillSideTotals {
  count: number;
  amount: bigint;
  fee: bigint;
}

export interface BillSummary {
  channel: BillChannel;
  /** Which layout was read: alipay_trade_zip, alipay_detail_csv, wechatpay_tradebill, unionpay_zm. */
  format: string;
  currency: Currency;
  /** Every line, whatever its status. */
  lineCount: number;
  /** The succeeded payment lines only: a closed or unpaid order moved no money. */
  payments: BillSideTotals;
  /** The succeeded refund lines only: a refund still processing, or closed, moved no money. */
  refunds: BillSideTotals;
  /** What the channel owes for the day, from the succeeded lines: payments − refunds − fees charged + fees handed back. */
  netAmount: bigint;
  /** The account the file is for, as it names itself (Alipay's 账号, UnionPay's merchant code). */
  account: string | undefined;
  /** The period the file says it covers, when it says so. */
  period: { start: Date; end: Date } | undefined;
  /** Lines dated outside that period: legitimate around the cut-off, and the matching's business. */
  linesOutsidePeriod: number;
  /** Every stated total compared; a parser only returns a summary when all of them agree. */
  checks: BillCheck[];
  hash: { algorithm: 'SHA1'; value: string } | undefined;
}

export type BillErrorCode = 'malformed' | 'inconsistent' | 'hash_mismatch' | 'unsupported';

/**
 * A bill that cannot be trusted: malformed (a line that does not parse) or
 * inconsistent (its own totals or hash disagree with its lines). Nothing read
 * from such a file may be used; the message names the file and the line.
 */
export class BillFormatError extends Error {
  override readonly name = 'BillFormatError';

  constructor(
    readonly code: BillErrorCode,
    readonly file: string,
    readonly lineNumber: number | undefined,
    readonly detail: string,
  ) {
    super(`${file}${lineNumber === undefined ? '' : `: line ${lineNumber}`}: ${detail}`);
  }
}

/**
 * A parse in progress: it yields the records of each chunk of the file as it
 * is read (a batch, so a million lines cost a few hundred awaits rather than a
 * million) and returns the summary once the last line has been read and every
 * check has passed. It throws BillFormatError at the first problem, possibly
 * after some batches were yielded — so a consumer keeps nothing it read until
 * the generator has returned.
 */
export type BillParse = AsyncGenerator<BillRecord[], BillSummary, undefined>;

/** Limits that keep a hostile or broken file from taking unbounded memory or time. */
export const billLimits = {
  /** One physical line; real bill lines are a few hundred bytes. */
  lineLengthMax: 64 * 1024,
  /** A quoted cell may span lines; this bounds how many. */
  recordLinesMax: 16,
  /** A downloaded bill file (compressed), and each file inside a zip (uncompressed). */
  fileBytesMax: 4 * 1024 * 1024 * 1024,
  /** The Alipay summary file and other small side files read whole. */
  sideFileBytesMax: 1024 * 1024,
} as const;
