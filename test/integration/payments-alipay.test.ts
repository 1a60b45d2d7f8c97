import { decodeTime } from 'ulid';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkLedger, getBalanceByCode } from '../../src/ledger/index.js';
import type { PaymentView, RefundView } from '../../src/payments/index.js';
import { startPaymentsHarness, type PaymentsHarness } from '../helpers/payments-harness.js';

/**
 * The payment lifecycle on the Alipay simulator through the real merchant API:
 * signed create → payer pays → verified channel notification → books →
 * signed webhook → refunds, with the ledger checked at the end.
 */
describe('payments on Alipay', () => {
  let harness: PaymentsHarness;
  beforeAll(async () => {
    harness = await startPaymentsHarness();
  });
  afterAll(async () => harness.close());

  async function createPayment(amount: number, method = 'alipay_qr'): Promise<PaymentView> {
    return harness.client.request<PaymentView>('POST', '/v1/payments', { out_trade_no: `order-${Math.random().toString(36).slice(2)}`, amount, currency: 'CNY', subject: 'Green tea', method });
  }

  it('takes a QR payment to succeeded, books it once and tells the merchant', async () => {
    const created = await createPayment(10_000);
    expect(created.status).toBe('paying');
    expect(created.qr_code).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/alipay\/qr\//);
    await harness.payerPresses(created, 'pay');
    await harness.deliverAll();
    const paid = await harness.client.request<PaymentView>('GET', `/v1/payments/${created.id}`);
    expect(paid.status).toBe('succeeded');
    expect(paid.channel_trade_no).toBeTruthy();
    const webhooks = harness.receiver.verifiedWith(harness.merchantApp.webhook_secret, harness.context.clock.now()).filter((item) => item.parsed.data.id === created.id);
    expect(webhooks.map((item) => item.type)).toEqual(['payment.succeeded']);
    const merchantPending = await getBalanceByCode(harness.context.db, `merchant_pending:${harness.merchantApp.merchant_id}`, 'CNY');
    expect(merchantPending?.balance).toBe(-(10_000n - BigInt(paid.fee_amount)));
    expect((await checkLedger(harness.context.db)).ok).toBe(true);
  });

  it('names payments and refunds by Fen’s clock, whose time UnionPay reads back from the number as txnTime', async () => {
    // Set far from the machine's time: before the fix, the ids carried the machine's time.
    harness.context.clock.advanceSeconds(3 * 24 * 3600);
    const created = await createPayment(500);
    expect(decodeTime(created.id.slice(4).toUpperCase())).toBe(harness.context.clock.now().getTime());
    await harness.payerPresses(created, 'pay');
    await harness.deliverAll();
    const refund = await harness.client.request<RefundView>('POST', `/v1/payments/${created.id}/refunds`, { amount: 100, out_refund_no: 'clock-named' });
    expect(decodeTime(refund.id.slice(4).toUpperCase())).toBe(harness.context.clock.now().getTime());
  });

  it('refunds part twice and the rest once, never more than was paid', async () => {
    const created = await createPayment(10_000);
    await harness.payerPresses(created, 'pay');
    await harness.deliverAll();
    const refund = (amount: number, outRefundNo: string) => harness.client.request<RefundView>('POST', `/v1/payments/${created.id}/refunds`, { amount, out_refund_no: outRefundNo });
    expect((await refund(3000, 'r1')).status).toBe('succeeded');
    expect((await refund(3000, 'r2')).status).toBe('succeeded');
    const tooMuch = await harness.client.requestWithResponse('POST', `/v1/payments/${created.id}/refunds`, { amount: 4001, out_refund_no: 'r3' }).catch((error: unknown) => error);
    expect(tooMuch).toMatchObject({ status: 422, code: 'refund_exceeds_payment' });
    expect((await refund(4000, 'r4')).status).toBe('succeeded');
    const after = await harness.client.request<PaymentView>('GET', `/v1/payments/${created.id}`);
    expect(after).toMatchObject({ refunded_amount: 10_000, refund_state: 'full' });
    await harness.deliverAll();
    expect(harness.receiver.ofType('refund.succeeded').filter((item) => item.parsed.data.payment_id === created.id)).toHaveLength(3);
    const check = await checkLedger(harness.context.db);
    expect(check.problems).toEqual([]);
  });

  it('closes an unpaid payment at the channel and tells the merchant', async () => {
    const created = await createPayment(500);
    const closed = await harness.client.request<PaymentView>('POST', `/v1/payments/${created.id}/close`);
    expect(closed.status).toBe('closed');
    await harness.deliverAll();
    expect(harness.receiver.ofType('payment.closed').some((item) => item.parsed.data.id === created.id)).toBe(true);
  });
});
