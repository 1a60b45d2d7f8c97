import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkLedger } from '../../src/ledger/index.js';
import type { PaymentView, RefundView } from '../../src/payments/index.js';
import { launchChromium, newPhoneContext, watchPageProblems } from '../helpers/browser.js';
import { startPaymentsHarness, type PaymentsHarness } from '../helpers/payments-harness.js';
import { runFen } from '../helpers/process.js';

/**
 * A payment as a merchant and a payer live it, in headless Chromium: the
 * merchant creates a payment with a signed request through the SDK and sends
 * the payer to the cashier; the payer scans (opens the QR URL) and presses Pay
 * on Alipay's side; the cashier turns paid by itself; the merchant gets a
 * signed webhook, reads the payment, refunds it in three parts, and the books
 * still balance — by the ledger module and by `fen ledger check` run as the
 * operator would.
 */

/** How long the page may take to show what the server already knows: a few polls, generous for a loaded CI machine. */
const pageUpdateTimeoutMs = 15_000;

interface WindowMarker {
  cashierLoadMarker?: string;
}

describe('Alipay checkout in a browser', () => {
  let harness: PaymentsHarness;
  let browser: Browser;
  let screenshotDirectory: string;
  const keepScreenshots = process.env.FEN_SCREENSHOT_DIR !== undefined;

  beforeAll(async () => {
    harness = await startPaymentsHarness();
    browser = await launchChromium();
    screenshotDirectory = process.env.FEN_SCREENSHOT_DIR ?? mkdtempSync(path.join(os.tmpdir(), 'fen-cashier-screenshots-'));
    mkdirSync(screenshotDirectory, { recursive: true });
  });
  afterAll(async () => {
    await browser?.close();
    await harness?.close();
    if (screenshotDirectory && !keepScreenshots) rmSync(screenshotDirectory, { recursive: true, force: true });
  });

  async function createPayment(body: { method: string; amount: number; return_url?: string; expires_in?: number }): Promise<PaymentView> {
    return harness.client.request<PaymentView>('POST', '/v1/payments', {
      out_trade_no: `order-${Math.random().toString(36).slice(2)}`,
      currency: 'CNY',
      subject: '绿茶 Green tea',
      ...body,
    });
  }

  /** The payer's phone: open the QR URL as a scan would, then press Pay on the channel's page. */
  async function payOnPayerPage(context: BrowserContext, qrUrl: string): Promise<void> {
    const payerPage = await context.newPage();
    await payerPage.goto(qrUrl);
    await payerPage.getByRole('button', { name: 'Pay' }).click();
    const status = payerPage.getByTestId('status');
    await status.waitFor({ timeout: pageUpdateTimeoutMs });
    expect(await status.textContent()).toContain('Paid');
    await payerPage.close();
  }

  /** Marks the loaded document, so the test can tell a change made in the page from a reload. */
  async function markDocument(page: Page): Promise<void> {
    await page.evaluate(() => {
      (globalThis as WindowMarker).cashierLoadMarker = 'first-load';
    });
  }

  async function documentMarker(page: Page): Promise<string | undefined> {
    return page.evaluate(() => (globalThis as WindowMarker).cashierLoadMarker);
  }

  async function waitForState(page: Page, state: 'paid' | 'expired'): Promise<void> {
    await page.locator(`[data-state-panel="${state}"]`).waitFor({ state: 'visible', timeout: pageUpdateTimeoutMs });
    expect(await page.locator('#cashier').getAttribute('data-state')).toBe(state);
  }

  function verifiedWebhookTypes(paymentId: string, field: 'id' | 'payment_id'): string[] {
    return harness.receiver
      .verifiedWith(harness.merchantApp.webhook_secret, harness.context.clock.now())
      .filter((webhook) => webhook.parsed.data[field] === paymentId)
      .map((webhook) => webhook.type);
  }

  it('takes a QR payment on the cashier, tells the merchant, and refunds it in three parts', async () => {
    const created = await createPayment({ method: 'alipay_qr', amount: 12_345 });
    expect(created).toMatchObject({ status: 'paying', cashier_url: `${harness.fenUrl}/pay/${created.id}` });
    const phone = await newPhoneContext(browser);
    const page = await phone.newPage();
    const problems = watchPageProblems(page);
    await page.goto(created.cashier_url);
    await page.getByTestId('qr').locator('svg').waitFor();
    expect(await page.getByTestId('amount').textContent()).toBe('¥123.45');
    expect(await page.getByTestId('merchant').textContent()).toBe('测试商户');
    expect(await page.getByTestId('countdown').textContent()).toMatch(/^\d{2}:\d{2}$/);
    const qrUrl = await page.getByTestId('open-in-app').getAttribute('href');
    expect(qrUrl).toBe(created.qr_code);
    await markDocument(page);

    await payOnPayerPage(phone, qrUrl ?? '');
    await harness.deliverAll();
    await waitForState(page, 'paid');
    expect(await documentMarker(page)).toBe('first-load');
    expect(await page.getByRole('heading', { name: '支付成功' }).isVisible()).toBe(true);
    expect(await page.getByTestId('qr').isVisible()).toBe(false);
    const screenshotPath = path.join(screenshotDirectory, 'cashier-paid-phone.png');
    await page.screenshot({ path: screenshotPath, fullPage: true });
    expect(problems).toEqual([]);
    await phone.close();

    expect(verifiedWebhookTypes(created.id, 'id')).toEqual(['payment.succeeded']);
    const paid = await harness.client.request<PaymentView>('GET', `/v1/payments/${created.id}`);
    expect(paid).toMatchObject({ status: 'succeeded', amount: 12_345, refund_state: 'none' });

    const refund = (amount: number, outRefundNo: string) => harness.client.request<RefundView>('POST', `/v1/payments/${created.id}/refunds`, { amount, out_refund_no: outRefundNo });
    expect((await refund(3000, 'refund-1')).status).toBe('succeeded');
    expect((await refund(3000, 'refund-2')).status).toBe('succeeded');
    expect((await refund(6345, 'refund-3')).status).toBe('succeeded');
    const refunded = await harness.client.request<PaymentView>('GET', `/v1/payments/${created.id}`);
    expect(refunded).toMatchObject({ status: 'succeeded', refunded_amount: 12_345, refund_state: 'full' });
    await harness.deliverAll();
    expect(verifiedWebhookTypes(created.id, 'payment_id')).toEqual(['refund.succeeded', 'refund.succeeded', 'refund.succeeded']);
    const ledger = await checkLedger(harness.context.db);
    expect(ledger.problems).toEqual([]);
    expect(ledger.ok).toBe(true);
    const dataDirectory = mkdtempSync(path.join(os.tmpdir(), 'fen-ledger-check-'));
    try {
      const cli = await runFen(['ledger', 'check'], { DATABASE_URL: harness.context.databaseUrl, FEN_DATA_DIR: dataDirectory, LOG_LEVEL: 'silent' });
      expect(cli.code, cli.output).toBe(0);
      expect(cli.output).toContain('ledger balanced');
    } finally {
      rmSync(dataDirectory, { recursive: true, force: true });
    }
  });

  it('lets the payer pick Alipay QR on a cashier payment, in English, and pay', async () => {
    const created = await createPayment({ method: 'cashier', amount: 880 });
    expect(created).toMatchObject({ status: 'created', qr_code: null });
    const phone = await newPhoneContext(browser, { locale: 'en-US' });
    const page = await phone.newPage();
    const problems = watchPageProblems(page);
    await page.goto(created.cashier_url);
    expect(await page.getByRole('heading', { name: 'Choose how to pay' }).isVisible()).toBe(true);
    expect(await page.getByTestId('amount').textContent()).toBe('¥8.80');
    await page.getByRole('button', { name: 'Alipay QR' }).click();
    await page.getByTestId('qr').locator('svg').waitFor({ timeout: pageUpdateTimeoutMs });
    expect(new URL(page.url()).pathname).toBe(`/pay/${created.id}`);
    const chosen = await harness.client.request<PaymentView>('GET', `/v1/payments/${created.id}`);
    expect(chosen).toMatchObject({ status: 'paying', method: 'alipay_qr', channel: 'alipay' });
    const qrUrl = await page.getByTestId('open-in-app').getAttribute('href');
    expect(qrUrl).toBe(chosen.qr_code);
    await markDocument(page);

    await payOnPayerPage(phone, qrUrl ?? '');
    await harness.deliverAll();
    await waitForState(page, 'paid');
    expect(await documentMarker(page)).toBe('first-load');
    expect(await page.getByRole('heading', { name: 'Paid' }).isVisible()).toBe(true);
    expect(problems).toEqual([]);
    await phone.close();

    expect(verifiedWebhookTypes(created.id, 'id')).toEqual(['payment.succeeded']);
    expect((await harness.client.request<PaymentView>('GET', `/v1/payments/${created.id}`)).status).toBe('succeeded');
    expect((await checkLedger(harness.context.db)).problems).toEqual([]);
  });

  it('sends the payer back to the merchant’s return URL once paid', async () => {
    const returnUrl = `${harness.fenUrl}/healthz?from=cashier`;
    const created = await createPayment({ method: 'alipay_qr', amount: 500, return_url: returnUrl });
    const phone = await newPhoneContext(browser);
    const page = await phone.newPage();
    await page.goto(created.cashier_url);
    const qrUrl = await page.getByTestId('open-in-app').getAttribute('href');
    await payOnPayerPage(phone, qrUrl ?? '');
    await harness.deliverAll();
    await page.waitForURL(returnUrl, { timeout: pageUpdateTimeoutMs });
    await phone.close();
  });

  // Last: it moves the shared clock close to this payment's expiry, past nothing the earlier tests still check.
  it('counts down to zero and shows the payment as expired', async () => {
    const created = await createPayment({ method: 'alipay_qr', amount: 500, expires_in: 60 });
    harness.context.clock.advanceSeconds(57);
    const phone = await newPhoneContext(browser, { locale: 'en-US' });
    const page = await phone.newPage();
    const problems = watchPageProblems(page);
    await page.goto(created.cashier_url);
    // The server says three seconds are left; how many the page shows by now depends on the machine's speed.
    expect(await page.getByTestId('countdown').textContent()).toMatch(/^00:0[0-3]$/);
    await waitForState(page, 'expired');
    expect(await page.getByRole('heading', { name: 'Expired' }).isVisible()).toBe(true);
    expect(await page.getByTestId('qr').isVisible()).toBe(false);
    expect(problems).toEqual([]);
    await phone.close();
  });
});
