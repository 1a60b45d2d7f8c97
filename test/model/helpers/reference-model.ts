/**
 * A reference model of the payment lifecycle, in plain TypeScript with no Fen
 * code in it: what Fen should show after each step of a merchant's, a payer's
 * and the clock's actions, for QR payments through one shared Alipay account.
 *
 * It keeps, per payment, Fen's status and refunds and also the channel's side
 * (has the payer paid? did Fen hear of it?), and, for the whole run, the money:
 * the merchant's pending balance, the platform's fee income, suspense, and
 * what the channel owes the platform. The rules it encodes, from DESIGN.md:
 * - a payment succeeds once, however many copies of its notification arrive;
 *   a lost notification is found by the query sweep (orders paying for more
 *   than 10 minutes) or when Fen tries to close or expire the order;
 * - closing an order the payer never scanned: Alipay does not know it yet
 *   (ACQ.TRADE_NOT_EXIST), Fen marks it closed, and the QR code still works
 *   until the order's expiry, so the payer can still pay: that money is
 *   paid-after-close — an exception, booked to suspense, never a success, and
 *   refunded from suspense by the exception-refund job or the next sweep;
 * - at expiry Fen closes the order (the channel's copy expires with it, so it
 *   can no longer be paid), unless the payer had paid and the notification
 *   was lost, in which case the close fails and the answer is a success;
 * - refunds: only of a succeeded payment, never more than is left; the fee
 *   goes back pro rata, rounded half-up, the last refund taking what is left.
 * A paid-after-close payment whose notification is also lost stays unknown to
 * Fen: only the next day's bill (reconciliation) reveals it, so the model
 * books nothing for it.
 */

export type FenStatus = 'paying' | 'succeeded' | 'closed';
/** The channel's side: not yet scanned, or paid (whether or not Fen knows). */
export type ChannelState = 'unscanned' | 'paid';
export type NotificationFault = 'none' | 'duplicate' | 'drop';

export interface ModelPayment {
  id: string;
  amount: bigint;
  fee: bigint;
  expiresAtMs: number;
  status: FenStatus;
  channel: ChannelState;
  /** The payer paid but every notification was dropped: Fen learns of it only by asking. */
  notificationLost: boolean;
  refunded: bigint;
  refundedFee: bigint;
}

export interface ModelException {
  paymentId: string;
  kind: 'paid_after_close';
  amount: bigint;
  status: 'open' | 'refunded';
}

export interface ModelBalances {
  merchantPending: bigint;
  feeIncome: bigint;
  suspense: bigint;
  channelClearing: bigint;
}

/** The merchant's fee plan in the tests (helpers/merchant-api.ts): 0.6 %, at least 0.01, at most 50.00. */
export const feePlan = { rateBasisPoints: 60n, minimumMinor: 1n, maximumMinor: 5000n };

/** Orders paying longer than this are queried by the minute sweep. */
export const staleAfterMs = 10 * 60 * 1000;

function divideHalfUp(numerator: bigint, denominator: bigint): bigint {
  const quotient = numerator / denominator;
  return (numerator % denominator) * 2n >= denominator ? quotient + 1n : quotient;
}

export function modelFee(amount: bigint): bigint {
  let fee = divideHalfUp(amount * feePlan.rateBasisPoints, 10_000n);
  if (fee < feePlan.minimumMinor) fee = feePlan.minimumMinor;
  if (fee > feePlan.maximumMinor) fee = feePlan.maximumMinor;
  return fee > amount ? amount : fee;
}

export function refundStateOf(payment: Pick<ModelPayment, 'amount' | 'refunded'>): 'none' | 'partial' | 'full' {
  if (payment.refunded === 0n) return 'none';
  return payment.refunded >= payment.amount ? 'full' : 'partial';
}

/** What a step's API call should answer: the status code, and for a success the payment's status. */
export interface ExpectedAnswer {
  status: number;
  code?: string;
  paymentStatus?: FenStatus;
}

/** How often each interesting path was taken, so a run can show what it covered. */
export type Coverage = Record<string, number>;

export class ReferenceModel {
  readonly payments: ModelPayment[] = [];
  readonly coverage: Coverage = {};
  readonly exceptions: ModelException[] = [];
  readonly balances: ModelBalances = { merchantPending: 0n, feeIncome: 0n, suspense: 0n, channelClearing: 0n };

  constructor(public nowMs: number) {}

  private count(path: string): void {
    this.coverage[path] = (this.coverage[path] ?? 0) + 1;
  }

  private capture(payment: ModelPayment): void {
    payment.status = 'succeeded';
    this.balances.merchantPending += payment.amount - payment.fee;
    this.balances.feeIncome += payment.fee;
    this.balances.channelClearing += payment.amount;
  }

  /** Fen asks the channel (a query, or the answer to a refused close): only a paid order changes anything. */
  private learnByAsking(payment: ModelPayment, how: string): boolean {
    if (payment.status !== 'paying' || payment.channel !== 'paid') return false;
    this.count(`lost notification found by ${how}`);
    payment.notificationLost = false;
    this.capture(payment);
    return true;
  }

  create(id: string, amount: bigint, expiresInSeconds: number): ModelPayment {
    const payment: ModelPayment = { id, amount, fee: modelFee(amount), expiresAtMs: this.nowMs + expiresInSeconds * 1000, status: 'paying', channel: 'unscanned', notificationLost: false, refunded: 0n, refundedFee: 0n };
    this.payments.push(payment);
    return payment;
  }

  /** Whether the payer's page offers Pay: the QR order is unpaid and not yet expired at the channel. */
  payable(payment: ModelPayment): boolean {
    return payment.channel === 'unscanned' && this.nowMs < payment.expiresAtMs;
  }

  pay(payment: ModelPayment, fault: NotificationFault): void {
    if (!this.payable(payment)) return this.count('payer found nothing to pay');
    payment.channel = 'paid';
    if (fault === 'drop') {
      this.count(payment.status === 'closed' ? 'paid after close, notification lost' : 'paid, notification lost');
      payment.notificationLost = true;
      return;
    }
    this.count(fault === 'duplicate' ? 'paid, notification repeated' : 'paid');
    if (payment.status === 'paying') this.capture(payment);
    else if (payment.status === 'closed') this.paidAfterClose(payment);
  }

  private paidAfterClose(payment: ModelPayment): void {
    this.count('paid after close');
    this.exceptions.push({ paymentId: payment.id, kind: 'paid_after_close', amount: payment.amount, status: 'open' });
    this.balances.suspense += payment.amount;
    this.balances.channelClearing += payment.amount;
  }

  close(payment: ModelPayment): ExpectedAnswer {
    if (payment.status !== 'paying') {
      this.count('close refused');
      return { status: 409, code: 'payment_not_closable' };
    }
    // The channel refuses to close a paid order; Fen asks, and the answer is a success.
    if (this.learnByAsking(payment, 'close')) return { status: 200, paymentStatus: 'succeeded' };
    this.count('closed unscanned order');
    payment.status = 'closed';
    return { status: 200, paymentStatus: 'closed' };
  }

  /** Every open order whose time is up is closed, or found paid. */
  private expireDue(): void {
    for (const payment of this.payments) {
      if (payment.status !== 'paying' || payment.expiresAtMs > this.nowMs) continue;
      if (this.learnByAsking(payment, 'expiry')) continue;
      this.count('expired');
      payment.status = 'closed';
    }
  }

  /** The clock moves on and the expiry jobs that fell due run. */
  expire(advanceSeconds: number): void {
    this.nowMs += advanceSeconds * 1000;
    this.expireDue();
  }

  /** The minute sweep after the clock moved on: expiries, stale paying orders queried, open exceptions refunded. */
  sweep(advanceSeconds: number, createdAtMs: ReadonlyMap<string, number>): void {
    this.nowMs += advanceSeconds * 1000;
    this.expireDue();
    for (const payment of this.payments) {
      const created = createdAtMs.get(payment.id) ?? this.nowMs;
      if (payment.status === 'paying' && created <= this.nowMs - staleAfterMs) this.learnByAsking(payment, 'sweep');
    }
    this.refundOpenExceptions();
  }

  /** The queued background jobs run: exception refunds among them. */
  runJobs(): void {
    this.refundOpenExceptions();
  }

  private refundOpenExceptions(): void {
    for (const exception of this.exceptions) {
      if (exception.status !== 'open') continue;
      this.count('exception refunded from suspense');
      exception.status = 'refunded';
      this.balances.suspense -= exception.amount;
      this.balances.channelClearing -= exception.amount;
    }
  }

  /** The refund the merchant asks for, by size: part of what is left, all of it, or more than that. */
  refundAmount(payment: ModelPayment, size: 'partial' | 'full' | 'too_much', fraction: number, excess: number): bigint {
    const left = payment.amount - payment.refunded;
    if (size === 'too_much' || left === 0n) return left + 1n + BigInt(excess);
    if (size === 'full' || left === 1n) return left;
    return 1n + BigInt(Math.floor(fraction * Number(left - 1n)));
  }

  refund(payment: ModelPayment, amount: bigint): ExpectedAnswer {
    if (payment.status !== 'succeeded') {
      this.count('refund of an unpaid payment refused');
      return { status: 409, code: 'payment_not_refundable' };
    }
    const left = payment.amount - payment.refunded;
    if (amount > left) {
      this.count('refund of too much refused');
      return { status: 422, code: 'refund_exceeds_payment' };
    }
    this.count(amount === left ? 'refund of all that is left' : 'partial refund');
    const feeLeft = payment.fee - payment.refundedFee;
    const share = payment.refunded + amount === payment.amount ? feeLeft : divideHalfUp(payment.fee * amount, payment.amount);
    const feeRefund = share > feeLeft ? feeLeft : share;
    payment.refunded += amount;
    payment.refundedFee += feeRefund;
    this.balances.merchantPending -= amount - feeRefund;
    this.balances.feeIncome -= feeRefund;
    this.balances.channelClearing -= amount;
    return { status: 201 };
  }
}
