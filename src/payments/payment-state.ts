import type { Currency } from '../platform/money.js';

/**
 * The payment state machine of DESIGN.md §2, as a pure function: given what Fen
 * holds and what the channel says, what must happen. The service turns each
 * decision into one conditional UPDATE, so two racing notifications cannot both
 * win, and a terminal state never changes — except that money arriving for an
 * order that is already closed, failed or paid becomes an exception record.
 */
export const paymentStatuses = ['created', 'paying', 'succeeded', 'failed', 'closed'] as const;
export type PaymentStatus = (typeof paymentStatuses)[number];

export const terminalStatuses: readonly PaymentStatus[] = ['succeeded', 'failed', 'closed'];
export const openStatuses: readonly PaymentStatus[] = ['created', 'paying'];

export function isTerminal(status: PaymentStatus): boolean {
  return terminalStatuses.includes(status);
}

export interface PaymentFacts {
  status: PaymentStatus;
  amount: bigint;
  currency: Currency;
  /** The channel's trade number of the payment that succeeded, when one did. */
  channelTradeNo: string | null;
}

/** What a channel said about a payment, already verified and converted to minor units. */
export type ChannelObservation =
  | { kind: 'succeeded'; amount: bigint; currency: Currency; channelTradeNo: string; paidAt: Date }
  | { kind: 'closed'; channelTradeNo: string | null }
  | { kind: 'failed'; channelTradeNo: string | null; reason: string }
  | { kind: 'pending' }
  | { kind: 'not_found' }
  | { kind: 'unknown'; reason: string };

export type ExceptionKind = 'paid_after_close' | 'duplicate_payment' | 'amount_mismatch';

export type PaymentDecision =
  | { action: 'succeed' }
  | { action: 'close' }
  | { action: 'fail'; reason: string }
  | { action: 'exception'; kind: ExceptionKind }
  | { action: 'already_applied' }
  | { action: 'query_later' }
  | { action: 'none' };

function decideSuccess(payment: PaymentFacts, observed: Extract<ChannelObservation, { kind: 'succeeded' }>): PaymentDecision {
  if (observed.amount !== payment.amount || observed.currency !== payment.currency) return { action: 'exception', kind: 'amount_mismatch' };
  switch (payment.status) {
    case 'created':
    case 'paying':
      return { action: 'succeed' };
    case 'succeeded':
      // The same channel trade reported again is a duplicate notification; another trade is a second payment.
      return observed.channelTradeNo === payment.channelTradeNo ? { action: 'already_applied' } : { action: 'exception', kind: 'duplicate_payment' };
    case 'closed':
    case 'failed':
      return { action: 'exception', kind: 'paid_after_close' };
  }
}

export function decide(payment: PaymentFacts, observed: ChannelObservation): PaymentDecision {
  const open = !isTerminal(payment.status);
  switch (observed.kind) {
    case 'succeeded':
      return decideSuccess(payment, observed);
    case 'closed':
      return open ? { action: 'close' } : { action: 'none' };
    case 'failed':
      return open ? { action: 'fail', reason: observed.reason } : { action: 'none' };
    case 'pending':
    case 'not_found':
      return { action: 'none' };
    case 'unknown':
      return open ? { action: 'query_later' } : { action: 'none' };
  }
}

/** The refund state shown on a payment, from what has been refunded so far. */
export function refundState(options: { amount: bigint; refunded: bigint }): 'none' | 'partial' | 'full' {
  if (options.refunded === 0n) return 'none';
  return options.refunded >= options.amount ? 'full' : 'partial';
}
