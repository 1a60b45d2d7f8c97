import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createSign } from 'node:crypto';
import { chromium } from 'playwright-core';
import {
  checkNotificationAmount,
  type CreatePaymentRequest,
  type NotificationEvent,
  type PaymentNotificationEvent,
  type RefundNotificationEvent,
  type RefundRequest,
} from '../../src/channels/index.js';
import type { WechatpayConnector } from '../../src/channels/wechatpay/index.js';
import { ManualClock } from '../../src/platform/clock.js';
import { money } from '../../src/platform/money.js';
import { createWechatpaySimulator, notificationAttemptsMax, wechatpayRetryDelaysMs } from '../../src/simulators/wechatpay/index.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { newMerchantKeys, payerToken, silentLogger, startWechatpayHarness, type ReceivedNotification, type WechatpayHarness } from '../fixtures/wechatpay/harness.js';

/**
 * Fen's WeChat Pay connector (wechatpay-axios-plugin, answers verified with
 * the platform public key) against the WeChat Pay simulator over real HTTP on
 * 127.0.0.1, on a database of its own. Time is a ManualClock; refunds complete
 * and notifications go out only when the test moves the clock and calls
 * deliverDueNotifications() (or completes a refund by hand), so nothing here
 * waits on a timer except the one client timeout the timeout fault needs.
 */

const timeScale = 0.001;
const refundDurationMs = 60_000;
let database: TestDatabase;
let clock: ManualClock;
let harness: WechatpayHarness;
let connector: WechatpayConnector;
let orderCounter = 0;

/** WeChat Pay's times carry whole seconds. */
function nowToTheSecond(): Date {
  return new Date(Math.floor(clock.now().getTime() / 1000) * 1000);
}

function newOrder(method: CreatePaymentRequest['method'] = 'wechat_native', amount = 1234n): CreatePaymentRequest {
  orderCounter += 1;
  return {
    method,
    outTradeNo: `pay_it_${Date.now().toString(36)}_${orderCounter}`,
    amount: money(amount, 'CNY'),
    subject: `测试订单 Test order ${orderCounter}`,
    expiresAt: new Date(clock.now().getTime() + 30 * 60_000),
    ...(method === 'wechat_h5' ? { payerIp: '203.0.113.7' } : {}),
  };
}

async function createNativeOrder(amount = 1234n): Promise<{ order: CreatePaymentRequest; codeUrl: string }> {
  const order = newOrder('wechat_native', amount);
  const created = await connector.createPayment(order);
  if (created.status !== 'pending' || created.action.kind !== 'qr_code') throw new Error(`native create failed: ${JSON.stringify(created)}`);
  return { order, codeUrl: created.action.qrCode };
}

async function press(payerUrl: string, button: 'pay' | 'cancel'): Promise<Response> {
  const response = await fetch(`${harness.simulator.baseUrl}/wechatpay/pay/${payerToken(payerUrl)}/${button}`, { method: 'POST', redirect: 'manual' });
  expect(response.status).toBe(303);
  return response;
}

async function paidNativeOrder(amount = 1234n): Promise<CreatePaymentRequest> {
  const { order, codeUrl } = await createNativeOrder(amount);
  await press(codeUrl, 'pay');
  return order;
}

async function verifiedEvent(notification: ReceivedNotification): Promise<NotificationEvent> {
  const verification = await connector.verifyNotification(notification);
  if (!verification.verified) throw new Error(`notification not verified: ${verification.reason} ${verification.message}`);
  return verification.event;
}

async function paymentEvent(notification: ReceivedNotification): Promise<PaymentNotificationEvent> {
  const event = await verifiedEvent(notification);
  if (event.kind !== 'payment') throw new Error('expected a payment event');
  return event;
}

async function refundEvent(notification: ReceivedNotification): Promise<RefundNotificationEvent> {
  const event = await verifiedEvent(notification);
  if (event.kind !== 'refund') throw new Error('expected a refund event');
  return event;
}

function refundOf(order: CreatePaymentRequest, outRefundNo: string, amount: bigint): RefundRequest {
  return { outTradeNo: order.outTradeNo, outRefundNo, refundAmount: money(amount, 'CNY'), paymentAmount: order.amount, reason: 'test' };
}

beforeAll(async () => {
  database = await createTestDatabase({ poolSize: 8 });
  clock = new ManualClock('2026-01-15T02:00:00.000Z');
  harness = await startWechatpayHarness({ pool: database.pool, clock, timeScale });
  connector = harness.connector;
});

/**
 * Each test starts with nothing in flight: refunds still processing complete,
 * and every notification still due (retries, held ones) goes out — the clock
 * jumps past WeChat Pay's whole schedule, scaled — so report counts in one
 * test never include another test's work.
 */
afterEach(async () => {
  await harness.simulator.clearFaults();
  harness.receiver.statusCode = 204;
  await harness.simulator.completeRefunds();
  clock.advanceMs(wechatpayRetryDelaysMs.reduce((total, delayMs) => total + delayMs, 0) * timeScale + 1);
  await harness.simulator.deliverDueNotifications();
});

afterAll(async () => {
  await harness?.close();
  await database?.close();
});

describe('WeChat Pay Native payment through the simulator', () => {
  it('creates, is paid on the payer page, notifies with a verified and decrypted resource, and queries as succeeded', async () => {
    const { order, codeUrl } = await createNativeOrder();
    expect(codeUrl).toMatch(new RegExp(`^${harness.simulator.baseUrl}/wechatpay/pay/[0-9a-f]+$`));
    // Unlike an Alipay QR order, a WeChat Pay order exists from its creation.
    expect(await connector.queryPayment({ outTradeNo: order.outTradeNo, expected: order.amount })).toMatchObject({ status: 'pending', facts: { channelStatus: 'NOTPAY', channelTradeNo: undefined } });

    const page = await (await fetch(codeUrl)).text();
    expect(page).toContain('¥12.34');
    expect(page).toContain(order.subject);
    expect(page).toContain('Pay 支付');
    expect(page).toContain('Cancel 取消');

    clock.advanceSeconds(20);
    await press(codeUrl, 'pay');
    expect(await harness.simulator.deliverDueNotifications()).toMatchObject({ attempted: 1, delivered: 1, requestsSent: 1 });
    const [notification] = harness.receiver.for(order.outTradeNo);
    expect(notification!.json).toMatchObject({ event_type: 'TRANSACTION.SUCCESS', resource_type: 'encrypt-resource', resource: { algorithm: 'AEAD_AES_256_GCM', original_type: 'transaction' } });
    expect(notification!.headers['wechatpay-serial']).toBe(harness.simulator.platformPublicKeyId);

    const event = await paymentEvent(notification!);
    expect(event.notificationId).toBe(notification!.json.id);
    const checked = checkNotificationAmount(event, order.amount);
    expect(checked).toMatchObject({ status: 'succeeded', facts: { outTradeNo: order.outTradeNo, amount: money(1234n, 'CNY'), paidAt: nowToTheSecond(), channelStatus: 'SUCCESS' } });
    expect(connector.acknowledgeNotification('accepted')).toEqual({ statusCode: 204, contentType: 'application/json; charset=utf-8', body: '' });

    const queried = await connector.queryPayment({ outTradeNo: order.outTradeNo, expected: order.amount });
    expect(queried).toMatchObject({ status: 'succeeded', facts: { channelStatus: 'SUCCESS', paidAt: nowToTheSecond(), channelTradeNo: event.facts.channelTradeNo } });
    expect(queried.status === 'succeeded' && queried.facts.payerChannelId).toMatch(/^o/);
  });

  it('refunds partially twice, asynchronously: PROCESSING, then SUCCESS with a verified REFUND.SUCCESS notification', async () => {
    const order = await paidNativeOrder(1000n);
    expect(await connector.refund(refundOf(order, 'ref_it_1', 200n))).toMatchObject({ status: 'pending', facts: { amount: money(200n, 'CNY'), channelStatus: 'PROCESSING', outRefundNo: 'ref_it_1' } });
    expect(await connector.queryRefund({ outTradeNo: order.outTradeNo, outRefundNo: 'ref_it_1', expected: money(200n, 'CNY') })).toMatchObject({ status: 'pending' });

    // A test completes a refund by its number; nothing waits for its time to come.
    expect(await harness.simulator.completeRefunds({ outRefundNo: 'ref_it_1' })).toBe(1);
    const first = await connector.queryRefund({ outTradeNo: order.outTradeNo, outRefundNo: 'ref_it_1', expected: money(200n, 'CNY') });
    expect(first).toMatchObject({ status: 'succeeded', facts: { channelStatus: 'SUCCESS', refundedAt: nowToTheSecond(), channelRefundNo: expect.stringMatching(/^5000\d{25}$/) } });

    // The second one completes when its (scaled) time comes, in the delivery pass.
    expect(await connector.refund(refundOf(order, 'ref_it_2', 300n))).toMatchObject({ status: 'pending' });
    clock.advanceMs(refundDurationMs * timeScale);
    expect(await harness.simulator.deliverDueNotifications()).toMatchObject({ refundsCompleted: 1, delivered: 3 });

    const refundNotifications = harness.receiver.for(order.outTradeNo).filter((notification) => notification.json.event_type === 'REFUND.SUCCESS');
    expect(refundNotifications.map((notification) => notification.resource.out_refund_no)).toEqual(['ref_it_1', 'ref_it_2']);
    const event = await refundEvent(refundNotifications[1]!);
    expect(checkNotificationAmount(event, money(300n, 'CNY'))).toMatchObject({ status: 'succeeded', facts: { outRefundNo: 'ref_it_2', amount: money(300n, 'CNY') } });
    expect(checkNotificationAmount(event, money(301n, 'CNY'))).toMatchObject({ status: 'amount_mismatch' });

    // The same refund number again is the same refund; another amount under it, or more than is left, is refused.
    expect(await connector.refund(refundOf(order, 'ref_it_1', 200n))).toMatchObject({ status: 'succeeded', facts: { channelStatus: 'SUCCESS' } });
    expect(await connector.refund(refundOf(order, 'ref_it_1', 250n))).toMatchObject({ status: 'failed', reason: 'rejected', channelCode: 'INVALID_REQUEST' });
    expect(await connector.refund(refundOf(order, 'ref_it_3', 600n))).toMatchObject({ status: 'failed', reason: 'rejected', channelCode: 'INVALID_REQUEST' });
    expect(await connector.queryRefund({ outTradeNo: order.outTradeNo, outRefundNo: 'ref_it_9', expected: money(100n, 'CNY') })).toEqual({ status: 'not_found', channelCode: 'RESOURCE_NOT_EXISTS' });
    expect(await connector.queryRefund({ outTradeNo: order.outTradeNo, outRefundNo: 'ref_it_2', expected: money(301n, 'CNY') })).toMatchObject({ status: 'amount_mismatch' });
    // After a refund the order reads REFUND: still a payment that succeeded.
    expect(await connector.queryPayment({ outTradeNo: order.outTradeNo, expected: order.amount })).toMatchObject({ status: 'succeeded', facts: { channelStatus: 'REFUND' } });
  });

  it('reports a refund that ends ABNORMAL as pending, and one that ends CLOSED as failed, with the amount refundable again', async () => {
    const order = await paidNativeOrder(500n);
    await harness.simulator.setFault({ outTradeNo: order.outTradeNo, times: 1, fault: { kind: 'refund_outcome', status: 'ABNORMAL' } });
    await connector.refund(refundOf(order, 'ref_abnormal', 500n));
    await harness.simulator.completeRefunds({ outRefundNo: 'ref_abnormal' });
    expect(await connector.queryRefund({ outTradeNo: order.outTradeNo, outRefundNo: 'ref_abnormal', expected: money(500n, 'CNY') })).toMatchObject({ status: 'pending', facts: { channelStatus: 'ABNORMAL' } });

    const other = await paidNativeOrder(500n);
    await harness.simulator.setFault({ outTradeNo: other.outTradeNo, times: 1, fault: { kind: 'refund_outcome', status: 'CLOSED' } });
    await connector.refund(refundOf(other, 'ref_closed', 500n));
    await harness.simulator.completeRefunds({ outRefundNo: 'ref_closed' });
    await harness.simulator.deliverDueNotifications();
    const [closedNotification] = harness.receiver.for(other.outTradeNo).filter((notification) => notification.json.event_type === 'REFUND.CLOSED');
    expect(checkNotificationAmount(await refundEvent(closedNotification!), money(500n, 'CNY'))).toMatchObject({ status: 'failed', channelCode: 'CLOSED' });
    expect(await connector.refund(refundOf(other, 'ref_after_closed', 500n))).toMatchObject({ status: 'pending' });

    const [abnormalNotification] = harness.receiver.for(order.outTradeNo).filter((notification) => notification.json.event_type === 'REFUND.ABNORMAL');
    expect(checkNotificationAmount(await refundEvent(abnormalNotification!), money(500n, 'CNY'))).toMatchObject({ status: 'pending', facts: { channelStatus: 'ABNORMAL' } });
  });
});

describe('WeChat Pay H5 and JSAPI payments through the simulator', () => {
  it('lets a payer in headless Chromium press the buttons by their text', async () => {
    const { order, codeUrl } = await createNativeOrder(4200n);
    // The Debian package's binary, as the browser tests use it; a missing one fails here rather than skipping.
    const browser = await chromium.launch({ executablePath: process.env.FEN_CHROMIUM_PATH ?? '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu'] });
    try {
      const page = await browser.newPage();
      await page.goto(codeUrl);
      expect(await page.getByTestId('amount').textContent()).toBe('¥42.00');
      await page.getByText('Cancel 取消').click();
      await page.getByText('Cancelled').waitFor();
      await page.getByText('Pay 支付').click();
      await page.getByText('Paid').waitFor();
    } finally {
      await browser.close();
    }
    expect(await connector.queryPayment({ outTradeNo: order.outTradeNo, expected: order.amount })).toMatchObject({ status: 'succeeded' });
  });

  it('redirects the H5 payer with the return URL attached, and the payment succeeds', async () => {
    const order = newOrder('wechat_h5', 9900n);
    const created = await connector.createPayment(order);
    if (created.status !== 'pending' || created.action.kind !== 'redirect') throw new Error(JSON.stringify(created));
    expect(created.action.url).toMatch(new RegExp(`^${harness.simulator.baseUrl}/wechatpay/h5/[0-9a-f]+\\?prepay_id=wx\\d{14}[0-9a-f]{20}&redirect_url=https%3A%2F%2Fmerchant.example%2Freturn$`));

    const opened = await fetch(created.action.url, { redirect: 'manual' });
    expect(opened.status).toBe(302);
    const payerUrl = new URL(opened.headers.get('location')!, harness.simulator.baseUrl).toString();
    expect(await (await fetch(payerUrl)).text()).toContain('¥99.00');

    const paid = await fetch(`${harness.simulator.baseUrl}${new URL(payerUrl).pathname}/pay${new URL(payerUrl).search}`, { method: 'POST', redirect: 'manual' });
    const paidPage = await (await fetch(new URL(paid.headers.get('location')!, harness.simulator.baseUrl))).text();
    expect(paidPage).toContain('href="https://merchant.example/return"');
    await harness.simulator.deliverDueNotifications();
    expect(checkNotificationAmount(await paymentEvent(harness.receiver.for(order.outTradeNo)[0]!), order.amount)).toMatchObject({ status: 'succeeded' });
    expect(await connector.queryPayment({ outTradeNo: order.outTradeNo, expected: order.amount })).toMatchObject({ status: 'succeeded' });
  });

  it('refuses an H5 payment without the payer’s IP before calling WeChat Pay', async () => {
    const order = { ...newOrder('wechat_h5'), payerIp: undefined };
    expect(await connector.createPayment(order)).toMatchObject({ status: 'failed', reason: 'rejected', channelCode: 'missing_payer_ip' });
    expect(await harness.simulator.findTrade(order.outTradeNo)).toBeUndefined();
  });

  it('gives a JSAPI payer signed client parameters that the payer’s side accepts, and refuses them altered', async () => {
    const order = { ...newOrder('wechat_jsapi', 100n), payerChannelId: 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o' };
    const created = await connector.createPayment(order);
    if (created.status !== 'pending' || created.action.kind !== 'client_parameters') throw new Error(JSON.stringify(created));
    expect(created.action.parameters).toMatchObject({ appId: harness.appId, signType: 'RSA', package: expect.stringMatching(/^prepay_id=wx/) });
    const opened = await fetch(`${harness.simulator.baseUrl}/wechatpay/jsapi?${new URLSearchParams(created.action.parameters)}`, { redirect: 'manual' });
    expect(opened.status).toBe(302);
    const altered = new URLSearchParams({ ...created.action.parameters, nonceStr: 'another' });
    expect((await fetch(`${harness.simulator.baseUrl}/wechatpay/jsapi?${altered}`, { redirect: 'manual' })).status).toBe(400);

    await press(opened.headers.get('location')!, 'pay');
    await harness.simulator.deliverDueNotifications();
    expect(await paymentEvent(harness.receiver.for(order.outTradeNo)[0]!)).toMatchObject({ facts: { payerChannelId: order.payerChannelId } });
  });
});

describe('closing, cancelling and expiry', () => {
  it('closes an unpaid order (again without complaint), and sends no notification for it', async () => {
    const { order } = await createNativeOrder();
    expect(await connector.closePayment({ outTradeNo: order.outTradeNo })).toEqual({ status: 'succeeded' });
    expect(await connector.queryPayment({ outTradeNo: order.outTradeNo, expected: order.amount })).toMatchObject({ status: 'failed', reason: 'closed', facts: { channelStatus: 'CLOSED' } });
    expect(await connector.closePayment({ outTradeNo: order.outTradeNo })).toEqual({ status: 'succeeded' });
    expect(await connector.createPayment(order)).toMatchObject({ status: 'unknown', reason: 'state_conflict', channelCode: 'ORDER_CLOSED' });
    await harness.simulator.deliverDueNotifications();
    expect(harness.receiver.for(order.outTradeNo)).toHaveLength(0);
  });

  it('answers not_found for an order WeChat Pay never saw, and refuses to close a paid one', async () => {
    expect(await connector.closePayment({ outTradeNo: 'pay_never_created' })).toEqual({ status: 'not_found', channelCode: 'ORDER_NOT_EXIST' });
    expect(await connector.queryPayment({ outTradeNo: 'pay_never_created', expected: money(100n, 'CNY') })).toEqual({ status: 'not_found', channelCode: 'ORDER_NOT_EXIST' });
    const paid = await paidNativeOrder();
    expect(await connector.closePayment({ outTradeNo: paid.outTradeNo })).toMatchObject({ status: 'failed', reason: 'rejected', channelCode: 'ORDERPAID' });
  });

  it('keeps the order open when the payer presses Cancel, as WeChat Pay does, and closes it at its expiry', async () => {
    const { order, codeUrl } = await createNativeOrder();
    const cancelled = await press(codeUrl, 'cancel');
    expect(await (await fetch(new URL(cancelled.headers.get('location')!, harness.simulator.baseUrl))).text()).toContain('Cancelled');
    expect(await connector.queryPayment({ outTradeNo: order.outTradeNo, expected: order.amount })).toMatchObject({ status: 'pending', facts: { channelStatus: 'NOTPAY' } });
    clock.advanceMs(30 * 60_000);
    expect(await connector.queryPayment({ outTradeNo: order.outTradeNo, expected: order.amount })).toMatchObject({ status: 'failed', reason: 'closed' });
    await press(codeUrl, 'pay');
    expect(await connector.queryPayment({ outTradeNo: order.outTradeNo, expected: order.amount })).toMatchObject({ status: 'failed', facts: { channelStatus: 'CLOSED' } });
  });

  it('keeps create idempotent per out_trade_no and refuses the same number with another amount', async () => {
    const { order, codeUrl } = await createNativeOrder();
    expect(await connector.createPayment(order)).toEqual({ status: 'pending', action: { kind: 'qr_code', qrCode: codeUrl } });
    expect(await connector.createPayment({ ...order, amount: money(1n, 'CNY') })).toMatchObject({ status: 'failed', reason: 'rejected', channelCode: 'OUT_TRADE_NO_USED' });
    await press(codeUrl, 'pay');
    // Creating a paid order again is a state conflict that a query resolves, never a failure.
    expect(await connector.createPayment(order)).toMatchObject({ status: 'unknown', reason: 'state_conflict', channelCode: 'ORDERPAID' });
  });
});

describe('signatures', () => {
  it('rejects requests signed with a key the simulator does not know (401 SIGN_ERROR)', async () => {
    const stranger = harness.connectorWith({ merchantPrivateKeyPem: newMerchantKeys().privateKeyPem });
    expect(await stranger.createPayment(newOrder())).toMatchObject({ status: 'failed', reason: 'rejected', channelCode: 'SIGN_ERROR' });
    const order = await paidNativeOrder();
    // A rejected query tells nothing about the order.
    expect(await stranger.queryPayment({ outTradeNo: order.outTradeNo, expected: order.amount })).toMatchObject({ status: 'unknown', reason: 'channel_error', channelCode: 'SIGN_ERROR' });
  });

  it('treats an answer that does not verify with the configured platform key as unknown, never as its content', async () => {
    const order = await paidNativeOrder();
    const wrongKey = harness.connectorWith({ platformPublicKeyPem: newMerchantKeys().publicKeyPem });
    expect(await wrongKey.queryPayment({ outTradeNo: order.outTradeNo, expected: order.amount })).toMatchObject({ status: 'unknown', reason: 'unverifiable', channelCode: 'EV3_RES_HEADER_SIGNATURE_DIGEST' });
    const wrongId = harness.connectorWith({ platformPublicKeyId: 'PUB_KEY_ID_0000000000000000000000000000000000' });
    expect(await wrongId.closePayment({ outTradeNo: order.outTradeNo })).toMatchObject({ status: 'failed', channelCode: 'ORDERPAID' });
    expect(await wrongId.queryPayment({ outTradeNo: order.outTradeNo, expected: order.amount })).toMatchObject({ status: 'unknown', reason: 'unverifiable', channelCode: 'EV3_RES_HEADER_PLATFORM_SERIAL' });
  });

  it('does not trust a forged, altered or stale notification', async () => {
    const order = await paidNativeOrder();
    await harness.simulator.deliverDueNotifications();
    const genuine = harness.receiver.for(order.outTradeNo)[0]!;
    expect((await connector.verifyNotification(genuine)).verified).toBe(true);

    const altered = genuine.rawBody.replace('"TRANSACTION.SUCCESS"', '"REFUND.SUCCESS"');
    expect(await connector.verifyNotification({ headers: genuine.headers, rawBody: altered })).toMatchObject({ verified: false, reason: 'invalid_signature' });

    // Signed by someone else's key under the simulator's key id.
    const forger = newMerchantKeys();
    const timestamp = String(Math.floor(clock.now().getTime() / 1000));
    const signature = createSign('RSA-SHA256').update(`${timestamp}\nforged\n${genuine.rawBody}\n`).sign(forger.privateKeyPem, 'base64');
    const forgedHeaders = { ...genuine.headers, 'wechatpay-timestamp': timestamp, 'wechatpay-nonce': 'forged', 'wechatpay-signature': signature };
    expect(await connector.verifyNotification({ headers: forgedHeaders, rawBody: genuine.rawBody })).toMatchObject({ verified: false, reason: 'invalid_signature' });
    expect(connector.acknowledgeNotification('rejected')).toEqual({ statusCode: 400, contentType: 'application/json; charset=utf-8', body: '{"code":"FAIL","message":"失败"}' });

    // Replayed more than five minutes later, the genuine one is refused too.
    clock.advanceSeconds(301);
    expect(await connector.verifyNotification(genuine)).toMatchObject({ verified: false, reason: 'invalid_signature', message: expect.stringContaining('301 s') });
  });
});

describe('fault switches', () => {
  it('answers 5xx for one operation: unknown, and clearing the switch restores it', async () => {
    const order = await paidNativeOrder();
    const fault = await harness.simulator.setFault({ outTradeNo: order.outTradeNo, fault: { kind: 'http_error', operation: 'query', httpStatus: 503 } });
    expect(await connector.queryPayment({ outTradeNo: order.outTradeNo, expected: order.amount })).toMatchObject({ status: 'unknown', reason: 'http_status', channelCode: 'HTTP 503' });
    // Other operations are untouched.
    expect(await connector.queryRefund({ outTradeNo: order.outTradeNo, outRefundNo: 'none', expected: order.amount })).toMatchObject({ status: 'not_found' });
    await harness.simulator.clearFaults({ id: fault.id });
    expect(await connector.queryPayment({ outTradeNo: order.outTradeNo, expected: order.amount })).toMatchObject({ status: 'succeeded' });
  });

  it('answers 500 SYSTEM_ERROR without doing anything: unknown, and the retry with the same number refunds once', async () => {
    const order = await paidNativeOrder(800n);
    await harness.simulator.setFault({ outTradeNo: order.outTradeNo, times: 1, fault: { kind: 'system_error', operation: 'refund' } });
    const refund = refundOf(order, 'ref_sys', 100n);
    expect(await connector.refund(refund)).toMatchObject({ status: 'unknown', reason: 'channel_error', channelCode: 'SYSTEM_ERROR' });
    expect(await harness.simulator.findRefund('ref_sys')).toBeUndefined();
    expect(await connector.refund(refund)).toMatchObject({ status: 'pending', facts: { amount: money(100n, 'CNY') } });
    expect(await connector.refund(refund)).toMatchObject({ status: 'pending' });
    expect((await harness.simulator.findTrade(order.outTradeNo))?.refundedFen).toBe(100n);
  });

  it('reports a base URL nobody answers at as unknown (network), never as a failure', async () => {
    const unreachable = harness.connectorWith({ baseUrl: 'http://127.0.0.1:1/' });
    expect(await unreachable.queryPayment({ outTradeNo: 'pay_nowhere', expected: money(100n, 'CNY') })).toMatchObject({ status: 'unknown', reason: 'network' });
    expect(await unreachable.createPayment(newOrder())).toMatchObject({ status: 'unknown', reason: 'network' });
  });

  it('holds an answer past the client timeout: unknown, while the order itself was created', async () => {
    const order = newOrder();
    await harness.simulator.setFault({ outTradeNo: order.outTradeNo, times: 1, fault: { kind: 'timeout', operation: 'native', holdMs: 5_000 } });
    const impatient = harness.connectorWith({ timeoutMs: 300 });
    expect(await impatient.createPayment(order)).toMatchObject({ status: 'unknown', reason: 'timeout' });
    // The order exists: asking again with the same number and parameters is safe and gives the same code_url.
    expect(await connector.createPayment(order)).toMatchObject({ status: 'pending', action: { kind: 'qr_code' } });
  });

  it('reports a different amount in query answers and notifications: amount_mismatch, never success', async () => {
    const order = await paidNativeOrder();
    await harness.simulator.setFault({ outTradeNo: order.outTradeNo, fault: { kind: 'wrong_amount', amountFen: 1, where: 'both' } });
    const queried = await connector.queryPayment({ outTradeNo: order.outTradeNo, expected: order.amount });
    expect(queried).toMatchObject({ status: 'amount_mismatch', expected: order.amount, reported: money(1n, 'CNY'), reportedStatus: 'succeeded' });

    await harness.simulator.deliverDueNotifications();
    const event = await paymentEvent(harness.receiver.for(order.outTradeNo)[0]!);
    expect(event.facts.amount).toEqual(money(1n, 'CNY'));
    expect(checkNotificationAmount(event, order.amount)).toMatchObject({ status: 'amount_mismatch', reportedStatus: 'succeeded' });
  });

  it('duplicates a notification: N identical copies at once, each genuine', async () => {
    const order = newOrder();
    await harness.simulator.setFault({ outTradeNo: order.outTradeNo, fault: { kind: 'notification_duplicate', copies: 3 } });
    const created = await connector.createPayment(order);
    if (created.status !== 'pending' || created.action.kind !== 'qr_code') throw new Error(JSON.stringify(created));
    await press(created.action.qrCode, 'pay');
    expect(await harness.simulator.deliverDueNotifications()).toMatchObject({ delivered: 1, requestsSent: 3 });
    const copies = harness.receiver.for(order.outTradeNo);
    expect(copies).toHaveLength(3);
    expect(new Set(copies.map((copy) => copy.rawBody)).size).toBe(1);
    for (const copy of copies) expect((await connector.verifyNotification(copy)).verified).toBe(true);
  });

  it('drops notifications until the switch is cleared, then WeChat Pay’s retry delivers', async () => {
    const { order, codeUrl } = await createNativeOrder();
    await harness.simulator.setFault({ outTradeNo: order.outTradeNo, fault: { kind: 'notification_drop' } });
    await press(codeUrl, 'pay');
    expect(await harness.simulator.deliverDueNotifications()).toMatchObject({ attempted: 1, delivered: 0, retrying: 1, requestsSent: 0 });
    clock.advanceMs(wechatpayRetryDelaysMs[0]! * timeScale);
    expect(await harness.simulator.deliverDueNotifications()).toMatchObject({ delivered: 0, retrying: 1 });
    expect(harness.receiver.for(order.outTradeNo)).toHaveLength(0);

    await harness.simulator.clearFaults({ outTradeNo: order.outTradeNo });
    expect(await harness.simulator.deliverDueNotifications()).toMatchObject({ attempted: 0 });
    clock.advanceMs(wechatpayRetryDelaysMs[1]! * timeScale);
    expect(await harness.simulator.deliverDueNotifications()).toMatchObject({ delivered: 1 });
    expect(harness.receiver.for(order.outTradeNo)).toHaveLength(1);
  });

  it('delays the first notification by the given time', async () => {
    const { order, codeUrl } = await createNativeOrder();
    await harness.simulator.setFault({ outTradeNo: order.outTradeNo, fault: { kind: 'notification_delay', delayMs: 60_000 } });
    await press(codeUrl, 'pay');
    expect(await harness.simulator.deliverDueNotifications()).toMatchObject({ attempted: 0 });
    clock.advanceMs(59_999);
    expect(await harness.simulator.deliverDueNotifications()).toMatchObject({ attempted: 0 });
    clock.advanceMs(1);
    expect(await harness.simulator.deliverDueNotifications()).toMatchObject({ delivered: 1 });
    // Signed when sent, so it still verifies a minute after the payment.
    expect((await connector.verifyNotification(harness.receiver.for(order.outTradeNo)[0]!)).verified).toBe(true);
  });

  it('reorders: the refund’s REFUND.SUCCESS arrives before the payment’s TRANSACTION.SUCCESS', async () => {
    const { order, codeUrl } = await createNativeOrder(700n);
    await harness.simulator.setFault({ outTradeNo: order.outTradeNo, times: 1, fault: { kind: 'notification_reorder' } });
    await press(codeUrl, 'pay');
    expect(await harness.simulator.deliverDueNotifications()).toMatchObject({ attempted: 0 });
    await connector.refund(refundOf(order, 'ref_reorder', 700n));
    await harness.simulator.completeRefunds({ outRefundNo: 'ref_reorder' });
    expect(await harness.simulator.deliverDueNotifications()).toMatchObject({ delivered: 2 });
    const received = harness.receiver.for(order.outTradeNo);
    expect(received.map((notification) => notification.json.event_type)).toEqual(['REFUND.SUCCESS', 'TRANSACTION.SUCCESS']);
    for (const notification of received) expect((await connector.verifyNotification(notification)).verified).toBe(true);
  });

  it('can be set and cleared over HTTP, next to merchant registration', async () => {
    const base = harness.simulator.baseUrl;
    const post = (path: string, body: unknown) => fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const created = await post('/__sim/faults', { outTradeNo: 'pay_http', times: 2, fault: { kind: 'http_error', operation: 'query' } });
    expect(created.status).toBe(201);
    expect(await created.json()).toMatchObject({ outTradeNo: 'pay_http', remaining: 2, fault: { kind: 'http_error', httpStatus: 502 } });
    expect((await post('/__sim/faults', { fault: { kind: 'nope' } })).status).toBe(400);
    expect(await (await fetch(`${base}/__sim/faults`)).json()).toMatchObject({ faults: [{ outTradeNo: 'pay_http' }] });
    expect(await (await fetch(`${base}/__sim/faults`, { method: 'DELETE' })).json()).toEqual({ cleared: 1 });

    const keys = newMerchantKeys();
    const registered = await post('/__sim/merchants', { mchId: '1900000110', apiV3Key: 'a'.repeat(32), merchantSerialNo: keys.serialNo, merchantPublicKeyPem: keys.publicKeyPem });
    expect(registered.status).toBe(201);
    expect((await post('/__sim/merchants', { mchId: '1900000110', apiV3Key: 'short' })).status).toBe(400);
    expect(await (await fetch(`${base}/__sim/platform-key`)).json()).toMatchObject({ publicKeyId: harness.simulator.platformPublicKeyId });
  });
});

describe('notification retries and restarts', () => {
  it('retries on WeChat Pay’s schedule until HTTP 200 or 204, and gives up after the last attempt', async () => {
    harness.receiver.statusCode = 500;
    const order = await paidNativeOrder();
    for (let attempt = 1; attempt <= notificationAttemptsMax; attempt += 1) {
      expect((await harness.simulator.deliverDueNotifications()).attempted).toBe(1);
      // Just short of the next delay nothing is due; at the delay the next attempt is.
      const delayMs = (wechatpayRetryDelaysMs[attempt - 1] ?? 0) * timeScale;
      clock.advanceMs(delayMs - 1);
      if (attempt < notificationAttemptsMax) expect((await harness.simulator.deliverDueNotifications()).attempted).toBe(0);
      clock.advanceMs(1);
    }
    expect(harness.receiver.for(order.outTradeNo)).toHaveLength(notificationAttemptsMax);
    expect((await harness.simulator.deliverDueNotifications()).attempted).toBe(0);
  });

  it('stops at a 200 reply as at a 204, and resumes pending notifications after a restart with the same platform key', async () => {
    harness.receiver.statusCode = 503;
    const order = await paidNativeOrder();
    expect(await harness.simulator.deliverDueNotifications()).toMatchObject({ retrying: 1 });
    harness.receiver.statusCode = 200;

    const restarted = await createWechatpaySimulator({ pool: database.pool, clock, timeScale, logger: silentLogger });
    try {
      expect(restarted.platformPublicKeyId).toBe(harness.simulator.platformPublicKeyId);
      expect(restarted.platformPublicKeyPem).toBe(harness.simulator.platformPublicKeyPem);
      clock.advanceMs(wechatpayRetryDelaysMs[0]! * timeScale);
      expect(await restarted.deliverDueNotifications()).toMatchObject({ delivered: 1 });
    } finally {
      await restarted.close();
    }
    const received = harness.receiver.for(order.outTradeNo);
    expect(received).toHaveLength(2);
    expect(received[1]!.json.id).toBe(received[0]!.json.id);
    expect((await connector.verifyNotification(received[1]!)).verified).toBe(true);
  });
});
