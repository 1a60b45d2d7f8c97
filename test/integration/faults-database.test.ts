import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FenApiError } from '../../sdk/index.js';
import type { PaymentView, RefundView } from '../../src/payments/index.js';
import { limits } from '../../src/platform/limits.js';
import { startFaultHarness, type FaultHarness } from '../chaos/helpers/fault-harness.js';

/**
 * The database misbehaving under a request (DESIGN.md §3.3: a change, its
 * postings and its jobs commit together or not at all). Each test stops a real
 * request inside its transaction — another session holds a lock the request
 * needs — and then takes the connection away: the backend is terminated
 * (pg_terminate_backend: the connection drops, the server stays up) or the
 * proxy in front of PostgreSQL cuts every connection and refuses new ones (the
 * server is gone). The request must fail with Fen's error body, leave nothing
 * half-applied, and its retry must take effect exactly once.
 */
interface Locker {
  release(): Promise<void>;
}

/** A session of the test's own that holds a lock until released (ROLLBACK). */
async function holdLock(databaseUrl: string, statement: string, values: unknown[] = []): Promise<Locker> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  await client.query('BEGIN');
  await client.query(statement, values);
  return {
    release: async () => {
      await client.query('ROLLBACK');
      await client.end();
    },
  };
}

async function outcomeOf<T>(request: Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> {
  return request.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
}

describe('a database connection lost in the middle of a request', () => {
  let harness: FaultHarness;
  beforeAll(async () => {
    harness = await startFaultHarness();
  });
  afterAll(async () => harness.close());

  const paymentBody = (outTradeNo: string, amount = 8800) => ({ out_trade_no: outTradeNo, amount, currency: 'CNY', subject: 'Fault oolong', method: 'alipay_qr' });
  const paidPayment = async (outTradeNo: string, amount = 10_000): Promise<PaymentView> => {
    const payment = await harness.client.request<PaymentView>('POST', '/v1/payments', paymentBody(outTradeNo, amount));
    await harness.payerPresses(payment, 'pay');
    await harness.deliverAll();
    const paid = await harness.client.request<PaymentView>('GET', `/v1/payments/${payment.id}`);
    expect(paid.status).toBe('succeeded');
    return paid;
  };
  const terminate = (pid: number) => harness.context.database.superuserQuery('SELECT pg_terminate_backend($1)', [pid]);

  it('fails a payment create with Fen’s error body when PostgreSQL vanishes mid-transaction, keeps nothing, and creates it once on retry', async () => {
    const db = harness.context.db;
    // add_job is the last statement of the create's transaction: the payment row is already written when it waits.
    const locker = await holdLock(harness.context.databaseUrl, 'LOCK TABLE graphile_worker._private_jobs IN SHARE MODE');
    const body = paymentBody('fault-create-1');
    const pending = outcomeOf(harness.client.requestWithResponse<PaymentView>('POST', '/v1/payments', body, { idempotencyKey: 'fault-create-key-1' }));
    await harness.waitForFenBackendWaitingOnLock();
    await harness.proxy.refuse();
    const failed = await pending;
    await locker.release();
    await harness.proxy.accept();

    expect(failed.ok).toBe(false);
    const error = failed.ok ? undefined : failed.error;
    expect(error).toBeInstanceOf(FenApiError);
    expect(error).toMatchObject({ status: 500, code: 'internal_error' });
    expect(await db.selectFrom('payments').select('id').where('out_trade_no', '=', 'fault-create-1').execute()).toEqual([]);
    // The key could not be released while the database was away: it stays claimed, but only for its lease.
    const claim = await db.selectFrom('idempotency_keys').selectAll().where('key', '=', 'fault-create-key-1').executeTakeFirstOrThrow();
    expect(claim.state).toBe('in_progress');
    expect(claim.lease_expires_at.getTime()).toBeLessThanOrEqual(harness.context.clock.now().getTime() + limits.idempotencyLeaseSeconds * 1000);

    harness.context.clock.advanceSeconds(limits.idempotencyLeaseSeconds + 1);
    const retried = await harness.client.requestWithResponse<PaymentView>('POST', '/v1/payments', body, { idempotencyKey: 'fault-create-key-1' });
    expect(retried.status).toBe(201);
    expect(retried.data.status).toBe('paying');
    const replayed = await harness.client.requestWithResponse<PaymentView>('POST', '/v1/payments', body, { idempotencyKey: 'fault-create-key-1' });
    expect(replayed.headers.get('idempotency-replayed')).toBe('true');
    expect(replayed.data).toEqual(retried.data);
    expect(await db.selectFrom('payments').select('id').where('out_trade_no', '=', 'fault-create-1').execute()).toHaveLength(1);
    expect(await db.selectFrom('idempotency_keys').select('state').where('key', '=', 'fault-create-key-1').executeTakeFirstOrThrow()).toEqual({ state: 'completed' });
  });

  it('applies a payment notification whose transaction lost its connection exactly once, when the channel sends it again', async () => {
    const db = harness.context.db;
    const payment = await harness.client.request<PaymentView>('POST', '/v1/payments', paymentBody('fault-notify-1'));
    // The success's transaction updates the payment, posts its entry and records its event before it queues the webhook.
    const locker = await holdLock(harness.context.databaseUrl, 'LOCK TABLE graphile_worker._private_jobs IN SHARE MODE');
    await harness.payerPresses(payment, 'pay');
    const delivering = harness.simulator.deliverDueNotifications();
    await terminate(await harness.waitForFenBackendWaitingOnLock());
    const report = await delivering;
    await locker.release();

    expect(report).toMatchObject({ attempted: 1, delivered: 0, retrying: 1 });
    expect((await db.selectFrom('payments').select('status').where('id', '=', payment.id).executeTakeFirstOrThrow()).status).toBe('paying');
    expect(await harness.capturesOf(payment.id)).toBe(0);
    expect(await db.selectFrom('events').select('id').where('object_id', '=', payment.id).execute()).toEqual([]);

    // Alipay's next attempt (its schedule, compressed by the simulator's time scale).
    harness.context.clock.advanceSeconds(1);
    await harness.deliverAll();
    expect((await db.selectFrom('payments').select('status').where('id', '=', payment.id).executeTakeFirstOrThrow()).status).toBe('succeeded');
    expect(await harness.capturesOf(payment.id)).toBe(1);
    const events = await db.selectFrom('events').select(['id', 'type']).where('object_id', '=', payment.id).execute();
    expect(events.map((event) => event.type)).toEqual(['payment.succeeded']);
    expect(harness.receiver.received.filter((item) => item.eventId === events[0]?.id)).toHaveLength(1);
    expect(await harness.ledgerProblems()).toEqual([]);
  });

  it('undoes a refund reservation whose transaction lost its connection, and refunds once on retry', async () => {
    const db = harness.context.db;
    const payment = await paidPayment('fault-refund-1');
    // The reservation on the payment is made first; the refund row's insert then waits.
    const locker = await holdLock(harness.context.databaseUrl, 'LOCK TABLE refunds IN SHARE MODE');
    const body = { amount: 2500, out_refund_no: 'fault-refund-1-r1' };
    const pending = outcomeOf(harness.client.request<RefundView>('POST', `/v1/payments/${payment.id}/refunds`, body, { idempotencyKey: 'fault-refund-key-1' }));
    await terminate(await harness.waitForFenBackendWaitingOnLock());
    const failed = await pending;
    await locker.release();

    expect(failed.ok ? undefined : failed.error).toMatchObject({ status: 500, code: 'internal_error' });
    expect(await db.selectFrom('payments').select(['refunding_amount', 'refunded_amount']).where('id', '=', payment.id).executeTakeFirstOrThrow()).toEqual({ refunding_amount: 0n, refunded_amount: 0n });
    expect(await db.selectFrom('refunds').select('id').where('payment_id', '=', payment.id).execute()).toEqual([]);
    // The database stayed up, so the failed request released its key: the retry runs at once.
    const refund = await harness.client.request<RefundView>('POST', `/v1/payments/${payment.id}/refunds`, body, { idempotencyKey: 'fault-refund-key-1' });
    expect(refund.status).toBe('succeeded');
    expect(await db.selectFrom('refunds').select('id').where('payment_id', '=', payment.id).execute()).toHaveLength(1);
    expect(await db.selectFrom('payments').select(['refunding_amount', 'refunded_amount']).where('id', '=', payment.id).executeTakeFirstOrThrow()).toEqual({ refunding_amount: 0n, refunded_amount: 2500n });
    expect(await harness.ledgerProblems()).toEqual([]);
  });

  it('answers two refunds racing with one out_refund_no with that one refund, never a 500', async () => {
    const db = harness.context.db;
    const payment = await paidPayment('fault-race-1');
    // Both requests pass the existing-refund check, then queue on the payment row: the race a merchant's double click makes.
    const locker = await holdLock(harness.context.databaseUrl, 'SELECT id FROM payments WHERE id = $1 FOR UPDATE', [payment.id]);
    const body = { amount: 3000, out_refund_no: 'fault-race-1-r1' };
    const first = outcomeOf(harness.client.request<RefundView>('POST', `/v1/payments/${payment.id}/refunds`, body, { idempotencyKey: 'fault-race-key-a' }));
    const second = outcomeOf(harness.client.request<RefundView>('POST', `/v1/payments/${payment.id}/refunds`, body, { idempotencyKey: 'fault-race-key-b' }));
    await harness.waitForFenBackendWaitingOnLock();
    // Both must be queued on the lock before it is released.
    const deadline = Date.now() + 15_000;
    for (;;) {
      const waiting = await harness.context.database.superuserQuery(`SELECT count(*)::int AS count FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`);
      if ((waiting.rows[0] as { count: number }).count >= 2) break;
      if (Date.now() > deadline) throw new Error('the second refund never reached the lock');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await locker.release();
    const answers = await Promise.all([first, second]);

    const refunds = await db.selectFrom('refunds').selectAll().where('payment_id', '=', payment.id).execute();
    expect(refunds).toHaveLength(1);
    for (const answer of answers) {
      expect(answer.ok ? undefined : answer.error).toBeUndefined();
      if (answer.ok) expect(answer.value.id).toBe(refunds[0]?.id);
    }
    expect(await db.selectFrom('payments').select(['refunding_amount', 'refunded_amount']).where('id', '=', payment.id).executeTakeFirstOrThrow()).toEqual({ refunding_amount: 0n, refunded_amount: 3000n });
    expect(await harness.ledgerProblems()).toEqual([]);
  });
});
