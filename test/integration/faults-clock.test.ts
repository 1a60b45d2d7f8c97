import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FenApiError, FenClient } from '../../sdk/index.js';
import { jobHandlers } from '../../src/main/jobs.js';
import { deliverDueEvents } from '../../src/notify/index.js';
import type { PaymentView, RefundView } from '../../src/payments/index.js';
import { startFaultHarness, type FaultHarness } from '../chaos/helpers/fault-harness.js';
import { runQueuedJobs } from '../helpers/jobs.js';

/**
 * The clock jumping forward and back (an NTP correction, a VM resumed, a
 * database on another machine whose clock disagrees). Time moves only by the
 * ManualClock, never by sleeping. Whatever the jumps, a payment is booked
 * once, an order ends closed or paid, a refund ends, a webhook arrives with one
 * body, and the books balance; a jump may delay work, never lose it.
 */
const minutes = (count: number) => count * 60;

describe('the clock jumping forward and back', () => {
  let harness: FaultHarness;
  beforeAll(async () => {
    harness = await startFaultHarness();
  });
  afterAll(async () => harness.close());

  const clock = () => harness.context.clock;
  const create = (outTradeNo: string, amount = 6600) =>
    harness.client.request<PaymentView>('POST', '/v1/payments', { out_trade_no: outTradeNo, amount, currency: 'CNY', subject: 'Clock oolong', method: 'alipay_qr' }, { idempotencyKey: `clock-${outTradeNo}` });
  const read = (id: string) => harness.client.request<PaymentView>('GET', `/v1/payments/${id}`);

  it('books, notifies and refunds once a payment paid after the clock went back an hour', async () => {
    const payment = await create('clock-back-1');
    clock().advanceSeconds(-minutes(60));
    await harness.payerPresses(payment, 'pay');
    await harness.deliverAll();
    const paid = await read(payment.id);
    expect(paid.status).toBe('succeeded');
    expect(await harness.capturesOf(payment.id)).toBe(1);
    const refund = await harness.client.request<RefundView>('POST', `/v1/payments/${payment.id}/refunds`, { amount: 1600, out_refund_no: 'clock-back-1-r' });
    expect(refund.status).toBe('succeeded');
    await deliverDueEvents(harness.fen);
    expect(harness.receiver.ofType('payment.succeeded').filter((item) => item.parsed.data.id === payment.id)).toHaveLength(1);
    expect(harness.receiver.ofType('refund.succeeded').filter((item) => item.parsed.data.id === refund.id)).toHaveLength(1);
    // Back to the time it was, and past the order's expiry: the expiry job finds a paid order and leaves it be.
    clock().advanceSeconds(minutes(60 + 31));
    await runQueuedJobs(harness.fen, { tasks: ['payments.expire'] });
    expect(await read(payment.id)).toMatchObject({ status: 'succeeded', refunded_amount: 1600 });
    expect(await harness.ledgerProblems()).toEqual([]);
  });

  it('closes an order at the channel when the clock leaps past its expiry while the payer is on the page', async () => {
    const payment = await create('clock-leap-1');
    // The payer scans (opens the page) but has not pressed Pay when the clock leaps two hours.
    await fetch(payment.qr_code ?? '', { redirect: 'follow' });
    clock().advanceSeconds(minutes(120));
    await runQueuedJobs(harness.fen, { tasks: ['payments.expire'] });
    expect((await read(payment.id)).status).toBe('closed');
    await expect(harness.payerPresses(payment, 'pay')).rejects.toThrow(/no pay button/);
    await harness.deliverAll();
    expect((await read(payment.id)).status).toBe('closed');
    expect(await harness.capturesOf(payment.id)).toBe(0);
    expect(await harness.context.db.selectFrom('payment_exceptions').select('id').where('payment_id', '=', payment.id).execute()).toEqual([]);
  });

  it('leaves an order whose expiry job ran under a clock that had gone back to the sweep, which closes it', async () => {
    const payment = await create('clock-early-1');
    const expiresAt = new Date(payment.expires_at).getTime();
    // The queue (by the database's clock) starts the expiry job while Fen's clock reads ten minutes earlier.
    clock().set(new Date(expiresAt - minutes(10) * 1000));
    await jobHandlers(harness.fen)['payments.expire']?.({ payment_id: payment.id }, { id: 'early', attempts: 1 });
    expect((await read(payment.id)).status).toBe('paying');
    // The job is spent; the minute sweep, once Fen's clock passes the expiry, is what closes the order.
    clock().set(new Date(expiresAt + 1000));
    await harness.sweep();
    expect((await read(payment.id)).status).toBe('closed');
  });

  it('keeps a failed webhook due across a jump back and delivers it once, with one body, when the clock catches up', async () => {
    harness.receiver.respondWith(503);
    const payment = await create('clock-hook-1');
    await harness.payerPresses(payment, 'pay');
    await harness.deliverAll();
    const event = await harness.context.db.selectFrom('events').selectAll().where('object_id', '=', payment.id).executeTakeFirstOrThrow();
    expect(event.attempts).toBe(1);
    clock().advanceSeconds(-minutes(60));
    await deliverDueEvents(harness.fen);
    expect((await harness.context.db.selectFrom('events').select('attempts').where('id', '=', event.id).executeTakeFirstOrThrow()).attempts).toBe(1);
    harness.receiver.respondWith(200);
    clock().advanceSeconds(minutes(60) + 16);
    await deliverDueEvents(harness.fen);
    const delivered = await harness.context.db.selectFrom('events').select(['delivery_status', 'attempts']).where('id', '=', event.id).executeTakeFirstOrThrow();
    expect(delivered).toEqual({ delivery_status: 'delivered', attempts: 2 });
    const copies = harness.receiver.received.filter((item) => item.eventId === event.id);
    expect(copies.map((item) => item.body)).toEqual([event.body]);
  });

  it('replays the first answer to a key after the clock goes back, and refuses a request signed by a clock far behind', async () => {
    const first = await harness.client.requestWithResponse<PaymentView>('POST', '/v1/payments', { out_trade_no: 'clock-key-1', amount: 700, currency: 'CNY', subject: 'Clock oolong', method: 'alipay_qr' }, { idempotencyKey: 'clock-key-1' });
    clock().advanceSeconds(-minutes(120));
    const replay = await harness.client.requestWithResponse<PaymentView>('POST', '/v1/payments', { out_trade_no: 'clock-key-1', amount: 700, currency: 'CNY', subject: 'Clock oolong', method: 'alipay_qr' }, { idempotencyKey: 'clock-key-1' });
    expect(replay.headers.get('idempotency-replayed')).toBe('true');
    expect(replay.data).toEqual(first.data);
    clock().advanceSeconds(minutes(120));
    // A client whose clock is ten minutes behind Fen's: a clear 401, and nothing created.
    const lagging = new FenClient({ baseUrl: harness.fenUrl, appId: harness.merchantApp.id, appSecret: harness.merchantApp.app_secret, now: () => new Date(clock().now().getTime() - minutes(10) * 1000) });
    const refused = await lagging.request('POST', '/v1/payments', { out_trade_no: 'clock-lag-1', amount: 700, currency: 'CNY', subject: 'Clock oolong', method: 'alipay_qr' }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(FenApiError);
    expect(refused).toMatchObject({ status: 401, code: 'timestamp_out_of_window' });
    expect(await harness.context.db.selectFrom('payments').select('id').where('out_trade_no', '=', 'clock-lag-1').execute()).toEqual([]);
  });

  it('ends with nothing open, nothing reserved, nothing claimed, each payment booked at most once, and balanced books', async () => {
    clock().advanceSeconds(24 * 3600);
    for (let pass = 0; pass < 5; pass += 1) await harness.sweep();
    const db = harness.context.db;
    expect(await db.selectFrom('payments').select(['id', 'status']).where('status', 'in', ['created', 'paying']).execute()).toEqual([]);
    expect(await db.selectFrom('refunds').select('id').where('status', '=', 'processing').execute()).toEqual([]);
    expect(await db.selectFrom('payments').select('id').where('refunding_amount', '<>', 0n).execute()).toEqual([]);
    expect(await db.selectFrom('idempotency_keys').select('key').where('state', '=', 'in_progress').execute()).toEqual([]);
    expect(await db.selectFrom('events').select('id').where('delivery_status', '=', 'pending').execute()).toEqual([]);
    const captures = await sql<{ reference_id: string; count: number }>`SELECT reference_id, count(*)::int AS count FROM journal_entries WHERE kind = 'payment_captured' GROUP BY reference_id HAVING count(*) > 1`.execute(db);
    expect(captures.rows).toEqual([]);
    expect(await harness.ledgerProblems()).toEqual([]);
  });
});
