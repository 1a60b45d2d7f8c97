import { pino } from 'pino';
import { FenClient } from '../../../sdk/index.js';
import type { CreatedApp } from '../../../src/apps/index.js';
import { openPlatform, type Platform } from '../../../src/main/bootstrap.js';
import { rsaKeyPair, simulatedAlipayAppId } from '../../../src/main/sandbox.js';
import type { Clock } from '../../../src/platform/clock.js';
import { loadConfig } from '../../../src/platform/config.js';
import { createLogger } from '../../../src/platform/logging.js';
import { createChannelAccount, type ChannelAccountRow } from '../../../src/routing/index.js';
import { createActiveApp, testOperatorActor } from '../../helpers/merchant-api.js';
import { startWebhookReceiver, type WebhookReceiver } from '../../helpers/webhook-receiver.js';
import type { FenDeployment } from './fen.js';

/**
 * What a merchant and an operator set up before the load starts, done from the
 * test process on the same database as the Fen processes (with the same master
 * key, so secrets sealed here open there): an Alipay account on the running
 * simulator, registered through its admin API as an operator would with a
 * real channel, and an active merchant app whose webhooks go to a receiver in
 * the test process.
 */
export interface ChaosWorld {
  platform: Platform;
  /** The merchant app the load runs as. */
  merchantApp: Pick<CreatedApp, 'id' | 'app_secret'>;
  receiver: WebhookReceiver;
  client: FenClient;
}

/** A platform context of the test process's own, on the deployment's database, with the clock it is given; logs go to a file when named. */
export async function openTestPlatform(deployment: FenDeployment, options: { clock?: Clock; logFile?: string } = {}): Promise<Platform> {
  const config = loadConfig({ ...deployment.environment, LOG_LEVEL: 'silent' } as Record<string, string | undefined>);
  const logger = options.logFile ? pino({ level: 'info' }, pino.destination({ dest: options.logFile, sync: true })) : createLogger('silent');
  return openPlatform(config, { logger, poolSize: 4, migrate: false, ...(options.clock ? { clock: options.clock } : {}) });
}

/** A fetch for the SDK that never waits forever: a hung request is a finding, not a stuck test. */
export const requestTimeoutMs = 30_000;

export function timedFetch(url: string, init: { method: string; headers: Record<string, string>; body?: string }) {
  return fetch(url, { ...init, signal: AbortSignal.timeout(requestTimeoutMs) });
}

async function connectSimulatorAccount(platform: Platform, simulatorUrl: string): Promise<ChannelAccountRow> {
  const keys = rsaKeyPair();
  const appId = simulatedAlipayAppId();
  const registered = await fetch(`${simulatorUrl}/__sim/apps`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ appId, publicKeyPem: keys.publicKeyPem }) });
  if (registered.status !== 201) throw new Error(`the simulator refused the app: ${registered.status} ${await registered.text()}`);
  const simulator = (await (await fetch(`${simulatorUrl}/__sim/public-key`)).json()) as { publicKeyPem: string; gatewayUrl: string };
  return createChannelAccount(platform.context, testOperatorActor, {
    channel: 'alipay',
    name: 'Alipay simulator (chaos)',
    mode: 'shared',
    merchantId: null,
    methods: ['alipay_qr', 'alipay_page'],
    // A short channel timeout: a simulator that is down must not hold a request for long.
    settings: { app_id: appId, gateway_url: simulator.gatewayUrl, timeout_ms: 3000 },
    secrets: { app_private_key_pem: keys.privateKeyPem, alipay_public_key_pem: simulator.publicKeyPem },
  });
}

export async function setUpWorld(deployment: FenDeployment): Promise<ChaosWorld & { close(): Promise<void> }> {
  const platform = await openTestPlatform(deployment);
  await connectSimulatorAccount(platform, deployment.simulatorUrl);
  const receiver = await startWebhookReceiver();
  const merchantApp = await createActiveApp(platform.context, { input: { notify_url: receiver.url, enabled_methods: ['alipay_qr'] } });
  const client = new FenClient({ baseUrl: deployment.apiUrl, appId: merchantApp.id, appSecret: merchantApp.app_secret, fetch: timedFetch });
  return {
    platform,
    merchantApp,
    receiver,
    client,
    close: async () => {
      await receiver.close();
      await platform.close();
    },
  };
}
