import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, newPhoneContext, phoneViewport, watchPageProblems } from '../helpers/browser.js';
import { startPaymentsHarness, type PaymentsHarness } from '../helpers/payments-harness.js';
import { createPayment, expectLedgerClean, pageUpdateTimeoutMs, readPayment, refundInThreeParts, verifiedWebhookTypes, waitForCashierState } from './checkout-steps.js';

/**
 * A UnionPay online payment as a merchant and a payer live it, in headless
 * Chromium: the merchant creates it with a signed request through the SDK and
 * sends the payer to the cashier; the cashier's form carries UnionPay's signed
 * consumption request to the simulator's gateway; the payer presses Pay on
 * UnionPay's page and comes back to the cashier with UnionPay's front
 * notification; the verified back notification makes the payment succeed; the
 * merchant gets a signed webhook, refunds in three parts (UnionPay accepts a
 * refund first and notifies its result), and the books still balance.
 */
describe('UnionPay checkout in a browser', () => {
  let harness: PaymentsHarness;
  let browser: Browser;
  let gatewayUrl: string;

  beforeAll(async () => {
    harness = await startPaymentsHarness({ channels: ['unionpay'] });
    browser = await launchChromium();
    gatewayUrl = harness.simulators.unionpay!.endpoints().frontTransUrl;
  });
  afterAll(async () => {
    await browser?.close();
    await harness?.close();
  });

  it('takes a unionpay_web payment through the cashier’s form button, tells the merchant, and refunds it in three parts', async () => {
    const created = await createPayment(harness, { method: 'unionpay_web', amount: 12_345 });
    expect(created).toMatchObject({ status: 'paying', channel: 'unionpay', qr_code: null, pay_url: null, cashier_url: `${harness.fenUrl}/pay/${created.id}` });
    // With scripts on, the cashier sends UnionPay's form by itself (the next test);
    // with them off it waits for the payer to press its button, which is the step this test takes.
    const phone = await browser.newContext({ viewport: phoneViewport, deviceScaleFactor: 2, isMobile: true, hasTouch: true, locale: 'zh-CN', javaScriptEnabled: false });
    const page = await phone.newPage();
    const problems = watchPageProblems(page);
    await page.goto(created.cashier_url);
    expect(await page.getByTestId('amount').textContent()).toBe('¥123.45');
    expect(await page.getByTestId('merchant').textContent()).toBe('测试商户');
    expect(await page.locator('#channel-form').getAttribute('action')).toBe(gatewayUrl);

    await page.getByRole('button', { name: '继续' }).click();
    await page.waitForURL((url) => url.toString().startsWith(`${harness.simulators.unionpay!.baseUrl}/unionpay/pay/`));
    expect(await page.getByTestId('amount').textContent()).toBe('¥123.45');
    await page.getByRole('button', { name: 'Pay' }).click();
    await page.getByTestId('status').waitFor();
    expect(await page.getByTestId('status').textContent()).toContain('Paid');

    await harness.deliverAll();
    // Back to the merchant with UnionPay's front notification: Fen's return URL sends the payer on to the cashier.
    await page.getByRole('button', { name: '返回商户' }).click();
    await page.waitForURL(created.cashier_url, { timeout: pageUpdateTimeoutMs });
    expect(await page.locator('#cashier').getAttribute('data-state')).toBe('paid');
    expect(await page.getByRole('heading', { name: '支付成功' }).isVisible()).toBe(true);
    expect(problems).toEqual([]);
    await phone.close();

    expect(verifiedWebhookTypes(harness, created.id, 'id')).toEqual(['payment.succeeded']);
    const paid = await readPayment(harness, created.id);
    expect(paid).toMatchObject({ status: 'succeeded', amount: 12_345, refund_state: 'none' });
    expect(paid.channel_trade_no).toBeTruthy();

    // UnionPay answers a refund by accepting it (respCode 00); its back notification settles it.
    await refundInThreeParts(harness, paid, 'processing');
    await expectLedgerClean(harness);
  });

  it('lets the payer pick UnionPay on a cashier payment, sends the form by itself when scripts run, and keeps the payer who comes back before the notification on a cashier that turns paid', async () => {
    const created = await createPayment(harness, { method: 'cashier', amount: 990 });
    const phone = await newPhoneContext(browser);
    const page = await phone.newPage();
    const problems = watchPageProblems(page);
    const payerPageUrl = `${harness.simulators.unionpay!.baseUrl}/unionpay/pay/`;
    let formsSent = 0;
    page.on('request', (request) => {
      if (request.method() === 'POST' && request.url() === gatewayUrl) formsSent += 1;
    });
    await page.goto(created.cashier_url);
    await page.getByRole('button', { name: '银联在线支付' }).click();
    await page.waitForURL((url) => url.toString().startsWith(payerPageUrl), { timeout: pageUpdateTimeoutMs });
    expect(problems).toEqual([]);
    await page.getByRole('button', { name: 'Pay' }).click();
    await page.getByTestId('status').waitFor();
    expect(await readPayment(harness, created.id)).toMatchObject({ method: 'unionpay_web', channel: 'unionpay', status: 'paying' });

    // UnionPay's page posts the front notification by itself a moment after paying, usually before
    // the back notification reaches Fen: the payer lands on a cashier that still waits, and stays there.
    await page.waitForURL((url) => url.pathname === `/pay/${created.id}`, { timeout: pageUpdateTimeoutMs });
    await page.locator('#cashier[data-state="open"]').waitFor({ timeout: pageUpdateTimeoutMs });
    await harness.deliverAll();
    await waitForCashierState(page, 'paid');
    // The form went to UnionPay once: the cashier did not send the payer back on their way home.
    expect(formsSent).toBe(1);
    expect(problems).toEqual([]);
    await phone.close();
    expect(verifiedWebhookTypes(harness, created.id, 'id')).toEqual(['payment.succeeded']);
    await expectLedgerClean(harness);
  });
});
