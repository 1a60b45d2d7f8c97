import fc from 'fast-check';
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkLedger } from '../../src/ledger/index.js';
import { rsaKeyPair, simulatedAlipayAppId } from '../../src/main/sandbox.js';
import type { PaymentView } from '../../src/payments/index.js';
import { createChannelAccount, setPaymentRoute, type ChannelAccountRow } from '../../src/routing/index.js';
import { notificationSignContent, signRsa2 } from '../../src/simulators/alipay/protocol.js';
import { signedClient, testOperatorActor } from '../helpers/merchant-api.js';
import { loadOperations, type Operation } from './helpers/openapi.js';
import { percentEncode, requestPlan, type PlanHints, type RequestPlan } from './helpers/plans.js';
import { FuzzRunner, apiRules, drawBatch, errorBodyProblem, fuzzSeed, operationCoverage, summary, type GroupRules } from './helpers/runner.js';
import { startFuzzWorld, type FuzzWorld } from './helpers/world.js';

/**
 * Fuzzing the unauthenticated public routes: the channel notification endpoint
 * and the cashier pages.
 *
 * Notifications come two ways. From the schema, like every route (garbage
 * parameters, bodies and content types). And as Alipay forms, built field by
 * field: most are signed with the key of a channel account set up for the
 * purpose (an own account of the victim merchant whose "Alipay public key" is
 * the fuzzer's), so they pass verification and reach the payment state
 * machine with wrong amounts, odd statuses, repeated and fresh trade numbers;
 * the rest are forged, unsigned, signed by another key or altered after
 * signing. A notification that fails verification, or that names a payment
 * the account does not hold, must change nothing but the security alert it
 * raises. Replay a run with FUZZ_SEED.
 */
const requestsMin = 2_500;
const batchSize = 50;

/** A channel answers its notification with the channel's own words: 200 "success" or "fail", or a 4xx for a bad address. */
const channelRules: GroupRules = {
  isRefusal: (plan, response) => (response.statusCode >= 400 && response.statusCode < 500) || (plan.operation.group === 'channel' && response.statusCode === 200 && response.body === 'fail'),
  shapeProblem: (plan, response: LightMyRequestResponse) => {
    if (plan.operation.group !== 'channel') return apiRules.shapeProblem(plan, response);
    if (response.statusCode >= 400 && response.statusCode < 500) return errorBodyProblem(response.body);
    if (response.statusCode >= 500 || (response.statusCode === 200 && (response.body === 'success' || response.body === 'fail'))) return undefined;
    return `not an acknowledgement Alipay understands: ${response.statusCode} ${response.body.slice(0, 100)}`;
  },
};

function yuan(amount: number): string {
  return (amount / 100).toFixed(2);
}

interface NotificationWorld {
  operation: Operation;
  account: ChannelAccountRow;
  appId: string;
  signingKey: string;
  /** Payments sent through the fuzzer's account: notifications about them may be believed. */
  own: PaymentView[];
  /** Payments of the harness's account, and refunds on them: a notification to the fuzzer's account must never touch them. */
  others: PaymentView[];
  otherRefundIds: string[];
  harnessAccountId: string;
  victimAccountId: string;
}

type Target = { kind: 'own' | 'other'; payment: PaymentView } | { kind: 'absent' | 'garbage'; outTradeNo: string };

/** Alipay-style notifications, signed or not, as request plans for the notification route. */
function notificationPlan(setup: NotificationWorld): fc.Arbitrary<RequestPlan> {
  const target: fc.Arbitrary<Target> = fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom(...setup.own).map((payment): Target => ({ kind: 'own', payment })) },
    { weight: 4, arbitrary: fc.constantFrom(...setup.others).map((payment): Target => ({ kind: 'other', payment })) },
    { weight: 1, arbitrary: fc.stringMatching(/^pay_[0-9a-hjkmnp-tv-z]{26}$/).map((outTradeNo): Target => ({ kind: 'absent', outTradeNo })) },
    { weight: 1, arbitrary: fc.string({ maxLength: 40 }).map((outTradeNo): Target => ({ kind: 'garbage', outTradeNo })) },
  );
  return fc
    .record({
      target,
      status: fc.constantFrom('TRADE_SUCCESS', 'TRADE_SUCCESS', 'TRADE_FINISHED', 'TRADE_CLOSED', 'WAIT_BUYER_PAY', 'TRADE_PENDING', 'trade_success', ''),
      amount: fc.oneof({ weight: 6, arbitrary: fc.constant('right') }, { weight: 3, arbitrary: fc.constantFrom('0.01', '-1.00', '1e3', '99999999999999.99', 'abc', '', '10.001', '0.00', ' 1.00') }),
      // A handful of trade numbers, so the same trade is reported again and a second trade pays the same order.
      tradeNo: fc.constantFrom('2026010122001400000000000001', '2026010122001400000000000002', '2026010122001400000000000003', ''),
      gmtPayment: fc.constantFrom('2026-01-01 10:00:00', '', 'yesterday', '2026-13-45 99:99:99'),
      appId: fc.oneof({ weight: 9, arbitrary: fc.constant(setup.appId) }, { weight: 1, arbitrary: fc.constant(simulatedAlipayAppId()) }),
      notifyType: fc.oneof({ weight: 9, arbitrary: fc.constant('trade_status_sync') }, { weight: 1, arbitrary: fc.constantFrom('batch_trans_notify', '') }),
      refund: fc.option(fc.record({ outBizNo: fc.constantFrom(...setup.otherRefundIds, 'ref_01jzzzzzzzzzzzzzzzzzzzzzzz', 'not-a-refund'), refundFee: fc.constantFrom('1.00', '30.00', 'x') }), { freq: 6 }),
      extra: fc.dictionary(fc.stringMatching(/^[a-z_]{1,12}$/), fc.string({ maxLength: 20 }), { maxKeys: 2 }),
      signing: fc.constantFrom('valid', 'valid', 'valid', 'valid', 'valid', 'forged', 'missing', 'other_key', 'tampered'),
      encoding: fc.constantFrom('form', 'form', 'form', 'json', 'form_charset'),
      path: fc.oneof(
        { weight: 12, arbitrary: fc.constant(`alipay/notify/${setup.account.id}`) },
        { weight: 1, arbitrary: fc.constantFrom(`alipay/notify/${setup.harnessAccountId}`, `alipay/notify/${setup.victimAccountId}`, `wechatpay/notify/${setup.account.id}`, 'alipay/notify/cha_01jzzzzzzzzzzzzzzzzzzzzzzz', `alipay/notify/${percentEncode('cha_\u0000')}`) },
      ),
    })
    .map((drawn): RequestPlan => {
      const named = 'payment' in drawn.target ? drawn.target.payment : undefined;
      const outTradeNo = named ? named.id : 'outTradeNo' in drawn.target ? drawn.target.outTradeNo : '';
      const rightAmount = named ? yuan(named.amount) : '1.00';
      const fields: Record<string, string> = {
        ...drawn.extra,
        notify_type: drawn.notifyType,
        notify_id: `fuzz-${outTradeNo.slice(-8)}-${drawn.tradeNo.slice(-2)}`,
        notify_time: '2026-01-01 10:00:01',
        app_id: drawn.appId,
        charset: 'utf-8',
        version: '1.0',
        sign_type: 'RSA2',
        trade_no: drawn.tradeNo,
        out_trade_no: outTradeNo,
        trade_status: drawn.status,
        total_amount: drawn.amount === 'right' ? rightAmount : drawn.amount,
        gmt_payment: drawn.gmtPayment,
      };
      if (drawn.refund) Object.assign(fields, { out_biz_no: drawn.refund.outBizNo, refund_fee: drawn.refund.refundFee, gmt_refund: '2026-01-01 10:05:00.000' });
      for (const [name, value] of Object.entries(fields)) if (value === '') delete fields[name];
      if (drawn.signing !== 'missing') {
        const key = drawn.signing === 'other_key' ? otherSigningKey : setup.signingKey;
        fields.sign = drawn.signing === 'forged' ? Buffer.from(`forged ${outTradeNo}`).toString('base64') : signRsa2(notificationSignContent(fields), key);
      }
      if (drawn.signing === 'tampered') fields.total_amount = '0.02';
      const viaFuzzAccount = drawn.path === `alipay/notify/${setup.account.id}`;
      const believable = viaFuzzAccount && drawn.signing === 'valid' && drawn.appId === setup.appId && drawn.notifyType === 'trade_status_sync';
      const payload = drawn.encoding === 'json' ? JSON.stringify(fields) : new URLSearchParams(fields).toString();
      const contentType = drawn.encoding === 'json' ? 'application/json' : drawn.encoding === 'form_charset' ? 'application/x-www-form-urlencoded; charset=GBK' : 'application/x-www-form-urlencoded';
      // Believed only when signed by the account's key, for its app, about a payment the account holds.
      const mayChange = believable && drawn.target.kind === 'own';
      const description = `${drawn.signing} ${drawn.status || '(no status)'} ${fields.total_amount ?? '(no amount)'} for a${drawn.target.kind === 'own' ? 'n own' : drawn.target.kind === 'other' ? "nother account's" : ` ${drawn.target.kind}`} payment${drawn.refund ? ` as refund ${drawn.refund.outBizNo}` : ''} via ${drawn.path.split('/')[0]}/${viaFuzzAccount ? 'fuzz account' : 'other account'} (${drawn.encoding})`;
      return {
        operation: { ...setup.operation, path: `/channels/${drawn.path}` },
        path: {},
        query: [],
        body: { payload, contentType, expectation: believable ? 'either' : 'reject', description },
        auth: { kind: 'none' },
        remoteAddress: '127.0.0.1',
        expectation: believable ? 'either' : 'reject',
        mustNotChange: !mayChange,
        description,
      };
    });
}

const otherSigningKey = rsaKeyPair().privateKeyPem;

describe('fuzzing the channel notification endpoint and the cashier', () => {
  let world: FuzzWorld;
  let operations: Operation[];
  let notifications: NotificationWorld;
  const seed = fuzzSeed();

  beforeAll(async () => {
    world = await startFuzzWorld();
    const { harness, victims } = world;
    const { app, context, simulator } = harness;
    operations = (await loadOperations(app)).filter((operation) => operation.group === 'channel' || operation.group === 'cashier');
    const notifyOperation = operations.find((operation) => operation.group === 'channel');
    if (!notifyOperation) throw new Error('no channel notification route in /docs/json');
    // The fuzzer's account: its "Alipay public key" is the fuzzer's, so the fuzzer can sign notifications Fen believes.
    const notificationKeys = rsaKeyPair();
    const appKeys = rsaKeyPair();
    const appId = simulatedAlipayAppId();
    await simulator.registerApp({ appId, publicKeyPem: appKeys.publicKeyPem });
    const account = await createChannelAccount(context, testOperatorActor, {
      channel: 'alipay',
      name: 'Notification fuzz account',
      mode: 'own',
      merchantId: victims.merchant.id,
      methods: ['alipay_qr'],
      settings: { app_id: appId, gateway_url: simulator.gatewayUrl, timeout_ms: 2000 },
      secrets: { app_private_key_pem: appKeys.privateKeyPem, alipay_public_key_pem: notificationKeys.publicKeyPem },
    });
    await setPaymentRoute(context, testOperatorActor, { appId: victims.app.id, merchantId: victims.merchant.id, method: 'alipay_qr', channelAccountIds: [account.id] });
    // The simulator's answers are signed with its own key, which this account does not trust: the payments stay paying, as after a timeout.
    const victimClient = signedClient(app, context, { appId: victims.app.id, appSecret: victims.app.app_secret });
    const own: PaymentView[] = [];
    for (const amount of [1_000, 2_000, 3_000, 4_000]) own.push(await victimClient.request<PaymentView>('POST', '/v1/payments', { out_trade_no: `own-${amount}`, amount, subject: 'Notification fuzz', method: 'alipay_qr' }));
    for (const payment of own) world.pools.add(payment.id);
    const otherRefunds = await context.db.selectFrom('refunds').select('id').execute();
    notifications = {
      operation: notifyOperation,
      account,
      appId,
      signingKey: notificationKeys.privateKeyPem,
      own,
      others: Object.values(world.payments),
      otherRefundIds: otherRefunds.map((row) => row.id),
      harnessAccountId: harness.account.id,
      victimAccountId: victims.channelAccount.id,
    };
  });
  afterAll(async () => world?.close());

  it(`answers ${requestsMin}+ notifications and cashier requests without a 5xx, and believes only what it should`, async () => {
    console.log(`channel and cashier fuzz seed ${seed} (replay with FUZZ_SEED=${seed})`);
    const { harness, pools } = world;
    const hints: PlanHints = {
      generation: { idsByPrefix: (prefix) => pools.ids(prefix, { forWrite: false }) },
      authOf: () => 'none',
      idempotent: () => false,
      pathValues: { 'POST /channels/{channel}/notify/{channelAccountId}:channel': fc.constant('alipay') },
      weights: { valid: 3, path: 3, query: 1, body: 4, auth: 0 },
    };
    const pageHeaders = fc.record(
      {
        'accept-language': fc.constantFrom('en-US,en;q=0.9', 'zh-CN', '*', 'xx;q=abc', ';;;', 'en'.repeat(200)),
        'sec-fetch-site': fc.constantFrom('same-origin', 'cross-site', 'none', 'same-site', ''),
        origin: fc.constantFrom(harness.fenUrl, 'https://evil.test', 'null', 'not a url'),
      },
      { requiredKeys: [] },
    );
    const generic = operations.map((operation) => {
      const plan = requestPlan(operation, hints);
      if (operation.group !== 'cashier') return { weight: 3, arbitrary: plan };
      // The cashier's answers depend on the browser's headers too.
      return {
        weight: 3,
        arbitrary: fc.tuple(plan, pageHeaders).map(([drawn, headers]): RequestPlan => {
          // As the cashier judges a form (isSameOriginForm): Fetch Metadata when sent, else the Origin.
          const fetchSite = headers['sec-fetch-site'];
          const crossSite = fetchSite !== undefined ? fetchSite !== 'same-origin' && fetchSite !== 'none' : headers.origin !== undefined && headers.origin !== harness.fenUrl;
          const refused = operation.method === 'POST' && crossSite;
          return {
            ...drawn,
            body: { ...drawn.body, headers: { ...drawn.body.headers, ...headers } },
            expectation: refused ? 'reject' : drawn.expectation,
            description: `${drawn.description}${Object.keys(headers).length > 0 ? `; headers ${JSON.stringify(headers)}` : ''}`,
          };
        }),
      };
    });
    const arbitrary = fc.oneof({ weight: 12, arbitrary: notificationPlan(notifications) }, ...generic);
    const runner = new FuzzRunner(harness.app, harness.context, pools, world.credentials, channelRules);
    for (let batch = 0; runner.stats.requests < requestsMin && runner.failures.length < 20; batch += 1) {
      await runner.runBatch(drawBatch(arbitrary, seed, batch, batchSize));
      if (process.env.FUZZ_DEBUG) console.log(`batch ${batch}: ${runner.stats.requests} requests`, runner.slow.splice(0));
    }
    console.log(summary('channel and cashier fuzz', seed, runner.stats));
    expect(runner.failures, `seed ${seed}`).toEqual([]);
    // Still standing after all of it.
    expect((await harness.app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
    expect(runner.stats.requests).toBeGreaterThanOrEqual(requestsMin);
    expect(operationCoverage(operations, runner.stats)).toEqual([]);
    // Some notifications were believed: the state machine was reached, not only the signature check.
    expect(runner.stats.accepted['POST /channels/{channel}/notify/{channelAccountId}'] ?? 0).toBeGreaterThan(0);
    const ownPayments = await harness.context.db.selectFrom('payments').select('status').where('channel_account_id', '=', notifications.account.id).execute();
    expect(ownPayments.some((payment) => payment.status !== 'paying')).toBe(true);
    expect((await checkLedger(harness.context.db)).problems).toEqual([]);
  }, 600_000);
});
