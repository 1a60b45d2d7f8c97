import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { checkNotificationAmount, type CreatePaymentRequest, type PaymentNotificationEvent, type RefundNotificationEvent } from '../../src/channels/connector.js';
import { orderIdFor, signatureOf, type UnionpayConnector } from '../../src/channels/unionpay/index.js';
import { ManualClock } from '../../src/platform/clock.js';
import { newId } from '../../src/platform/ids.js';
import { money } from '../../src/platform/money.js';
import { createUnionpaySimulator, notificationAttemptsMax, unionpayRetryDelaysMs } from '../../src/simulators/unionpay/index.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { formOf, silentLogger, startUnionpayHarness, submitForm, type ReceivedNotification, type UnionpayHarness } from '../fixtures/unionpay/harness.js';

/**
 * Fen's UnionPay connector against the UnionPay simulator over real HTTP on
 * 127.0.0.1, on a database of its own. Time is a ManualClock and
 * notifications go out only when the test calls deliverDueNotifications(), so
 * nothing here waits on a timer except the one client timeout the timeout
 * fault needs.
 */

const timeScale = 0.001;
const certificates = path.join(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/unionpay/certificates');
let database: TestDatabase;
let clock: ManualClock;
let harness: UnionpayHarness;
let connector: UnionpayConnector;
let orderCounter = 0;

function newOrder(amount = 1234n, expiresInMs = 30 * 60_000): CreatePaymentRequest {
  orderCounter += 1;
  return {
    method: 'unionpay_web',
    // Fen's payment number, made at the simulated time: UnionPay's txnTime comes from it.
    outTradeNo: newId('payment', clock.now().getTime()),
    amount: money(amount, 'CNY'),
    subject: `测试订单 Test order ${orderCounter}`,
    expiresAt: new Date(clock.now().getTime() + expiresInMs),
  };
}

const orderIdOf = (fenNumber: string) => orderIdFor(fenNumber)!;
const newRefundNo = () => newId('refund', clock.now().getTime());

async function formFor(order: CreatePaymentRequest): Promise<{ action: string; fields: Record<string, string> }> {
  const created = await connector.createPayment(order);
  if (created.status !== 'pending' || created.action.kind !== 'form') throw new Error(`no form: ${JSON.stringify(created)}`);
  return formOf(created.action.html);
}

/** The payer's browser posts the form; the gateway answers 303 to the payer page. */
async function openPayerPage(order: CreatePaymentRequest): Promise<string> {
  const response = await submitForm(await formFor(order));
  expect(response.status).toBe(303);
  return new URL(response.headers.get('location')!, harness.simulator.baseUrl).toString();
}

async function press(payerPageUrl: string, button: 'pay' | 'cancel'): Promise<void> {
  const response = await fetch(`${payerPageUrl}/${button}`, { method: 'POST', redirect: 'manual' });
  expect(response.status).toBe(303);
  expect(response.headers.get('location')).toBe(new URL(payerPageUrl).pathname);
}

async function paidOrder(amount = 1234n): Promise<{ order: CreatePaymentRequest; queryId: string }> {
  const order = newOrder(amount);
  await press(await openPayerPage(order), 'pay');
  const queried = await connector.queryPayment({ outTradeNo: order.outTradeNo, expected: order.amount });
  if (queried.status !== 'succeeded' || !queried.facts.channelTradeNo) throw new Error(`not paid: ${JSON.stringify(queried.status)}`);
  return { order, queryId: queried.facts.channelTradeNo };
}

async function verifiedPayment(notification: ReceivedNotification): Promise<PaymentNotificationEvent> {
  const verification = await connector.verifyNotification(notification);
  if (!verification.verified || verification.event.kind !== 'payment') throw new Error(`not a verified payment: ${JSON.stringify(verification)}`);
  return verification.event;
}

async function verifiedRefund(notification: ReceivedNotification): Promise<RefundNotificationEvent> {
  const verification = await connector.verifyNotification(notification);
  if (!verification.verified || verification.event.kind !== 'refund') throw new Error(`not a verified refund: ${JSON.stringify(verification)}`);
  return verification.event;
}

beforeAll(async () => {
  database = await createTestDatabase({ poolSize: 8 });
  clock = new ManualClock('2026-01-15T02:00:00.000Z');
  harness = await startUnionpayHarness({ pool: database.pool, clock, timeScale });
  connector = harness.connector;
});

afterEach(async () => {
  await harness.simulator.clearFaults();
  harness.receiver.statusCode = 200;
  // Notifications a test left undelivered must not show up in the next one's delivery reports.
  await harness.simulator.deliverDueNotifications();
});

afterAll(async () => {
  await harness?.close();
  await database?.close();
});

describe('UnionPay web payment through the simulator', () => {
  it('creates a signed form, is paid on the payer page, notifies with a verified signature, and queries as succeeded', async () => {
    const order = newOrder();
    const form = await formFor(order);
    expect(form.action).toBe(harness.simulator.endpoints().frontTransUrl);
    expect(connector.frontTransUrl).toBe(form.action);
    expect(form.fields).toMatchObject({ version: '5.1.0', signMethod: '01', txnType: '01', txnSubType: '01', bizType: '000201', txnAmt: '1234', currencyCode: '156', certId: harness.merchant.certId });
    expect(form.fields.signature).toMatch(/^[A-Za-z0-9+/]+=*$/);
    // UnionPay knows nothing of the order until the payer's browser posts the form.
    const query = { outTradeNo: order.outTradeNo, expected: order.amount };
    expect(await connector.queryPayment(query)).toEqual({ status: 'not_found', channelCode: '34' });

    const pageUrl = await openPayerPage(order);
    const page = await (await fetch(pageUrl)).text();
    for (const text of ['¥12.34', order.subject, orderIdOf(order.outTradeNo), 'Pay 支付', 'Cancel 取消']) expect(page).toContain(text);
    expect(await connector.queryPayment(query)).toMatchObject({ status: 'pending', facts: { channelStatus: '05' } });

    await press(pageUrl, 'pay');
    expect(await harness.simulator.deliverDueNotifications()).toMatchObject({ attempted: 1, delivered: 1, requestsSent: 1 });
    const [notification] = harness.receiver.for(orderIdOf(order.outTradeNo));
    expect(notification!.form).toMatchObject({ txnType: '01', respCode: '00', txnAmt: '1234', merId: harness.accountConfig.merId, signMethod: '01' });
    const event = await verifiedPayment(notification!);
    expect(checkNotificationAmount(event, order.amount)).toMatchObject({
      status: 'succeeded',
      facts: { outTradeNo: order.outTradeNo, channelTradeNo: notification!.form.queryId, amount: money(1234n, 'CNY'), paidAt: clock.now() },
    });
    expect(connector.acknowledgeNotification('accepted')).toEqual({ statusCode: 200, contentType: 'text/plain; charset=utf-8', body: 'ok' });
    expect(connector.acknowledgeNotification('rejected').statusCode).not.toBe(200);
    expect(await connector.queryPayment(query)).toMatchObject({ status: 'succeeded', facts: { channelTradeNo: notification!.form.queryId, paidAt: clock.now() } });
  });

  it('sends the payer back to frontUrl with UnionPay’s signed front notification', async () => {
    const order = newOrder(990n);
    const pageUrl = await openPayerPage(order);
    await press(pageUrl, 'pay');
    const paidPage = await (await fetch(pageUrl)).text();
    expect(paidPage).toContain('交易成功');
    const returnForm = formOf(paidPage.slice(paidPage.indexOf('<form id="front-notification"')));
    expect(returnForm.action).toBe(harness.receiver.frontUrl);
    const posted = await fetch(returnForm.action, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(returnForm.fields).toString() });
    expect(posted.status).toBe(200);
    const received = harness.receiver.received.at(-1)!;
    expect(received.path).toBe('/pay/return');
    expect(checkNotificationAmount(await verifiedPayment(received), order.amount)).toMatchObject({ status: 'succeeded' });
  });

  it('takes the same form twice as one order, and another amount under the same number as a duplicate (12)', async () => {
    const order = newOrder();
    const form = await formFor(order);
    const first = await submitForm(form);
    const again = await submitForm(form);
    expect(again.headers.get('location')).toBe(first.headers.get('location'));
    const otherAmount = await formFor({ ...order, amount: money(1n, 'CNY') });
    const refused = await submitForm(otherAmount);
    expect(refused.status).toBe(400);
    expect(await refused.text()).toContain('12 重复交易');
  });
});

describe('refunds', () => {
  it('refunds partially twice, repeats safely, refuses more than is left, and answers refund queries and notifications', async () => {
    const { order, queryId } = await paidOrder(1000n);
    await harness.simulator.deliverDueNotifications();
    const refund = (outRefundNo: string, amount: bigint, channelTradeNo: string | undefined = queryId) =>
      connector.refund({ outTradeNo: order.outTradeNo, ...(channelTradeNo ? { channelTradeNo } : {}), outRefundNo, refundAmount: money(amount, 'CNY'), paymentAmount: order.amount });
    const [first, second, third, tooMuch] = [newRefundNo(), newRefundNo(), newRefundNo(), newRefundNo()];

    // respCode 00 means accepted: pending until the notification or a query.
    const accepted = await refund(first, 200n);
    expect(accepted).toMatchObject({ status: 'pending', facts: { outRefundNo: first, channelTradeNo: queryId, amount: money(200n, 'CNY') } });
    expect(await refund(second, 300n)).toMatchObject({ status: 'pending', facts: { amount: money(300n, 'CNY') } });
    // The same refund number again is the same refund.
    const repeated = await refund(first, 200n);
    expect(repeated).toMatchObject({ status: 'pending' });
    if (accepted.status === 'pending' && repeated.status === 'pending') expect(repeated.facts?.channelRefundNo).toBe(accepted.facts?.channelRefundNo);
    expect(await refund(tooMuch, 600n)).toMatchObject({ status: 'failed', reason: 'rejected', channelCode: '36' });
    // Without UnionPay's queryId at hand the connector finds it with a query first.
    expect(await refund(third, 100n, undefined)).toMatchObject({ status: 'pending', facts: { channelTradeNo: queryId } });

    const queryRefund = (outRefundNo: string, amount: bigint) => connector.queryRefund({ outTradeNo: order.outTradeNo, outRefundNo, expected: money(amount, 'CNY') });
    expect(await queryRefund(first, 200n)).toMatchObject({ status: 'succeeded', facts: { outRefundNo: first, amount: money(200n, 'CNY'), channelStatus: '00', refundedAt: clock.now() } });
    expect(await queryRefund(second, 300n)).toMatchObject({ status: 'succeeded' });
    expect(await queryRefund(tooMuch, 600n)).toEqual({ status: 'not_found', channelCode: '34' });
    expect(await queryRefund(second, 301n)).toMatchObject({ status: 'amount_mismatch' });
    expect((await harness.simulator.findTransaction(orderIdOf(order.outTradeNo)))?.refundedFen).toBe(600n);

    expect(await harness.simulator.deliverDueNotifications()).toMatchObject({ delivered: 3 });
    for (const [outRefundNo, amount] of [[first, 200n], [second, 300n], [third, 100n]] as const) {
      const received = harness.receiver.for(orderIdOf(outRefundNo));
      expect(received).toHaveLength(1);
      const event = await verifiedRefund(received[0]!);
      expect(event.facts).toMatchObject({ outTradeNo: order.outTradeNo, outRefundNo, channelTradeNo: queryId });
      expect(checkNotificationAmount(event, money(amount, 'CNY'))).toMatchObject({ status: 'succeeded' });
    }
  });

  it('refunds the rest to the fen, and not one fen more', async () => {
    const { order, queryId } = await paidOrder(500n);
    const base = { outTradeNo: order.outTradeNo, channelTradeNo: queryId, paymentAmount: order.amount };
    expect(await connector.refund({ ...base, outRefundNo: newRefundNo(), refundAmount: money(499n, 'CNY') })).toMatchObject({ status: 'pending' });
    expect(await connector.refund({ ...base, outRefundNo: newRefundNo(), refundAmount: money(2n, 'CNY') })).toMatchObject({ status: 'failed', channelCode: '36' });
    expect(await connector.refund({ ...base, outRefundNo: newRefundNo(), refundAmount: money(1n, 'CNY') })).toMatchObject({ status: 'pending' });
  });

  it('refuses to refund an order that was never paid', async () => {
    const order = newOrder();
    await openPayerPage(order);
    const refunded = await connector.refund({ outTradeNo: order.outTradeNo, outRefundNo: newRefundNo(), refundAmount: money(100n, 'CNY'), paymentAmount: order.amount });
    expect(refunded).toMatchObject({ status: 'failed', reason: 'rejected', channelCode: 'payment_not_paid' });
  });
});

describe('closing, cancelling and expiry', () => {
  it('closes an order the payer never submitted as not_found, and cannot close an open or a paid one', async () => {
    const unsubmitted = newOrder();
    expect(await connector.closePayment({ outTradeNo: unsubmitted.outTradeNo })).toEqual({ status: 'not_found', channelCode: '34' });
    const open = newOrder();
    await openPayerPage(open);
    expect(await connector.closePayment({ outTradeNo: open.outTradeNo })).toMatchObject({ status: 'failed', reason: 'rejected', channelCode: '05' });
    const { order: paid } = await paidOrder();
    expect(await connector.closePayment({ outTradeNo: paid.outTradeNo })).toMatchObject({ status: 'failed', reason: 'rejected', channelCode: '00' });
  });

  it('fails the order when the payer presses Cancel; Pay afterwards changes nothing and nothing is notified', async () => {
    const order = newOrder();
    const pageUrl = await openPayerPage(order);
    await press(pageUrl, 'cancel');
    const query = { outTradeNo: order.outTradeNo, expected: order.amount };
    expect(await connector.queryPayment(query)).toMatchObject({ status: 'failed', reason: 'declined', facts: { channelStatus: '01' } });
    await press(pageUrl, 'pay');
    expect(await connector.queryPayment(query)).toMatchObject({ status: 'failed' });
    expect(await connector.closePayment({ outTradeNo: order.outTradeNo })).toEqual({ status: 'succeeded' });
    await harness.simulator.deliverDueNotifications();
    expect(harness.receiver.for(orderIdOf(order.outTradeNo))).toHaveLength(0);
  });

  it('refuses payment after payTimeout (the order’s expiry)', async () => {
    const order = newOrder(1234n, 5 * 60_000);
    const pageUrl = await openPayerPage(order);
    clock.advanceMs(5 * 60_000);
    await press(pageUrl, 'pay');
    expect(await connector.queryPayment({ outTradeNo: order.outTradeNo, expected: order.amount })).toMatchObject({ status: 'failed', facts: { channelStatus: '01' } });
    expect(await (await fetch(pageUrl)).text()).toContain('payTimeout');
  });
});

describe('signatures and certificates', () => {
  const fixturePem = (name: string) => readFileSync(path.join(certificates, `${name}.pem`), 'utf8');

  it('refuses requests signed with a certificate the simulator has not registered (11)', async () => {
    const stranger = harness.connectorWith({ signCertPem: fixturePem('other-signer'), signPrivateKeyPem: fixturePem('other-signer-key') });
    const { order, queryId } = await paidOrder();
    // A refused query says nothing about the order; a refused refund moved no money.
    expect(await stranger.queryPayment({ outTradeNo: order.outTradeNo, expected: order.amount })).toMatchObject({ status: 'unknown', reason: 'channel_error', channelCode: '11' });
    const refund = { outTradeNo: order.outTradeNo, channelTradeNo: queryId, outRefundNo: newRefundNo(), refundAmount: money(100n, 'CNY'), paymentAmount: order.amount };
    expect(await stranger.refund(refund)).toMatchObject({ status: 'failed', reason: 'rejected', channelCode: '11' });
    const created = await stranger.createPayment(newOrder());
    if (created.status !== 'pending' || created.action.kind !== 'form') throw new Error('no form');
    const refused = await submitForm(formOf(created.action.html));
    expect(refused.status).toBe(400);
    expect(await refused.text()).toContain('11 验证签名失败');
  });

  it('refuses a form whose amount was changed on the way', async () => {
    const form = await formFor(newOrder());
    const refused = await submitForm({ ...form, fields: { ...form.fields, txnAmt: '1' } });
    expect(refused.status).toBe(400);
    expect(await refused.text()).toContain('11 验证签名失败');
  });

  it('treats an answer whose certificate does not chain to the configured root as unknown (unverifiable)', async () => {
    const { order } = await paidOrder();
    const misconfigured = harness.connectorWith({ rootCertPem: fixturePem('root'), middleCertPem: fixturePem('middle') });
    expect(await misconfigured.queryPayment({ outTradeNo: order.outTradeNo, expected: order.amount })).toMatchObject({ status: 'unknown', reason: 'unverifiable' });
  });

  it('does not trust a notification with a changed field, or one signed under another CA', async () => {
    const { order } = await paidOrder();
    await harness.simulator.deliverDueNotifications();
    const genuine = harness.receiver.for(orderIdOf(order.outTradeNo))[0]!;
    expect((await connector.verifyNotification(genuine)).verified).toBe(true);

    const tampered = new URLSearchParams({ ...genuine.form, txnAmt: '1' }).toString();
    expect(await connector.verifyNotification({ headers: genuine.headers, rawBody: tampered })).toMatchObject({ verified: false, reason: 'invalid_signature' });

    // A forger with a CA of their own (made by openssl), whose signing certificate carries UnionPay's very name.
    const forged: Record<string, string> = { ...genuine.form, signPubKeyCert: fixturePem('other-signer') };
    forged.signature = signatureOf(forged, createPrivateKey(fixturePem('other-signer-key')));
    expect(await connector.verifyNotification({ headers: {}, rawBody: new URLSearchParams(forged).toString(), form: forged })).toMatchObject({
      verified: false,
      reason: 'invalid_signature',
      message: 'signPubKeyCert was not issued by the configured middle certificate',
    });
  });

  it('registers a merchant certificate over HTTP and tells Fen its CA and URLs', async () => {
    const base = harness.simulator.baseUrl;
    const registered = await fetch(`${base}/__sim/merchants`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ merId: '777290058110099', certificatePem: fixturePem('other-signer') }) });
    expect(registered.status).toBe(201);
    expect(await registered.json()).toEqual({ merId: '777290058110099', certId: '362918071453599138473189796177232588090336094566' });
    const invalid = await fetch(`${base}/__sim/merchants`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ merId: '1', certificatePem: 'x' }) });
    expect(invalid.status).toBe(400);
    const issued = await fetch(`${base}/__sim/merchants/777290058110098/certificate`, { method: 'POST' });
    expect(await issued.json()).toMatchObject({ merId: '777290058110098', certId: expect.stringMatching(/^\d+$/), privateKeyPem: expect.stringContaining('PRIVATE KEY') });
    expect(await (await fetch(`${base}/__sim/ca`)).json()).toEqual(harness.simulator.endpoints());
  });
});

describe('fault switches', () => {
  it('answers 5xx on one endpoint: unknown, and clearing the switch restores it', async () => {
    const { order } = await paidOrder();
    const query = { outTradeNo: order.outTradeNo, expected: order.amount };
    const fault = await harness.simulator.setFault({ orderId: orderIdOf(order.outTradeNo), fault: { kind: 'gateway_error', endpoint: 'queryTrans', httpStatus: 503 } });
    expect(await connector.queryPayment(query)).toMatchObject({ status: 'unknown', reason: 'http_status', channelCode: 'HTTP 503' });
    await harness.simulator.clearFaults({ id: fault.id });
    expect(await connector.queryPayment(query)).toMatchObject({ status: 'succeeded' });
  });

  it('holds a refund answer past the client timeout: unknown, while the refund itself happened once', async () => {
    const { order, queryId } = await paidOrder(800n);
    const refund = { outTradeNo: order.outTradeNo, channelTradeNo: queryId, outRefundNo: newRefundNo(), refundAmount: money(100n, 'CNY'), paymentAmount: order.amount };
    await harness.simulator.setFault({ orderId: orderIdOf(refund.outRefundNo), times: 1, fault: { kind: 'gateway_timeout', endpoint: 'backTransReq', holdMs: 5_000 } });
    const impatient = harness.connectorWith({ timeoutMs: 300 });
    expect(await impatient.refund(refund)).toMatchObject({ status: 'unknown', reason: 'timeout' });
    // Retried with the same number it is the same refund, and the money moved once.
    expect(await connector.refund(refund)).toMatchObject({ status: 'pending', facts: { amount: money(100n, 'CNY') } });
    expect((await harness.simulator.findTransaction(orderIdOf(order.outTradeNo)))?.refundedFen).toBe(100n);
  });

  it('answers 03, 04 or 05: unknown, never a failure, whether or not the work was done', async () => {
    const { order, queryId } = await paidOrder(800n);
    const query = { outTradeNo: order.outTradeNo, expected: order.amount };
    await harness.simulator.setFault({ orderId: orderIdOf(order.outTradeNo), times: 1, fault: { kind: 'resp_code', endpoint: 'queryTrans', respCode: '03' } });
    expect(await connector.queryPayment(query)).toMatchObject({ status: 'unknown', reason: 'channel_error', channelCode: '03' });
    const refund = { outTradeNo: order.outTradeNo, channelTradeNo: queryId, outRefundNo: newRefundNo(), refundAmount: money(300n, 'CNY'), paymentAmount: order.amount };
    await harness.simulator.setFault({ orderId: orderIdOf(refund.outRefundNo), times: 1, fault: { kind: 'resp_code', endpoint: 'backTransReq', respCode: '05', performed: true } });
    expect(await connector.refund(refund)).toMatchObject({ status: 'unknown', channelCode: '05' });
    expect(await connector.queryRefund({ outTradeNo: order.outTradeNo, outRefundNo: refund.outRefundNo, expected: refund.refundAmount })).toMatchObject({ status: 'succeeded' });
  });

  it('reports a different amount in query answers and notifications: amount_mismatch, never success', async () => {
    const order = newOrder();
    const pageUrl = await openPayerPage(order);
    await harness.simulator.setFault({ orderId: orderIdOf(order.outTradeNo), fault: { kind: 'wrong_amount', txnAmt: '1', where: 'both' } });
    await press(pageUrl, 'pay');
    expect(await connector.queryPayment({ outTradeNo: order.outTradeNo, expected: order.amount })).toMatchObject({
      status: 'amount_mismatch',
      expected: order.amount,
      reported: money(1n, 'CNY'),
      reportedStatus: 'succeeded',
    });
    await harness.simulator.deliverDueNotifications();
    const event = await verifiedPayment(harness.receiver.for(orderIdOf(order.outTradeNo))[0]!);
    expect(event.facts.amount).toEqual(money(1n, 'CNY'));
    expect(checkNotificationAmount(event, order.amount)).toMatchObject({ status: 'amount_mismatch', reportedStatus: 'succeeded' });
  });

  it('duplicates a notification: N identical copies at once, each genuine', async () => {
    const order = newOrder();
    await harness.simulator.setFault({ orderId: orderIdOf(order.outTradeNo), fault: { kind: 'notification_duplicate', copies: 3 } });
    await press(await openPayerPage(order), 'pay');
    expect(await harness.simulator.deliverDueNotifications()).toMatchObject({ delivered: 1, requestsSent: 3 });
    const copies = harness.receiver.for(orderIdOf(order.outTradeNo));
    expect(copies).toHaveLength(3);
    expect(new Set(copies.map((copy) => copy.rawBody)).size).toBe(1);
    for (const copy of copies) expect((await verifiedPayment(copy)).notificationId).toBe(copy.form.queryId);
  });

  it('drops notifications until the switch is cleared, then the retry delivers', async () => {
    const order = newOrder();
    await harness.simulator.setFault({ orderId: orderIdOf(order.outTradeNo), fault: { kind: 'notification_drop' } });
    await press(await openPayerPage(order), 'pay');
    expect(await harness.simulator.deliverDueNotifications()).toMatchObject({ attempted: 1, delivered: 0, retrying: 1, requestsSent: 0 });
    clock.advanceMs(unionpayRetryDelaysMs[0]! * timeScale);
    expect(await harness.simulator.deliverDueNotifications()).toMatchObject({ delivered: 0, retrying: 1 });
    expect(harness.receiver.for(orderIdOf(order.outTradeNo))).toHaveLength(0);

    await harness.simulator.clearFaults({ orderId: orderIdOf(order.outTradeNo) });
    expect(await harness.simulator.deliverDueNotifications()).toMatchObject({ attempted: 0 });
    clock.advanceMs(unionpayRetryDelaysMs[1]! * timeScale);
    expect(await harness.simulator.deliverDueNotifications()).toMatchObject({ delivered: 1 });
    expect(harness.receiver.for(orderIdOf(order.outTradeNo))).toHaveLength(1);
  });

  it('delays the first notification by the given time', async () => {
    const order = newOrder();
    await harness.simulator.setFault({ orderId: orderIdOf(order.outTradeNo), fault: { kind: 'notification_delay', delayMs: 60_000 } });
    await press(await openPayerPage(order), 'pay');
    expect(await harness.simulator.deliverDueNotifications()).toMatchObject({ attempted: 0 });
    clock.advanceMs(59_999);
    expect(await harness.simulator.deliverDueNotifications()).toMatchObject({ attempted: 0 });
    clock.advanceMs(1);
    expect(await harness.simulator.deliverDueNotifications()).toMatchObject({ delivered: 1 });
  });

  it('reorders: a refund’s notification arrives before the payment it refunds', async () => {
    const order = newOrder();
    await harness.simulator.setFault({ orderId: orderIdOf(order.outTradeNo), fault: { kind: 'notification_reorder' } });
    await press(await openPayerPage(order), 'pay');
    expect(await harness.simulator.deliverDueNotifications()).toMatchObject({ attempted: 0 });
    const queried = await connector.queryPayment({ outTradeNo: order.outTradeNo, expected: order.amount });
    if (queried.status !== 'succeeded') throw new Error('not paid');
    const outRefundNo = newRefundNo();
    await connector.refund({ outTradeNo: order.outTradeNo, channelTradeNo: queried.facts.channelTradeNo!, outRefundNo, refundAmount: money(34n, 'CNY'), paymentAmount: order.amount });
    expect(await harness.simulator.deliverDueNotifications()).toMatchObject({ delivered: 2 });
    const sequence = harness.receiver.received.filter((notification) => [orderIdOf(order.outTradeNo), orderIdOf(outRefundNo)].includes(notification.form.orderId ?? ''));
    expect(sequence.map((notification) => notification.form.txnType)).toEqual(['04', '01']);
    expect(checkNotificationAmount(await verifiedRefund(sequence[0]!), money(34n, 'CNY'))).toMatchObject({ status: 'succeeded' });
    expect(checkNotificationAmount(await verifiedPayment(sequence[1]!), order.amount)).toMatchObject({ status: 'succeeded' });
  });

  it('reports a gateway nobody answers at as unknown (network), never as a failure', async () => {
    const unreachable = harness.connectorWith({ singleQueryUrl: 'http://127.0.0.1:1/gateway/api/queryTrans.do' });
    expect(await unreachable.queryPayment({ outTradeNo: newOrder().outTradeNo, expected: money(100n, 'CNY') })).toMatchObject({ status: 'unknown', reason: 'network' });
  });

  it('can be set, listed and cleared over HTTP', async () => {
    const base = harness.simulator.baseUrl;
    const created = await fetch(`${base}/__sim/faults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ orderId: 'pay01kezp33800000000000000077', times: 2, fault: { kind: 'gateway_error', endpoint: 'queryTrans' } }),
    });
    expect(created.status).toBe(201);
    expect(await created.json()).toMatchObject({ orderId: 'pay01kezp33800000000000000077', remaining: 2, fault: { kind: 'gateway_error', httpStatus: 502 } });
    const invalid = await fetch(`${base}/__sim/faults`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ fault: { kind: 'nope' } }) });
    expect(invalid.status).toBe(400);
    expect(await (await fetch(`${base}/__sim/faults`)).json()).toMatchObject({ faults: [{ orderId: 'pay01kezp33800000000000000077' }] });
    expect(await (await fetch(`${base}/__sim/faults`, { method: 'DELETE' })).json()).toEqual({ cleared: 1 });
  });
});

describe('notification retries and restarts', () => {
  it('retries until HTTP 200 on the schedule, and gives up after the last attempt', async () => {
    harness.receiver.statusCode = 500;
    const { order } = await paidOrder();
    for (let attempt = 1; attempt <= notificationAttemptsMax; attempt += 1) {
      expect((await harness.simulator.deliverDueNotifications()).attempted).toBe(1);
      // Just short of the next delay nothing is due; at the delay the next attempt is.
      const delayMs = (unionpayRetryDelaysMs[attempt - 1] ?? 0) * timeScale;
      clock.advanceMs(delayMs - 1);
      if (attempt < notificationAttemptsMax) expect((await harness.simulator.deliverDueNotifications()).attempted).toBe(0);
      clock.advanceMs(1);
    }
    const received = harness.receiver.for(orderIdOf(order.outTradeNo));
    expect(received).toHaveLength(notificationAttemptsMax);
    expect(new Set(received.map((notification) => notification.rawBody)).size).toBe(1);
    expect((await harness.simulator.deliverDueNotifications()).attempted).toBe(0);
  });

  it('resumes pending notifications after a restart, with the same certificate authority', async () => {
    harness.receiver.statusCode = 503;
    const { order } = await paidOrder();
    expect(await harness.simulator.deliverDueNotifications()).toMatchObject({ retrying: 1 });
    harness.receiver.statusCode = 200;

    const restarted = await createUnionpaySimulator({ pool: database.pool, clock, timeScale, logger: silentLogger });
    try {
      expect(restarted.authority).toEqual(harness.simulator.authority);
      clock.advanceMs(unionpayRetryDelaysMs[0]! * timeScale);
      expect(await restarted.deliverDueNotifications()).toMatchObject({ delivered: 1 });
    } finally {
      await restarted.close();
    }
    const received = harness.receiver.for(orderIdOf(order.outTradeNo));
    expect(received).toHaveLength(2);
    expect((await connector.verifyNotification(received[1]!)).verified).toBe(true);
  });
});
