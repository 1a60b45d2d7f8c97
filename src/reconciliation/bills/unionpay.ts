import iconv from 'iconv-lite';
import { BillFormatError, type BillParse, type BillRecord, type BillSummary } from '../bill.types.js';
import { absolute, beijingDate, readByteLineBatches } from './text.js';
import { BillTotals } from './totals.js';

/**
 * UnionPay's merchant reconciliation file, the ZM file of the archive that
 * the file transfer request (txnType 76, fileType 00) returns for a settlement
 * date: `INN<yyMMdd>88ZM_<merId>`, GBK, one transaction per line, no header
 * and no totals. Each line holds the 42 fields of 《全渠道平台接入接口规范 第3
 * 部分 文件接口》 §6.1 at fixed byte widths, each field followed by one space
 * (the layout UnionPay's SDK parses: widths 3,11,11,6,10,19,12,4,2,21,2,32,
 * 2,6,10,13,13,4,15,2,2,6,2,4,32,1,21,15,1,15,32,13,13,8,32,13,13,12,2,1,32,98).
 * Widths are bytes, so a GBK name in 二级商户简称 moves nothing.
 *
 * Amounts: 交易金额 is 12 digits of fen; 商户手续费, 结算金额 and 清算净额
 * are a sign letter and 12 digits — C a credit to the merchant, D a debit.
 * A payment (交易类型 01) settles C with a D fee; a refund (04, or 31 for a
 * same-day cancellation) settles D and hands its fee back C. The file has no
 * totals of its own, so every line is checked on its own instead:
 * 交易金额 = |结算金额|, 结算金额's sign matches the kind, 清算净额 =
 * 结算金额 + 商户手续费 (signed), and 商户代码 is the file's merchant.
 * docs/reconciliation.md has the table.
 */

export const unionpayZmFields = [
  ['transactionCode', 3], ['acquirerCode', 11], ['forwarderCode', 11], ['traceNo', 6], ['transmissionTime', 10],
  ['account', 19], ['amount', 12], ['merchantCategory', 4], ['terminalType', 2], ['queryId', 21],
  ['legacyPayType', 2], ['orderId', 32], ['cardType', 2], ['originalTraceNo', 6], ['originalTransmissionTime', 10],
  ['fee', 13], ['settlementAmount', 13], ['payType', 4], ['groupMerchantId', 15], ['txnType', 2],
  ['txnSubType', 2], ['bizType', 6], ['accountType', 2], ['billType', 4], ['billNo', 32],
  ['interactionMode', 1], ['originalQueryId', 21], ['merchantId', 15], ['splitMode', 1], ['subMerchantId', 15],
  ['subMerchantName', 32], ['subMerchantAmount', 13], ['netAmount', 13], ['terminalId', 8], ['merchantReserved', 32],
  ['discountAmount', 13], ['invoiceAmount', 13], ['installmentFee', 12], ['installments', 2], ['medium', 1],
  ['originalOrderId', 32], ['reserved', 98],
] as const;

export type UnionpayZmField = (typeof unionpayZmFields)[number][0];

const fieldSeparatorBytes = 1;
const fieldOffsets = new Map<UnionpayZmField, { start: number; length: number }>();
let offset = 0;
for (const [name, length] of unionpayZmFields) {
  fieldOffsets.set(name, { start: offset, length });
  offset += length + fieldSeparatorBytes;
}
/** A full line: every field and its separator, less the separator after the last. */
export const unionpayZmLineBytes = offset - fieldSeparatorBytes;
/** Producers may trim the blank reserved field (and the space before it); everything before it must be there. */
const lineBytesMin = fieldOffsets.get('reserved')!.start - fieldSeparatorBytes;

const paymentTypes = new Set(['01']);
const refundTypes = new Set(['04', '31']);

function field(line: Buffer, name: UnionpayZmField): string {
  const { start, length } = fieldOffsets.get(name)!;
  const bytes = line.subarray(start, Math.min(start + length, line.length));
  return (name === 'subMerchantName' ? iconv.decode(bytes, 'gbk') : bytes.toString('latin1')).trim();
}

export interface UnionpayFileContext {
  file: string;
  /** The settlement date the file is for (YYYY-MM-DD): its lines carry month and day only. */
  billDate: string;
  /** 商户代码 every line must carry, when known (from the file name). */
  merchantId?: string;
}

class ZmReader {
  readonly totals: BillTotals;
  private readonly billYear: number;
  private readonly billMonthDay: string;

  constructor(private readonly context: UnionpayFileContext) {
    this.totals = new BillTotals('unionpay', context.file);
    const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(context.billDate);
    if (!match) throw new BillFormatError('unsupported', context.file, undefined, `bill date ${context.billDate} is not YYYY-MM-DD`);
    this.billYear = Number(match[1]);
    this.billMonthDay = `${match[2]}${match[3]}`;
  }

  private fail(lineNumber: number, detail: string): never {
    throw new BillFormatError('malformed', this.context.file, lineNumber, detail);
  }

  /** C/D and 12 digits as signed fen (credit positive); blank only where `blankIsZero`. */
  private signed(line: Buffer, name: UnionpayZmField, lineNumber: number, blankIsZero = false): bigint {
    const text = field(line, name);
    if (text === '' && blankIsZero) return 0n;
    const match = /^([CD])(\d{12})$/.exec(text);
    if (!match) this.fail(lineNumber, `${name} is not C/D and 12 digits: ${JSON.stringify(text)}`);
    return match[1] === 'D' ? -BigInt(match[2]!) : BigInt(match[2]!);
  }

  /** MMDDhhmmss in Beijing time; the year is the bill's, or the one before for a December line in a January file. */
  private time(line: Buffer, lineNumber: number): Date {
    const text = field(line, 'transmissionTime');
    const match = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})$/.exec(text);
    const year = text.slice(0, 4) > this.billMonthDay ? this.billYear - 1 : this.billYear;
    const date = match && beijingDate(year, Number(match[1]), Number(match[2]), Number(match[3]), Number(match[4]), Number(match[5]));
    if (!date) this.fail(lineNumber, `交易传输时间 is not MMDDhhmmss: ${JSON.stringify(text)}`);
    return date;
  }

  accept(line: Buffer, lineNumber: number): BillRecord | undefined {
    if (line.length === 0 || line.every((byte) => byte === 32)) return undefined;
    if (line.length < lineBytesMin || line.length > unionpayZmLineBytes) {
      this.fail(lineNumber, `${line.length} bytes where a ZM line has ${unionpayZmLineBytes}`);
    }
    const txnType = field(line, 'txnType');
    const kind = paymentTypes.has(txnType) ? 'payment' : refundTypes.has(txnType) ? 'refund' : undefined;
    if (!kind) throw new BillFormatError('unsupported', this.context.file, lineNumber, `交易类型 ${JSON.stringify(txnType)} is not a payment (01) or refund (04, 31)`);
    const merchantId = field(line, 'merchantId');
    if (this.context.merchantId !== undefined && merchantId !== this.context.merchantId) {
      throw new BillFormatError('inconsistent', this.context.file, lineNumber, `商户代码 ${merchantId} in a file for ${this.context.merchantId}`);
    }
    const amountText = field(line, 'amount');
    if (!/^\d{12}$/.test(amountText)) this.fail(lineNumber, `交易金额 is not 12 digits: ${JSON.stringify(amountText)}`);
    const amount = BigInt(amountText);
    const settlement = this.signed(line, 'settlementAmount', lineNumber);
    const fee = this.signed(line, 'fee', lineNumber, true);
    const net = this.signed(line, 'netAmount', lineNumber);
    this.checkLine(lineNumber, kind, amount, settlement, fee, net);
    const record: BillRecord = {
      kind,
      channelTradeNo: field(line, kind === 'payment' ? 'queryId' : 'originalQueryId'),
      outTradeNo: field(line, kind === 'payment' ? 'orderId' : 'originalOrderId'),
      outRefundNo: kind === 'refund' ? field(line, 'orderId') : undefined,
      amount,
      fee: absolute(fee),
      currency: 'CNY',
      status: 'succeeded',
      occurredAt: this.time(line, lineNumber),
      lineNumber,
    };
    if (record.channelTradeNo === '' || record.outTradeNo === '') this.fail(lineNumber, 'a line without its query id or order id');
    this.totals.add(record, undefined);
    return record;
  }

  private checkLine(lineNumber: number, kind: 'payment' | 'refund', amount: bigint, settlement: bigint, fee: bigint, net: bigint): void {
    const inconsistent = (detail: string): never => {
      throw new BillFormatError('inconsistent', this.context.file, lineNumber, detail);
    };
    if (absolute(settlement) !== amount) inconsistent(`结算金额 ${settlement} does not match 交易金额 ${amount}`);
    if (settlement !== 0n && (settlement > 0n) !== (kind === 'payment')) inconsistent(`a ${kind} settled ${settlement > 0n ? 'C' : 'D'}`);
    if (settlement + fee !== net) inconsistent(`清算净额 ${net} is not 结算金额 ${settlement} plus 商户手续费 ${fee}`);
  }

  finish(): BillSummary {
    return this.totals.summary({ format: 'unionpay_zm', defaultCurrency: 'CNY', account: this.context.merchantId });
  }
}

/** What a ZM file's name says: `INN<yyMMdd>88ZM_<merId>`. */
export function unionpayZmFileName(name: string): { billDate: string; merchantId: string } | undefined {
  const match = /INN(\d{2})(\d{2})(\d{2})\d{2}ZM_(\d{15})(?:\.\w+)?$/.exec(name);
  return match ? { billDate: `20${match[1]}-${match[2]}-${match[3]}`, merchantId: match[4]! } : undefined;
}

/** Parses a ZM file (GBK bytes) as a stream. */
export async function* parseUnionpayZm(source: AsyncIterable<Uint8Array>, context: UnionpayFileContext): BillParse {
  const reader = new ZmReader(context);
  for await (const batch of readByteLineBatches(source, { file: context.file })) {
    const records: BillRecord[] = [];
    for (let index = 0; index < batch.lines.length; index += 1) {
      const record = reader.accept(batch.lines[index]!, batch.firstLineNumber + index);
      if (record) records.push(record);
    }
    if (records.length > 0) yield records;
  }
  return reader.finish();
}
