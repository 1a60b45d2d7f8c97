import { BillFormatError, type BillParse, type BillRecord, type BillSummary } from '../bill.types.js';
import { ColumnMap } from './columns.js';
import { assertDecodable, beijingDate, CsvRecordAssembler, decimalToCount, decimalToMinor, parseBeijingDateTime, readLineBatches, absolute } from './text.js';
import { BillTotals } from './totals.js';

/**
 * Alipay's trade bill (bill_type=trade, 业务明细): a zip of two GBK CSV files,
 * `<account>_<yyyyMMdd>_业务明细.csv` and `<account>_<yyyyMMdd>_业务明细(汇总).csv`.
 *
 * The detail file: `#` lines (#支付宝业务明细查询, #账号：[…], #起始日期：[…]
 * 终止日期：[…], the dashed 业务明细列表 line), the column header, one row per
 * trade (业务类型 交易) or refund (业务类型 退款), the dashed 业务明细列表结束
 * line, then #交易合计：…, #退款合计：… and #导出时间：[…]. Cells may carry a
 * trailing tab (Alipay's guard against spreadsheets); they are trimmed.
 *
 * Signs: a trade's 订单金额 and 商家实收 are positive and its 服务费 negative;
 * a refund's 订单金额 and 商家实收 are negative and its 服务费 (the fee handed
 * back) positive. The records carry magnitudes and a kind, so a file that
 * signs differently still reads the same; the totals are checked signed, as
 * the file states them.
 */

const detailColumns = {
  required: {
    支付宝交易号: 'tradeNo',
    商户订单号: 'outTradeNo',
    业务类型: 'businessType',
    完成时间: 'completedAt',
    '订单金额（元）': 'orderAmount',
    '商家实收（元）': 'received',
    '服务费（元）': 'serviceFee',
    '退款批次号/请求号': 'refundRequestNo',
  },
  optional: { 创建时间: 'createdAt', '商家优惠（元）': 'merchantDiscount' },
} as const;

type DetailColumn = (typeof detailColumns)['required'][keyof (typeof detailColumns)['required']] | 'createdAt' | 'merchantDiscount';

const summaryColumns = {
  required: {
    门店编号: 'store',
    交易订单总笔数: 'paymentCount',
    退款订单总笔数: 'refundCount',
    '订单金额（元）': 'orderAmount',
    '商家实收（元）': 'received',
    '服务费（元）': 'serviceFee',
    '实收净额（元）': 'netReceived',
  },
} as const;

type SummaryColumn = (typeof summaryColumns)['required'][keyof (typeof summaryColumns)['required']];

const endMarker = '业务明细列表结束';
const numberPattern = '([+-]?\\d+(?:\\.\\d+)?)';
const paymentFooterPattern = new RegExp(`^#交易合计[：:](\\d+)笔[，,]商家实收共${numberPattern}元(?:[，,]商家优惠共${numberPattern}元)?`);
const refundFooterPattern = new RegExp(`^#退款合计[：:](\\d+)笔[，,]商家实收退款共${numberPattern}元(?:[，,]商家优惠退款共${numberPattern}元)?`);
const accountPattern = /^#账号[：:]\[(\d+)\]/;
const periodPattern = /起始日期[：:]\[(\d{4})年(\d{2})月(\d{2})日 (\d{2}):(\d{2}):(\d{2})\]\s*终止日期[：:]\[(\d{4})年(\d{2})月(\d{2})日 (\d{2}):(\d{2}):(\d{2})\]/;

/** The 合计 row of the summary file, as stated (signed fen). */
export interface AlipayStatedSummary {
  file: string;
  lineNumber: number;
  account: string | undefined;
  paymentCount: bigint;
  refundCount: bigint;
  orderAmount: bigint;
  received: bigint;
  serviceFee: bigint;
  netReceived: bigint;
}

interface FooterTotals {
  lineNumber: number;
  count: bigint;
  received: bigint;
  discount: bigint | undefined;
}

function readPeriod(line: string): { start: Date; end: Date } | undefined {
  const match = periodPattern.exec(line);
  if (!match) return undefined;
  const number = (index: number) => Number(match[index]);
  const start = beijingDate(number(1), number(2), number(3), number(4), number(5), number(6));
  const end = beijingDate(number(7), number(8), number(9), number(10), number(11), number(12));
  return start && end ? { start, end } : undefined;
}

function signedYuan(text: string, file: string, lineNumber: number, what: string): bigint {
  const value = decimalToMinor(text);
  if (value === undefined) throw new BillFormatError('malformed', file, lineNumber, `${what} is not an amount in yuan: ${JSON.stringify(text)}`);
  return value;
}

/** Reads the detail file line by line; `accept` returns a record for each trade or refund row. */
class DetailReader {
  private phase: 'preamble' | 'rows' | 'footer' = 'preamble';
  private columns: ColumnMap<DetailColumn> | undefined;
  private readonly assembler: CsvRecordAssembler;
  readonly totals: BillTotals;
  account: string | undefined;
  period: { start: Date; end: Date } | undefined;
  private paymentFooter: FooterTotals | undefined;
  private refundFooter: FooterTotals | undefined;
  /** Signed sums exactly as the file writes its columns, for comparison with its stated totals. */
  readonly signed = { orderAmount: 0n, paymentReceived: 0n, refundReceived: 0n, paymentDiscount: 0n, refundDiscount: 0n, serviceFee: 0n };

  constructor(readonly file: string) {
    this.assembler = new CsvRecordAssembler(file);
    this.totals = new BillTotals('alipay', file);
  }

  accept(line: string, lineNumber: number): BillRecord | undefined {
    assertDecodable(line, this.file, lineNumber);
    if (!this.assembler.isOpen) {
      if (line.startsWith('#')) {
        this.acceptComment(line, lineNumber);
        return undefined;
      }
      if (line.trim() === '') return undefined;
    }
    if (this.phase === 'footer') throw new BillFormatError('malformed', this.file, lineNumber, `a row after the ${endMarker} line`);
    const record = this.assembler.push(line, lineNumber);
    if (!record) return undefined;
    if (this.phase === 'preamble') {
      this.columns = ColumnMap.from(record.cells, detailColumns, { file: this.file, lineNumber: record.lineNumber });
      this.phase = 'rows';
      return undefined;
    }
    return this.row(record.cells, record.lineNumber);
  }

  private acceptComment(line: string, lineNumber: number): void {
    if (this.phase === 'preamble') {
      this.account = accountPattern.exec(line)?.[1] ?? this.account;
      this.period = readPeriod(line) ?? this.period;
      return;
    }
    if (this.phase === 'rows') {
      if (!line.includes(endMarker)) throw new BillFormatError('malformed', this.file, lineNumber, `a # line inside the detail rows: ${line.slice(0, 40)}`);
      this.assembler.finish();
      this.phase = 'footer';
      return;
    }
    const payment = paymentFooterPattern.exec(line);
    const refund = refundFooterPattern.exec(line);
    const match = payment ?? refund;
    if (!match) return;
    const footer: FooterTotals = {
      lineNumber,
      count: BigInt(match[1]!),
      received: signedYuan(match[2]!, this.file, lineNumber, 'the stated total'),
      discount: match[3] === undefined ? undefined : signedYuan(match[3], this.file, lineNumber, 'the stated discount'),
    };
    if (payment) this.paymentFooter = footer;
    else this.refundFooter = footer;
  }

  private row(cells: string[], lineNumber: number): BillRecord {
    const columns = this.columns!;
    if (cells.length < columns.width) throw new BillFormatError('malformed', this.file, lineNumber, `${cells.length} cells where the header has ${columns.width}`);
    const cell = (key: DetailColumn) => columns.cell(cells, key);
    const businessType = cell('businessType');
    if (businessType !== '交易' && businessType !== '退款') {
      throw new BillFormatError('unsupported', this.file, lineNumber, `业务类型 ${JSON.stringify(businessType)} is neither 交易 nor 退款`);
    }
    const kind = businessType === '交易' ? 'payment' : 'refund';
    const channelTradeNo = cell('tradeNo');
    if (channelTradeNo === '') throw new BillFormatError('malformed', this.file, lineNumber, '支付宝交易号 is empty');
    const timeText = cell('completedAt') || cell('createdAt');
    const occurredAt = parseBeijingDateTime(timeText);
    if (!occurredAt) throw new BillFormatError('malformed', this.file, lineNumber, `完成时间 is not a time: ${JSON.stringify(timeText)}`);
    const orderAmount = signedYuan(cell('orderAmount'), this.file, lineNumber, '订单金额');
    const received = signedYuan(cell('received'), this.file, lineNumber, '商家实收');
    const serviceFee = signedYuan(cell('serviceFee') || '0', this.file, lineNumber, '服务费');
    const discount = columns.has('merchantDiscount') ? signedYuan(cell('merchantDiscount') || '0', this.file, lineNumber, '商家优惠') : 0n;
    this.signed.orderAmount += orderAmount;
    this.signed.serviceFee += serviceFee;
    if (kind === 'payment') {
      this.signed.paymentReceived += received;
      this.signed.paymentDiscount += discount;
    } else {
      this.signed.refundReceived += received;
      this.signed.refundDiscount += discount;
    }
    const outRefundNo = kind === 'refund' ? cell('refundRequestNo') || undefined : undefined;
    const record: BillRecord = {
      kind,
      channelTradeNo,
      outTradeNo: cell('outTradeNo'),
      outRefundNo,
      amount: absolute(orderAmount),
      fee: absolute(serviceFee),
      currency: 'CNY',
      status: 'succeeded',
      occurredAt,
      lineNumber,
    };
    this.totals.add(record, this.period);
    return record;
  }

  /** After the last line: the footer and the summary file must agree with the rows. */
  finish(summary: AlipayStatedSummary | undefined, lastLineNumber: number): BillSummary {
    if (this.phase !== 'footer') {
      throw new BillFormatError('malformed', this.file, lastLineNumber, `the file ends before the ${endMarker} line (truncated?)`);
    }
    const paymentFooter = this.paymentFooter;
    const refundFooter = this.refundFooter;
    if (!paymentFooter || !refundFooter) throw new BillFormatError('malformed', this.file, lastLineNumber, 'the #交易合计 or #退款合计 line is missing');
    this.checkFooter('交易合计 count', '交易合计 商家实收', '交易合计 商家优惠', paymentFooter, this.totals.payments.count, this.signed.paymentReceived, this.signed.paymentDiscount);
    this.checkFooter('退款合计 count', '退款合计 商家实收', '退款合计 商家优惠', refundFooter, this.totals.refunds.count, this.signed.refundReceived, this.signed.refundDiscount);
    if (summary) this.checkSummary(summary);
    return this.totals.summary({ format: summary ? 'alipay_trade_zip' : 'alipay_detail_csv', defaultCurrency: 'CNY', account: this.account, period: this.period });
  }

  private checkFooter(countName: string, receivedName: string, discountName: string, footer: FooterTotals, count: number, received: bigint, discount: bigint): void {
    const source = { file: this.file, lineNumber: footer.lineNumber };
    this.totals.check(countName, source, footer.count, BigInt(count));
    this.totals.check(receivedName, source, footer.received, received);
    if (footer.discount !== undefined) this.totals.check(discountName, source, footer.discount, discount);
  }

  private checkSummary(summary: AlipayStatedSummary): void {
    const source = { file: summary.file, lineNumber: summary.lineNumber };
    if (summary.account !== undefined && this.account !== undefined && summary.account !== this.account) {
      throw new BillFormatError('inconsistent', summary.file, 1, `the summary is for account ${summary.account}, the detail for ${this.account}`);
    }
    this.totals.check('汇总 交易订单总笔数', source, summary.paymentCount, BigInt(this.totals.payments.count));
    this.totals.check('汇总 退款订单总笔数', source, summary.refundCount, BigInt(this.totals.refunds.count));
    this.totals.check('汇总 订单金额', source, summary.orderAmount, this.signed.orderAmount);
    this.totals.check('汇总 商家实收', source, summary.received, this.signed.paymentReceived + this.signed.refundReceived);
    this.totals.check('汇总 服务费', source, summary.serviceFee, this.signed.serviceFee);
    this.totals.check('汇总 实收净额', source, summary.netReceived, this.signed.paymentReceived + this.signed.refundReceived + this.signed.serviceFee);
  }
}

/**
 * Parses the detail file (GBK bytes) as a stream; with `summary` (the 合计
 * row of the summary file) its totals are checked too.
 */
export async function* parseAlipayDetail(
  source: AsyncIterable<Uint8Array>,
  options: { file: string; summary?: AlipayStatedSummary; onBytes?: (chunk: Uint8Array) => void },
): BillParse {
  const reader = new DetailReader(options.file);
  let lastLineNumber = 0;
  for await (const batch of readLineBatches(source, { encoding: 'gbk', file: options.file, onBytes: options.onBytes })) {
    const records: BillRecord[] = [];
    for (let index = 0; index < batch.lines.length; index += 1) {
      lastLineNumber = batch.firstLineNumber + index;
      const record = reader.accept(batch.lines[index]!, lastLineNumber);
      if (record) records.push(record);
    }
    if (records.length > 0) yield records;
  }
  return reader.finish(options.summary, lastLineNumber);
}

/** Reads the small summary file (业务明细(汇总).csv) and returns its 合计 row. */
export async function readAlipaySummary(source: AsyncIterable<Uint8Array>, file: string): Promise<AlipayStatedSummary> {
  let columns: ColumnMap<SummaryColumn> | undefined;
  let account: string | undefined;
  let total: AlipayStatedSummary | undefined;
  const assembler = new CsvRecordAssembler(file);
  for await (const batch of readLineBatches(source, { encoding: 'gbk', file })) {
    for (const [index, line] of batch.lines.entries()) {
      const lineNumber = batch.firstLineNumber + index;
      assertDecodable(line, file, lineNumber);
      if (!assembler.isOpen && line.startsWith('#')) {
        account = accountPattern.exec(line)?.[1] ?? account;
        continue;
      }
      if (!assembler.isOpen && line.trim() === '') continue;
      const record = assembler.push(line, lineNumber);
      if (!record) continue;
      if (!columns) {
        columns = ColumnMap.from(record.cells, summaryColumns, { file, lineNumber });
        continue;
      }
      const summaryColumnsFound = columns;
      const cell = (key: SummaryColumn) => summaryColumnsFound.cell(record.cells, key);
      if (cell('store') !== '合计') continue;
      if (total) throw new BillFormatError('malformed', file, lineNumber, 'a second 合计 row');
      const count = (key: 'paymentCount' | 'refundCount') => {
        const value = decimalToCount(cell(key));
        if (value === undefined) throw new BillFormatError('malformed', file, lineNumber, `${key} is not a count: ${JSON.stringify(cell(key))}`);
        return value;
      };
      const amount = (key: 'orderAmount' | 'received' | 'serviceFee' | 'netReceived') => signedYuan(cell(key) || '0', file, lineNumber, key);
      total = {
        file, lineNumber, account,
        paymentCount: count('paymentCount'), refundCount: count('refundCount'),
        orderAmount: amount('orderAmount'), received: amount('received'), serviceFee: amount('serviceFee'), netReceived: amount('netReceived'),
      };
    }
  }
  assembler.finish();
  if (!total) throw new BillFormatError('malformed', file, undefined, 'the summary file has no 合计 row');
  return total;
}
