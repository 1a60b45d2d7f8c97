import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkNotificationAmount, type CreatePaymentRequest } from '../../src/channels/connector.js';
import { orderIdFor } from '../../src/channels/unionpay/index.js';
import { ManualClock } from '../../src/platform/clock.js';
import { newId } from '../../src/platform/ids.js';
import { money } from '../../src/platform/money.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { startUnionpayHarness, type UnionpayHarness } from '../fixtures/unionpay/harness.js';

/**
 * The payer's side in a real browser: headless Chromium (the Debian package,
 * driven by playwright-core) opens the page Fen hands the payer, whose form
 * submits itself to the simulator's frontTransReq.do; on the payer page it
 * presses the buttons by their text, and after paying it is sent back to the
 * merchant's frontUrl with UnionPay's signed front notification. A missing
 * Chromium fails the test (CI installs it); it is never skipped.
 */

const chromiumPath = process.env.FEN_CHROMIUM_PATH ?? '/usr/bin/chromium';
let database: TestDatabase;
let clock: ManualClock;
let harness: UnionpayHarness;
let browser: Browser;

function newOrder(amount: bigint): CreatePaymentRequest {
  return {
    method: 'unionpay_web',
    outTradeNo: newId('payment', clock.now().getTime()),
    amount: money(amount, 'CNY'),
    subject: '浏览器测试 Browser order',
    expiresAt: new Date(clock.now().getTime() + 30 * 60_000),
  };
}

async function formHtml(order: CreatePaymentRequest): Promise<string> {
  const created = await harness.connector.createPayment(order);
  if (created.status !== 'pending' || created.action.kind !== 'form') throw new Error(`no form: ${JSON.stringify(created)}`);
  return created.action.html;
}

beforeAll(async () => {
  if (!existsSync(chromiumPath)) throw new Error(`Chromium was not found at ${chromiumPath}: apt-get install chromium, or set FEN_CHROMIUM_PATH`);
  database = await createTestDatabase({ poolSize: 4 });
  clock = new ManualClock('2026-01-15T02:00:00.000Z');
  harness = await startUnionpayHarness({ pool: database.pool, clock });
  browser = await chromium.launch({ executablePath: chromiumPath, args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'] });
});

afterAll(async () => {
  await browser?.close();
  await harness?.close();
  await database?.close();
});

describe('the payer in Chromium', () => {
  it('is taken to UnionPay by the form, pays, and comes back to the merchant with a genuine front notification', async () => {
    const order = newOrder(4321n);
    const page = await browser.newPage();
    try {
      await Promise.all([page.waitForURL(/\/unionpay\/pay\/[0-9a-f]+$/), page.setContent(await formHtml(order))]);
      await expect(page.getByTestId('amount').textContent()).resolves.toBe('¥43.21');
      await expect(page.getByTestId('subject').textContent()).resolves.toBe(order.subject);

      await Promise.all([page.waitForURL(/\/unionpay\/pay\/[0-9a-f]+$/), page.getByRole('button', { name: 'Pay 支付' }).click()]);
      await expect(page.getByTestId('status').textContent()).resolves.toContain('交易成功');
      // The page returns to the merchant by itself; pressing its button gets there the same way, without waiting.
      await Promise.all([page.waitForURL(harness.receiver.frontUrl), page.getByRole('button', { name: '返回商户 Back to the merchant' }).click()]);
    } finally {
      await page.close();
    }
    const returned = harness.receiver.received.find((notification) => notification.path === '/pay/return' && notification.form.orderId === orderIdFor(order.outTradeNo));
    const verification = await harness.connector.verifyNotification(returned!);
    if (!verification.verified) throw new Error(`front notification not verified: ${verification.message}`);
    expect(checkNotificationAmount(verification.event, order.amount)).toMatchObject({ status: 'succeeded' });

    await harness.simulator.deliverDueNotifications();
    expect(harness.receiver.for(orderIdFor(order.outTradeNo)!)).toHaveLength(1);
  });

  it('cancels on the payer page, and UnionPay reports the order failed', async () => {
    const order = newOrder(100n);
    const page = await browser.newPage();
    try {
      await Promise.all([page.waitForURL(/\/unionpay\/pay\/[0-9a-f]+$/), page.setContent(await formHtml(order))]);
      await Promise.all([page.waitForURL(/\/unionpay\/pay\/[0-9a-f]+$/), page.getByRole('button', { name: 'Cancel 取消' }).click()]);
      await expect(page.getByTestId('status').textContent()).resolves.toContain('交易失败');
      await expect(page.getByRole('button', { name: 'Pay 支付' }).count()).resolves.toBe(0);
    } finally {
      await page.close();
    }
    expect(await harness.connector.queryPayment({ outTradeNo: order.outTradeNo, expected: order.amount })).toMatchObject({ status: 'failed', reason: 'declined' });
  });
});
