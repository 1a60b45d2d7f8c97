import type { Clock } from '../platform/clock.js';
import type { Logger } from '../platform/logging.js';
import type { Money } from '../platform/money.js';

/**
 * The one interface every payment channel implements (DESIGN.md §5).
 *
 * It is shaped for three very different wire protocols — Alipay (RSA2-signed
 * forms in, signed JSON out), WeChat Pay v3 (signed JSON both ways, AEAD-encrypted
 * notifications) and UnionPay ACP (certificate-signed forms) — so nothing here
 * names a channel's field, format or unit. Amounts cross this interface only as
 * bigint minor units with a currency; a channel's own amount format (Alipay's
 * "12.34" yuan) is converted inside that channel's folder and nowhere else.
 *
 * Two rules hold for every operation:
 *  - An operation never throws for anything the channel or the network does.
 *    A timeout, a connection error, a 5xx, an unparsable or unverifiable answer
 *    all come back as `{ status: 'unknown' }`, which never fails a payment: the
 *    caller keeps the payment `paying` and asks again later (DESIGN.md §2).
 *  - Every answer that carries an amount is compared with the amount the caller
 *    expected (`checkReportedAmount`); a difference comes back as
 *    `{ status: 'amount_mismatch' }` and is never a success.
 */

export const channelCodes = ['alipay', 'wechatpay', 'unionpay'] as const;
export type ChannelCode = (typeof channelCodes)[number];

/** The payment methods each channel offers; a method belongs to exactly one channel. */
export const channelMethods = {
  alipay: ['alipay_qr', 'alipay_page'],
  wechatpay: ['wechat_native', 'wechat_jsapi', 'wechat_h5'],
  unionpay: ['unionpay_web'],
} as const satisfies Record<ChannelCode, readonly string[]>;

export type PaymentMethod = (typeof channelMethods)[ChannelCode][number];
export type ChannelMethod<C extends ChannelCode> = (typeof channelMethods)[C][number];

/**
 * The four things a channel can say about a payment or a refund. A channel's
 * own status words (TRADE_SUCCESS, SUCCESS, 00, …) map onto these through an
 * exhaustive map in the channel's folder, with anything unlisted mapped to
 * `unknown`.
 */
export const channelStatuses = ['succeeded', 'failed', 'pending', 'unknown'] as const;
export type ChannelStatus = (typeof channelStatuses)[number];

/** Why an answer is `unknown`: all of these mean "ask again later", none means "failed". */
export type UnknownReason =
  | 'timeout'
  | 'network'
  | 'http_status'
  | 'unparsable'
  | 'unverifiable'
  | 'channel_error'
  | 'unmapped_status'
  | 'state_conflict';

/** Every operation may answer this instead of its own result. */
export interface UnknownAnswer {
  status: 'unknown';
  reason: UnknownReason;
  /** The channel's code (ACQ.SYSTEM_ERROR, HTTP 502, …) when there was one. */
  channelCode?: string;
  message: string;
}

/** An answer whose amount or currency differs from the order: an exception, never a success. */
export interface AmountMismatchAnswer<Facts> {
  status: 'amount_mismatch';
  expected: Money;
  reported: Money;
  /** What the answer would have meant had the amount matched. */
  reportedStatus: ChannelStatus;
  facts: Facts;
}

// ---------------------------------------------------------------------------
// Creating a payment

export interface CreatePaymentRequest {
  method: PaymentMethod;
  /** Fen's number for this payment at the channel (Alipay out_trade_no, WeChat out_trade_no, UnionPay orderId). */
  outTradeNo: string;
  amount: Money;
  subject: string;
  description?: string;
  /** After this the channel must refuse to take the money. */
  expiresAt: Date;
  /** Overrides the account's notify URL for this payment. */
  notifyUrl?: string;
  /** Where the payer's browser goes after a page payment; overrides the account's. */
  returnUrl?: string;
  /** Some channels require the payer's IP (WeChat H5, UnionPay). */
  payerIp?: string;
  /** The payer's id at the channel where the method needs one (WeChat JSAPI openid). */
  payerChannelId?: string;
}

/** What the payer does next to pay. */
export type PayerAction =
  | { kind: 'qr_code'; qrCode: string }
  | { kind: 'redirect'; url: string }
  /**
   * A form the payer's browser posts to the channel: as fields, so a page can
   * render it under its own escaping and CSP, and as the channel's own HTML.
   */
  | { kind: 'form'; actionUrl: string; fields: Record<string, string>; html: string }
  | { kind: 'client_parameters'; parameters: Record<string, string> };

export type CreatePaymentResult =
  | { status: 'pending'; action: PayerAction; channelTradeNo?: string }
  /** The channel refused the order: nothing was created there and no money can move for it. */
  | { status: 'failed'; reason: 'rejected'; channelCode: string; message: string }
  | UnknownAnswer;

// ---------------------------------------------------------------------------
// Querying and closing a payment

export interface QueryPaymentRequest {
  outTradeNo: string;
  channelTradeNo?: string;
  /** The order's amount: every answer is checked against it. */
  expected: Money;
}

/** What a channel reports about a payment, in Fen's units. */
export interface ReportedPayment {
  outTradeNo: string;
  channelTradeNo: string | undefined;
  /** The order's total as the channel knows it. */
  amount: Money;
  /** The channel's own status word, kept for the record and for operators. */
  channelStatus: string;
  paidAt: Date | undefined;
  payerChannelId: string | undefined;
}

export type PaymentFailureReason =
  /** Closed before anyone paid (by Fen, by the payer cancelling, or by expiry). */
  | 'closed'
  /** Paid and then refunded in full, after which some channels report the trade closed. */
  | 'refunded_in_full'
  | 'declined';

export type PaymentStatusResult =
  | { status: 'succeeded'; facts: ReportedPayment & { paidAt: Date } }
  | { status: 'pending'; facts: ReportedPayment }
  | { status: 'failed'; reason: PaymentFailureReason; facts: ReportedPayment }
  /**
   * The channel has no such trade. For a QR order nobody has scanned yet this
   * is normal (Alipay creates the trade at the scan), so it is not a failure:
   * the payment stays open; once it is past its expiry and a close also
   * answers `not_found`, no money can have moved and Fen may close it.
   */
  | { status: 'not_found'; channelCode: string }
  | AmountMismatchAnswer<ReportedPayment>
  | UnknownAnswer;

export interface ClosePaymentRequest {
  outTradeNo: string;
  channelTradeNo?: string;
}

export type ClosePaymentResult =
  | { status: 'succeeded' }
  /** The channel has no such trade (an unscanned QR order); see `not_found` above. */
  | { status: 'not_found'; channelCode: string }
  /** The channel would not close it — usually because it was paid meanwhile: query it. */
  | { status: 'failed'; reason: 'rejected'; channelCode: string; message: string }
  | UnknownAnswer;

// ---------------------------------------------------------------------------
// Refunds

export interface RefundRequest {
  outTradeNo: string;
  channelTradeNo?: string;
  /** Fen's refund number, sent as the channel's refund request number (Alipay out_request_no, WeChat out_refund_no). */
  outRefundNo: string;
  refundAmount: Money;
  /** The payment's total; some channels (WeChat Pay) require it in the request. */
  paymentAmount: Money;
  reason?: string;
}

export interface QueryRefundRequest {
  outTradeNo: string;
  channelTradeNo?: string;
  outRefundNo: string;
  /** The refund's amount: every answer is checked against it. */
  expected: Money;
}

export interface ReportedRefund {
  outTradeNo: string;
  outRefundNo: string;
  channelTradeNo: string | undefined;
  channelRefundNo: string | undefined;
  /**
   * This refund's amount as the channel reports it; `undefined` when the
   * message does not carry it (Alipay's trade notification after a refund only
   * carries the running total), and then the answer is at best `pending`:
   * confirm it with a refund query.
   */
  amount: Money | undefined;
  /** Everything refunded on the payment so far, when the channel says. */
  totalRefunded: Money | undefined;
  channelStatus: string;
  refundedAt: Date | undefined;
}

export type RefundResult =
  | { status: 'succeeded'; facts: ReportedRefund }
  /** Accepted and still being processed (or the channel asks to be queried): query it later. */
  | { status: 'pending'; facts: ReportedRefund | undefined }
  /** The channel refused the refund; no money moved. Fen may retry with the same refund number. */
  | { status: 'failed'; reason: 'rejected'; channelCode: string; message: string }
  /** Refund query only: the channel has no such refund, so it never happened. */
  | { status: 'not_found'; channelCode: string }
  | AmountMismatchAnswer<ReportedRefund>
  | UnknownAnswer;

// ---------------------------------------------------------------------------
// Notifications

/** A channel's notification exactly as it arrived on Fen's channel endpoint. */
export interface InboundNotification {
  /** Lower-cased header names (WeChat Pay signs with headers). */
  headers: Record<string, string | string[] | undefined>;
  /** The body byte-for-byte as text; some channels sign the raw body. */
  rawBody: string;
  /** The body parsed as a form, for form-posting channels (Alipay, UnionPay). */
  form?: Record<string, string>;
  /** The body parsed as JSON, for JSON-posting channels (WeChat Pay). */
  json?: unknown;
}

/**
 * A verified notification, before its amount has been compared with the order.
 * It deliberately has no `status`: the caller looks up the order by its number
 * and passes the event through `checkNotificationAmount`, which is the only way
 * to get one.
 */
export type NotificationEvent =
  | {
      kind: 'payment';
      /** The channel's id for this notification, the same on every retry of it. */
      notificationId: string | undefined;
      reportedStatus: ChannelStatus;
      failureReason: PaymentFailureReason | undefined;
      facts: ReportedPayment;
    }
  | {
      kind: 'refund';
      notificationId: string | undefined;
      reportedStatus: ChannelStatus;
      facts: ReportedRefund;
    };

export type NotificationRejection = 'invalid_signature' | 'malformed' | 'foreign_account' | 'unsupported';

export type NotificationVerification =
  | { verified: true; event: NotificationEvent }
  /** Never trusted (DESIGN.md §3.5): query the channel instead and raise a security alert. */
  | { verified: false; reason: NotificationRejection; message: string };

/** The exact HTTP reply a channel expects to stop retrying a notification (or to retry it). */
export interface NotificationAcknowledgement {
  statusCode: number;
  contentType: string;
  body: string;
}

// ---------------------------------------------------------------------------
// Bills (reconciliation fills this in; every channel gets there later)

export interface BillRequest {
  /** The bill's day in the channel's own time zone, YYYY-MM-DD. */
  billDate: string;
}

export interface BillLine {
  /** Told from the line's business type, never from the sign of its amount. */
  kind: 'payment' | 'refund';
  outTradeNo: string;
  outRefundNo: string | undefined;
  /** The channel's number for the payment; on a refund line, the payment refunded. */
  channelTradeNo: string;
  /** Never negative: the payment's total or the refund's amount. */
  amount: Money;
  /** Never negative: the fee charged on a payment, or handed back on a refund. */
  fee: Money;
  /**
   * What the bill says happened. Alipay and UnionPay list only completed
   * business; WeChat Pay's ALL bill also lists refunds still processing and
   * payments revoked.
   */
  status: 'succeeded' | 'pending' | 'failed';
  occurredAt: Date;
  /** The line of the channel's file it came from, for whoever chases a difference. */
  lineNumber: number;
}

/** A bill's totals, computed from its lines and checked against every total the file states. */
export interface ChannelBillTotals {
  lineCount: number;
  payments: { count: number; amount: Money; fee: Money };
  refunds: { count: number; amount: Money; fee: Money };
  /** What the channel owes for the day: payments − refunds − fees charged + fees handed back. */
  netAmount: Money;
  /** Lines dated outside the bill's day (the cut-off's business, not an error). */
  linesOutsidePeriod: number;
}

/**
 * A downloaded bill, read as a stream so a bill of a million lines never sits
 * in memory. `lines()` yields the lines in batches (those of each chunk of the
 * file, a few thousand at a time: one await per batch, and a natural unit for
 * looking lines up in the database) and returns the totals once the last line
 * has been read and every check (the file's own totals, hash, checksum, day)
 * has passed. It throws for a malformed or inconsistent file — possibly after
 * yielding batches — so a caller keeps nothing it read until `lines()` has
 * returned. It can be read once; `discard()` removes the downloaded file.
 */
export interface ChannelBill {
  billDate: string;
  /** The file as the channel delivered it, on local disk until discard(): keep a copy as evidence if wanted. */
  filePath: string;
  lines(): AsyncGenerator<BillLine[], ChannelBillTotals, undefined>;
  discard(): Promise<void>;
}

export type BillResult =
  | { status: 'ready'; bill: ChannelBill }
  /** The channel has no bill for the day yet (the day is not over, or the bill is still being made): ask again later. */
  | { status: 'not_ready'; channelCode: string; message: string }
  /** The channel refused the request itself (an invalid date or bill type): asking again will not help. */
  | { status: 'failed'; reason: 'rejected'; channelCode: string; message: string }
  | UnknownAnswer;

// ---------------------------------------------------------------------------
// The connector

export interface ChannelConnector {
  readonly channel: ChannelCode;
  readonly channelAccountId: string;
  readonly methods: readonly PaymentMethod[];
  createPayment(request: CreatePaymentRequest): Promise<CreatePaymentResult>;
  queryPayment(request: QueryPaymentRequest): Promise<PaymentStatusResult>;
  closePayment(request: ClosePaymentRequest): Promise<ClosePaymentResult>;
  /** Partial and repeated refunds; the same `outRefundNo` again is the same refund, never a second one. */
  refund(request: RefundRequest): Promise<RefundResult>;
  queryRefund(request: QueryRefundRequest): Promise<RefundResult>;
  /** Verifies the signature (and decrypts, where the channel encrypts) and parses; never throws. */
  verifyNotification(notification: InboundNotification): Promise<NotificationVerification>;
  /** What to reply: `accepted` once Fen has recorded the notification, so the channel stops retrying. */
  acknowledgeNotification(outcome: 'accepted' | 'rejected'): NotificationAcknowledgement;
  downloadBill?(request: BillRequest): Promise<BillResult>;
}

/** What a connector needs from its surroundings. */
export interface ConnectorDependencies {
  logger: Logger;
  clock: Clock;
}

// ---------------------------------------------------------------------------
// Shared helpers

export function sameMoney(left: Money, right: Money): boolean {
  return left.amount === right.amount && left.currency === right.currency;
}

/** The amount check every answer goes through; `undefined` means the amounts agree. */
export function checkReportedAmount(reported: Money, expected: Money): { expected: Money; reported: Money } | undefined {
  return sameMoney(reported, expected) ? undefined : { expected, reported };
}

/**
 * Turns what a channel reported about a payment into a result, with the amount
 * check first: a mismatch wins over every status, success included.
 */
export function paymentResultFrom(
  reported: { status: ChannelStatus; failureReason?: PaymentFailureReason; facts: ReportedPayment },
  expected: Money,
): PaymentStatusResult {
  const mismatch = checkReportedAmount(reported.facts.amount, expected);
  if (mismatch) return { status: 'amount_mismatch', ...mismatch, reportedStatus: reported.status, facts: reported.facts };
  const { facts } = reported;
  switch (reported.status) {
    case 'succeeded':
      if (facts.paidAt === undefined) {
        return { status: 'unknown', reason: 'unparsable', channelCode: facts.channelStatus, message: 'a successful payment without a payment time' };
      }
      return { status: 'succeeded', facts: { ...facts, paidAt: facts.paidAt } };
    case 'pending':
      return { status: 'pending', facts };
    case 'failed':
      return { status: 'failed', reason: reported.failureReason ?? 'declined', facts };
    case 'unknown':
      return { status: 'unknown', reason: 'unmapped_status', channelCode: facts.channelStatus, message: `unmapped payment status ${facts.channelStatus}` };
  }
}

/** The same for a refund: the amount check first, then the status. */
export function refundResultFrom(reported: { status: ChannelStatus; facts: ReportedRefund }, expected: Money): RefundResult {
  const amount = reported.facts.amount;
  const mismatch = amount === undefined ? undefined : checkReportedAmount(amount, expected);
  if (mismatch) return { status: 'amount_mismatch', ...mismatch, reportedStatus: reported.status, facts: reported.facts };
  switch (reported.status) {
    case 'succeeded':
      // Success is only believed with an amount that was checked.
      return amount === undefined ? { status: 'pending', facts: reported.facts } : { status: 'succeeded', facts: reported.facts };
    case 'pending':
      return { status: 'pending', facts: reported.facts };
    case 'failed':
      return { status: 'failed', reason: 'rejected', channelCode: reported.facts.channelStatus, message: `refund ${reported.facts.channelStatus}` };
    case 'unknown':
      return {
        status: 'unknown',
        reason: 'unmapped_status',
        channelCode: reported.facts.channelStatus,
        message: `unmapped refund status ${reported.facts.channelStatus}`,
      };
  }
}

export type PaymentNotificationEvent = Extract<NotificationEvent, { kind: 'payment' }>;
export type RefundNotificationEvent = Extract<NotificationEvent, { kind: 'refund' }>;

/**
 * The only way from a verified notification to a result: the caller found the
 * order (or refund) the notification names and passes its amount here.
 */
export function checkNotificationAmount(event: PaymentNotificationEvent, expected: Money): PaymentStatusResult;
export function checkNotificationAmount(event: RefundNotificationEvent, expected: Money): RefundResult;
export function checkNotificationAmount(event: NotificationEvent, expected: Money): PaymentStatusResult | RefundResult;
export function checkNotificationAmount(event: NotificationEvent, expected: Money): PaymentStatusResult | RefundResult {
  if (event.kind === 'payment') {
    return paymentResultFrom({ status: event.reportedStatus, failureReason: event.failureReason, facts: event.facts }, expected);
  }
  return refundResultFrom({ status: event.reportedStatus, facts: event.facts }, expected);
}
