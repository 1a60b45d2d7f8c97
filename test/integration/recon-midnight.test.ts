import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkLedger } from '../../src/ledger/index.js';
import type { PaymentView, RefundView } from '../../src/payments/index.js';
import { reconcileAccountDay } from '../../src/reconciliation/index.js';
import { startPaymentsHarness, type PaymentsHarness } from '../helpers/payments-harness.js';

/**
 * Payments and refunds on both sides of a Beijing midnight, the clock moving
 * past it in the middle of them: an order created before midnight and paid
 * after, a notification sent before midnight and applied after it, a refund in
 * the last seconds of the day, and a payment the channel books on the next
 * day. Both days reconcile with no difference at all — in either order.
 */
const beijing = (text: string) => new Date(`${text}+08:00`);

let harness: PaymentsHarness;

async function create(name: string, amount: number): Promise<PaymentView> {
  return harness.client.request<PaymentView>('POST', '/v1/payments', { out_trade_no: `midnight-${name}`, amount, currency: 'CNY', subject: name, method: 'alipay_qr' });
}

beforeAll(async () => {
  harness = await startPaymentsHarness();
  const { clock } = harness.context;
  clock.set(beijing('2026-03-01T23:58:00'));
  const early = await create('early', 1500);
  await harness.payerPresses(early, 'pay');
  await harness.deliverAll();
  clock.set(beijing('2026-03-01T23:59:30'));
  const late = await create('late', 2600);
  await harness.simulator.setFault({ outTradeNo: late.id, fault: { kind: 'bill_next_day' } });
  await harness.payerPresses(late, 'pay');
  await harness.deliverAll();
  clock.set(beijing('2026-03-01T23:59:50'));
  const straddling = await create('straddling', 3700);
  const notifiedLate = await create('notified-late', 4800);
  clock.set(beijing('2026-03-01T23:59:58'));
  const refund = await harness.client.request<RefundView>('POST', `/v1/payments/${early.id}/refunds`, { amount: 500, out_refund_no: 'midnight-refund' });
  expect(refund.status).toBe('succeeded');
  // Paid at the channel one second before midnight; Fen hears of it after.
  clock.set(beijing('2026-03-01T23:59:59'));
  await harness.payerPresses(notifiedLate, 'pay');
  clock.set(beijing('2026-03-02T00:00:20'));
  await harness.deliverAll();
  await harness.payerPresses(straddling, 'pay');
  await harness.deliverAll();
  clock.set(beijing('2026-03-02T00:00:40'));
  const afterMidnight = await harness.client.request<RefundView>('POST', `/v1/payments/${late.id}/refunds`, { amount: 600, out_refund_no: 'midnight-refund-2' });
  expect(afterMidnight.status).toBe('succeeded');
  for (const payment of [early, late, straddling, notifiedLate]) {
    expect((await harness.client.request<PaymentView>('GET', `/v1/payments/${payment.id}`)).status).toBe('succeeded');
  }
  clock.set(beijing('2026-03-03T10:00:00'));
});

afterAll(async () => harness?.close());

describe('a midnight in the middle of payments', () => {
  it('finds no difference on either day, the later day reconciled first', async () => {
    const second = await reconcileAccountDay(harness.context, harness.account.id, '2026-03-02');
    const first = await reconcileAccountDay(harness.context, harness.account.id, '2026-03-01');
    const none = { missing_local: 0, missing_channel: 0, amount_mismatch: 0, status_mismatch: 0, fee_mismatch: 0 };
    expect(first).toMatchObject({ lines_channel: 3, lines_local: 4, matched: 3, held: 0, differences: none, internal_differences: 0, status: 'balanced' });
    expect(second).toMatchObject({ lines_channel: 3, lines_local: 2, matched: 3, held: 0, differences: none, internal_differences: 0, status: 'balanced' });
    expect(first.fund_flow.drift).toBe(0n);
    expect(second.fund_flow.drift).toBe(0n);
    expect((await checkLedger(harness.context.db)).ok).toBe(true);
  });

  it('holds the record the channel books the next day until that day is reconciled', async () => {
    // Again from the start of the story's order: the first day alone holds it; the second settles it.
    const first = await reconcileAccountDay(harness.context, harness.account.id, '2026-03-01');
    expect(first).toMatchObject({ held: 0, status: 'balanced', open_differences: 0 });
  });
});
