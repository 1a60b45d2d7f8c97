import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkLedger } from '../../src/ledger/index.js';
import { loadOperations, type Operation } from './helpers/openapi.js';
import { requestPlan, type PlanHints } from './helpers/plans.js';
import { FuzzRunner, apiRules, drawBatch, fuzzSeed, operationCoverage, summary } from './helpers/runner.js';
import { startFuzzWorld, type FuzzWorld } from './helpers/world.js';

/**
 * Schema-driven fuzzing of the merchant API (/v1), every request signed as the
 * fuzzer's real app so it gets past authentication into validation and, when
 * valid, into the payment services and the Alipay simulator. Now and then the
 * authentication itself is broken instead (a stale timestamp, a replayed
 * nonce, a reused Idempotency-Key with another body). See helpers/runner.ts for
 * the contract every answer is held to. Replay a run with FUZZ_SEED.
 */
const requestsMin = 5_000;
const batchSize = 50;

/** POSTs that do not claim an Idempotency-Key (their route config says `idempotent: false`). */
const withoutIdempotency = new Set(['POST /v1/payments/{id}/close', 'POST /v1/events/{id}/resend']);

/** How often each route is drawn: the ones that move money get the most attention. */
const operationWeights: Record<string, number> = {
  'POST /v1/payments': 6,
  'POST /v1/payments/{id}/refunds': 5,
  'POST /v1/payments/{id}/close': 3,
  'POST /v1/events/{id}/resend': 1,
};

/**
 * Between batches the payer pays a few open QR payments, so valid refunds keep
 * finding succeeded payments with money left on them.
 */
const payEveryBatches = 8;

async function payOpenPayments(world: FuzzWorld): Promise<void> {
  const { harness } = world;
  const open = await harness.context.db
    .selectFrom('payments')
    .select(['id', 'qr_code', 'pay_url'])
    .where('app_id', '=', harness.merchantApp.id)
    .where('status', '=', 'paying')
    .where('currency', '=', 'CNY')
    .where('qr_code', 'is not', null)
    .orderBy('created_at', 'desc')
    .limit(2)
    .execute();
  for (const payment of open) await harness.payerPresses(payment, 'pay');
  await harness.deliverAll();
}

describe('fuzzing the merchant API', () => {
  let world: FuzzWorld;
  let operations: Operation[];
  const seed = fuzzSeed();

  beforeAll(async () => {
    world = await startFuzzWorld();
    operations = (await loadOperations(world.harness.app)).filter((operation) => operation.group === 'merchant');
  });
  afterAll(async () => world?.close());

  it(`answers ${requestsMin}+ hostile and valid signed requests without a 5xx, and refusals change nothing`, async () => {
    console.log(`merchant API fuzz seed ${seed} (replay with FUZZ_SEED=${seed})`);
    const { harness, pools } = world;
    const hints: PlanHints = {
      generation: { idsByPrefix: (prefix) => pools.ids(prefix, { forWrite: false }) },
      authOf: () => 'app',
      idempotent: (operation) => operation.method === 'POST' && !withoutIdempotency.has(operation.key),
      bodyFields: (operation): Record<string, fc.Arbitrary<unknown>> => {
        if (operation.key === 'POST /v1/payments') {
          return {
            // Methods the app has enabled, so a valid body reaches the channel; others are refused as they should be.
            method: fc.constantFrom('alipay_qr', 'alipay_qr', 'alipay_page', 'cashier', 'wechat_native'),
            amount: fc.oneof(fc.integer({ min: 1, max: 100_000 }), fc.integer({ min: 1, max: 1_000_000_000 })),
            currency: fc.constantFrom('CNY', 'CNY', 'CNY', 'USD'),
            out_trade_no: fc.oneof({ weight: 9, arbitrary: fc.stringMatching(/^fz-[A-Za-z0-9_.:-]{4,40}$/) }, { weight: 1, arbitrary: fc.constant('fuzz-setup-12000-alipay_qr') }),
            // Webhooks go to the local receiver or to a closed local port, never out to the internet.
            notify_url: fc.constantFrom(harness.receiver.url, 'http://127.0.0.1:9/closed'),
          };
        }
        if (operation.key === 'POST /v1/payments/{id}/refunds') return { amount: fc.oneof(fc.integer({ min: 1, max: 5_000 }), fc.integer({ min: 1, max: 1_000_000_000 })) };
        return {};
      },
      queryValues: { 'GET /v1/payments:out_trade_no': fc.constantFrom('fuzz-setup-12000-alipay_qr', 'fuzz-setup-5000-cashier', 'foreign-1') },
      weights: { valid: 3, path: 2, query: 1, body: 5, auth: 2 },
    };
    const arbitrary = fc.oneof(...operations.map((operation) => ({ weight: operationWeights[operation.key] ?? 2, arbitrary: requestPlan(operation, hints) })));
    const runner = new FuzzRunner(harness.app, harness.context, pools, world.credentials, apiRules);
    for (let batch = 0; runner.stats.requests < requestsMin && runner.failures.length < 20; batch += 1) {
      await runner.runBatch(drawBatch(arbitrary, seed, batch, batchSize));
      if (batch % payEveryBatches === 0) await payOpenPayments(world);
      if (process.env.FUZZ_DEBUG) console.log(`batch ${batch}: ${runner.stats.requests} requests, ${runner.slow.length} slow`, runner.slow.splice(0));
    }
    console.log(summary('merchant API fuzz', seed, runner.stats));
    expect(runner.failures, `seed ${seed}`).toEqual([]);
    // Still standing after all of it.
    expect((await harness.app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
    expect(runner.stats.requests).toBeGreaterThanOrEqual(requestsMin);
    expect(operationCoverage(operations, runner.stats)).toEqual([]);
    // Valid bodies got all the way through: payments were created and refunds made.
    expect(runner.stats.accepted['POST /v1/payments'] ?? 0).toBeGreaterThan(0);
    expect(runner.stats.accepted['POST /v1/payments/{id}/refunds'] ?? 0).toBeGreaterThan(0);
    expect((await checkLedger(harness.context.db)).problems).toEqual([]);
  }, 600_000);
});
