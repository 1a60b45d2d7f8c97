import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decide, feeRefundFor, type ChannelObservation, type PaymentStatus } from '../../src/payments/index.js';

/**
 * The payment state machine and the fee returned with refunds, over random
 * histories: whatever the channel says and in whatever order, a terminal state
 * never changes, success needs the exact amount, and fees refunded add up to
 * the fee exactly.
 */
const amount = 10_000n;
const observation: fc.Arbitrary<ChannelObservation> = fc.oneof(
  fc.record({
    kind: fc.constant('succeeded' as const),
    amount: fc.constantFrom(amount, amount - 1n, 1n),
    currency: fc.constantFrom('CNY' as const, 'USD' as const),
    channelTradeNo: fc.constantFrom('T1', 'T2'),
    paidAt: fc.constant(new Date('2026-01-15T02:00:00Z')),
  }),
  fc.record({ kind: fc.constant('closed' as const), channelTradeNo: fc.constant(null) }),
  fc.record({ kind: fc.constant('failed' as const), channelTradeNo: fc.constant(null), reason: fc.constant('declined') }),
  fc.constant({ kind: 'pending' as const }),
  fc.constant({ kind: 'not_found' as const }),
  fc.constant({ kind: 'unknown' as const, reason: 'timeout' }),
);

interface Simulated {
  status: PaymentStatus;
  channelTradeNo: string | null;
  successes: number;
  exceptions: string[];
}

function replay(start: PaymentStatus, history: ChannelObservation[]): Simulated[] {
  const states: Simulated[] = [{ status: start, channelTradeNo: null, successes: 0, exceptions: [] }];
  for (const observed of history) {
    const current = states.at(-1) as Simulated;
    const decision = decide({ status: current.status, amount, currency: 'CNY', channelTradeNo: current.channelTradeNo }, observed);
    const next = { ...current, exceptions: [...current.exceptions] };
    if (decision.action === 'succeed' && observed.kind === 'succeeded') Object.assign(next, { status: 'succeeded', channelTradeNo: observed.channelTradeNo, successes: current.successes + 1 });
    if (decision.action === 'close') next.status = 'closed';
    if (decision.action === 'fail') next.status = 'failed';
    if (decision.action === 'exception') next.exceptions.push(decision.kind);
    states.push(next);
  }
  return states;
}

describe('payment state machine', () => {
  it('never changes a terminal state, and succeeds at most once and only with the exact amount', () => {
    fc.assert(
      fc.property(fc.constantFrom<PaymentStatus>('created', 'paying'), fc.array(observation, { maxLength: 30 }), (start, history) => {
        const states = replay(start, history);
        for (let index = 1; index < states.length; index += 1) {
          const before = states[index - 1] as Simulated;
          const after = states[index] as Simulated;
          if (before.status === 'succeeded' || before.status === 'closed' || before.status === 'failed') expect(after.status).toBe(before.status);
          const observed = history[index - 1] as ChannelObservation;
          if (after.successes > before.successes) {
            expect(observed).toMatchObject({ kind: 'succeeded', amount, currency: 'CNY' });
          }
        }
        expect((states.at(-1) as Simulated).successes).toBeLessThanOrEqual(1);
      }),
    );
  });

  it('turns every reported payment that cannot count as a success into an exception, never into silence', () => {
    fc.assert(
      fc.property(fc.constantFrom<PaymentStatus>('created', 'paying', 'succeeded', 'closed', 'failed'), observation, (status, observed) => {
        fc.pre(observed.kind === 'succeeded');
        const decision = decide({ status, amount, currency: 'CNY', channelTradeNo: 'T1' }, observed);
        const exact = observed.kind === 'succeeded' && observed.amount === amount && observed.currency === 'CNY';
        if (!exact) expect(decision).toEqual({ action: 'exception', kind: 'amount_mismatch' });
        else if (status === 'created' || status === 'paying') expect(decision.action).toBe('succeed');
        else if (status === 'succeeded') expect(decision.action).toBe(observed.kind === 'succeeded' && observed.channelTradeNo === 'T1' ? 'already_applied' : 'exception');
        else expect(decision).toEqual({ action: 'exception', kind: 'paid_after_close' });
      }),
    );
  });
});

describe('fee returned with refunds', () => {
  const refundPlan = fc
    .record({ amount: fc.bigInt({ min: 1n, max: 10_000_000n }), rate: fc.bigInt({ min: 0n, max: 300n }) })
    .chain(({ amount: total, rate }) =>
      fc.array(fc.bigInt({ min: 1n, max: total }), { minLength: 1, maxLength: 12 }).map((cuts) => {
        // Split the total into refunds that add up to it exactly.
        const points = [...new Set(cuts.map((cut) => (cut % total) + 0n))].filter((cut) => cut > 0n).sort((left, right) => (left < right ? -1 : 1));
        const parts: bigint[] = [];
        let previous = 0n;
        for (const point of [...points, total]) {
          if (point > previous) parts.push(point - previous);
          previous = point;
        }
        return { total, fee: (total * rate) / 10_000n, parts };
      }),
    );

  it('adds up to the whole fee over refunds of the whole amount, each share within what is left', () => {
    fc.assert(
      fc.property(refundPlan, ({ total, fee, parts }) => {
        let refunded = 0n;
        let refundedFee = 0n;
        for (const part of parts) {
          const share = feeRefundFor({ policy: 'pro_rata', payment: { amount: total, fee_amount: fee, refunded_amount: refunded, refunded_fee_amount: refundedFee }, refundAmount: part });
          expect(share).toBeGreaterThanOrEqual(0n);
          expect(share).toBeLessThanOrEqual(fee - refundedFee);
          refunded += part;
          refundedFee += share;
        }
        expect(refunded).toBe(total);
        expect(refundedFee).toBe(fee);
      }),
    );
  });

  it('returns nothing when the platform keeps its fee', () => {
    fc.assert(
      fc.property(refundPlan, ({ total, fee, parts }) => {
        const share = feeRefundFor({ policy: 'kept', payment: { amount: total, fee_amount: fee, refunded_amount: 0n, refunded_fee_amount: 0n }, refundAmount: parts[0] ?? total });
        expect(share).toBe(0n);
      }),
    );
  });
});
