import { createPrivateKey } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AlipaySdk } from 'alipay-sdk';
import {
  checkNotificationAmount,
  type ChannelConnector,
  type CreatePaymentRequest,
  type PaymentNotificationEvent,
} from '../../src/channels/index.js';
import { ManualClock } from '../../src/platform/clock.js';
import { money } from '../../src/platform/money.js';
import { alipayRetryDelaysMs, createAlipaySimulator, notificationAttemptsMax } from '../../src/simulators/index.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { newAppKeys, payerToken, silentLogger, startAlipayHarness, type AlipayHarness } from '../fixtures/alipay/harness.js';

/**
 * Fen's Alipay connector (the official alipay-sdk, validateSign on) against
 * the Alipay simulator over real HTTP on 127.0.0.1, on a database of its own.
 * Time is a ManualClock and notifications go out only when the test calls
 * deliverDueNotifications(), so nothing here waits on a timer except the one
 * client timeout the timeout fault needs.
 */

const timeScale = 0.001;
let database: TestDatabase;
let clock: ManualClock;
let harness: AlipayHarness;
let connector: ChannelConnector;
let orderCounter = 0;

function newOrder(method: CreatePaymentRequest['method'] = 'alipay_qr', amount = 1234n): CreatePaymentRequest {
  orderCounter += 1;
  return {
    method,
    outTradeNo: `pay_it_${Date.now().toString(36)}_${orderCounter}`,
    amount: money(amount, 'CNY'),
    subject: `测试订单 Test order ${orderCounter}`,
    expiresAt: new Date(clock.now().getTime() + 30 * 60_000),
  };
}

async function createQrOrder(amount = 1234n): Promise<{ order: CreatePaymentRequest; qrCode: string }> {
  const order = newOrder('alipay_qr', amount);
  const created = await connector.createPayment(order);
  if (created.status !== 'pending' || created.action.kind !== 'qr_code') throw new Error(`precreate failed: ${JSON.stringify(created)}`);
  return { order, qrCode: created.action.qrCode };
}

/** The payer scans: opening the QR URL redirects to the cashier page. */
async function scan(qrCode: string): Promise<Response> {
  const opened = await fetch(qrCode, { redirect: 'manual' });
  expect(opened.status).toBe(302);
  return fetch(new URL(opened.headers.get('location')!, harness.simulator.baseUrl));
}

async function press(qrCodeOrCashierUrl: string, button: 'pay' | 'cancel'): Promise<void> {
  const url = `${harness.simulator.baseUrl}/alipay/cashier/${payerToken(qrCodeOrCashierUrl)}/${button}`;
  const response = await fetch(url, { method: 'POST', redirect: 'manual' });
  expect(response.status).toBe(303);
}

/** Presses a button on the cashier of an order created through the connector, found by its number. */
async function pressFor(order: CreatePaymentRequest, button: 'pay' | 'cancel'): Promise<void> {
  const trade = await harness.simulator.findTrade(order.outTradeNo);
  if (!trade) throw new Error(`the simulator has no trade ${order.outTradeNo}`);
  await press(`/alipay/cashier/${trade.payerToken}`, button);
}

async function paidQrOrder(amount = 1234n): Promise<CreatePaymentRequest> {
  const { order, qrCode } = await createQrOrder(amount);
  await scan(qrCode);
  await press(qrCode, 'pay');
  return order;
}

async function verifiedPaymentEvent(notification: { headers: Record<string, string | string[] | undefined>; rawBody: string; form: Record<string, string> }): Promise<PaymentNotificationEvent> {
  const verification = await connector.verifyNotification(notification);
  if (!verification.verified) throw new Error(`notification not verified: ${verification.reason} ${verification.message}`);
  if (verification.event.kind !== 'payment') throw new Error('expected a payment event');
  return verification.event;
}

beforeAll(async () => {
  database = await createTestDatabase({ poolSize: 8 });
  clock = new ManualClock('2026-01-15T02:00:00.000Z');
  harness = await startAlipayHarness({ pool: database.pool, clock, timeScale });
  connector = harness.connector;
});

afterEach(async () => {
  await harness.simulator.clearFaults();
  harness.receiver.reply = 'success';
});

afterAll(async () => {
  await harness?.close();
  await database?.close();
});

describe('Alipay QR payment through the simulator', () => {
  it('creates, is paid on the payer page, notifies with a verified signature, and queries as succeeded', async () => {
    const { order, qrCode } = await createQrOrder();
    expect(qrCode).toMatch(new RegExp(`^${harness.simulator.baseUrl}/alipay/qr/[0-9a-f]+$`));

    // Alipay does not know a precreated order until the payer scans it.
    expect(await connector.queryPayment({ outTradeNo: order.outTradeNo, expected: order.amount })).toMatchObject({ status: 'not_found', channelCode: 'ACQ.TRADE_NOT_EXIST' });

    const page = await (await scan(qrCode)).text();
    expect(page).toContain('¥12.34');
    expect(page).toContain(order.subject);
    expect(page).toContain('Pay 支付');
    expect(page).toContain('Cancel 取消');
    expect(await connector.queryPayment({ outTradeNo: order.outTradeNo, expected: order.amount })).toMatchObject({ status: 'pending', facts: { channelStatus: 'WAIT_BUYER_PAY' } });

    await press(qrCode, 'pay');
    const report = await harness.simulator.deliverDueNotifications();
    expect(report).toMatchObject({ attempted: 1, delivered: 1, requestsSent: 1 });
    const [notification] = harness.receiver.for(order.outTradeNo);
    expect(notification!.form).toMatchObject({ notify_type: 'trade_status_sync', trade_status: 'TRADE_SUCCESS', total_amount: '12.34', sign_type: 'RSA2', app_id: harness.appId });

    const event = await verifiedPaymentEvent(notification!);
    const checked = checkNotificationAmount(event, order.amount);
    expect(checked).toMatchObject({ status: 'succeeded', facts: { outTradeNo: order.outTradeNo, amount: { amount: 1234n, currency: 'CNY' }, paidAt: clock.now() } });
    expect(connector.acknowledgeNotification('accepted')).toEqual({ statusCode: 200, contentType: 'text/plain; charset=utf-8', body: 'success' });

    const queried = await connector.queryPayment({ outTradeNo: order.outTradeNo, expected: order.amount });
    expect(queried).toMatchObject({ status: 'succeeded', facts: { channelStatus: 'TRADE_SUCCESS', paidAt: clock.now() } });
    if (queried.status === 'succeeded' && event.facts.channelTradeNo) expect(queried.facts.channelTradeNo).toBe(event.facts.channelTradeNo);
  });

  it('refunds partially twice, repeats a refund without moving money, refuses more than was paid, and answers refund queries', async () => {
    const order = await paidQrOrder(1000n);
    const refund = (outRefundNo: string, amount: bigint) =>
      connector.refund({ outTradeNo: order.outTradeNo, outRefundNo, refundAmount: money(amount, 'CNY'), paymentAmount: order.amount, reason: 'test' });

    expect(await refund('ref_it_1', 200n)).toMatchObject({ status: 'succeeded', facts: { amount: money(200n, 'CNY'), totalRefunded: money(200n, 'CNY'), channelStatus: 'Y' } });
    expect(await refund('ref_it_2', 300n)).toMatchObject({ status: 'succeeded', facts: { amount: money(300n, 'CNY'), totalRefunded: money(500n, 'CNY') } });
    // The same refund number again is the same refund: Alipay answers fund_change N and nothing moves.
    expect(await refund('ref_it_1', 200n)).toMatchObject({ status: 'pending', facts: { channelStatus: 'N', totalRefunded: money(500n, 'CNY') } });
    expect(await refund('ref_it_1', 250n)).toMatchObject({ status: 'failed', channelCode: 'ACQ.DISCORDANT_REPEAT_REQUEST' });
    expect(await refund('ref_it_3', 600n)).toMatchObject({ status: 'failed', reason: 'rejected', channelCode: 'ACQ.REFUND_AMT_NOT_EQUAL_TOTAL' });

    const queried = await connector.queryRefund({ outTradeNo: order.outTradeNo, outRefundNo: 'ref_it_1', expected: money(200n, 'CNY') });
    expect(queried).toMatchObject({ status: 'succeeded', facts: { outRefundNo: 'ref_it_1', amount: money(200n, 'CNY'), channelStatus: 'REFUND_SUCCESS' } });
    expect(await connector.queryRefund({ outTradeNo: order.outTradeNo, outRefundNo: 'ref_it_9', expected: money(100n, 'CNY') })).toMatchObject({ status: 'not_found' });
    expect(await connector.queryRefund({ outTradeNo: order.outTradeNo, outRefundNo: 'ref_it_2', expected: money(301n, 'CNY') })).toMatchObject({ status: 'amount_mismatch' });

    // API refunds are answered synchronously: no notification beyond the payment's own.
    await harness.simulator.deliverDueNotifications();
    expect(harness.receiver.for(order.outTradeNo).map((notification) => notification.form.trade_status)).toEqual(['TRADE_SUCCESS']);
  });

  it('refunding the rest closes the trade, as Alipay does', async () => {
    const order = await paidQrOrder(500n);
    const refunded = await connector.refund({ outTradeNo: order.outTradeNo, outRefundNo: 'ref_full', refundAmount: order.amount, paymentAmount: order.amount });
    expect(refunded).toMatchObject({ status: 'succeeded', facts: { totalRefunded: order.amount } });
    expect(await connector.queryPayment({ outTradeNo: order.outTradeNo, expected: order.amount })).toMatchObject({ status: 'failed', reason: 'refunded_in_full' });
  });
});

describe('Alipay page payment through the simulator', () => {
  it('redirects the payer to a signed gateway URL that opens the cashier, and the payment succeeds', async () => {
    const order = newOrder('alipay_page', 9900n);
    const created = await connector.createPayment(order);
    if (created.status !== 'pending' || created.action.kind !== 'redirect') throw new Error(JSON.stringify(created));
    expect(created.action.url.startsWith(`${harness.simulator.gatewayUrl}?`)).toBe(true);

    const opened = await fetch(created.action.url, { redirect: 'manual' });
    expect(opened.status).toBe(302);
    const cashierUrl = new URL(opened.headers.get('location')!, harness.simulator.baseUrl).toString();
    expect(await (await fetch(cashierUrl)).text()).toContain('¥99.00');
    expect(await connector.queryPayment({ outTradeNo: order.outTradeNo, expected: order.amount })).toMatchObject({ status: 'pending' });

    await press(cashierUrl, 'pay');
    await harness.simulator.deliverDueNotifications();
    const event = await verifiedPaymentEvent(harness.receiver.for(order.outTradeNo)[0]!);
    expect(checkNotificationAmount(event, order.amount)).toMatchObject({ status: 'succeeded' });
    expect(await connector.queryPayment({ outTradeNo: order.outTradeNo, expected: order.amount })).toMatchObject({ status: 'succeeded' });

    // After paying, the cashier offers the signed synchronous return to the merchant.
    const paidPage = await (await fetch(cashierUrl)).text();
    expect(paidPage).toContain('https://merchant.example/return?');
  });

  it('refuses a tampered page-pay URL', async () => {
    const order = newOrder('alipay_page');
    const created = await connector.createPayment(order);
    if (created.status !== 'pending' || created.action.kind !== 'redirect') throw new Error(JSON.stringify(created));
    const tampered = created.action.url.replace('12.34', '0.01');
    expect(tampered).not.toBe(created.action.url);
    const response = await fetch(tampered, { redirect: 'manual' });
    expect(response.status).toBe(400);
    expect(await response.text()).toContain('isv.invalid-signature');
  });
});

describe('closing and cancelling', () => {
  it('closes a waiting trade once, notifies TRADE_CLOSED, and refuses to close it again', async () => {
    const { order, qrCode } = await createQrOrder();
    await scan(qrCode);
    expect(await connector.closePayment({ outTradeNo: order.outTradeNo })).toEqual({ status: 'succeeded' });
    expect(await connector.queryPayment({ outTradeNo: order.outTradeNo, expected: order.amount })).toMatchObject({ status: 'failed', reason: 'closed', facts: { channelStatus: 'TRADE_CLOSED' } });
    expect(await connector.closePayment({ outTradeNo: order.outTradeNo })).toMatchObject({ status: 'failed', channelCode: 'ACQ.TRADE_STATUS_ERROR' });

    await harness.simulator.deliverDueNotifications();
    const event = await verifiedPaymentEvent(harness.receiver.for(order.outTradeNo)[0]!);
    expect(checkNotificationAmount(event, order.amount)).toMatchObject({ status: 'failed', reason: 'closed' });
  });

  it('answers not_found for closing a QR order nobody scanned', async () => {
    const { order } = await createQrOrder();
    expect(await connector.closePayment({ outTradeNo: order.outTradeNo })).toEqual({ status: 'not_found', channelCode: 'ACQ.TRADE_NOT_EXIST' });
  });

  it('closes the trade when the payer presses Cancel', async () => {
    const { order, qrCode } = await createQrOrder();
    await scan(qrCode);
    await press(qrCode, 'cancel');
    expect(await connector.queryPayment({ outTradeNo: order.outTradeNo, expected: order.amount })).toMatchObject({ status: 'failed', reason: 'closed' });
    await press(qrCode, 'pay');
    expect(await connector.queryPayment({ outTradeNo: order.outTradeNo, expected: order.amount })).toMatchObject({ status: 'failed' });
  });

  it('keeps precreate idempotent per out_trade_no and refuses the same number with another amount', async () => {
    const { order, qrCode } = await createQrOrder();
    expect(await connector.createPayment(order)).toEqual({ status: 'pending', action: { kind: 'qr_code', qrCode } });
    expect(await connector.createPayment({ ...order, amount: money(1n, 'CNY') })).toMatchObject({ status: 'failed', channelCode: 'ACQ.CONTEXT_INCONSISTENT' });
    await scan(qrCode);
    await press(qrCode, 'pay');
    // Creating a paid order again is a state conflict that a query resolves, never a failure.
    expect(await connector.createPayment(order)).toMatchObject({ status: 'unknown', reason: 'state_conflict', channelCode: 'ACQ.TRADE_HAS_SUCCESS' });
  });
});

describe('signatures', () => {
  it('rejects requests signed with a key the simulator does not know (40002 isv.invalid-signature)', async () => {
    const stranger = harness.connectorWith({ appPrivateKeyPem: newAppKeys().privateKeyPem });
    expect(await stranger.createPayment(newOrder())).toMatchObject({ status: 'failed', reason: 'rejected', channelCode: 'isv.invalid-signature' });
    const order = await paidQrOrder();
    // A rejected query tells nothing about the trade.
    expect(await stranger.queryPayment({ outTradeNo: order.outTradeNo, expected: order.amount })).toMatchObject({ status: 'unknown', channelCode: 'isv.invalid-signature' });
  });

  it('takes keys as Alipay’s key tool writes them: bare base64, PKCS#8', async () => {
    const order = await paidQrOrder();
    const bare = (pem: string) => pem.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, '');
    const pkcs8 = createPrivateKey(harness.appKeys.privateKeyPem).export({ type: 'pkcs8', format: 'pem' }).toString();
    const toolKeys = harness.connectorWith({ appPrivateKeyPem: bare(pkcs8), alipayPublicKeyPem: bare(harness.simulator.publicKeyPem) });
    expect(await toolKeys.queryPayment({ outTradeNo: order.outTradeNo, expected: order.amount })).toMatchObject({ status: 'succeeded' });
    expect(() => harness.connectorWith({ appPrivateKeyPem: 'not a key' })).toThrow(/app private key is not a readable RSA private key/);
    expect(() => harness.connectorWith({ alipayPublicKeyPem: 'bm90IGEga2V5' })).toThrow(/Alipay public key/);
  });

  it('treats an answer that does not verify with the configured Alipay key as unknown', async () => {
    const order = await paidQrOrder();
    const misconfigured = harness.connectorWith({ alipayPublicKeyPem: newAppKeys().publicKeyPem });
    expect(await misconfigured.queryPayment({ outTradeNo: order.outTradeNo, expected: order.amount })).toMatchObject({ status: 'unknown', reason: 'unverifiable' });
  });

  it('does not trust a notification with a changed field', async () => {
    const order = await paidQrOrder();
    await harness.simulator.deliverDueNotifications();
    const notification = harness.receiver.for(order.outTradeNo)[0]!;
    const form = { ...notification.form, total_amount: '0.01' };
    const rawBody = new URLSearchParams(form).toString();
    expect(await connector.verifyNotification({ headers: notification.headers, rawBody })).toMatchObject({ verified: false, reason: 'invalid_signature' });
    expect(await connector.verifyNotification({ headers: notification.headers, rawBody: notification.rawBody })).toMatchObject({ verified: true });
  });

  it('signs answers the way the official SDK verifies them, also for errors', async () => {
    const sdk = new AlipaySdk({
      appId: harness.appId,
      privateKey: harness.appKeys.privateKeyPem,
      alipayPublicKey: harness.simulator.publicKeyPem,
      gateway: harness.simulator.gatewayUrl,
      camelcase: false,
    });
    const answer = await sdk.exec('alipay.trade.query', { bizContent: { out_trade_no: 'no_such_trade' } }, { validateSign: true });
    expect(answer).toMatchObject({ code: '40004', sub_code: 'ACQ.TRADE_NOT_EXIST' });
  });
});

describe('fault switches', () => {
  it('answers 5xx for one API method: the connector reports unknown, and clearing the switch restores it', async () => {
    const order = await paidQrOrder();
    const fault = await harness.simulator.setFault({ outTradeNo: order.outTradeNo, fault: { kind: 'gateway_error', apiMethod: 'alipay.trade.query', httpStatus: 503 } });
    expect(await connector.queryPayment({ outTradeNo: order.outTradeNo, expected: order.amount })).toMatchObject({ status: 'unknown', reason: 'http_status', channelCode: 'HTTP 503' });
    // Other methods and other trades are untouched.
    expect((await connector.queryRefund({ outTradeNo: order.outTradeNo, outRefundNo: 'none', expected: order.amount })).status).toBe('not_found');
    await harness.simulator.clearFaults({ id: fault.id });
    expect(await connector.queryPayment({ outTradeNo: order.outTradeNo, expected: order.amount })).toMatchObject({ status: 'succeeded' });
  });

  it('answers Alipay’s system errors (20000, 40004 ACQ.SYSTEM_ERROR): unknown, and nothing happened', async () => {
    const order = await paidQrOrder(800n);
    await harness.simulator.setFault({ outTradeNo: order.outTradeNo, times: 1, fault: { kind: 'system_error', apiMethod: 'alipay.trade.query' } });
    expect(await connector.queryPayment({ outTradeNo: order.outTradeNo, expected: order.amount })).toMatchObject({ status: 'unknown', reason: 'channel_error', channelCode: 'isp.unknow-error' });
    await harness.simulator.setFault({ outTradeNo: order.outTradeNo, times: 1, fault: { kind: 'system_error', apiMethod: 'alipay.trade.refund', variant: 'acq_system_error' } });
    const refund = { outTradeNo: order.outTradeNo, outRefundNo: 'ref_sys', refundAmount: money(100n, 'CNY'), paymentAmount: order.amount };
    expect(await connector.refund(refund)).toMatchObject({ status: 'unknown', channelCode: 'ACQ.SYSTEM_ERROR' });
    // An unknown refund is retried with the same number; it happens once.
    expect(await connector.refund(refund)).toMatchObject({ status: 'succeeded', facts: { totalRefunded: money(100n, 'CNY') } });
  });

  it('reports a gateway nobody answers at as unknown (network), never as a failure', async () => {
    const unreachable = harness.connectorWith({ gatewayUrl: 'http://127.0.0.1:1/gateway.do' });
    expect(await unreachable.queryPayment({ outTradeNo: 'pay_nowhere', expected: money(100n, 'CNY') })).toMatchObject({ status: 'unknown', reason: 'network' });
    expect(await unreachable.createPayment(newOrder())).toMatchObject({ status: 'unknown', reason: 'network' });
  });

  it('holds an answer past the client timeout: unknown, while the work itself was done', async () => {
    const order = newOrder();
    await harness.simulator.setFault({ outTradeNo: order.outTradeNo, times: 1, fault: { kind: 'gateway_timeout', apiMethod: 'alipay.trade.precreate', holdMs: 5_000 } });
    const impatient = harness.connectorWith({ timeoutMs: 300 });
    expect(await impatient.createPayment(order)).toMatchObject({ status: 'unknown', reason: 'timeout' });
    // The trade exists: asking again with the same number is safe and gives the same QR code.
    expect(await connector.createPayment(order)).toMatchObject({ status: 'pending', action: { kind: 'qr_code' } });
  });

  it('reports a different amount in query answers and notifications: amount_mismatch, never success', async () => {
    const order = await paidQrOrder();
    await harness.simulator.setFault({ outTradeNo: order.outTradeNo, fault: { kind: 'wrong_amount', totalAmount: '0.01', where: 'both' } });
    const queried = await connector.queryPayment({ outTradeNo: order.outTradeNo, expected: order.amount });
    expect(queried).toMatchObject({ status: 'amount_mismatch', expected: order.amount, reported: money(1n, 'CNY'), reportedStatus: 'succeeded' });

    await harness.simulator.deliverDueNotifications();
    const event = await verifiedPaymentEvent(harness.receiver.for(order.outTradeNo)[0]!);
    expect(event.facts.amount).toEqual(money(1n, 'CNY'));
    expect(checkNotificationAmount(event, order.amount)).toMatchObject({ status: 'amount_mismatch', reportedStatus: 'succeeded' });
  });

  it('duplicates a notification: N identical copies at once', async () => {
    const order = newOrder();
    await harness.simulator.setFault({ outTradeNo: order.outTradeNo, fault: { kind: 'notification_duplicate', copies: 3 } });
    await connector.createPayment(order);
    await pressFor(order, 'pay');
    expect(await harness.simulator.deliverDueNotifications()).toMatchObject({ delivered: 1, requestsSent: 3 });
    const copies = harness.receiver.for(order.outTradeNo);
    expect(copies).toHaveLength(3);
    expect(new Set(copies.map((copy) => copy.form.notify_id)).size).toBe(1);
    for (const copy of copies) expect((await connector.verifyNotification(copy)).verified).toBe(true);
  });

  it('drops notifications until the switch is cleared, then Alipay’s retry delivers', async () => {
    const order = newOrder();
    await harness.simulator.setFault({ outTradeNo: order.outTradeNo, fault: { kind: 'notification_drop' } });
    await connector.createPayment(order);
    await pressFor(order, 'pay');
    expect(await harness.simulator.deliverDueNotifications()).toMatchObject({ attempted: 1, delivered: 0, retrying: 1, requestsSent: 0 });
    clock.advanceMs(alipayRetryDelaysMs[0]! * timeScale);
    expect(await harness.simulator.deliverDueNotifications()).toMatchObject({ delivered: 0, retrying: 1 });
    expect(harness.receiver.for(order.outTradeNo)).toHaveLength(0);

    await harness.simulator.clearFaults({ outTradeNo: order.outTradeNo });
    expect(await harness.simulator.deliverDueNotifications()).toMatchObject({ attempted: 0 });
    clock.advanceMs(alipayRetryDelaysMs[1]! * timeScale);
    expect(await harness.simulator.deliverDueNotifications()).toMatchObject({ delivered: 1 });
    expect(harness.receiver.for(order.outTradeNo)).toHaveLength(1);
  });

  it('delays the first notification by the given time', async () => {
    const order = newOrder();
    await harness.simulator.setFault({ outTradeNo: order.outTradeNo, fault: { kind: 'notification_delay', delayMs: 60_000 } });
    await connector.createPayment(order);
    await pressFor(order, 'pay');
    expect(await harness.simulator.deliverDueNotifications()).toMatchObject({ attempted: 0 });
    clock.advanceMs(59_999);
    expect(await harness.simulator.deliverDueNotifications()).toMatchObject({ attempted: 0 });
    clock.advanceMs(1);
    expect(await harness.simulator.deliverDueNotifications()).toMatchObject({ delivered: 1 });
    expect(harness.receiver.for(order.outTradeNo)).toHaveLength(1);
  });

  it('reorders: TRADE_SUCCESS arrives before a stale WAIT_BUYER_PAY', async () => {
    const order = newOrder();
    await harness.simulator.setFault({ outTradeNo: order.outTradeNo, fault: { kind: 'notification_reorder' } });
    await connector.createPayment(order);
    await pressFor(order, 'pay');
    expect(await harness.simulator.deliverDueNotifications()).toMatchObject({ delivered: 2 });
    const received = harness.receiver.for(order.outTradeNo);
    expect(received.map((notification) => notification.form.trade_status)).toEqual(['TRADE_SUCCESS', 'WAIT_BUYER_PAY']);
    const stale = await verifiedPaymentEvent(received[1]!);
    expect(checkNotificationAmount(stale, order.amount)).toMatchObject({ status: 'pending' });
  });

  it('can be set and cleared over HTTP', async () => {
    const base = harness.simulator.baseUrl;
    const created = await fetch(`${base}/__sim/faults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ outTradeNo: 'pay_http', times: 2, fault: { kind: 'gateway_error', apiMethod: 'alipay.trade.query' } }),
    });
    expect(created.status).toBe(201);
    expect(await created.json()).toMatchObject({ outTradeNo: 'pay_http', remaining: 2, fault: { kind: 'gateway_error', httpStatus: 502 } });
    const invalid = await fetch(`${base}/__sim/faults`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ fault: { kind: 'nope' } }) });
    expect(invalid.status).toBe(400);
    expect(await (await fetch(`${base}/__sim/faults`)).json()).toMatchObject({ faults: [{ outTradeNo: 'pay_http' }] });
    expect(await (await fetch(`${base}/__sim/faults`, { method: 'DELETE' })).json()).toEqual({ cleared: 1 });
  });
});

describe('notification retries and restarts', () => {
  it('retries on Alipay’s schedule until the reply is exactly "success", and gives up after the last attempt', async () => {
    harness.receiver.reply = 'SUCCESS';
    const order = await paidQrOrder();
    for (let attempt = 1; attempt <= notificationAttemptsMax; attempt += 1) {
      const report = await harness.simulator.deliverDueNotifications();
      expect(report.attempted).toBe(1);
      // Just short of the next delay nothing is due; at the delay the next attempt is.
      const delayMs = (alipayRetryDelaysMs[attempt - 1] ?? 0) * timeScale;
      clock.advanceMs(delayMs - 1);
      if (attempt < notificationAttemptsMax) expect((await harness.simulator.deliverDueNotifications()).attempted).toBe(0);
      clock.advanceMs(1);
    }
    expect(harness.receiver.for(order.outTradeNo)).toHaveLength(notificationAttemptsMax);
    expect((await harness.simulator.deliverDueNotifications()).attempted).toBe(0);
  });

  it('resumes pending notifications after a restart, with the same signing key', async () => {
    harness.receiver.reply = 'fail';
    const order = await paidQrOrder();
    expect(await harness.simulator.deliverDueNotifications()).toMatchObject({ retrying: 1 });
    harness.receiver.reply = 'success';

    const restarted = await createAlipaySimulator({ pool: database.pool, clock, timeScale, logger: silentLogger });
    try {
      expect(restarted.publicKeyPem).toBe(harness.simulator.publicKeyPem);
      clock.advanceMs(alipayRetryDelaysMs[0]! * timeScale);
      expect(await restarted.deliverDueNotifications()).toMatchObject({ delivered: 1 });
    } finally {
      await restarted.close();
    }
    const received = harness.receiver.for(order.outTradeNo);
    expect(received).toHaveLength(2);
    expect(received[1]!.form.notify_id).toBe(received[0]!.form.notify_id);
    expect((await connector.verifyNotification(received[1]!)).verified).toBe(true);
  });
});
