import { createHash } from 'node:crypto';
import { refundStatusMap } from '../../channels/wechatpay/status-map.js';
import { isCurrency } from '../../platform/money.js';
import { BillFormatError, type BillLineStatus, type BillParse, type BillRecord, type BillSummary } from '../bill.types.js';
import { ColumnMap } from './columns.js';
import { absolute, CsvRecordAssembler, decimalToCount, decimalToMinor, decimalToMinorHalfUp, decimalToScaled, parseBeijingDateTime, readLineBatches } from './text.js';
import { BillTotals } from './totals.js';

/**
 * WeChat Pay's trade bill (GET /v3/bill/tradebill, bill_type ALL): UTF-8 with
 * a BOM, CRLF, a header row, one row per payment (交易状态 SUCCESS, REVOKED, …)
 * or refund (交易状态 REFUND, with 微信退款单号 and 退款状态), every data cell
 * prefixed with a backtick so spreadsheets keep long numbers as text, then a
 * summary header row (总交易单数, 应结订单总金额, …) and its one row of values.
 *
 * Fees: the 手续费 column has five decimal places (0.01000). A record's fee
 * is that exact decimal rounded to fen half-up on its magnitude (0.00500 →
 * 1 fen, 0.00499 → 0). WeChat's 手续费总金额 has two places; it is accepted
 * when it equals the sum of the rounded line fees or the exact sum rounded
 * half-up (the shared test bill satisfies both: eight fees of 0.01000 and
 * thirty-seven of 0.00000 against 0.08). Refund rows hand fees back, which
 * WeChat writes negative; records carry magnitudes and the totals are
 * compared signed.
 */

const feeScale = 5;

const detailColumns = {
  required: {
    交易时间: 'time',
    微信订单号: 'transactionId',
    商户订单号: 'outTradeNo',
    交易状态: 'tradeState',
    货币种类: 'currency',
    应结订单金额: 'settlementAmount',
    微信退款单号: 'refundId',
    商户退款单号: 'outRefundNo',
    退款金额: 'refundAmount',
    退款状态: 'refundStatus',
    手续费: 'fee',
  },
  optional: { 订单金额: 'orderAmount', 申请退款金额: 'requestedRefundAmount', 充值券退款金额: 'rechargeCouponRefund' },
} as const;

type DetailColumn =
  | (typeof detailColumns)['required'][keyof (typeof detailColumns)['required']]
  | (typeof detailColumns)['optional'][keyof (typeof detailColumns)['optional']];

/** Summary columns, each with the detail column it totals. */
const summaryColumns = [
  { header: '应结订单总金额', column: 'settlementAmount' },
  { header: '退款总金额', column: 'refundAmount' },
  { header: '充值券退款总金额', column: 'rechargeCouponRefund' },
  { header: '订单总金额', column: 'orderAmount' },
  { header: '申请退款总金额', column: 'requestedRefundAmount' },
] as const satisfies { header: string; column: DetailColumn }[];

type SummedColumn = (typeof summaryColumns)[number]['column'];

const paymentStatuses: Record<string, BillLineStatus> = {
  SUCCESS: 'succeeded',
  REVOKED: 'failed',
  USERPAYING: 'pending',
  CLOSED: 'failed',
  NOTPAY: 'failed',
  PAYERROR: 'failed',
};

/**
 * 退款状态: the API's words read exactly as the connector reads them (its
 * status map decides, so a bill and a refund query never disagree about the
 * same refund), and the older words of API v2 that bills may still carry.
 * ABNORMAL is not final: WeChat Pay has taken the money from the merchant's
 * balance but could not pay it back to the card, and it waits in WeChat Pay's
 * intermediate account until the merchant sends it to the payer or back to
 * its own bank account (发起异常退款) — so `pending`, never `failed`. CHANGE is
 * v2's word for the same state; FAIL and REFUNDCLOSE are v2's final failures.
 */
const refundStatuses: Record<string, BillLineStatus> = {
  ...refundStatusMap,
  CHANGE: refundStatusMap.ABNORMAL,
  FAIL: 'failed',
  FAILED: 'failed',
  REFUNDCLOSE: 'failed',
};

function stripBacktick(cell: string): string {
  return cell.charCodeAt(0) === 96 /* ` */ ? cell.slice(1) : cell;
}

class TradeBillReader {
  private columns: ColumnMap<DetailColumn> | undefined;
  private summaryHeader: { cells: string[]; lineNumber: number } | undefined;
  private summaryRow: { cells: string[]; lineNumber: number } | undefined;
  private readonly assembler: CsvRecordAssembler;
  readonly totals: BillTotals;
  /** Signed column sums exactly as written, in fen; the fee both rounded per line and exact (10^-5 yuan). */
  private readonly sums = new Map<SummedColumn, bigint>();
  private feeRounded = 0n;
  private feeExact = 0n;

  constructor(readonly file: string) {
    this.assembler = new CsvRecordAssembler(file);
    this.totals = new BillTotals('wechatpay', file);
  }

  accept(rawLine: string, lineNumber: number): BillRecord | undefined {
    const line = lineNumber === 1 && rawLine.charCodeAt(0) === 0xfeff ? rawLine.slice(1) : rawLine;
    if (!this.assembler.isOpen && line.trim() === '') return undefined;
    if (this.summaryRow) throw new BillFormatError('malformed', this.file, lineNumber, 'a line after the summary row');
    const record = this.assembler.push(line, lineNumber);
    if (!record) return undefined;
    const first = record.cells[0]?.trim();
    if (!this.columns) {
      this.columns = ColumnMap.from(record.cells, detailColumns, { file: this.file, lineNumber: record.lineNumber });
      return undefined;
    }
    if (this.summaryHeader) {
      this.summaryRow = { cells: record.cells.map(stripBacktick), lineNumber: record.lineNumber };
      return undefined;
    }
    if (first === '总交易单数') {
      this.summaryHeader = { cells: record.cells, lineNumber: record.lineNumber };
      return undefined;
    }
    return this.row(record.cells.map(stripBacktick), record.lineNumber);
  }

  private amount(text: string, lineNumber: number, what: string): bigint {
    const value = decimalToMinor(text === '' ? '0' : text);
    if (value === undefined) throw new BillFormatError('malformed', this.file, lineNumber, `${what} is not an amount in yuan: ${JSON.stringify(text)}`);
    return value;
  }

  private add(column: SummedColumn, value: bigint): void {
    this.sums.set(column, (this.sums.get(column) ?? 0n) + value);
  }

  private row(cells: string[], lineNumber: number): BillRecord {
    const columns = this.columns!;
    if (cells.length !== columns.width) throw new BillFormatError('malformed', this.file, lineNumber, `${cells.length} cells where the header has ${columns.width}`);
    const cell = (key: DetailColumn) => columns.cell(cells, key);
    const tradeState = cell('tradeState');
    const refundId = cell('refundId');
    const kind = tradeState === 'REFUND' ? 'refund' : 'payment';
    if (kind === 'payment' && refundId !== '' && refundId !== '0') {
      throw new BillFormatError('malformed', this.file, lineNumber, `a ${tradeState} row carries refund number ${refundId}`);
    }
    const statusWord = kind === 'refund' ? cell('refundStatus') : tradeState;
    const statuses = kind === 'refund' ? refundStatuses : paymentStatuses;
    // Own keys only: a word such as "toString" must be refused like any other unknown word, not found on the prototype.
    const status = Object.hasOwn(statuses, statusWord) ? statuses[statusWord] : undefined;
    if (!status) throw new BillFormatError('unsupported', this.file, lineNumber, `${kind} status ${JSON.stringify(statusWord)} is not one this parser knows`);
    const currency = cell('currency');
    if (!isCurrency(currency)) throw new BillFormatError('unsupported', this.file, lineNumber, `currency ${JSON.stringify(currency)}`);
    const occurredAt = parseBeijingDateTime(cell('time'));
    if (!occurredAt) throw new BillFormatError('malformed', this.file, lineNumber, `交易时间 is not a time: ${JSON.stringify(cell('time'))}`);
    const values = {} as Record<SummedColumn, bigint>;
    for (const { column } of summaryColumns) {
      values[column] = this.amount(cell(column), lineNumber, column);
      this.add(column, values[column]);
    }
    const feeText = cell('fee') || '0';
    const feeExact = decimalToScaled(feeText, feeScale);
    const fee = decimalToMinorHalfUp(feeText);
    if (feeExact === undefined || fee === undefined) throw new BillFormatError('malformed', this.file, lineNumber, `手续费 is not an amount: ${JSON.stringify(feeText)}`);
    this.feeExact += feeExact;
    this.feeRounded += fee;
    const record: BillRecord = {
      kind,
      channelTradeNo: cell('transactionId'),
      outTradeNo: cell('outTradeNo'),
      outRefundNo: kind === 'refund' ? cell('outRefundNo') || undefined : undefined,
      // Fen's amounts are what was asked: the order total, the refund requested.
      amount: absolute(kind === 'payment' ? (columns.has('orderAmount') ? values.orderAmount : values.settlementAmount) : columns.has('requestedRefundAmount') ? values.requestedRefundAmount : values.refundAmount),
      fee: absolute(fee),
      currency,
      status,
      occurredAt,
      lineNumber,
    };
    if (record.channelTradeNo === '') throw new BillFormatError('malformed', this.file, lineNumber, '微信订单号 is empty');
    this.totals.add(record, undefined);
    return record;
  }

  finish(hash: BillSummary['hash']): BillSummary {
    this.assembler.finish();
    if (!this.summaryHeader || !this.summaryRow) throw new BillFormatError('malformed', this.file, undefined, 'the file ends without its summary rows (truncated?)');
    const { cells: headers, lineNumber: headerLine } = this.summaryHeader;
    const { cells: values, lineNumber } = this.summaryRow;
    if (values.length !== headers.length) throw new BillFormatError('malformed', this.file, lineNumber, `${values.length} summary values for ${headers.length} summary columns`);
    const stated = new Map(headers.map((header, index) => [header.trim(), values[index]!.trim()]));
    const source = { file: this.file, lineNumber };
    const count = decimalToCount(stated.get('总交易单数') ?? '');
    if (count === undefined) throw new BillFormatError('malformed', this.file, lineNumber, `总交易单数 is not a count`);
    this.totals.check('总交易单数', source, count, BigInt(this.totals.lineCount));
    for (const { header, column } of summaryColumns) {
      const text = stated.get(header);
      if (text === undefined) continue;
      this.totals.check(header, source, this.amount(text, lineNumber, header), this.sums.get(column) ?? 0n);
    }
    this.checkFee(stated.get('手续费总金额'), source, headerLine);
    return this.totals.summary({ format: 'wechatpay_tradebill', defaultCurrency: 'CNY', hash });
  }

  private checkFee(text: string | undefined, source: { file: string; lineNumber: number }, headerLine: number): void {
    if (text === undefined) throw new BillFormatError('malformed', this.file, headerLine, 'the summary has no 手续费总金额');
    const stated = this.amount(text, source.lineNumber, '手续费总金额');
    const exactRounded = decimalToMinorHalfUp(formatScaled(this.feeExact, feeScale))!;
    // Either rounding WeChat may have used is accepted; anything else is reported against the per-line sum.
    const computed = stated === exactRounded ? exactRounded : this.feeRounded;
    this.totals.check('手续费总金额', source, stated, computed);
  }
}

/** A value in units of 10^-scale as a decimal string, so it can go through the same rounding as a cell. */
function formatScaled(value: bigint, scale: number): string {
  const magnitude = absolute(value).toString().padStart(scale + 1, '0');
  return `${value < 0n ? '-' : ''}${magnitude.slice(0, -scale)}.${magnitude.slice(-scale)}`;
}

/**
 * Parses a trade bill (UTF-8 bytes) as a stream. With `expectedSha1` (the
 * hash_value WeChat's download API returns beside hash_type SHA1), the bytes
 * must hash to it.
 */
export async function* parseWechatpayTradeBill(
  source: AsyncIterable<Uint8Array>,
  options: { file: string; expectedSha1?: string },
): BillParse {
  const reader = new TradeBillReader(options.file);
  const hash = options.expectedSha1 === undefined ? undefined : createHash('sha1');
  const batches = readLineBatches(source, { encoding: 'utf8', file: options.file, onBytes: hash ? (chunk) => hash.update(chunk) : undefined });
  for await (const batch of batches) {
    const records: BillRecord[] = [];
    for (let index = 0; index < batch.lines.length; index += 1) {
      const record = reader.accept(batch.lines[index]!, batch.firstLineNumber + index);
      if (record) records.push(record);
    }
    if (records.length > 0) yield records;
  }
  let hashResult: BillSummary['hash'];
  if (hash && options.expectedSha1 !== undefined) {
    const actual = hash.digest('hex');
    if (actual !== options.expectedSha1.toLowerCase()) {
      throw new BillFormatError('hash_mismatch', options.file, undefined, `SHA1 of the file is ${actual}, the channel said ${options.expectedSha1}`);
    }
    hashResult = { algorithm: 'SHA1', value: actual };
  }
  return reader.finish(hashResult);
}
