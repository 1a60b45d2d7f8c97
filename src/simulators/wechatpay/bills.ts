import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { divideRounded, formatMinorAsDecimal, prorate } from '../../platform/money.js';
import type { ApiContext } from './api.js';
import { listFaults, type ActiveFault, type WechatpayFault } from './faults.js';
import { apiError, beijingRfc3339, errorReply, type ApiReply } from './protocol.js';
import type { Executor, SimMerchant, SimRefundStatus } from './store.js';
import { completeRefunds } from './trades.js';

/**
 * WeChat Pay's trade bill as the simulator serves it. `GET /v3/bill/tradebill
 * ?bill_date=YYYY-MM-DD&bill_type=ALL` (signed and answered like every other
 * API call) builds the merchant's bill for that Beijing day from the
 * simulator's own orders and refunds, keeps it, and answers
 * `{hash_type: "SHA1", hash_value, download_url}`; the download URL
 * (`/v3/billdownload/file?token=…`, a signed GET as well, answered unsigned as
 * WeChat Pay answers downloads) serves exactly that file for a few minutes.
 * The file is written apart from Fen's parser (src/reconciliation/bills/
 * wechatpay.ts) so that each checks the other; docs/reconciliation.md
 * describes the layout both follow.
 *
 * The file: UTF-8 with a BOM, CRLF, the header row of the ALL bill's 27
 * columns, one row per payment completed that day and per refund applied for
 * that day, every cell prefixed with a backtick, then the summary header and
 * its one row. Fees have five decimal places: a payment's is its amount times
 * the configured rate (half-up at the fifth place), a refund hands back the
 * part in proportion to what it refunds, written negative.
 *
 * When it exists: WeChat Pay produces a day's bill after 10:00 the next
 * morning; before that the request answers 400 STATEMENT_CREATING 账单生成中.
 * A day without a single payment or refund has no bill at all: 400
 * NO_STATEMENT_EXIST 请求的账单文件不存在 (WeChat Pay's FAQ: "请检查商户号当日
 * 是否有产生交易或退款").
 */

// ---------------------------------------------------------------------------
// The file

export const tradeBillHeader = [
  '交易时间', '公众账号ID', '商户号', '特约商户号', '设备号', '微信订单号', '商户订单号', '用户标识', '交易类型', '交易状态',
  '付款银行', '货币种类', '应结订单金额', '代金券金额', '微信退款单号', '商户退款单号', '退款金额', '充值券退款金额', '退款类型', '退款状态',
  '商品名称', '商户数据包', '手续费', '费率', '订单金额', '申请退款金额', '费率备注',
] as const;

export const tradeBillSummaryHeader = ['总交易单数', '应结订单总金额', '退款总金额', '充值券退款总金额', '手续费总金额', '订单总金额', '申请退款总金额'] as const;

const crlf = '\r\n';
const byteOrderMark = '\ufeff';
/** The fee column's unit: 10^-5 yuan, a thousandth of a fen. */
const feeUnitsPerFen = 1000n;

/** One row of the bill, in positive fen (and fee units); the writer applies WeChat's signs. */
export interface WechatpayBillLine {
  kind: 'payment' | 'refund';
  /** 交易时间: the payment's completion, or the refund's application. */
  at: Date;
  appId: string;
  mchId: string;
  transactionId: string;
  outTradeNo: string;
  openId: string;
  /** The bill's word for the product: NATIVE, JSAPI, MWEB (H5). */
  tradeType: string;
  description: string;
  /** The order's total (payment) or the refund's requested amount (refund). */
  amountFen: bigint;
  /** The fee in 10^-5 yuan, as a magnitude: charged on a payment, handed back on a refund. */
  feeUnits: bigint;
  refund?: { refundId: string; outRefundNo: string; status: SimRefundStatus };
}

function yuan(fen: bigint): string {
  return formatMinorAsDecimal(fen, 'CNY');
}

/** 10^-5 yuan as the fee column writes it: "0.07404", "-0.03000". */
function feeText(units: bigint): string {
  const magnitude = (units < 0n ? -units : units).toString().padStart(6, '0');
  return `${units < 0n ? '-' : ''}${magnitude.slice(0, -5)}.${magnitude.slice(-5)}`;
}

/** A fee in units rounded to the fen half-up on its magnitude, as a reader of the two-place summary does. */
function feeFen(units: bigint): bigint {
  const magnitude = divideRounded(units < 0n ? -units : units, feeUnitsPerFen, 'half_up');
  return units < 0n ? -magnitude : magnitude;
}

function rateText(basisPoints: bigint): string {
  return `${basisPoints / 100n}.${(basisPoints % 100n).toString().padStart(2, '0')}%`;
}

function beijingDateTime(date: Date): string {
  return beijingRfc3339(date).slice(0, 19).replace('T', ' ');
}

/** A data cell: the backtick WeChat Pay puts before every value, quoted as RFC 4180 when the text needs it. */
function cell(value: string): string {
  const text = `\`${value}`;
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** The signed column sums the summary row states, accumulated row by row. */
class SummaryTotals {
  rows = 0;
  settlementFen = 0n;
  refundedFen = 0n;
  feeFen = 0n;
  orderFen = 0n;
  requestedRefundFen = 0n;

  row(line: WechatpayBillLine, feeRateBasisPoints: bigint): string {
    const refund = line.kind === 'refund' ? line.refund : undefined;
    const zero = '0.00';
    // A closed refund paid nothing back: it asked for the amount and settled none of it.
    const refundedFen = refund && refund.status !== 'CLOSED' ? line.amountFen : 0n;
    const signedFeeUnits = refund ? -line.feeUnits : line.feeUnits;
    const settlementFen = refund ? 0n : line.amountFen;
    const requestedRefundFen = refund ? line.amountFen : 0n;
    this.rows += 1;
    this.settlementFen += settlementFen;
    this.refundedFen += refundedFen;
    this.feeFen += feeFen(signedFeeUnits);
    this.orderFen += settlementFen;
    this.requestedRefundFen += requestedRefundFen;
    return [
      beijingDateTime(line.at), line.appId, line.mchId, '0', '', line.transactionId, line.outTradeNo, line.openId, line.tradeType,
      refund ? 'REFUND' : 'SUCCESS', 'OTHERS', 'CNY', yuan(settlementFen), zero, refund?.refundId ?? '0', refund?.outRefundNo ?? '0',
      yuan(refundedFen), zero, refund ? 'ORIGINAL' : '', refund?.status ?? '', line.description, '', feeText(signedFeeUnits),
      rateText(feeRateBasisPoints), yuan(settlementFen), yuan(requestedRefundFen), '',
    ]
      .map(cell)
      .join(',');
  }

  /**
   * The summary row. 手续费总金额 has two places: the sum of the line fees
   * each rounded to the fen, which is one of the two roundings a reader may
   * check it against (docs/reconciliation.md).
   */
  summary(): string {
    return [String(this.rows), yuan(this.settlementFen), yuan(this.refundedFen), '0.00', yuan(this.feeFen), yuan(this.orderFen), yuan(this.requestedRefundFen)]
      .map(cell)
      .join(',');
  }
}

/** The whole trade bill for a list of lines, as UTF-8 bytes with the BOM. */
export function tradeBillFile(lines: WechatpayBillLine[], feeRateBasisPoints: bigint): Buffer {
  const totals = new SummaryTotals();
  const rows = lines.map((line) => totals.row(line, feeRateBasisPoints) + crlf).join('');
  const text = `${byteOrderMark}${tradeBillHeader.join(',')}${crlf}${rows}${tradeBillSummaryHeader.join(',')}${crlf}${totals.summary()}${crlf}`;
  return Buffer.from(text, 'utf8');
}

// ---------------------------------------------------------------------------
// The day's lines, from the simulator's state and its bill faults

export interface WechatpayBillSettings {
  /** The fee WeChat Pay charges, in basis points of each payment (60: 0.6%). */
  feeRateBasisPoints: bigint;
  /** How long after the Beijing midnight that ends a day its bill becomes available. */
  availableAfterMs: number;
  /** How long a download_url works once issued. */
  urlLifetimeMs: number;
  /** Signs download URLs; derived from the platform key so every simulator process agrees. */
  urlSecret: Buffer;
}

export const defaultWechatpayBillSettings = {
  feeRateBasisPoints: 60n,
  // "微信支付在每日10点后生成昨日交易账单文件".
  availableAfterMs: 10 * 60 * 60 * 1000,
  // "该地址5min内有效".
  urlLifetimeMs: 5 * 60 * 1000,
} as const;

export function billUrlSecret(platformPrivateKeyPem: string): Buffer {
  return createHash('sha256').update('wechatpay-simulator bill urls\n').update(platformPrivateKeyPem).digest();
}

const dayMs = 24 * 60 * 60 * 1000;
const billTypes = { NATIVE: 'NATIVE', JSAPI: 'JSAPI', H5: 'MWEB' } as const;
type BillFault = Extract<WechatpayFault, { kind: `bill_${string}` }>;
type ActiveBillFault = ActiveFault & { fault: BillFault };

/** The Beijing day [start, end) of a YYYY-MM-DD date, or undefined for anything else. */
export function beijingDay(billDate: string): { start: Date; end: Date } | undefined {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(billDate)) return undefined;
  const start = new Date(`${billDate}T00:00:00+08:00`);
  if (Number.isNaN(start.getTime()) || beijingRfc3339(start).slice(0, 10) !== billDate) return undefined;
  return { start, end: new Date(start.getTime() + dayMs) };
}

interface TradeRow {
  id: string;
  appid: string;
  mchid: string;
  out_trade_no: string;
  trade_type: keyof typeof billTypes;
  description: string;
  total_fen: string;
  transaction_id: string | null;
  payer_openid: string | null;
  created_at: Date;
  paid_at: Date | null;
  closed_at: Date | null;
}

interface RefundRow {
  refund_id: string;
  trade_id: string;
  out_refund_no: string;
  refund_fen: string;
  status: SimRefundStatus;
  created_at: Date;
}

const tradeColumns = 't.id::text, t.appid, t.mchid, t.out_trade_no, t.trade_type, t.description, t.total_fen::text, t.transaction_id, t.payer_openid, t.created_at, t.paid_at, t.closed_at';

/** A digit string derived from a seed: invented numbers stay the same on every build, so re-runs see the same bill. */
function digitsFrom(seed: string, count: number): string {
  const hex = createHash('sha256').update(seed).digest('hex');
  return BigInt(`0x${hex}`).toString().padStart(count, '0').slice(-count);
}

function paymentFeeUnits(amountFen: bigint, settings: WechatpayBillSettings): bigint {
  // amount (fen) × rate (basis points) in units of 10^-5 yuan: fen × 1000 × bp / 10000.
  return divideRounded(amountFen * settings.feeRateBasisPoints, 10n, 'half_up');
}

function paymentLine(trade: TradeRow, at: Date, settings: WechatpayBillSettings, transactionId = trade.transaction_id ?? ''): WechatpayBillLine {
  const amountFen = BigInt(trade.total_fen);
  return {
    kind: 'payment',
    at,
    appId: trade.appid,
    mchId: trade.mchid,
    transactionId,
    outTradeNo: trade.out_trade_no,
    openId: trade.payer_openid ?? `o${digitsFrom(`openid/${trade.id}`, 27)}`,
    tradeType: billTypes[trade.trade_type] ?? trade.trade_type,
    description: trade.description,
    amountFen,
    feeUnits: paymentFeeUnits(amountFen, settings),
  };
}

/**
 * A refund's line. The fee is handed back in proportion to what is refunded,
 * computed on the running total (fee × refunded so far ÷ total, less what
 * earlier refunds handed back), so refunding a payment in full hands back
 * exactly the fee charged. A closed refund paid nothing back and hands back
 * nothing, and does not count towards the running total.
 */
function refundLine(trade: TradeRow, refund: RefundRow, earlier: RefundRow[], settings: WechatpayBillSettings): WechatpayBillLine {
  const totalFen = BigInt(trade.total_fen);
  const fee = paymentFeeUnits(totalFen, settings);
  const before = earlier.filter((other) => other.status !== 'CLOSED').reduce((sum, other) => sum + BigInt(other.refund_fen), 0n);
  const refundFen = BigInt(refund.refund_fen);
  const handedBack =
    refund.status === 'CLOSED' ? 0n : prorate({ whole: fee, part: before + refundFen, total: totalFen }) - prorate({ whole: fee, part: before, total: totalFen });
  return {
    ...paymentLine(trade, refund.created_at, settings),
    kind: 'refund',
    amountFen: refundFen,
    feeUnits: handedBack,
    refund: { refundId: refund.refund_id, outRefundNo: refund.out_refund_no, status: refund.status },
  };
}

/** Every payment completed and every refund applied by the merchant in [start, end). */
async function realLines(executor: Executor, mchId: string, period: { start: Date; end: Date }, settings: WechatpayBillSettings): Promise<WechatpayBillLine[]> {
  const paid = await executor.query<TradeRow>(
    `SELECT ${tradeColumns} FROM sim_wechatpay.trades t WHERE t.mchid = $1 AND t.paid_at >= $2 AND t.paid_at < $3 ORDER BY t.paid_at, t.id`,
    [mchId, period.start, period.end],
  );
  const refunded = await executor.query<TradeRow & Omit<RefundRow, 'created_at'> & { refund_created_at: Date }>(
    `SELECT ${tradeColumns}, r.refund_id, r.trade_id::text, r.out_refund_no, r.refund_fen::text, r.status, r.created_at AS refund_created_at
     FROM sim_wechatpay.refunds r JOIN sim_wechatpay.trades t ON t.id = r.trade_id
     WHERE r.mchid = $1 AND r.created_at >= $2 AND r.created_at < $3 ORDER BY r.created_at, r.refund_id`,
    [mchId, period.start, period.end],
  );
  const history = await executor.query<RefundRow>(
    `SELECT refund_id, trade_id::text, out_refund_no, refund_fen::text, status, created_at FROM sim_wechatpay.refunds
     WHERE trade_id = ANY($1::bigint[]) ORDER BY created_at, refund_id`,
    [[...new Set(refunded.rows.map((row) => row.trade_id))]],
  );
  const lines = paid.rows.map((trade) => paymentLine(trade, trade.paid_at!, settings));
  for (const row of refunded.rows) {
    const refund: RefundRow = { refund_id: row.refund_id, trade_id: row.trade_id, out_refund_no: row.out_refund_no, refund_fen: row.refund_fen, status: row.status, created_at: row.refund_created_at };
    const at = refund.created_at.getTime();
    const isEarlier = (other: RefundRow) =>
      other.trade_id === refund.trade_id && (other.created_at.getTime() < at || (other.created_at.getTime() === at && other.refund_id < refund.refund_id));
    lines.push(refundLine(row, refund, history.rows.filter(isEarlier), settings));
  }
  return lines;
}

function applies(fault: ActiveBillFault, line: WechatpayBillLine): boolean {
  if (fault.outTradeNo !== null && fault.outTradeNo !== line.outTradeNo) return false;
  if (fault.fault.kind === 'bill_wrong_status' || fault.fault.kind === 'bill_extra_line') return false;
  if (fault.fault.line !== line.kind) return false;
  return fault.fault.outRefundNo === undefined || fault.fault.outRefundNo === line.refund?.outRefundNo;
}

/** Applies the bill faults to the real lines; returns the bill's lines and the faults that fired. */
function applyFaults(lines: WechatpayBillLine[], faults: ActiveBillFault[], context: { billDate: string; period: { start: Date }; merchant: SimMerchant; settings: WechatpayBillSettings }) {
  const fired = new Set<number>();
  const result: WechatpayBillLine[] = [];
  for (const original of lines) {
    let line = original;
    let dropped = false;
    for (const active of faults.filter((fault) => applies(fault, original))) {
      fired.add(active.id);
      const fault = active.fault;
      if (fault.kind === 'bill_missing_line' || fault.kind === 'bill_next_day') dropped = true;
      else if (fault.kind === 'bill_wrong_amount') line = { ...line, amountFen: BigInt(fault.amountFen) };
      else if (fault.kind === 'bill_wrong_fee') line = { ...line, feeUnits: BigInt(fault.feeFen) * feeUnitsPerFen };
    }
    if (!dropped) result.push(line);
  }
  for (const active of faults) {
    if (active.fault.kind !== 'bill_extra_line') continue;
    fired.add(active.id);
    const seed = `${context.merchant.mchId}/${context.billDate}/${active.id}`;
    const amountFen = BigInt(active.fault.amountFen);
    const compactDate = context.billDate.replaceAll('-', '');
    result.push({
      kind: active.fault.line,
      at: new Date(context.period.start.getTime() + dayMs / 2),
      appId: context.merchant.appIds[0] ?? 'wx0000000000000000',
      mchId: context.merchant.mchId,
      transactionId: `4200${digitsFrom(`${seed}/transaction`, 6)}${compactDate}${digitsFrom(seed, 10)}`,
      outTradeNo: active.outTradeNo ?? `sim_extra_${active.id}`,
      openId: `o${digitsFrom(`${seed}/openid`, 27)}`,
      tradeType: 'NATIVE',
      description: '未知订单 Unknown order',
      amountFen,
      feeUnits: paymentFeeUnits(amountFen, context.settings),
      ...(active.fault.line === 'refund'
        ? { refund: { refundId: `5000${digitsFrom(`${seed}/refund`, 6)}${compactDate}${digitsFrom(`${seed}/refund_id`, 11)}`, outRefundNo: `sim_extra_refund_${active.id}`, status: 'SUCCESS' as const } }
        : {}),
    });
  }
  return { lines: result, fired };
}

/** Lines of the day before that a bill_next_day fault moved into this bill, dated at its first second. */
async function movedFromDayBefore(executor: Executor, mchId: string, period: { start: Date; end: Date }, faults: ActiveBillFault[], settings: WechatpayBillSettings) {
  const moving = faults.filter((fault) => fault.fault.kind === 'bill_next_day');
  if (moving.length === 0) return [];
  const before = await realLines(executor, mchId, { start: new Date(period.start.getTime() - dayMs), end: period.start }, settings);
  return before.filter((line) => moving.some((fault) => applies(fault, line))).map((line) => ({ ...line, at: period.start }));
}

/**
 * Orders a bill_wrong_status fault lists as paid although nobody paid them:
 * created that day and never paid. WeChat Pay gives an unpaid order no
 * transaction_id, so the line carries one made up from the order (the same on
 * every build).
 */
async function unpaidListedAsPaid(executor: Executor, mchId: string, period: { start: Date; end: Date }, faults: ActiveBillFault[], settings: WechatpayBillSettings) {
  const named = faults.filter((fault) => fault.fault.kind === 'bill_wrong_status' && fault.outTradeNo !== null);
  if (named.length === 0) return { lines: [], fired: [] as number[] };
  const rows = await executor.query<TradeRow>(
    `SELECT ${tradeColumns} FROM sim_wechatpay.trades t
     WHERE t.mchid = $1 AND t.out_trade_no = ANY($2) AND t.paid_at IS NULL AND t.created_at >= $3 AND t.created_at < $4`,
    [mchId, named.map((fault) => fault.outTradeNo), period.start, period.end],
  );
  const lines = rows.rows.map((trade) => {
    const at = trade.closed_at && trade.closed_at.getTime() < period.end.getTime() ? trade.closed_at : trade.created_at;
    const transactionId = `4200${digitsFrom(`unpaid/${trade.id}`, 6)}${beijingRfc3339(trade.created_at).slice(0, 10).replaceAll('-', '')}${digitsFrom(`unpaid/${trade.id}/id`, 10)}`;
    return paymentLine(trade, at, settings, transactionId);
  });
  const fired = named.filter((fault) => rows.rows.some((row) => row.out_trade_no === fault.outTradeNo)).map((fault) => fault.id);
  return { lines, fired };
}

/** Counts a fired switch down once per bill built, as the other switches count down once per firing. */
async function countDown(executor: Executor, faultIds: Iterable<number>): Promise<void> {
  for (const id of faultIds) {
    await executor.query('UPDATE sim_wechatpay.faults SET remaining = remaining - 1 WHERE id = $1 AND remaining > 0', [id]);
  }
}

/**
 * The merchant's bill lines for a Beijing day, with the active bill faults
 * applied (and counted down), in time order. Refunds whose time has come are
 * completed first, so the bill shows each refund as WeChat Pay would now.
 */
export async function buildDayLines(context: ApiContext, merchant: SimMerchant, billDate: string): Promise<WechatpayBillLine[]> {
  const period = beijingDay(billDate);
  if (!period) throw new Error(`not a bill date: ${billDate}`);
  const settings = context.bills;
  await completeRefunds(context, { dueBy: context.clock.now(), mchId: merchant.mchId });
  const faults = (await listFaults(context.pool)).filter((fault): fault is ActiveBillFault => fault.fault.kind.startsWith('bill_'));
  const real = await realLines(context.pool, merchant.mchId, period, settings);
  const moved = await movedFromDayBefore(context.pool, merchant.mchId, period, faults, settings);
  const unpaid = await unpaidListedAsPaid(context.pool, merchant.mchId, period, faults, settings);
  const applied = applyFaults(real, faults, { billDate, period, merchant, settings });
  await countDown(context.pool, new Set([...applied.fired, ...unpaid.fired]));
  return [...applied.lines, ...moved, ...unpaid.lines].sort((left, right) => left.at.getTime() - right.at.getTime());
}

// ---------------------------------------------------------------------------
// GET /v3/bill/tradebill and the download URL

function urlToken(secret: Buffer, billId: string, mchId: string, issuedAtMs: string, tarType: string): string {
  return createHmac('sha256', secret).update(`${billId}\n${mchId}\n${issuedAtMs}\n${tarType}`).digest('base64url');
}

const tarTypes = new Set(['', 'GZIP']);

/**
 * GET /v3/bill/tradebill: bill_type ALL only (absent means ALL, as WeChat Pay
 * reads it), tar_type absent or GZIP. The bill is built and kept now; the
 * answer names it by its SHA1 and a download URL.
 */
export async function tradeBillQuery(context: ApiContext, merchant: SimMerchant, query: Record<string, string | undefined>): Promise<ApiReply> {
  const billDate = query.bill_date ?? '';
  const billType = query.bill_type ?? 'ALL';
  const tarType = query.tar_type ?? '';
  const period = beijingDay(billDate);
  if (!period) return errorReply(apiError('PARAM_ERROR', '输入源“/query/bill_date”映射到字段“账单日期”格式校验失败，应为 yyyy-MM-dd'));
  if (billType !== 'ALL') return errorReply(apiError('PARAM_ERROR', `bill_type ${billType}：模拟器只提供 ALL 账单`));
  if (!tarTypes.has(tarType)) return errorReply(apiError('PARAM_ERROR', 'tar_type 只能是 GZIP'));
  const now = context.clock.now();
  if (now.getTime() < period.end.getTime() + context.bills.availableAfterMs) return errorReply(apiError('STATEMENT_CREATING'));
  const lines = await buildDayLines(context, merchant, billDate);
  if (lines.length === 0) return errorReply(apiError('NO_STATEMENT_EXIST'));
  const file = tradeBillFile(lines, context.bills.feeRateBasisPoints);
  const sha1 = createHash('sha1').update(file).digest('hex');
  // Bills whose URLs have expired are of no further use.
  await context.pool.query('DELETE FROM sim_wechatpay.bills WHERE created_at < $1', [new Date(now.getTime() - context.bills.urlLifetimeMs)]);
  const stored = await context.pool.query<{ id: string }>(
    'INSERT INTO sim_wechatpay.bills (mchid, bill_date, content, sha1, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id::text',
    [merchant.mchId, billDate, file, sha1, now],
  );
  const billId = stored.rows[0]!.id;
  const issuedAtMs = String(now.getTime());
  const token = `${billId}.${issuedAtMs}.${urlToken(context.bills.urlSecret, billId, merchant.mchId, issuedAtMs, tarType)}`;
  const url = new URL('/v3/billdownload/file', context.publicBaseUrl());
  url.searchParams.set('token', token);
  if (tarType === 'GZIP') url.searchParams.set('tartype', 'gzip');
  return { httpStatus: 200, body: { hash_type: 'SHA1', hash_value: sha1, download_url: url.toString() } };
}

/** A bill file to send as it is: downloads are not signed. */
export interface BillFileReply {
  kind: 'file';
  body: Buffer;
  fileName: string;
  /** A timeout fault: hold the file this long. */
  holdMs?: number;
}

/**
 * GET /v3/billdownload/file?token=…: the kept bill, for the merchant it was
 * made for, while the URL is fresh; gzipped when the request asked for GZIP
 * (hash_value stays the SHA1 of the bill itself, as WeChat Pay documents).
 */
export async function billFileDownload(context: ApiContext, merchant: SimMerchant, query: Record<string, string | undefined>): Promise<BillFileReply | ApiReply> {
  const [billId = '', issuedAtMs = '', mac = ''] = (query.token ?? '').split('.');
  const tarType = query.tartype === 'gzip' ? 'GZIP' : '';
  const expected = urlToken(context.bills.urlSecret, billId, merchant.mchId, issuedAtMs, tarType);
  const genuine = /^\d{1,18}$/.test(billId) && mac.length === expected.length && timingSafeEqual(Buffer.from(mac), Buffer.from(expected));
  if (!genuine) return errorReply(apiError('INVALID_REQUEST', '无效的账单下载链接'));
  const fresh = context.clock.now().getTime() <= Number(issuedAtMs) + context.bills.urlLifetimeMs;
  const stored = fresh
    ? await context.pool.query<{ content: Buffer; bill_date: string }>('SELECT content, bill_date FROM sim_wechatpay.bills WHERE id = $1 AND mchid = $2', [billId, merchant.mchId])
    : undefined;
  const bill = stored?.rows[0];
  if (!bill) return errorReply(apiError('INVALID_REQUEST', '账单下载链接已过期，请重新申请'));
  const name = `${merchant.mchId}_${bill.bill_date.replaceAll('-', '')}_ALL.csv`;
  return tarType === 'GZIP' ? { kind: 'file', body: gzipSync(bill.content), fileName: `${name}.gz` } : { kind: 'file', body: bill.content, fileName: name };
}
