import { createHash } from 'node:crypto';
import { deflateSync } from 'node:zlib';
import iconv from 'iconv-lite';
import { applyBasisPoints, prorate } from '../../platform/money.js';
import { zipEntries } from '../alipay/bills.js';
import { listFaults, type ActiveFault, type UnionpayFault } from './faults.js';
import type { GatewayContext } from './gateway.js';
import { acpError, beijingCompact, maskedTestCard, parseBeijingCompact, type AcpError } from './protocol.js';
import type { Executor } from './store.js';

/**
 * UnionPay's reconciliation files as the simulator serves them: the file
 * transfer (文件传输, txnType 76, txnSubType 01, fileType 00) for a settlement
 * date (settleDate MMDD) answers a signed message whose `fileContent` is the
 * zip of that date's files, deflated (zlib) and base64-encoded as UnionPay's
 * SDKs expect it, and whose `fileName` names the zip. The zip holds the
 * merchant's ZM file `INN<yyMMdd>88ZM_<merId>` — one line per payment and
 * refund settled that date, built from the simulator's own transactions — and
 * its (here always empty) ZME file of errors and adjustments.
 *
 * The ZM layout is written from 《全渠道平台接入接口规范 第3部分 文件接口》
 * §6.1 apart from Fen's parser (src/reconciliation/bills/unionpay.ts), so that
 * each checks the other: GBK, the 42 fields at fixed byte widths, each
 * left-aligned, padded with spaces and followed by one space (none after the
 * last), 607 bytes, CRLF; no header and no totals. docs/reconciliation.md has
 * the table. Amounts are fen: 交易金额 12 digits; 商户手续费, 结算金额 and
 * 清算净额 a sign letter (C a credit to the merchant, D a debit) and 12
 * digits. The merchant fee is a configured rate, half-up per payment; a
 * refund hands it back in proportion, on the running total.
 *
 * A settlement date is the Beijing calendar day the transaction completed
 * (UnionPay's own cut-off is 23:00, which the simulator does not model). Its
 * files exist once the day is over and UnionPay has produced them, by default
 * at 09:00 the next morning; before that the file transfer answers respCode
 * 98 文件不存在. A closed date without business has an empty ZM file.
 */

// ---------------------------------------------------------------------------
// The ZM file

const zmLayout = [
  ['交易代码', 3], ['代理机构标识码', 11], ['发送机构标识码', 11], ['系统跟踪号', 6], ['交易传输时间', 10],
  ['帐号', 19], ['交易金额', 12], ['商户类别', 4], ['终端类型', 2], ['查询流水号', 21],
  ['支付方式（旧）', 2], ['商户订单号', 32], ['支付卡类型', 2], ['原始交易的系统跟踪号', 6], ['原始交易日期时间', 10],
  ['商户手续费', 13], ['结算金额', 13], ['支付方式', 4], ['集团商户代码', 15], ['交易类型', 2],
  ['交易子类', 2], ['业务类型', 6], ['帐号类型', 2], ['账单类型', 4], ['账单号码', 32],
  ['交互方式', 1], ['原交易查询流水号', 21], ['商户代码', 15], ['分账入账方式', 1], ['二级商户代码', 15],
  ['二级商户简称', 32], ['二级商户分账入账金额', 13], ['清算净额', 13], ['终端号', 8], ['商户自定义域', 32],
  ['优惠金额', 13], ['发票金额', 13], ['分期付款附加手续费', 12], ['分期付款期数', 2], ['交易介质', 1],
  ['原始交易订单号', 32], ['保留使用', 98],
] as const;

type ZmField = (typeof zmLayout)[number][0];

const space = Buffer.from(' ');
const crlf = Buffer.from('\r\n');
const dayMs = 24 * 60 * 60 * 1000;

/** One line of the ZM file, in positive fen; the writer applies UnionPay's C/D signs. */
export interface UnionpayBillLine {
  kind: 'payment' | 'refund';
  /** When UnionPay processed it: 交易传输时间. */
  at: Date;
  merId: string;
  traceNo: string;
  /** The line's own queryId and orderId (a refund's are the refund's). */
  queryId: string;
  orderId: string;
  txnSubType: string;
  bizType: string;
  channelType: string;
  /** The payment's amount or the refund's. */
  amountFen: bigint;
  /** The merchant fee, as a magnitude: charged on a payment, handed back on a refund. */
  feeFen: bigint;
  /** A refund's payment. */
  original?: { queryId: string; orderId: string; traceNo: string; traceTime: string };
}

/** A field at its byte width: GBK, left-aligned, padded with spaces; a value wider than its field is cut at the width rather than shift every field after it. */
function fixed(value: string, width: number): Buffer {
  const bytes = iconv.encode(value, 'gbk').subarray(0, width);
  return Buffer.concat([bytes, Buffer.alloc(width - bytes.length, 0x20)]);
}

/** C or D and 12 digits of fen: C a credit to the merchant. */
function creditDebit(signedFen: bigint): string {
  const magnitude = signedFen < 0n ? -signedFen : signedFen;
  return `${signedFen < 0n ? 'D' : 'C'}${magnitude.toString().padStart(12, '0')}`;
}

/** MMDDhhmmss in Beijing time. */
function transmissionTime(date: Date): string {
  return beijingCompact(date).slice(4);
}

export function zmLine(line: UnionpayBillLine): Buffer {
  const payment = line.kind === 'payment';
  const settlement = payment ? line.amountFen : -line.amountFen;
  const fee = payment ? -line.feeFen : line.feeFen;
  const values: Partial<Record<ZmField, string>> = {
    交易代码: payment ? 'S22' : 'S30',
    代理机构标识码: '00000000',
    发送机构标识码: '00000000',
    系统跟踪号: line.traceNo,
    交易传输时间: transmissionTime(line.at),
    帐号: maskedTestCard,
    交易金额: line.amountFen.toString().padStart(12, '0'),
    商户类别: '5311',
    终端类型: line.channelType,
    查询流水号: line.queryId,
    '支付方式（旧）': '00',
    商户订单号: line.orderId,
    支付卡类型: '01',
    原始交易的系统跟踪号: line.original?.traceNo ?? '',
    原始交易日期时间: line.original?.traceTime ?? '',
    商户手续费: creditDebit(fee),
    结算金额: creditDebit(settlement),
    支付方式: '0001',
    交易类型: payment ? '01' : '04',
    交易子类: line.txnSubType,
    业务类型: line.bizType,
    帐号类型: '01',
    交互方式: '0',
    原交易查询流水号: line.original?.queryId ?? '',
    商户代码: line.merId,
    清算净额: creditDebit(settlement + fee),
    原始交易订单号: line.original?.orderId ?? '',
  };
  const fields = zmLayout.map(([name, width]) => fixed(values[name] ?? '', width));
  return Buffer.concat(fields.flatMap((field, index) => (index === 0 ? [field] : [space, field])));
}

export function zmFileNames(merId: string, settleDate: string): { zm: string; zme: string; zip: string } {
  const short = settleDate.replaceAll('-', '').slice(2);
  return { zm: `INN${short}88ZM_${merId}`, zme: `INN${short}88ZME_${merId}`, zip: `${merId}_${settleDate.replaceAll('-', '')}.zip` };
}

/** The date's archive: the ZM file (CRLF after every line) and an empty ZME file, in a zip as UnionPay sends it. */
export function settlementArchive(merId: string, settleDate: string, lines: UnionpayBillLine[], madeAt: Date): Buffer {
  const names = zmFileNames(merId, settleDate);
  const zm = Buffer.concat(lines.flatMap((line) => [zmLine(line), crlf]));
  return zipEntries([{ name: names.zm, content: zm }, { name: names.zme, content: Buffer.alloc(0) }], madeAt);
}

// ---------------------------------------------------------------------------
// The date's lines, from the simulator's state and its bill faults

export interface UnionpayBillSettings {
  /** The merchant fee, in basis points of each payment (60: 0.6%), rounded half-up to the fen. */
  feeRateBasisPoints: bigint;
  /** How long after the Beijing midnight that ends a settlement date its files become available. */
  availableAfterMs: number;
}

export const defaultUnionpayBillSettings = {
  feeRateBasisPoints: 60n,
  availableAfterMs: 9 * 60 * 60 * 1000,
} as const;

type BillFault = Extract<UnionpayFault, { kind: `bill_${string}` }>;
type ActiveBillFault = ActiveFault & { fault: BillFault };

/** The Beijing day [start, end) of a YYYY-MM-DD date, or undefined for anything else. */
function beijingDay(date: string): { start: Date; end: Date } | undefined {
  const start = /^\d{4}-\d{2}-\d{2}$/.test(date) ? parseBeijingCompact(`${date.replaceAll('-', '')}000000`) : undefined;
  return start && { start, end: new Date(start.getTime() + dayMs) };
}

/**
 * The settlement date a settleDate (MMDD, no year) names: the latest such
 * date that is not after today, as a file of the past is what anyone asks
 * for; February 29th goes back to the last leap year.
 */
export function settlementDateOf(settleDate: string, now: Date): string | undefined {
  if (!/^\d{4}$/.test(settleDate)) return undefined;
  const today = beijingCompact(now).slice(0, 8);
  for (let year = Number(today.slice(0, 4)), tries = 0; tries < 8; year -= 1, tries += 1) {
    const date = `${year}-${settleDate.slice(0, 2)}-${settleDate.slice(2)}`;
    if (beijingDay(date) && `${year}${settleDate}` <= today) return date;
  }
  return undefined;
}

interface TransactionRow {
  query_id: string;
  mer_id: string;
  order_id: string;
  txn_sub_type: string;
  biz_type: string;
  channel_type: string;
  txn_fen: string;
  trace_no: string;
  trace_time: string | null;
  at: Date;
  created_at: Date;
  completed_at: Date | null;
}

interface RefundRow extends TransactionRow {
  orig_query_id: string;
  orig_order_id: string;
  orig_trace_no: string;
  orig_trace_time: string | null;
  orig_txn_fen: string;
}

const transactionColumns = (alias: string) =>
  ['query_id', 'mer_id', 'order_id', 'txn_sub_type', 'biz_type', 'channel_type', 'trace_no', 'trace_time', 'created_at', 'completed_at']
    .map((column) => `${alias}.${column}`)
    .concat([`${alias}.txn_fen::text AS txn_fen`, `COALESCE(${alias}.completed_at, ${alias}.created_at) AS at`])
    .join(', ');

function paymentLine(row: TransactionRow, at: Date, settings: UnionpayBillSettings): UnionpayBillLine {
  const amountFen = BigInt(row.txn_fen);
  return {
    kind: 'payment',
    at,
    merId: row.mer_id,
    traceNo: row.trace_no,
    queryId: row.query_id,
    orderId: row.order_id,
    txnSubType: row.txn_sub_type,
    bizType: row.biz_type,
    channelType: row.channel_type,
    amountFen,
    feeFen: applyBasisPoints(amountFen, settings.feeRateBasisPoints),
  };
}

/** A refund's line: the fee handed back in proportion, on the running total, so a refund in full hands back exactly the fee charged. */
function refundLine(row: RefundRow, refundedBefore: bigint, settings: UnionpayBillSettings): UnionpayBillLine {
  const totalFen = BigInt(row.orig_txn_fen);
  const fee = applyBasisPoints(totalFen, settings.feeRateBasisPoints);
  const amountFen = BigInt(row.txn_fen);
  const handedBack = prorate({ whole: fee, part: refundedBefore + amountFen, total: totalFen }) - prorate({ whole: fee, part: refundedBefore, total: totalFen });
  return {
    ...paymentLine(row, row.at, settings),
    kind: 'refund',
    feeFen: handedBack,
    original: { queryId: row.orig_query_id, orderId: row.orig_order_id, traceNo: row.orig_trace_no, traceTime: row.orig_trace_time ?? '' },
  };
}

/** Every payment and refund of the merchant that completed in [start, end). */
async function realLines(executor: Executor, merId: string, period: { start: Date; end: Date }, settings: UnionpayBillSettings): Promise<UnionpayBillLine[]> {
  const paid = await executor.query<TransactionRow>(
    `SELECT ${transactionColumns('t')} FROM sim_unionpay.transactions t
     WHERE t.mer_id = $1 AND t.txn_type = '01' AND t.status = 'succeeded' AND COALESCE(t.completed_at, t.created_at) >= $2 AND COALESCE(t.completed_at, t.created_at) < $3
     ORDER BY at, t.query_id`,
    [merId, period.start, period.end],
  );
  const refunded = await executor.query<RefundRow>(
    `SELECT ${transactionColumns('r')}, r.orig_query_id, p.order_id AS orig_order_id, p.trace_no AS orig_trace_no, p.trace_time AS orig_trace_time, p.txn_fen::text AS orig_txn_fen
     FROM sim_unionpay.transactions r JOIN sim_unionpay.transactions p ON p.query_id = r.orig_query_id
     WHERE r.mer_id = $1 AND r.txn_type = '04' AND r.status = 'succeeded' AND COALESCE(r.completed_at, r.created_at) >= $2 AND COALESCE(r.completed_at, r.created_at) < $3
     ORDER BY at, r.query_id`,
    [merId, period.start, period.end],
  );
  const history = await executor.query<{ query_id: string; orig_query_id: string; txn_fen: string; created_at: Date }>(
    `SELECT query_id, orig_query_id, txn_fen::text AS txn_fen, created_at FROM sim_unionpay.transactions
     WHERE orig_query_id = ANY($1) AND txn_type = '04' AND status = 'succeeded' ORDER BY created_at, query_id`,
    [[...new Set(refunded.rows.map((row) => row.orig_query_id))]],
  );
  const lines = paid.rows.map((row) => paymentLine(row, row.at, settings));
  for (const row of refunded.rows) {
    const at = row.created_at.getTime();
    const before = history.rows
      .filter((other) => other.orig_query_id === row.orig_query_id && (other.created_at.getTime() < at || (other.created_at.getTime() === at && other.query_id < row.query_id)))
      .reduce((sum, other) => sum + BigInt(other.txn_fen), 0n);
    lines.push(refundLine(row, before, settings));
  }
  return lines;
}

/** The payment a line belongs to, by orderId: the one fault settings name. */
function paymentOrderIdOf(line: UnionpayBillLine): string {
  return line.original?.orderId ?? line.orderId;
}

function applies(fault: ActiveBillFault, line: UnionpayBillLine): boolean {
  if (fault.orderId !== null && fault.orderId !== paymentOrderIdOf(line)) return false;
  if (fault.fault.kind === 'bill_wrong_status' || fault.fault.kind === 'bill_extra_line') return false;
  if (fault.fault.line !== line.kind) return false;
  return fault.fault.refundOrderId === undefined || (line.kind === 'refund' && fault.fault.refundOrderId === line.orderId);
}

/** A digit string derived from a seed: invented numbers stay the same on every file, so re-runs see the same file. */
function digitsFrom(seed: string, count: number): string {
  const hex = createHash('sha256').update(seed).digest('hex');
  return BigInt(`0x${hex}`).toString().padStart(count, '0').slice(-count);
}

/** Applies the bill faults to the real lines; returns the file's lines and the faults that fired. */
function applyFaults(lines: UnionpayBillLine[], faults: ActiveBillFault[], context: { merId: string; settleDate: string; period: { start: Date }; settings: UnionpayBillSettings }) {
  const fired = new Set<number>();
  const result: UnionpayBillLine[] = [];
  for (const original of lines) {
    let line = original;
    let dropped = false;
    for (const active of faults.filter((fault) => applies(fault, original))) {
      fired.add(active.id);
      const fault = active.fault;
      if (fault.kind === 'bill_missing_line' || fault.kind === 'bill_next_day') dropped = true;
      else if (fault.kind === 'bill_wrong_amount') line = { ...line, amountFen: BigInt(fault.txnAmt) };
      else if (fault.kind === 'bill_wrong_fee') line = { ...line, feeFen: BigInt(fault.fee) };
    }
    if (!dropped) result.push(line);
  }
  for (const active of faults) {
    if (active.fault.kind !== 'bill_extra_line') continue;
    fired.add(active.id);
    const seed = `${context.merId}/${context.settleDate}/${active.id}`;
    const at = new Date(context.period.start.getTime() + dayMs / 2);
    const amountFen = BigInt(active.fault.txnAmt);
    const paymentOrderId = active.orderId ?? `simextra${active.id}`;
    const paymentQueryId = `${beijingCompact(at).slice(2)}${digitsFrom(`${seed}/payment`, 9)}`;
    const payment: UnionpayBillLine = {
      kind: 'payment',
      at,
      merId: context.merId,
      traceNo: digitsFrom(`${seed}/trace`, 6),
      queryId: paymentQueryId,
      orderId: paymentOrderId,
      txnSubType: '01',
      bizType: '000201',
      channelType: '07',
      amountFen,
      feeFen: applyBasisPoints(amountFen, context.settings.feeRateBasisPoints),
    };
    result.push(
      active.fault.line === 'payment'
        ? payment
        : {
            ...payment,
            kind: 'refund',
            queryId: `${beijingCompact(at).slice(2)}${digitsFrom(`${seed}/refund`, 9)}`,
            orderId: `simextrarefund${active.id}`,
            txnSubType: '00',
            original: { queryId: paymentQueryId, orderId: paymentOrderId, traceNo: payment.traceNo, traceTime: transmissionTime(at) },
          },
    );
  }
  return { lines: result, fired };
}

/** Lines of the date before that a bill_next_day fault moved into this file, timed at its first second. */
async function movedFromDayBefore(executor: Executor, merId: string, period: { start: Date; end: Date }, faults: ActiveBillFault[], settings: UnionpayBillSettings) {
  const moving = faults.filter((fault) => fault.fault.kind === 'bill_next_day');
  if (moving.length === 0) return [];
  const before = await realLines(executor, merId, { start: new Date(period.start.getTime() - dayMs), end: period.start }, settings);
  return before.filter((line) => moving.some((fault) => applies(fault, line))).map((line) => ({ ...line, at: period.start }));
}

/** Orders a bill_wrong_status fault lists as paid although nobody paid them: made that date, failed or still waiting. */
async function unpaidListedAsPaid(executor: Executor, merId: string, period: { start: Date; end: Date }, faults: ActiveBillFault[], settings: UnionpayBillSettings) {
  const named = faults.filter((fault) => fault.fault.kind === 'bill_wrong_status' && fault.orderId !== null);
  if (named.length === 0) return { lines: [], fired: [] as number[] };
  const rows = await executor.query<TransactionRow>(
    `SELECT ${transactionColumns('t')} FROM sim_unionpay.transactions t
     WHERE t.mer_id = $1 AND t.txn_type = '01' AND t.status <> 'succeeded' AND t.order_id = ANY($2) AND t.created_at >= $3 AND t.created_at < $4`,
    [merId, named.map((fault) => fault.orderId), period.start, period.end],
  );
  const lines = rows.rows.map((row) => paymentLine(row, row.completed_at && row.completed_at.getTime() < period.end.getTime() ? row.completed_at : row.created_at, settings));
  const fired = named.filter((fault) => rows.rows.some((row) => row.order_id === fault.orderId)).map((fault) => fault.id);
  return { lines, fired };
}

/** Counts a fired switch down once per file made, as the other switches count down once per firing. */
async function countDown(executor: Executor, faultIds: Iterable<number>): Promise<void> {
  for (const id of faultIds) {
    await executor.query('UPDATE sim_unionpay.faults SET remaining = remaining - 1 WHERE id = $1 AND remaining > 0', [id]);
  }
}

/** The merchant's ZM lines for a settlement date, with the active bill faults applied (and counted down), in time order. */
export async function buildSettlementLines(context: GatewayContext, merId: string, settleDate: string): Promise<UnionpayBillLine[]> {
  const period = beijingDay(settleDate);
  if (!period) throw new Error(`not a settlement date: ${settleDate}`);
  const settings = context.bills;
  const faults = (await listFaults(context.pool)).filter((fault): fault is ActiveBillFault => fault.fault.kind.startsWith('bill_'));
  const real = await realLines(context.pool, merId, period, settings);
  const moved = await movedFromDayBefore(context.pool, merId, period, faults, settings);
  const unpaid = await unpaidListedAsPaid(context.pool, merId, period, faults, settings);
  const applied = applyFaults(real, faults, { merId, settleDate, period, settings });
  await countDown(context.pool, new Set([...applied.fired, ...unpaid.fired]));
  return [...applied.lines, ...moved, ...unpaid.lines].sort((left, right) => left.at.getTime() - right.at.getTime());
}

// ---------------------------------------------------------------------------
// fileTransRequest.do

/**
 * The file transfer: txnType 76, txnSubType 01, bizType 000000, fileType 00
 * (the only file type the simulator offers), settleDate MMDD. Answers the
 * fields to add to the echoed request: settleDate, fileType, fileName and
 * fileContent.
 */
export async function fileTransfer(context: GatewayContext, fields: Record<string, string>): Promise<Record<string, string> | AcpError> {
  if (fields.txnType !== '76' || fields.txnSubType !== '01') return acpError('10', 'fileTransRequest takes file transfers (txnType 76, txnSubType 01) only');
  if (fields.bizType !== '000000') return acpError('10', 'bizType must be 000000');
  if (parseBeijingCompact(fields.txnTime) === undefined) return acpError('10', 'txnTime must be yyyyMMddHHmmss');
  if (fields.fileType !== '00') return acpError('10', 'the simulator offers fileType 00 (the merchant reconciliation files) only');
  const now = context.clock.now();
  const settleDate = settlementDateOf(fields.settleDate ?? '', now);
  const period = settleDate === undefined ? undefined : beijingDay(settleDate);
  if (!settleDate || !period) return acpError('10', 'settleDate must be MMDD');
  if (now.getTime() < period.end.getTime() + context.bills.availableAfterMs) return acpError('98');
  const merId = fields.merId!;
  const lines = await buildSettlementLines(context, merId, settleDate);
  const archive = settlementArchive(merId, settleDate, lines, now);
  return { settleDate: fields.settleDate!, fileType: '00', fileName: zmFileNames(merId, settleDate).zip, fileContent: deflateSync(archive).toString('base64') };
}
