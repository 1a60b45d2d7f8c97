import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkLedger, getBalanceByCode } from '../../src/ledger/index.js';
import { rsaKeyPair, simulatedAlipayAppId } from '../../src/main/sandbox.js';
import type { PaymentView, RefundView } from '../../src/payments/index.js';
import { createChannelAccount, setPaymentRoute, type ChannelAccountRow } from '../../src/routing/index.js';
import { testOperatorActor } from '../helpers/merchant-api.js';
import { startPaymentsHarness, type PaymentsHarness } from '../helpers/payments-harness.js';

/**
 * A merchant's own channel account (DESIGN.md §3): the money goes straight to
 * the merchant, so the platform books only the fee the merchant owes it —
 * nothing in channel clearing, nothing owed to the merchant — and a refund
 * gives back its share of that fee.
 */
describe('payments through a merchant’s own channel account', () => {
  let harness: PaymentsHarness;
  let own: ChannelAccountRow;

  beforeAll(async () => {
    harness = await startPaymentsHarness();
    const keys = rsaKeyPair();
    const appId = simulatedAlipayAppId();
    await harness.simulator.registerApp({ appId, publicKeyPem: keys.publicKeyPem });
    own = await createChannelAccount(harness.context, testOperatorActor, {
      channel: 'alipay',
      name: 'The merchant’s own Alipay',
      mode: 'own',
      merchantId: harness.merchantApp.merchant_id,
      methods: ['alipay_qr'],
      settings: { app_id: appId, gateway_url: harness.simulator.gatewayUrl },
      secrets: { app_private_key_pem: keys.privateKeyPem, alipay_public_key_pem: harness.simulator.publicKeyPem },
    });
    await setPaymentRoute(harness.context, testOperatorActor, { appId: harness.merchantApp.id, merchantId: harness.merchantApp.merchant_id, method: 'alipay_qr', channelAccountIds: [own.id] });
  });
  afterAll(async () => harness.close());

  it('books only the fee receivable, and returns its share with a refund', async () => {
    const merchantId = harness.merchantApp.merchant_id;
    const balance = async (code: string) => (await getBalanceByCode(harness.context.db, code, 'CNY'))?.normalBalance ?? 0n;
    const payment = await harness.client.request<PaymentView>('POST', '/v1/payments', { out_trade_no: 'own-1', amount: 20_000, currency: 'CNY', subject: 'Tea set', method: 'alipay_qr' });
    await harness.payerPresses(payment, 'pay');
    await harness.deliverAll();
    const paid = await harness.client.request<PaymentView>('GET', `/v1/payments/${payment.id}`);
    expect(paid.status).toBe('succeeded');
    expect(paid.fee_amount).toBe(120);
    expect(await balance(`merchant_fee_receivable:${merchantId}`)).toBe(120n);
    expect(await balance('platform_fee_income')).toBe(120n);
    expect(await balance(`merchant_pending:${merchantId}`)).toBe(0n);
    expect(await balance(`channel_clearing:${own.id}`)).toBe(0n);

    const refund = await harness.client.request<RefundView>('POST', `/v1/payments/${payment.id}/refunds`, { amount: 5000, out_refund_no: 'own-r1' });
    expect(refund.status).toBe('succeeded');
    expect(await balance(`merchant_fee_receivable:${merchantId}`)).toBe(90n);
    expect(await balance('platform_fee_income')).toBe(90n);
    expect((await checkLedger(harness.context.db)).problems).toEqual([]);
  });
});
