import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FenApiError } from '../../sdk/index.js';
import { checkLedger, getBalanceByCode } from '../../src/ledger/index.js';
import { deliverDueEvents, webhookRetryDelaysSeconds } from '../../src/notify/index.js';
import type { PaymentView, RefundView } from '../../src/payments/index.js';
import { queuedTasks, runQueuedJobs } from '../helpers/jobs.js';
import { startPaymentsHarness, type PaymentsHarness } from '../helpers/payments-harness.js';

/**
 * Every fault of the payments issue, each ending with the right state, exactly
 * one set of postings per payment and a clean ledger. Time moves by the clock,
 * never by sleeping.
 */
describe('payments under faults (Alipay simulator)', () => {
  let harness: PaymentsHarness;
  beforeAll(async () => {
    harness = await startPaymentsHarness();
  });
  afterAll(async () => harness.close());

  const minutes = (count: number) => harness.context.clock.advanceSeconds(count * 60);
  const create = (amount = 8800, method = 'alipay_qr') =>
    harness.client.request<PaymentView>('POST', '/v1/payments', { out_trade_no: `order-${Math.random().toString(36).slice(2)}`, amount, currency: 'CNY', subject: 'Oolong tea', method });
  const read = (id: string) => harness.client.request<PaymentView>('GET', `/v1/payments/${id}`);
  const capturesOf = async (paymentId: string) =>
    Number((await sql<{ count: string }>`SELECT count(*)::text AS count FROM journal_entries WHERE reference_id = ${paymentId} AND kind = 'payment_captured'`.execute(harness.context.db)).rows[0]?.count);
  const eventsOf = async (objectId: string) => harness.context.db.selectFrom('events').select(['id', 'type', 'body']).where('object_id', '=', objectId).execute();
  const expectLedgerClean = async () => expect((await checkLedger(harness.context.db)).problems).toEqual([]);

  it('applies ten concurrent duplicate notifications once', async () => {
    const payment = await create();
    await harness.simulator.setFault({ outTradeNo: payment.id, fault: { kind: 'notification_duplicate', copies: 10 } });
    await harness.payerPresses(payment, 'pay');
    await harness.deliverAll();
    expect((await read(payment.id)).status).toBe('succeeded');
    expect(await capturesOf(payment.id)).toBe(1);
    expect((await eventsOf(payment.id)).map((event) => event.type)).toEqual(['payment.succeeded']);
    await expectLedgerClean();
  });

  it('finds a payment whose notifications were all dropped by querying it', async () => {
    const payment = await create();
    await harness.simulator.setFault({ outTradeNo: payment.id, fault: { kind: 'notification_drop' } });
    await harness.payerPresses(payment, 'pay');
    await harness.deliverAll();
    expect((await read(payment.id)).status).toBe('paying');
    minutes(11);
    await harness.sweep();
    expect((await read(payment.id)).status).toBe('succeeded');
    expect(await capturesOf(payment.id)).toBe(1);
    await expectLedgerClean();
  });

  it('keeps a succeeded payment succeeded when a stale notification arrives after it', async () => {
    const payment = await create();
    await harness.simulator.setFault({ outTradeNo: payment.id, fault: { kind: 'notification_reorder' } });
    await harness.payerPresses(payment, 'pay');
    for (let round = 0; round < 3; round += 1) await harness.deliverAll();
    expect((await read(payment.id)).status).toBe('succeeded');
    expect(await capturesOf(payment.id)).toBe(1);
  });

  it('rejects a forged notification, raises an alert, and settles the order only by querying', async () => {
    const payment = await create();
    await harness.simulator.setFault({ outTradeNo: payment.id, fault: { kind: 'notification_drop' } });
    await harness.payerPresses(payment, 'pay');
    await harness.deliverAll();
    const forged = new URLSearchParams({
      notify_type: 'trade_status_sync',
      notify_id: 'forged-1',
      notify_time: '2026-01-15 10:00:00',
      app_id: String(harness.account.settings.app_id),
      charset: 'utf-8',
      version: '1.0',
      sign_type: 'RSA2',
      trade_no: '2026011522001400000000000001',
      out_trade_no: payment.id,
      trade_status: 'TRADE_SUCCESS',
      total_amount: '88.00',
      gmt_payment: '2026-01-15 10:00:00',
      sign: Buffer.from('not a signature').toString('base64'),
    });
    const answer = await fetch(`${harness.fenUrl}/channels/alipay/notify/${harness.account.id}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: forged.toString() });
    expect(await answer.text()).toBe('fail');
    expect((await read(payment.id)).status).toBe('paying');
    const alerts = await harness.context.db.selectFrom('alerts').selectAll().where('kind', '=', 'forged_notification').where('subject_id', '=', harness.account.id).execute();
    expect(alerts.length).toBeGreaterThan(0);
    harness.context.clock.advanceSeconds(6);
    await runQueuedJobs(harness.context, { tasks: ['payments.query'] });
    const settled = await read(payment.id);
    expect(settled.status).toBe('succeeded');
    expect(settled.channel_trade_no).not.toBe('2026011522001400000000000001');
    expect(await capturesOf(payment.id)).toBe(1);
    await expectLedgerClean();
  });

  it('turns a notification with another amount into an exception, never a success', async () => {
    const payment = await create(8800);
    await harness.simulator.setFault({ outTradeNo: payment.id, fault: { kind: 'wrong_amount', totalAmount: '0.01', where: 'notification' } });
    const suspenseBefore = (await getBalanceByCode(harness.context.db, 'suspense', 'CNY'))?.normalBalance ?? 0n;
    await harness.payerPresses(payment, 'pay');
    await harness.deliverAll();
    const after = await read(payment.id);
    expect(after.status).toBe('failed');
    expect(after.failure?.code).toBe('amount_mismatch');
    expect(await capturesOf(payment.id)).toBe(0);
    const exceptions = await harness.context.db.selectFrom('payment_exceptions').selectAll().where('payment_id', '=', payment.id).execute();
    expect(exceptions).toMatchObject([{ kind: 'amount_mismatch', amount: 1n, status: 'open' }]);
    expect((await getBalanceByCode(harness.context.db, 'suspense', 'CNY'))?.normalBalance).toBe(suspenseBefore + 1n);
    expect(await harness.context.db.selectFrom('alerts').select('id').where('kind', '=', 'amount_mismatch').where('subject_id', '=', payment.id).execute()).not.toHaveLength(0);
    await expectLedgerClean();
  });

  it('keeps a payment open when create answers 5xx, and closes it at expiry', async () => {
    await harness.simulator.setFault({ times: 1, fault: { kind: 'gateway_error', apiMethod: 'alipay.trade.precreate', httpStatus: 502 } });
    const payment = await create();
    expect(payment).toMatchObject({ status: 'paying', qr_code: null });
    expect((await queuedTasks(harness.context)).some((job) => job.key === `query:${payment.id}`)).toBe(true);
    harness.context.clock.advanceSeconds(6);
    await runQueuedJobs(harness.context, { tasks: ['payments.query'] });
    expect((await read(payment.id)).status).toBe('paying');
    minutes(31);
    await runQueuedJobs(harness.context, { tasks: ['payments.expire'] });
    expect((await read(payment.id)).status).toBe('closed');
    expect(await capturesOf(payment.id)).toBe(0);
  });

  it('keeps a payment open when create times out, then settles it by query', async () => {
    await harness.simulator.setFault({ times: 1, fault: { kind: 'gateway_timeout', apiMethod: 'alipay.trade.precreate', holdMs: 4000 } });
    const payment = await create();
    expect(payment.status).toBe('paying');
    harness.context.clock.advanceSeconds(6);
    await runQueuedJobs(harness.context, { tasks: ['payments.query'] });
    expect(['paying', 'succeeded']).toContain((await read(payment.id)).status);
    expect(await capturesOf(payment.id)).toBe(0);
  });

  it('asks again after a query answers 5xx', async () => {
    const payment = await create();
    await harness.simulator.setFault({ outTradeNo: payment.id, fault: { kind: 'notification_drop' } });
    await harness.payerPresses(payment, 'pay');
    await harness.deliverAll();
    await harness.simulator.setFault({ outTradeNo: payment.id, times: 1, fault: { kind: 'gateway_error', apiMethod: 'alipay.trade.query', httpStatus: 503 } });
    minutes(11);
    await harness.sweep();
    expect((await read(payment.id)).status).toBe('paying');
    harness.context.clock.advanceSeconds(30);
    await runQueuedJobs(harness.context, { tasks: ['payments.query'] });
    expect((await read(payment.id)).status).toBe('succeeded');
    expect(await capturesOf(payment.id)).toBe(1);
    await expectLedgerClean();
  });

  it('resolves refunds whose channel call failed or timed out by querying them', async () => {
    const payment = await create(10_000);
    await harness.payerPresses(payment, 'pay');
    await harness.deliverAll();
    await harness.simulator.setFault({ times: 1, fault: { kind: 'gateway_error', apiMethod: 'alipay.trade.refund', httpStatus: 500 } });
    const lost = await harness.client.request<RefundView>('POST', `/v1/payments/${payment.id}/refunds`, { amount: 2000, out_refund_no: 'fault-r1' });
    expect(lost.status).toBe('processing');
    await harness.simulator.setFault({ times: 1, fault: { kind: 'gateway_timeout', apiMethod: 'alipay.trade.refund', holdMs: 4000 } });
    const slow = await harness.client.request<RefundView>('POST', `/v1/payments/${payment.id}/refunds`, { amount: 3000, out_refund_no: 'fault-r2' });
    expect(slow.status).toBe('processing');
    harness.context.clock.advanceSeconds(6);
    await runQueuedJobs(harness.context, { tasks: ['refunds.query'] });
    const refunds = await Promise.all([lost, slow].map((refund) => harness.client.request<RefundView>('GET', `/v1/refunds/${refund.id}`)));
    // The 500 did nothing at the channel, so that refund never happened; the timed-out one did.
    expect(refunds.map((refund) => refund.status)).toEqual(['failed', 'succeeded']);
    expect(await read(payment.id)).toMatchObject({ refunded_amount: 3000, refund_state: 'partial' });
    await expectLedgerClean();
  });

  it('records money paid after close as an exception and refunds it from suspense', async () => {
    const payment = await create(6600);
    expect((await harness.client.request<PaymentView>('POST', `/v1/payments/${payment.id}/close`)).status).toBe('closed');
    await harness.payerPresses(payment, 'pay');
    await harness.deliverAll();
    expect((await read(payment.id)).status).toBe('closed');
    const [exception] = await harness.context.db.selectFrom('payment_exceptions').selectAll().where('payment_id', '=', payment.id).execute();
    expect(exception).toMatchObject({ kind: 'paid_after_close', amount: 6600n });
    await runQueuedJobs(harness.context, { tasks: ['payments.exception_refund'] });
    const refunded = await harness.context.db.selectFrom('payment_exceptions').select(['status']).where('payment_id', '=', payment.id).executeTakeFirstOrThrow();
    expect(refunded.status).toBe('refunded');
    expect(await capturesOf(payment.id)).toBe(0);
    await expectLedgerClean();
  });

  it('keeps delivering a webhook while the merchant endpoint fails for hours', async () => {
    const payment = await create();
    harness.receiver.respondWith(503);
    await harness.payerPresses(payment, 'pay');
    await harness.deliverAll();
    const [event] = await eventsOf(payment.id);
    expect(event).toBeDefined();
    for (const delaySeconds of webhookRetryDelaysSeconds.slice(0, 10)) {
      harness.context.clock.advanceSeconds(delaySeconds);
      await deliverDueEvents(harness.context);
    }
    const attempts = await harness.context.db.selectFrom('event_deliveries').selectAll().where('event_id', '=', event?.id ?? '').orderBy('attempt').execute();
    expect(attempts).toHaveLength(11);
    expect(attempts.every((attempt) => attempt.status_code === 503)).toBe(true);
    harness.receiver.respondWith(200);
    harness.context.clock.advanceSeconds(webhookRetryDelaysSeconds[10] ?? 0);
    await deliverDueEvents(harness.context);
    const delivered = await harness.context.db.selectFrom('events').selectAll().where('id', '=', event?.id ?? '').executeTakeFirstOrThrow();
    expect(delivered).toMatchObject({ delivery_status: 'delivered', attempts: 12 });
    const copies = harness.receiver.received.filter((item) => item.eventId === event?.id);
    expect(new Set(copies.map((item) => item.body)).size).toBe(1);
  });

  it('answers a refund of an unpaid payment with a stable error and changes nothing', async () => {
    const payment = await create();
    const error = await harness.client.request('POST', `/v1/payments/${payment.id}/refunds`, { amount: 100, out_refund_no: 'nope' }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(FenApiError);
    expect(error).toMatchObject({ status: 409, code: 'payment_not_refundable' });
    expect(await harness.context.db.selectFrom('refunds').select('id').where('payment_id', '=', payment.id).execute()).toEqual([]);
  });
});
