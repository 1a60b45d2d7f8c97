import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createApp, type PaymentMethod } from '../apps/index.js';
import { createOperator } from '../auth/index.js';
import { createMerchant, reviewMerchant } from '../merchants/index.js';
import { systemActor } from '../platform/actor.js';
import type { PlatformContext } from '../platform/context.js';
import { connectAlipaySimulator, connectUnionpaySimulator, connectWechatpaySimulator } from './sandbox.js';
import type { RunningSimulators } from './simulators.js';

/**
 * Demo data for a first `npm start`: an operator, an active merchant with an
 * app that has every method enabled, and shared channel accounts on the
 * built-in simulators — with the credentials written to `demo.json` so a
 * newcomer can sign requests and sign in at once. A later start reuses them.
 */
export interface DemoCredentials {
  api_base: string;
  console_url: string;
  merchant_id: string;
  app_id: string;
  app_secret: string;
  webhook_secret: string;
  operator: { email: string; password: string; totp_secret: string; otpauth_uri: string };
  channel_accounts: Array<{ id: string; channel: string; methods: string[] }>;
  simulators: { alipay: string; wechatpay: string; unionpay: string };
}

export const demoMethods: PaymentMethod[] = ['alipay_qr', 'alipay_page', 'wechat_native', 'wechat_h5', 'unionpay_web', 'cashier'];

function readExisting(file: string): DemoCredentials | undefined {
  if (!existsSync(file)) return undefined;
  return JSON.parse(readFileSync(file, 'utf8')) as DemoCredentials;
}

export async function ensureDemoData(context: PlatformContext, simulators: RunningSimulators): Promise<{ file: string; credentials: DemoCredentials; created: boolean }> {
  const file = path.join(context.config.dataDirectory, 'demo.json');
  const existing = readExisting(file);
  if (existing) {
    const app = await context.db.selectFrom('apps').select('id').where('id', '=', existing.app_id).executeTakeFirst();
    if (app) {
      // The port may differ from the last start: the file always names where Fen is now.
      const credentials = { ...existing, api_base: context.config.publicUrl, console_url: `${context.config.publicUrl}/docs`, simulators: simulators.urls };
      writeFileSync(file, `${JSON.stringify(credentials, null, 2)}\n`, { mode: 0o600 });
      return { file, credentials, created: false };
    }
  }
  const password = randomBytes(12).toString('base64url');
  const operator = await createOperator(context, { email: `admin+${randomBytes(3).toString('hex')}@demo.fen`, name: 'Demo admin', password, roles: ['admin'] });
  const actor = { ...systemActor, type: 'operator' as const, id: operator.user.id, roles: ['admin'] };
  const merchant = await createMerchant(context, actor, {
    name: '杭州示例茶铺有限公司 (Demo tea shop)',
    short_name: '示例茶铺',
    business_licence_no: `91330100${randomBytes(5).toString('hex').toUpperCase()}`,
    legal_representative: '王小明',
    contact: { name: '王小明', phone: '13800000000', email: 'owner@tea.demo' },
    settlement_account: { bank_name: '中国工商银行杭州分行', account_name: '杭州示例茶铺有限公司', account_number: '6222021202004567890' },
    fee_plan: { rate_basis_points: 60, minimum_minor: 1, maximum_minor: null },
    settlement_cycle: 'T1',
    risk_level: 'normal',
  });
  await reviewMerchant(context, actor, merchant.id, { decision: 'approve', reason: 'demo merchant' });
  const accounts = [
    await connectAlipaySimulator(context, actor, simulators.alipay, { name: 'Alipay (simulator, shared)' }),
    await connectWechatpaySimulator(context, actor, simulators.wechatpay, { name: 'WeChat Pay (simulator, shared)' }),
    await connectUnionpaySimulator(context, actor, simulators.unionpay, { name: 'UnionPay (simulator, shared)' }),
  ];
  const app = await createApp(context, actor, merchant.id, { name: 'Demo tea shop', enabled_methods: demoMethods });
  const credentials: DemoCredentials = {
    api_base: context.config.publicUrl,
    console_url: `${context.config.publicUrl}/docs`,
    merchant_id: merchant.id,
    app_id: app.id,
    app_secret: app.app_secret,
    webhook_secret: app.webhook_secret,
    operator: { email: operator.user.email, password, totp_secret: operator.totpSecret, otpauth_uri: operator.otpauthUri },
    channel_accounts: accounts.map((account) => ({ id: account.id, channel: account.channel, methods: account.methods })),
    simulators: simulators.urls,
  };
  writeFileSync(file, `${JSON.stringify(credentials, null, 2)}\n`, { mode: 0o600 });
  return { file, credentials, created: true };
}
