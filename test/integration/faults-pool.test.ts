import { afterEach, describe, expect, it } from 'vitest';
import { FenApiError } from '../../sdk/index.js';
import type { PaymentView, RefundView } from '../../src/payments/index.js';
import { startFaultHarness, type FaultHarness } from '../chaos/helpers/fault-harness.js';

/**
 * Many requests at once on a pool far smaller than the load (FEN_DB_POOL_SIZE
 * 1 and 3): requests queue for a connection. None may hang (a code path that
 * holds one connection while asking the pool for another would wait for itself
 * on a pool of one), each must take effect once or fail with Fen's error body,
 * and duplicate requests racing each other must still create one thing each.
 */
const concurrentOrders = 12;
/** Far beyond what a queued request needs; a request that takes this long is stuck. */
const answerDeadlineMs = 30_000;

async function answered<T>(what: string, request: Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: FenApiError }> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} hung: no answer within ${answerDeadlineMs} ms`)), answerDeadlineMs);
  });
  try {
    const value = await Promise.race([request, hung]);
    return { ok: true, value };
  } catch (error) {
    if (error instanceof FenApiError) return { ok: false, error };
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

describe.each([1, 3])('a database pool of %i under many requests at once', (poolSize) => {
  let harness: FaultHarness | undefined;
  afterEach(async () => harness?.close());

  it('answers every request, creates one payment per order and one refund per refund number, and keeps the books', async () => {
    harness = await startFaultHarness({ poolSize });
    const { client, context } = harness;
    const orders = Array.from({ length: concurrentOrders }, (_, index) => ({ out_trade_no: `pool-${poolSize}-${index}`, amount: 1000 + index, currency: 'CNY', subject: 'Pool oolong', method: 'alipay_qr' }));

    // Every order sent twice at once: once with its own key, once more with the same key (a client retrying too early).
    const creates = await Promise.all(
      orders.flatMap((order) => [0, 1].map(() => answered(`create ${order.out_trade_no}`, client.request<PaymentView>('POST', '/v1/payments', order, { idempotencyKey: `key-${order.out_trade_no}` })))),
    );
    const failures = creates.filter((outcome) => !outcome.ok).map((outcome) => (outcome.ok ? undefined : `${outcome.error.status} ${outcome.error.code}`));
    // A same-key twin may be told to retry while the first still runs; nothing else may fail.
    expect(failures.filter((failure) => failure !== '409 idempotency_request_in_progress')).toEqual([]);
    const payments = await context.db.selectFrom('payments').selectAll().where('out_trade_no', 'like', `pool-${poolSize}-%`).execute();
    expect(payments).toHaveLength(concurrentOrders);

    await Promise.all(payments.map((payment) => harness!.payerPresses(payment, 'pay')));
    await harness.deliverAll();
    const paid = await context.db.selectFrom('payments').select(['id', 'status']).where('out_trade_no', 'like', `pool-${poolSize}-%`).execute();
    expect(paid.every((payment) => payment.status === 'succeeded')).toBe(true);

    // Two refunds per payment at once with one out_refund_no and different keys (a double click): one refund each.
    const refunds = await Promise.all(
      payments.flatMap((payment) =>
        ['a', 'b'].map((copy) =>
          answered(`refund ${payment.id}`, client.request<RefundView>('POST', `/v1/payments/${payment.id}/refunds`, { amount: 500, out_refund_no: `${payment.out_trade_no}-r` }, { idempotencyKey: `refund-${payment.id}-${copy}` })),
        ),
      ),
    );
    expect(refunds.filter((outcome) => !outcome.ok).map((outcome) => (outcome.ok ? undefined : `${outcome.error.status} ${outcome.error.code}`))).toEqual([]);
    const stored = await context.db.selectFrom('refunds').select(['payment_id', 'status']).where('out_refund_no', 'like', `pool-${poolSize}-%`).execute();
    expect(stored).toHaveLength(concurrentOrders);
    expect(stored.every((refund) => refund.status === 'succeeded')).toBe(true);

    for (const payment of payments) expect(await harness.capturesOf(payment.id)).toBe(1);
    const reserved = await context.db.selectFrom('payments').select(['refunding_amount', 'refunded_amount']).where('out_trade_no', 'like', `pool-${poolSize}-%`).execute();
    expect(reserved.every((row) => row.refunding_amount === 0n && row.refunded_amount === 500n)).toBe(true);
    expect(await context.db.selectFrom('idempotency_keys').select('key').where('state', '=', 'in_progress').execute()).toEqual([]);
    expect(await harness.ledgerProblems()).toEqual([]);
  });
});
