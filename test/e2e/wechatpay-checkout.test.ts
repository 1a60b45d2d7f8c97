import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, newPhoneContext, watchPageProblems } from '../helpers/browser.js';
import { startPaymentsHarness, type PaymentsHarness } from '../helpers/payments-harness.js';
import { createPayment, expectLedgerClean, pageUpdateTimeoutMs, readPayment, refundInThreeParts, verifiedWebhookTypes, waitForCashierState } from './checkout-steps.js';

/**
 * A WeChat Pay Native payment as a merchant and a payer live it, in headless
 * Chromium: the merchant creates it with a signed request through the SDK and
 * sends the payer to the cashier; the payer scans (opens the code_url) and
 * presses Pay on WeChat Pay's side; the simulator's encrypted, signed
 * notification reaches Fen and the cashier turns paid by itself; the merchant
 * gets a signed webhook, refunds in three parts (WeChat Pay completes refunds
 * asynchronously, and says so with REFUND.SUCCESS notifications), and the
 * books still balance.
 */
describe('WeChat Pay checkout in a browser', () => {
  let harness: PaymentsHarness;
  let browser: Browser;

  beforeAll(async () => {
    harness = await startPaymentsHarness({ channels: ['wechatpay'] });
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await harness?.close();
  });

  it('takes a wechat_native payment on the cashier, tells the merchant, and refunds it in three parts', async () => {
    const created = await createPayment(harness, { method: 'wechat_native', amount: 12_345 });
    expect(created).toMatchObject({ status: 'paying', channel: 'wechatpay', cashier_url: `${harness.fenUrl}/pay/${created.id}` });
    const phone = await newPhoneContext(browser);
    const page = await phone.newPage();
    const problems = watchPageProblems(page);
    await page.goto(created.cashier_url);
    await page.getByTestId('qr').locator('svg').waitFor();
    expect(await page.getByTestId('amount').textContent()).toBe('¥123.45');
    expect(await page.getByTestId('merchant').textContent()).toBe('测试商户');
    const qrUrl = await page.getByTestId('open-in-app').getAttribute('href');
    expect(qrUrl).toBe(created.qr_code);

    // The payer's phone opens what the QR code says, and pays on WeChat Pay's page.
    const payerPage = await phone.newPage();
    await payerPage.goto(qrUrl ?? '');
    expect(await payerPage.getByTestId('amount').textContent()).toBe('¥123.45');
    await payerPage.getByRole('button', { name: 'Pay' }).click();
    await payerPage.getByTestId('status').waitFor();
    expect(await payerPage.getByTestId('status').textContent()).toContain('Paid');
    await payerPage.close();

    await harness.deliverAll();
    await waitForCashierState(page, 'paid');
    expect(await page.getByRole('heading', { name: '支付成功' }).isVisible()).toBe(true);
    expect(problems).toEqual([]);
    await phone.close();

    expect(verifiedWebhookTypes(harness, created.id, 'id')).toEqual(['payment.succeeded']);
    const paid = await readPayment(harness, created.id);
    expect(paid).toMatchObject({ status: 'succeeded', amount: 12_345, refund_state: 'none' });
    expect(paid.channel_trade_no).toMatch(/^\d{28}$/);

    // WeChat Pay answers a refund PROCESSING; its REFUND.SUCCESS notification settles it.
    await refundInThreeParts(harness, paid, 'processing');
    await expectLedgerClean(harness);
  });

  it('lets the payer pick WeChat Pay mobile web on a cashier payment and pay on WeChat Pay’s H5 page', async () => {
    const created = await createPayment(harness, { method: 'cashier', amount: 660 });
    const phone = await newPhoneContext(browser, { locale: 'en-US' });
    const page = await phone.newPage();
    const problems = watchPageProblems(page);
    await page.goto(created.cashier_url);
    await page.getByRole('button', { name: 'WeChat Pay mobile web' }).click();
    await page.getByTestId('pay-link').waitFor();
    const chosen = await readPayment(harness, created.id);
    expect(chosen).toMatchObject({ status: 'paying', method: 'wechat_h5', channel: 'wechatpay' });
    expect(await page.getByTestId('pay-link').getAttribute('href')).toBe(chosen.pay_url);
    // WeChat Pay binds an H5 order to the payer's address; the cashier passed on the one the payer chose from.
    expect((await harness.simulators.wechatpay!.findTrade(created.id))?.payerClientIp).toMatch(/127\.0\.0\.1/);

    await page.getByTestId('pay-link').click();
    await page.getByRole('button', { name: 'Pay' }).click();
    await page.getByTestId('status').waitFor();
    await harness.deliverAll();
    // WeChat Pay's page leads back to the merchant's redirect_url, which is Fen's return URL and then the cashier.
    await page.getByTestId('return-link').click();
    await page.waitForURL(created.cashier_url, { timeout: pageUpdateTimeoutMs });
    await waitForCashierState(page, 'paid');
    expect(problems).toEqual([]);
    await phone.close();
    expect(verifiedWebhookTypes(harness, created.id, 'id')).toEqual(['payment.succeeded']);
  });

  it('lets the payer pick WeChat Pay on a cashier payment, in English, and pay', async () => {
    const created = await createPayment(harness, { method: 'cashier', amount: 880 });
    const phone = await newPhoneContext(browser, { locale: 'en-US' });
    const page = await phone.newPage();
    const problems = watchPageProblems(page);
    await page.goto(created.cashier_url);
    await page.getByRole('button', { name: 'WeChat Pay QR' }).click();
    await page.getByTestId('qr').locator('svg').waitFor();
    const chosen = await readPayment(harness, created.id);
    expect(chosen).toMatchObject({ status: 'paying', method: 'wechat_native', channel: 'wechatpay' });

    const payerPage = await phone.newPage();
    await payerPage.goto((await page.getByTestId('open-in-app').getAttribute('href')) ?? '');
    await payerPage.getByRole('button', { name: 'Pay' }).click();
    await payerPage.getByTestId('status').waitFor();
    await payerPage.close();
    await harness.deliverAll();
    await waitForCashierState(page, 'paid');
    expect(problems).toEqual([]);
    await phone.close();
    expect(verifiedWebhookTypes(harness, created.id, 'id')).toEqual(['payment.succeeded']);
    await expectLedgerClean(harness);
  });
});
