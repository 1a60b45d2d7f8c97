import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rsaKeyPair } from '../../src/main/sandbox.js';
import { createActiveMerchant } from '../helpers/merchant-api.js';
import { signInOperator } from '../helpers/operators.js';
import { loadOperations, type Operation } from './helpers/openapi.js';
import { requestPlan, type PlanHints } from './helpers/plans.js';
import { FuzzRunner, apiRules, drawBatch, fuzzSeed, operationCoverage, summary } from './helpers/runner.js';
import { startFuzzWorld, type FuzzWorld } from './helpers/world.js';

/**
 * Schema-driven fuzzing of the operator API (/admin/v1): requests carry an
 * admin's session and CSRF token so they reach validation, and now and then no
 * session, a forged one, no CSRF token or a read-only operator's session.
 * Valid bodies create merchants, apps, operators and channel accounts and
 * change the "victims" (helpers/world.ts); the fuzzer's own operators, app and
 * channel account are never changed. Sign-in attempts come from many
 * addresses so the per-address limit does not turn them all into 429s.
 * Replay a run with FUZZ_SEED.
 */
const requestsMin = 4_000;
const batchSize = 50;
const disposableSessions = 12;

const creditCodeCharacters = '0123456789ABCDEFGHJKLMNPQRTUWXY';

const operationWeights: Record<string, number> = {
  'POST /admin/v1/auth/login': 3,
  'POST /admin/v1/auth/logout': 1,
  'POST /admin/v1/merchants': 4,
  'POST /admin/v1/merchants/{id}/apps': 3,
  'POST /admin/v1/channel-accounts': 4,
  'PUT /admin/v1/apps/{id}/routes/{method}': 3,
  'PATCH /admin/v1/apps/{id}': 3,
  'PATCH /admin/v1/operators/{id}': 2,
  'POST /admin/v1/operators': 2,
};

describe('fuzzing the operator API', () => {
  let world: FuzzWorld;
  let operations: Operation[];
  const activeMerchants: string[] = [];
  const seed = fuzzSeed();

  beforeAll(async () => {
    world = await startFuzzWorld();
    operations = (await loadOperations(world.harness.app)).filter((operation) => operation.group === 'operator');
    const { app, context } = world.harness;
    // Apps can only be added to an active merchant, and the fuzzer freezes and closes the merchants it knows of as it goes:
    // keep a few out of its pools, for valid app and own-account bodies only.
    for (let index = 0; index < 3; index += 1) activeMerchants.push((await createActiveMerchant(context)).id);
    world.credentials.disposable = [];
    for (let index = 0; index < disposableSessions; index += 1) world.credentials.disposable.push((await signInOperator(app, context, { roles: ['auditor'] })).headers);
  });
  afterAll(async () => world?.close());

  it(`answers ${requestsMin}+ hostile and valid operator requests without a 5xx, and refusals change nothing`, async () => {
    console.log(`operator API fuzz seed ${seed} (replay with FUZZ_SEED=${seed})`);
    const { harness, pools } = world;
    const keys = rsaKeyPair();
    const localUrl = fc.constantFrom(harness.receiver.url, 'http://127.0.0.1:9/closed');
    const licence = fc
      .tuple(fc.stringMatching(/^[0-9]{6}$/), fc.array(fc.constantFrom(...creditCodeCharacters), { minLength: 10, maxLength: 10 }))
      .map(([digits, tail]) => `91${digits}${tail.join('')}`);
    const allowlistEntry = fc.oneof(fc.ipV4(), fc.ipV6(), fc.ipV4().map((address) => `${address}/24`), fc.constantFrom('10.0.0.0/8', '::1/128', '999.1.1.1', '1.2.3.4/33', 'localhost'));
    const alipaySettings = fc.record({
      app_id: fc.stringMatching(/^2021[0-9]{12}$/),
      // Never a host on the internet: the simulator, or a closed local port.
      gateway_url: fc.constantFrom(harness.simulator.gatewayUrl, 'http://127.0.0.1:9/gateway.do'),
      timeout_ms: fc.integer({ min: 100, max: 60_000 }),
    });
    const hints: PlanHints = {
      generation: { idsByPrefix: (prefix) => pools.ids(prefix, { forWrite: false }) },
      authOf: (operation) => (operation.key === 'POST /admin/v1/auth/login' ? 'none' : 'operator'),
      idempotent: () => false,
      anyRoleMay: (operation) => operation.key === 'POST /admin/v1/auth/logout',
      pathValues: {
        'PUT /admin/v1/apps/{id}/routes/{method}:method': fc.constantFrom('alipay_qr', 'alipay_page', 'wechat_native', 'cashier', 'unknown_method'),
        'POST /admin/v1/merchants/{id}/apps:id': fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...activeMerchants) }, { weight: 1, arbitrary: fc.constantFrom(...pools.ids('mch', { forWrite: true })) }),
      },
      queryValues: {
        'GET /admin/v1/apps:merchant_id': fc.constant(harness.merchantApp.merchant_id),
        'GET /admin/v1/ledger/entries:reference_id': fc.constant(world.payments.paid.id),
        'GET /admin/v1/ledger/accounts:code': fc.constantFrom('suspense', 'platform_fee_income', `merchant_pending:${harness.merchantApp.merchant_id}`),
      },
      bodyFields: (operation): Record<string, fc.Arbitrary<unknown>> => {
        switch (operation.key) {
          case 'POST /admin/v1/merchants':
            return { business_licence_no: fc.oneof({ weight: 4, arbitrary: licence }, { weight: 1, arbitrary: fc.string() }) };
          case 'POST /admin/v1/merchants/{id}/apps':
          case 'PATCH /admin/v1/apps/{id}':
            return { notify_url: fc.oneof(localUrl, fc.constant(null)), 'ip_allowlist[]': allowlistEntry };
          case 'POST /admin/v1/channel-accounts':
            return {
              channel: fc.oneof({ weight: 5, arbitrary: fc.constant('alipay') }, { weight: 1, arbitrary: fc.constantFrom('wechatpay', 'unionpay') }),
              // An own account must name a merchant that exists; a well-formed absent one is refused (404).
              merchant_id: fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...activeMerchants) }, { weight: 1, arbitrary: fc.stringMatching(/^mch_[0-9a-hjkmnp-tv-z]{26}$/) }),
              methods: fc.oneof({ weight: 4, arbitrary: fc.subarray(['alipay_qr', 'alipay_page'], { minLength: 1 }) }, { weight: 1, arbitrary: fc.array(fc.string({ maxLength: 32 }), { minLength: 1, maxLength: 3 }) }),
              settings: fc.oneof({ weight: 9, arbitrary: alipaySettings }, { weight: 1, arbitrary: fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 }) }),
              secrets: fc.oneof(
                { weight: 8, arbitrary: fc.constant({ app_private_key_pem: keys.privateKeyPem, alipay_public_key_pem: keys.publicKeyPem }) },
                { weight: 1, arbitrary: fc.constant({ app_private_key_pem: `-----BEGIN PRIVATE KEY-----\n${'A'.repeat(64)}\n-----END PRIVATE KEY-----`, alipay_public_key_pem: `-----BEGIN PUBLIC KEY-----\n${'B'.repeat(64)}\n-----END PUBLIC KEY-----` }) },
                { weight: 1, arbitrary: fc.dictionary(fc.string(), fc.string({ maxLength: 80 }), { maxKeys: 3 }) },
              ),
            };
          default:
            return {};
        }
      },
      weights: { valid: 3, path: 2, query: 1, body: 5, auth: 2 },
    };
    const arbitrary = fc.oneof(...operations.map((operation) => ({ weight: operationWeights[operation.key] ?? 2, arbitrary: requestPlan(operation, hints) })));
    const runner = new FuzzRunner(harness.app, harness.context, pools, world.credentials, apiRules);
    for (let batch = 0; runner.stats.requests < requestsMin && runner.failures.length < 20; batch += 1) {
      await runner.runBatch(drawBatch(arbitrary, seed, batch, batchSize));
      if (process.env.FUZZ_DEBUG) console.log(`batch ${batch}: ${runner.stats.requests} requests`, runner.slow.splice(0));
    }
    console.log(summary('operator API fuzz', seed, runner.stats));
    expect(runner.failures, `seed ${seed}`).toEqual([]);
    // Still standing after all of it.
    expect((await harness.app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
    expect(runner.stats.requests).toBeGreaterThanOrEqual(requestsMin);
    expect(operationCoverage(operations, runner.stats)).toEqual([]);
    for (const created of ['POST /admin/v1/merchants', 'POST /admin/v1/merchants/{id}/apps', 'POST /admin/v1/operators', 'POST /admin/v1/channel-accounts']) {
      expect(runner.stats.accepted[created] ?? 0, `${created} never accepted a valid body`).toBeGreaterThan(0);
    }
  }, 600_000);
});
