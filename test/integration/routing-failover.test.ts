import { createServer, request as httpRequest, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkLedger, getBalanceByCode } from '../../src/ledger/index.js';
import { rsaKeyPair, simulatedAlipayAppId } from '../../src/main/sandbox.js';
import type { PaymentView } from '../../src/payments/index.js';
import { limits } from '../../src/platform/limits.js';
import { createChannelAccount, setChannelAccountStatus, setPaymentRoute, type ChannelAccountRow } from '../../src/routing/index.js';
import { testOperatorActor } from '../helpers/merchant-api.js';
import { startPaymentsHarness, type PaymentsHarness } from '../helpers/payments-harness.js';

/**
 * Routing across two Alipay accounts: while the first one's gateway answers
 * 5xx its circuit opens and new payments go to the second; after the
 * cool-down the first takes payments again; an operator can take an account
 * out of rotation. A payment is never sent to two channels.
 */
interface FlakyGateway {
  url: string;
  failing: boolean;
  server: Server;
}

/** A gateway in front of the simulator that can be told to answer 502, as a channel's front end does when it is down. */
async function startFlakyGateway(targetUrl: string): Promise<FlakyGateway> {
  const target = new URL(targetUrl);
  const gateway: FlakyGateway = { url: '', failing: false, server: createServer() };
  gateway.server.on('request', (incoming, outgoing) => {
    if (gateway.failing) {
      incoming.resume();
      outgoing.writeHead(502, { 'content-type': 'text/html' }).end('<h1>502 Bad Gateway</h1>');
      return;
    }
    const forwarded = httpRequest({ host: target.hostname, port: target.port, path: `${target.pathname}${incoming.url?.replace(/^\/gateway\.do/, '') ?? ''}`, method: incoming.method, headers: incoming.headers }, (answer) => {
      outgoing.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(outgoing);
    });
    incoming.pipe(forwarded);
  });
  await new Promise<void>((resolve) => gateway.server.listen(0, '127.0.0.1', resolve));
  const address = gateway.server.address();
  if (typeof address !== 'object' || !address) throw new Error('no address');
  gateway.url = `http://127.0.0.1:${address.port}/gateway.do`;
  return gateway;
}

describe('routing and failover', () => {
  let harness: PaymentsHarness;
  let flaky: FlakyGateway;
  let first: ChannelAccountRow;
  let second: ChannelAccountRow;

  beforeAll(async () => {
    harness = await startPaymentsHarness();
    flaky = await startFlakyGateway(harness.simulator.gatewayUrl);
    const keys = rsaKeyPair();
    const appId = simulatedAlipayAppId();
    await harness.simulator.registerApp({ appId, publicKeyPem: keys.publicKeyPem });
    first = await createChannelAccount(harness.context, testOperatorActor, {
      channel: 'alipay',
      name: 'Alipay behind a flaky gateway',
      mode: 'shared',
      merchantId: null,
      methods: ['alipay_qr'],
      settings: { app_id: appId, gateway_url: flaky.url, timeout_ms: 2000 },
      secrets: { app_private_key_pem: keys.privateKeyPem, alipay_public_key_pem: harness.simulator.publicKeyPem },
    });
    second = harness.account;
    await setPaymentRoute(harness.context, testOperatorActor, { appId: harness.merchantApp.id, merchantId: harness.merchantApp.merchant_id, method: 'alipay_qr', channelAccountIds: [first.id, second.id] });
  });
  afterAll(async () => {
    await new Promise((resolve) => flaky.server.close(resolve));
    await harness.close();
  });

  const create = () => harness.client.request<PaymentView>('POST', '/v1/payments', { out_trade_no: `route-${Math.random().toString(36).slice(2)}`, amount: 2500, currency: 'CNY', subject: 'Pu-erh', method: 'alipay_qr' });
  const accountOf = async (paymentId: string) => (await harness.context.db.selectFrom('payments').select('channel_account_id').where('id', '=', paymentId).executeTakeFirstOrThrow()).channel_account_id;

  it('uses the first account while it is healthy', async () => {
    const payment = await create();
    expect(payment.qr_code).not.toBeNull();
    expect(await accountOf(payment.id)).toBe(first.id);
  });

  it('opens the first account’s circuit after repeated 5xx and sends new payments to the second', async () => {
    flaky.failing = true;
    const stranded: PaymentView[] = [];
    for (let attempt = 0; attempt < limits.circuitFailuresToOpen; attempt += 1) stranded.push(await create());
    // An unknown answer never fails a payment nor sends it elsewhere: it stays with the first account, paying.
    for (const payment of stranded) {
      expect(payment).toMatchObject({ status: 'paying', qr_code: null });
      expect(await accountOf(payment.id)).toBe(first.id);
    }
    const rerouted = await create();
    expect(rerouted.qr_code).not.toBeNull();
    expect(await accountOf(rerouted.id)).toBe(second.id);
    await harness.payerPresses(rerouted, 'pay');
    await harness.deliverAll();
    expect((await harness.client.request<PaymentView>('GET', `/v1/payments/${rerouted.id}`)).status).toBe('succeeded');
    const clearing = await getBalanceByCode(harness.context.db, `channel_clearing:${second.id}`, 'CNY');
    expect(clearing?.normalBalance).toBeGreaterThanOrEqual(2500n);
  });

  it('brings the first account back after its cool-down', async () => {
    flaky.failing = false;
    expect(await accountOf((await create()).id)).toBe(second.id);
    harness.context.clock.advanceSeconds(limits.circuitOpenSeconds + 1);
    const back = await create();
    expect(back.qr_code).not.toBeNull();
    expect(await accountOf(back.id)).toBe(first.id);
  });

  it('leaves an account an operator disabled out of rotation until it is enabled again', async () => {
    await setChannelAccountStatus(harness.context, testOperatorActor, first.id, 'disabled');
    expect(await accountOf((await create()).id)).toBe(second.id);
    await setChannelAccountStatus(harness.context, testOperatorActor, first.id, 'active');
    expect(await accountOf((await create()).id)).toBe(first.id);
    expect((await checkLedger(harness.context.db)).problems).toEqual([]);
  });
});
