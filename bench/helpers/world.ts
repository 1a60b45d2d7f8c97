import { createApp, type CreatedApp } from '../../src/apps/index.js';
import { openPlatform, type Platform } from '../../src/main/bootstrap.js';
import { rsaKeyPair, simulatedAlipayAppId } from '../../src/main/sandbox.js';
import { createMerchant, reviewMerchant } from '../../src/merchants/index.js';
import type { Actor } from '../../src/platform/actor.js';
import { loadConfig } from '../../src/platform/config.js';
import { createLogger } from '../../src/platform/logging.js';
import { createChannelAccount } from '../../src/routing/index.js';
import type { FenStack } from './fen-stack.js';
import { httpRequest } from './http.js';

/**
 * What an operator and a merchant set up before any payment: a shared Alipay
 * account on the running simulator (its app key registered through the
 * simulator's admin API, as with a real channel), an approved merchant and an
 * app with alipay_qr whose webhooks go to the bench's receiver. Done through
 * Fen's services from the bench process, on the stack's database with the
 * stack's master key, so the secrets sealed here open in the API.
 */
export interface BenchWorld {
  platform: Platform;
  merchantApp: Pick<CreatedApp, 'id' | 'app_secret' | 'webhook_secret'>;
}

const benchOperator: Actor = { type: 'operator', id: 'usr_bench', roles: ['admin'], ip: '127.0.0.1', merchantId: null };

async function registerSimulatorApp(simulatorUrl: string): Promise<{ appId: string; privateKeyPem: string; simulatorPublicKeyPem: string; gatewayUrl: string }> {
  const keys = rsaKeyPair();
  const appId = simulatedAlipayAppId();
  const registered = await httpRequest(`${simulatorUrl}/__sim/apps`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ appId, publicKeyPem: keys.publicKeyPem }) });
  if (registered.status !== 201) throw new Error(`the simulator refused the app: ${registered.status} ${await registered.text()}`);
  const simulator = JSON.parse(await (await httpRequest(`${simulatorUrl}/__sim/public-key`, { method: 'GET' })).text()) as { publicKeyPem: string; gatewayUrl: string };
  return { appId, privateKeyPem: keys.privateKeyPem, simulatorPublicKeyPem: simulator.publicKeyPem, gatewayUrl: simulator.gatewayUrl };
}

export async function setUpWorld(stack: FenStack, receiverUrl: string): Promise<BenchWorld> {
  const config = loadConfig({ ...stack.environment(0), LOG_LEVEL: 'silent' });
  const platform = await openPlatform(config, { logger: createLogger('silent'), poolSize: 2, migrate: false });
  try {
    const simulated = await registerSimulatorApp(stack.simulatorUrl);
    await createChannelAccount(platform.context, benchOperator, {
      channel: 'alipay',
      name: 'Alipay simulator (bench)',
      mode: 'shared',
      merchantId: null,
      methods: ['alipay_qr'],
      settings: { app_id: simulated.appId, gateway_url: simulated.gatewayUrl },
      secrets: { app_private_key_pem: simulated.privateKeyPem, alipay_public_key_pem: simulated.simulatorPublicKeyPem },
    });
    const merchant = await createMerchant(platform.context, benchOperator, {
      name: '杭州压测商户有限公司',
      short_name: '压测商户',
      business_licence_no: '91330100MA2B3C4D5E',
      legal_representative: '张三',
      contact: { name: '李四', phone: '13800138000', email: 'bench@merchant.test' },
      settlement_account: { bank_name: '中国工商银行杭州分行', account_name: '杭州压测商户有限公司', account_number: '6222020200112233445' },
      fee_plan: { rate_basis_points: 60, minimum_minor: 1, maximum_minor: 5000 },
      settlement_cycle: 'T1',
      risk_level: 'normal',
    });
    await reviewMerchant(platform.context, benchOperator, merchant.id, { decision: 'approve' });
    const app = await createApp(platform.context, benchOperator, merchant.id, { name: 'Bench shop', notify_url: receiverUrl, enabled_methods: ['alipay_qr'] });
    return { platform, merchantApp: { id: app.id, app_secret: app.app_secret, webhook_secret: app.webhook_secret } };
  } catch (error) {
    await platform.close();
    throw error;
  }
}
