import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { crc32, deflateRawSync } from 'node:zlib';
import iconv from 'iconv-lite';
import { applyBasisPoints, formatMinorAsDecimal, prorate } from '../../platform/money.js';
import { listFaults, type ActiveFault, type AlipayFault } from './faults.js';
import type { GatewayContext } from './gateway.js';
import { beijingTime, errorBody, fenFromYuan, gatewayError, successBody } from './protocol.js';
import type { Executor, SimApp } from './store.js';

/**
 * Alipay's trade bill as the simulator serves it: alipay.data.dataservice.
 * bill.downloadurl.query answers with a short-lived signed URL, and the URL
 * serves a zip of `<account>_<yyyyMMdd>_业务明细.csv` and
 * `<account>_<yyyyMMdd>_业务明细(汇总).csv`, both GBK with CRLF, built from the
 * simulator's own trades and refunds of that Beijing day. Written apart from
 * Fen's parser (src/reconciliation/bills/alipay.ts) so that each checks the
 * other; docs/reconciliation.md describes the layout both follow.
 *
 * A day's bill exists only once the day is over and Alipay has had time to
 * produce it (by default 09:00 the next morning, as Alipay promises); before
 * that the query answers 40004 isp.bill_not_exist. A closed day without
 * business has a bill with no lines.
 */

// ---------------------------------------------------------------------------
// The files

export const alipayDetailHeader = [
  '支付宝交易号', '商户订单号', '业务类型', '商品名称', '创建时间', '完成时间', '门店编号', '门店名称', '操作员', '终端号',
  '对方账户', '订单金额（元）', '商家实收（元）', '支付宝红包（元）', '集分宝（元）', '支付宝优惠（元）', '商家优惠（元）',
  '券核销金额（元）', '券名称', '商家红包消费金额（元）', '卡消费金额（元）', '退款批次号/请求号', '服务费（元）', '分润（元）', '备注',
] as const;

const summaryHeader = ['门店编号', '门店名称', '交易订单总笔数', '退款订单总笔数', '订单金额（元）', '商家实收（元）', '支付宝优惠（元）', '商家优惠（元）', '卡消费金额（元）', '服务费（元）', '分润（元）', '实收净额（元）'];
const crlf = '\r\n';
const dashes = (left: number, title: string, right: number) => `#${'-'.repeat(left)}${title}${'-'.repeat(right)}`;

/** One line of the detail file, in positive fen; the writer applies Alipay's signs. */
export interface AlipayBillLine {
  kind: 'payment' | 'refund';
  tradeNo: string;
  outTradeNo: string;
  subject: string;
  createdAt: Date;
  completedAt: Date;
  /** 对方账户: the payer's logon id, masked as Alipay masks it. */
  counterparty: string;
  /** The trade's total (payment) or the refund's amount. */
  amountFen: bigint;
  /** The service fee charged (payment) or handed back (refund). */
  serviceFeeFen: bigint;
  /** 退款批次号/请求号: the refund's out_request_no. */
  outRequestNo?: string;
}

/** The signed totals Alipay states in the footer and the summary file, accumulated line by line. */
export class AlipayBillTotals {
  paymentCount = 0;
  refundCount = 0;
  paymentReceivedFen = 0n;
  refundReceivedFen = 0n;
  serviceFeeFen = 0n;

  add(line: AlipayBillLine): void {
    if (line.kind === 'payment') {
      this.paymentCount += 1;
      this.paymentReceivedFen += line.amountFen;
      this.serviceFeeFen -= line.serviceFeeFen;
    } else {
      this.refundCount += 1;
      this.refundReceivedFen -= line.amountFen;
      this.serviceFeeFen += line.serviceFeeFen;
    }
  }
}

function yuan(fen: bigint): string {
  return formatMinorAsDecimal(fen, 'CNY');
}

/** A text cell: quoted when it must be, with the tab Alipay appends so spreadsheets keep long numbers as text. */
function textCell(value: string): string {
  const cell = `${value}\t`;
  return /[",\r\n]/.test(cell) ? `"${cell.replaceAll('"', '""')}"` : cell;
}

/** "2026年01月14日 00:00:00" in Beijing time, as Alipay's # lines write dates. */
function chineseDateTime(date: Date): string {
  const text = beijingTime(date);
  return `${text.slice(0, 4)}年${text.slice(5, 7)}月${text.slice(8, 10)}日 ${text.slice(11)}`;
}

function periodLine(period: { start: Date; end: Date }): string {
  return `#起始日期：[${chineseDateTime(period.start)}]   终止日期：[${chineseDateTime(period.end)}]`;
}

export function alipayDetailPreamble(account: string, period: { start: Date; end: Date }): string {
  return ['#支付宝业务明细查询', `#账号：[${account}]`, periodLine(period), dashes(41, '业务明细列表', 40), alipayDetailHeader.join(',')].join(crlf) + crlf;
}

export function alipayDetailRow(line: AlipayBillLine): string {
  const sign = line.kind === 'payment' ? 1n : -1n;
  const zero = '0.00';
  return [
    textCell(line.tradeNo), textCell(line.outTradeNo), line.kind === 'payment' ? '交易' : '退款', textCell(line.subject),
    beijingTime(line.createdAt), beijingTime(line.completedAt), '', '', '', textCell(''), textCell(line.counterparty),
    yuan(sign * line.amountFen), yuan(sign * line.amountFen), zero, zero, zero, zero, zero, '', zero, zero,
    textCell(line.outRequestNo ?? ''), yuan(-sign * line.serviceFeeFen), zero, '',
  ].join(',') + crlf;
}

export function alipayDetailFooter(totals: AlipayBillTotals, exportedAt: Date): string {
  return [
    dashes(41, '业务明细列表结束', 36),
    `#交易合计：${totals.paymentCount}笔，商家实收共${yuan(totals.paymentReceivedFen)}元，商家优惠共0.00元`,
    `#退款合计：${totals.refundCount}笔，商家实收退款共${yuan(totals.refundReceivedFen)}元，商家优惠退款共0.00元`,
    `#导出时间：[${chineseDateTime(exportedAt)}]`,
  ].join(crlf) + crlf;
}

/** The summary file: one row per store (the simulator has none, so one row without) and the 合计 row. */
export function alipaySummaryFile(account: string, period: { start: Date; end: Date }, totals: AlipayBillTotals, exportedAt: Date): string {
  const received = totals.paymentReceivedFen + totals.refundReceivedFen;
  // Without discounts 订单金额 and 商家实收 are the same signed sum.
  const values = [totals.paymentCount, totals.refundCount, yuan(received), yuan(received), '0.00', '0.00', '0.00', yuan(totals.serviceFeeFen), '0.00', yuan(received + totals.serviceFeeFen)];
  return [
    '#支付宝业务汇总查询', `#账号：[${account}]`, periodLine(period), dashes(41, '业务汇总列表', 40), summaryHeader.join(','),
    ['', '', ...values].join(','), ['合计', '', ...values].join(','), dashes(40, '业务汇总列表结束', 37), `#导出时间：[${chineseDateTime(exportedAt)}]`,
  ].join(crlf) + crlf;
}

export function alipayBillEntryNames(account: string, billDate: string): { zip: string; detail: string; summary: string } {
  const day = billDate.replaceAll('-', '');
  return { zip: `${account}_${day}.csv.zip`, detail: `${account}_${day}_业务明细.csv`, summary: `${account}_${day}_业务明细(汇总).csv` };
}

/** The whole bill for a list of lines: the two GBK files in a zip. */
export function alipayBillZip(bill: { account: string; billDate: string; period: { start: Date; end: Date }; lines: AlipayBillLine[]; exportedAt: Date }): Buffer {
  const totals = new AlipayBillTotals();
  let detail = alipayDetailPreamble(bill.account, bill.period);
  for (const line of bill.lines) {
    totals.add(line);
    detail += alipayDetailRow(line);
  }
  detail += alipayDetailFooter(totals, bill.exportedAt);
  const names = alipayBillEntryNames(bill.account, bill.billDate);
  return zipEntries(
    [
      { name: names.detail, content: iconv.encode(detail, 'gbk') },
      { name: names.summary, content: iconv.encode(alipaySummaryFile(bill.account, bill.period, totals, bill.exportedAt), 'gbk') },
    ],
    bill.exportedAt,
  );
}

// ---------------------------------------------------------------------------
// A zip as Alipay writes it: deflated entries, names in GBK without the UTF-8 flag

/** MS-DOS date and time fields, in Beijing wall-clock time like the rest of the bill. */
function dosDateTime(date: Date): { time: number; date: number } {
  const [day, clock] = beijingTime(date).split(' ') as [string, string];
  const [year, month, dayOfMonth] = day.split('-').map(Number) as [number, number, number];
  const [hour, minute, second] = clock.split(':').map(Number) as [number, number, number];
  return { time: (hour << 11) | (minute << 5) | Math.floor(second / 2), date: ((year - 1980) << 9) | (month << 5) | dayOfMonth };
}

export function zipEntries(entries: { name: string; content: Buffer }[], modifiedAt: Date): Buffer {
  const stamp = dosDateTime(modifiedAt);
  const parts: Buffer[] = [];
  const directory: Buffer[] = [];
  let offset = 0;
  for (const entry of entries) {
    const name = iconv.encode(entry.name, 'gbk');
    const data = deflateRawSync(entry.content);
    const checksum = crc32(entry.content);
    const common = (header: Buffer, at: number) => {
      header.writeUInt16LE(20, at); // version needed: 2.0 (deflate)
      header.writeUInt16LE(0, at + 2); // flags: sizes known, names not UTF-8
      header.writeUInt16LE(8, at + 4); // deflate
      header.writeUInt16LE(stamp.time, at + 6);
      header.writeUInt16LE(stamp.date, at + 8);
      header.writeUInt32LE(checksum, at + 10);
      header.writeUInt32LE(data.length, at + 14);
      header.writeUInt32LE(entry.content.length, at + 18);
      header.writeUInt16LE(name.length, at + 22);
    };
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    common(local, 4);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4); // version made by
    common(central, 6);
    central.writeUInt32LE(offset, 42);
    parts.push(local, name, data);
    directory.push(central, name);
    offset += local.length + name.length + data.length;
  }
  const directoryBytes = Buffer.concat(directory);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(directoryBytes.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...parts, directoryBytes, end]);
}

// ---------------------------------------------------------------------------
// The day's lines, from the simulator's state and its bill faults

export interface AlipayBillSettings {
  /** The service fee Alipay charges, in basis points of each payment (60: 0.6%), rounded half-up to the fen. */
  feeRateBasisPoints: bigint;
  /** How long after the Beijing midnight that ends a day its bill becomes available. */
  availableAfterMs: number;
  /** How long a download URL works once issued (Alipay: 30 seconds). */
  urlLifetimeMs: number;
  /** Signs download URLs; derived from the simulator's key so every simulator process agrees. */
  urlSecret: Buffer;
}

export const defaultBillSettings = {
  feeRateBasisPoints: 60n,
  availableAfterMs: 9 * 60 * 60 * 1000,
  urlLifetimeMs: 30_000,
} as const;

export function billUrlSecret(signingPrivateKeyPem: string): Buffer {
  return createHash('sha256').update('alipay-simulator bill urls\n').update(signingPrivateKeyPem).digest();
}

const dayMs = 24 * 60 * 60 * 1000;
const accountSuffix = '0156';
type BillFault = Extract<AlipayFault, { kind: `bill_${string}` }>;
type ActiveBillFault = ActiveFault & { fault: BillFault };

/** The Beijing day [start, end) of a YYYY-MM-DD date, or undefined for anything else. */
export function beijingDay(billDate: string): { start: Date; end: Date } | undefined {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(billDate)) return undefined;
  const start = new Date(`${billDate}T00:00:00+08:00`);
  if (Number.isNaN(start.getTime()) || beijingTime(start).slice(0, 10) !== billDate) return undefined;
  return { start, end: new Date(start.getTime() + dayMs) };
}

interface TradeRow {
  trade_no: string;
  out_trade_no: string;
  subject: string;
  total_fen: string;
  buyer_logon_id: string | null;
  created_at: Date;
  paid_at: Date | null;
  closed_at: Date | null;
}

interface RefundRow {
  trade_no: string;
  out_request_no: string;
  refund_fen: string;
  refunded_at: Date;
}

function paymentLine(trade: TradeRow, settings: AlipayBillSettings, completedAt: Date): AlipayBillLine {
  const amountFen = BigInt(trade.total_fen);
  return {
    kind: 'payment',
    tradeNo: trade.trade_no,
    outTradeNo: trade.out_trade_no,
    subject: trade.subject,
    createdAt: trade.created_at,
    completedAt,
    counterparty: trade.buyer_logon_id ?? '',
    amountFen,
    serviceFeeFen: applyBasisPoints(amountFen, settings.feeRateBasisPoints),
  };
}

/**
 * A refund's line. Alipay hands the service fee back in proportion to what is
 * refunded; computing it on the running total (fee × refunded so far ÷ total,
 * less what earlier refunds handed back) makes a full refund hand back exactly
 * the fee charged, whatever the rounding of each part.
 */
function refundLine(trade: TradeRow, refund: RefundRow, earlierRefunds: RefundRow[], settings: AlipayBillSettings): AlipayBillLine {
  const totalFen = BigInt(trade.total_fen);
  const feeFen = applyBasisPoints(totalFen, settings.feeRateBasisPoints);
  const before = earlierRefunds.reduce((sum, earlier) => sum + BigInt(earlier.refund_fen), 0n);
  const refundFen = BigInt(refund.refund_fen);
  const handedBack = prorate({ whole: feeFen, part: before + refundFen, total: totalFen }) - prorate({ whole: feeFen, part: before, total: totalFen });
  return {
    kind: 'refund',
    tradeNo: trade.trade_no,
    outTradeNo: trade.out_trade_no,
    subject: trade.subject,
    createdAt: trade.created_at,
    completedAt: refund.refunded_at,
    counterparty: trade.buyer_logon_id ?? '',
    amountFen: refundFen,
    serviceFeeFen: handedBack,
    outRequestNo: refund.out_request_no,
  };
}

const tradeColumns = 't.trade_no, t.out_trade_no, t.subject, t.total_fen::text, t.buyer_logon_id, t.created_at, t.paid_at, t.closed_at';

/** Every payment and refund of the seller's apps completed in [start, end). */
async function realLines(executor: Executor, sellerId: string, period: { start: Date; end: Date }, settings: AlipayBillSettings): Promise<AlipayBillLine[]> {
  const paid = await executor.query<TradeRow>(
    `SELECT ${tradeColumns} FROM sim_alipay.trades t JOIN sim_alipay.apps a ON a.app_id = t.app_id
     WHERE a.seller_id = $1 AND t.paid_at >= $2 AND t.paid_at < $3 ORDER BY t.paid_at, t.trade_no`,
    [sellerId, period.start, period.end],
  );
  const refunded = await executor.query<RefundRow & TradeRow>(
    `SELECT ${tradeColumns}, r.out_request_no, r.refund_fen::text, r.refunded_at FROM sim_alipay.refunds r
     JOIN sim_alipay.trades t ON t.trade_no = r.trade_no JOIN sim_alipay.apps a ON a.app_id = t.app_id
     WHERE a.seller_id = $1 AND r.refunded_at >= $2 AND r.refunded_at < $3 ORDER BY r.refunded_at, r.out_request_no`,
    [sellerId, period.start, period.end],
  );
  const tradeNos = [...new Set(refunded.rows.map((row) => row.trade_no))];
  const history = await executor.query<RefundRow>(
    `SELECT trade_no, out_request_no, refund_fen::text, refunded_at FROM sim_alipay.refunds WHERE trade_no = ANY($1) ORDER BY refunded_at, out_request_no`,
    [tradeNos],
  );
  const lines = paid.rows.map((trade) => paymentLine(trade, settings, trade.paid_at!));
  for (const row of refunded.rows) {
    const earlier = history.rows.filter((other) => other.trade_no === row.trade_no && other.refunded_at.getTime() < row.refunded_at.getTime());
    lines.push(refundLine(row, row, earlier, settings));
  }
  return lines;
}

function applies(fault: ActiveBillFault, line: AlipayBillLine): boolean {
  if (fault.outTradeNo !== null && fault.outTradeNo !== line.outTradeNo) return false;
  if (fault.fault.kind === 'bill_wrong_status' || fault.fault.kind === 'bill_extra_line') return false;
  if (fault.fault.line !== line.kind) return false;
  return fault.fault.outRequestNo === undefined || fault.fault.outRequestNo === line.outRequestNo;
}

/** A trade number for an invented line: the same on every download of the same bill, so re-runs see the same file. */
function inventedTradeNo(billDate: string, faultId: number): string {
  const digits = BigInt(`0x${createHash('sha256').update(`${billDate}/${faultId}`).digest('hex').slice(0, 15)}`).toString().padStart(16, '0').slice(-16);
  return `${billDate.replaceAll('-', '')}2200${digits}`;
}

function amountFen(yuanText: string): bigint {
  // fenFromYuan refuses zero, which a wrong fee may well be.
  return yuanText === '0.00' ? 0n : (fenFromYuan(yuanText) ?? 0n);
}

/** Applies the bill faults to the real lines; returns the bill's lines and the faults that fired. */
function applyFaults(lines: AlipayBillLine[], faults: ActiveBillFault[], billDate: string, period: { start: Date }, settings: AlipayBillSettings) {
  const fired = new Set<number>();
  const result: AlipayBillLine[] = [];
  for (const original of lines) {
    let line = original;
    let dropped = false;
    for (const active of faults.filter((fault) => applies(fault, original))) {
      fired.add(active.id);
      const fault = active.fault;
      if (fault.kind === 'bill_missing_line' || fault.kind === 'bill_next_day') dropped = true;
      else if (fault.kind === 'bill_wrong_amount') line = { ...line, amountFen: amountFen(fault.totalAmount) };
      else if (fault.kind === 'bill_wrong_fee') line = { ...line, serviceFeeFen: amountFen(fault.serviceFee) };
    }
    if (!dropped) result.push(line);
  }
  for (const active of faults) {
    if (active.fault.kind !== 'bill_extra_line') continue;
    fired.add(active.id);
    const amount = amountFen(active.fault.totalAmount);
    const outTradeNo = active.outTradeNo ?? `sim_extra_${active.id}`;
    result.push({
      kind: active.fault.line,
      tradeNo: inventedTradeNo(billDate, active.id),
      outTradeNo,
      subject: '未知订单 Unknown order',
      createdAt: new Date(period.start.getTime() + dayMs / 2),
      completedAt: new Date(period.start.getTime() + dayMs / 2),
      counterparty: 'ext***@example.com',
      amountFen: amount,
      serviceFeeFen: applyBasisPoints(amount, settings.feeRateBasisPoints),
      ...(active.fault.line === 'refund' ? { outRequestNo: `sim_extra_refund_${active.id}` } : {}),
    });
  }
  return { lines: result, fired };
}

/** Lines of the day before that a bill_next_day fault moved into this bill, dated at its first second. */
async function movedFromDayBefore(executor: Executor, sellerId: string, period: { start: Date; end: Date }, faults: ActiveBillFault[], settings: AlipayBillSettings) {
  const moving = faults.filter((fault) => fault.fault.kind === 'bill_next_day');
  if (moving.length === 0) return [];
  const before = await realLines(executor, sellerId, { start: new Date(period.start.getTime() - dayMs), end: period.start }, settings);
  return before.filter((line) => moving.some((fault) => applies(fault, line))).map((line) => ({ ...line, completedAt: period.start }));
}

/** Trades a bill_wrong_status fault lists as paid although nobody paid them: created that day, never paid. */
async function unpaidListedAsPaid(executor: Executor, sellerId: string, period: { start: Date; end: Date }, faults: ActiveBillFault[], settings: AlipayBillSettings) {
  const named = faults.filter((fault) => fault.fault.kind === 'bill_wrong_status' && fault.outTradeNo !== null);
  if (named.length === 0) return { lines: [], fired: [] as number[] };
  const rows = await executor.query<TradeRow>(
    `SELECT ${tradeColumns} FROM sim_alipay.trades t JOIN sim_alipay.apps a ON a.app_id = t.app_id
     WHERE a.seller_id = $1 AND t.out_trade_no = ANY($2) AND t.paid_at IS NULL AND t.created_at >= $3 AND t.created_at < $4`,
    [sellerId, named.map((fault) => fault.outTradeNo), period.start, period.end],
  );
  const lines = rows.rows.map((trade) => {
    const completedAt = trade.closed_at && trade.closed_at.getTime() < period.end.getTime() ? trade.closed_at : trade.created_at;
    return paymentLine({ ...trade, buyer_logon_id: trade.buyer_logon_id ?? '208***@example.com' }, settings, completedAt);
  });
  const fired = named.filter((fault) => rows.rows.some((row) => row.out_trade_no === fault.outTradeNo)).map((fault) => fault.id);
  return { lines, fired };
}

/** Counts a fired switch down once per bill built, as the other switches count down once per firing. */
async function countDown(executor: Executor, faultIds: Iterable<number>): Promise<void> {
  for (const id of faultIds) {
    await executor.query('UPDATE sim_alipay.faults SET remaining = remaining - 1 WHERE id = $1 AND remaining > 0', [id]);
  }
}

/** The seller's bill for a Beijing day, with the active bill faults applied. */
export async function buildDayBill(context: GatewayContext, sellerId: string, billDate: string): Promise<{ fileName: string; zip: Buffer }> {
  const period = beijingDay(billDate);
  if (!period) throw new Error(`not a bill date: ${billDate}`);
  const settings = context.bills;
  const faults = (await listFaults(context.pool)).filter((fault): fault is ActiveBillFault => fault.fault.kind.startsWith('bill_'));
  const real = await realLines(context.pool, sellerId, period, settings);
  const moved = await movedFromDayBefore(context.pool, sellerId, period, faults, settings);
  const unpaid = await unpaidListedAsPaid(context.pool, sellerId, period, faults, settings);
  const applied = applyFaults(real, faults, billDate, period, settings);
  const lines = [...applied.lines, ...moved, ...unpaid.lines].sort((left, right) => left.completedAt.getTime() - right.completedAt.getTime());
  await countDown(context.pool, new Set([...applied.fired, ...unpaid.fired]));
  const account = `${sellerId}${accountSuffix}`;
  const zip = alipayBillZip({ account, billDate, period, lines, exportedAt: context.clock.now() });
  return { fileName: alipayBillEntryNames(account, billDate).zip, zip };
}

// ---------------------------------------------------------------------------
// The gateway method and the download URL

function urlToken(secret: Buffer, userId: string, bizDates: string, timestamp: string): string {
  return createHmac('sha256', secret).update(`${userId}\n${bizDates}\n${timestamp}`).digest('hex');
}

/**
 * alipay.data.dataservice.bill.downloadurl.query: bill_type trade and a daily
 * bill_date only. A day not yet closed (or a date in the future) has no bill:
 * 40004 isp.bill_not_exist, which Fen reads as "ask again later".
 */
export async function billDownloadUrlQuery(context: GatewayContext, app: SimApp, bizContent: Record<string, unknown>): Promise<Record<string, unknown>> {
  const billType = bizContent.bill_type;
  const billDate = typeof bizContent.bill_date === 'string' ? bizContent.bill_date : '';
  if (billType !== 'trade') return errorBody(gatewayError('businessFailed', 'isv.invalid-arguments', '参数无效: bill_type（模拟器只提供 trade 账单）'));
  const period = beijingDay(billDate);
  if (!period) return errorBody(gatewayError('businessFailed', 'isv.invalid-arguments', '参数无效: bill_date'));
  const now = context.clock.now();
  if (now.getTime() < period.end.getTime() + context.bills.availableAfterMs) return errorBody(gatewayError('businessFailed', 'isp.bill_not_exist', '账单不存在'));
  const userId = `${app.sellerId}${accountSuffix}`;
  const bizDates = billDate.replaceAll('-', '');
  const timestamp = String(now.getTime());
  const url = new URL('/downloadBillFile.resource', context.publicBaseUrl());
  const parameters = {
    bizType: 'trade',
    userId,
    fileType: 'csv.zip',
    bizDates,
    downloadFileName: alipayBillEntryNames(userId, billDate).zip,
    timestamp,
    token: urlToken(context.bills.urlSecret, userId, bizDates, timestamp),
  };
  for (const [name, value] of Object.entries(parameters)) url.searchParams.set(name, value);
  return successBody({ bill_download_url: url.toString() });
}

export interface BillDownloadReply {
  statusCode: number;
  contentType: string;
  body: Buffer | string;
  fileName?: string;
}

/** GET /downloadBillFile.resource: the zip, if the URL is genuine and still fresh. */
export async function serveBillDownload(context: GatewayContext, query: Record<string, string | undefined>): Promise<BillDownloadReply> {
  const { userId = '', bizDates = '', timestamp = '', token = '' } = query;
  const expected = urlToken(context.bills.urlSecret, userId, bizDates, timestamp);
  const genuine = token.length === expected.length && timingSafeEqual(Buffer.from(token), Buffer.from(expected));
  const issuedAtMs = Number(timestamp);
  const fresh = Number.isFinite(issuedAtMs) && context.clock.now().getTime() <= issuedAtMs + context.bills.urlLifetimeMs;
  if (!genuine || !fresh || !/^\d{8}$/.test(bizDates) || !userId.endsWith(accountSuffix)) {
    return { statusCode: 403, contentType: 'text/plain; charset=utf-8', body: genuine ? '下载链接已过期 · The download link has expired' : '无效的下载链接 · Invalid download link' };
  }
  const billDate = `${bizDates.slice(0, 4)}-${bizDates.slice(4, 6)}-${bizDates.slice(6)}`;
  const bill = await buildDayBill(context, userId.slice(0, -accountSuffix.length), billDate);
  return { statusCode: 200, contentType: 'application/octet-stream', body: bill.zip, fileName: bill.fileName };
}
