import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { expect } from 'vitest';
import { checkLedger } from '../../src/ledger/index.js';
import type { PaymentView, RefundView } from '../../src/payments/index.js';
import type { PaymentsHarness } from '../helpers/payments-harness.js';
import { runFen } from '../helpers/process.js';

/**
 * The merchant's and the operator's steps that every channel's checkout test
 * shares: a signed create through the SDK, the verified webhooks, refunds in
 * three parts, and the books checked by the ledger module and by
 * `fen ledger check` run as a child process.
 */

/** How long a page may take to show what the server already knows: a few polls, generous for a loaded CI machine. */
export const pageUpdateTimeoutMs = 15_000;

export async function createPayment(harness: PaymentsHarness, body: { method: string; amount: number; return_url?: string }): Promise<PaymentView> {
  return harness.client.request<PaymentView>('POST', '/v1/payments', {
    out_trade_no: `order-${Math.random().toString(36).slice(2)}`,
    currency: 'CNY',
    subject: '绿茶 Green tea',
    ...body,
  });
}

export function readPayment(harness: PaymentsHarness, paymentId: string): Promise<PaymentView> {
  return harness.client.request<PaymentView>('GET', `/v1/payments/${paymentId}`);
}

/** The types of the webhooks about one payment (by its id, or by payment_id for refunds) that verify with the SDK. */
export function verifiedWebhookTypes(harness: PaymentsHarness, paymentId: string, field: 'id' | 'payment_id'): string[] {
  return harness.receiver
    .verifiedWith(harness.merchantApp.webhook_secret, harness.context.clock.now())
    .filter((webhook) => webhook.parsed.data[field] === paymentId)
    .map((webhook) => webhook.type);
}

export async function waitForCashierState(page: Page, state: 'paid' | 'expired'): Promise<void> {
  await page.locator(`[data-state-panel="${state}"]`).waitFor({ state: 'visible', timeout: pageUpdateTimeoutMs });
  expect(await page.locator('#cashier').getAttribute('data-state')).toBe(state);
}

/**
 * Refunds a paid payment twice in part and then the rest. A channel that
 * refunds asynchronously (WeChat Pay) or only accepts a refund at first
 * (UnionPay) leaves the refunds `processing`; the next delivery pass brings
 * the channel's refund notifications, after which the payment is refunded in
 * full and the merchant has one verified webhook per refund.
 */
export async function refundInThreeParts(harness: PaymentsHarness, payment: PaymentView, statusAtFirst: 'succeeded' | 'processing'): Promise<RefundView[]> {
  const refund = (amount: number, outRefundNo: string) => harness.client.request<RefundView>('POST', `/v1/payments/${payment.id}/refunds`, { amount, out_refund_no: outRefundNo });
  const part = Math.floor(payment.amount / 4);
  const refunds = [await refund(part, 'refund-1'), await refund(part, 'refund-2'), await refund(payment.amount - 2 * part, 'refund-3')];
  expect(refunds.map((created) => created.status)).toEqual([statusAtFirst, statusAtFirst, statusAtFirst]);
  await harness.deliverAll();
  for (const created of refunds) {
    expect(await harness.client.request<RefundView>('GET', `/v1/refunds/${created.id}`)).toMatchObject({ status: 'succeeded' });
  }
  expect(await readPayment(harness, payment.id)).toMatchObject({ status: 'succeeded', refunded_amount: payment.amount, refund_state: 'full' });
  expect(verifiedWebhookTypes(harness, payment.id, 'payment_id')).toEqual(['refund.succeeded', 'refund.succeeded', 'refund.succeeded']);
  return refunds;
}

/** The books balance by the ledger module, and by `fen ledger check` run the way an operator runs it. */
export async function expectLedgerClean(harness: PaymentsHarness): Promise<void> {
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
}
