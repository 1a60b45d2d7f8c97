import { randomInt } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { FenClient } from '../../sdk/index.js';
import { createApp, type CreateAppInput, type CreatedApp } from '../../src/apps/index.js';
import { createMerchant, reviewMerchant, type CreateMerchantInput, type MerchantView } from '../../src/merchants/index.js';
import type { Actor } from '../../src/platform/actor.js';
import type { PlatformContext } from '../../src/platform/context.js';

/**
 * Merchants, apps and signed merchant-API clients for tests. The client is the
 * real SDK, talking to the app through app.inject instead of the network, and
 * reading the time from the test's clock.
 */
export const testOperatorActor: Actor = { type: 'operator', id: 'usr_test', roles: ['admin'], ip: '127.0.0.1', merchantId: null };

const creditCodeCharacters = '0123456789ABCDEFGHJKLMNPQRTUWXY';

/** A random, well-formed unified social credit code, so every test merchant has its own licence. */
export function randomLicenceNumber(): string {
  const digits = Array.from({ length: 6 }, () => String(randomInt(10))).join('');
  const tail = Array.from({ length: 10 }, () => creditCodeCharacters[randomInt(creditCodeCharacters.length)]).join('');
  return `91${digits}${tail}`;
}

export const testAccountNumber = '6222020200112233445';

export function merchantInput(overrides: Partial<CreateMerchantInput> = {}): CreateMerchantInput {
  return {
    name: '杭州测试商户有限公司',
    short_name: '测试商户',
    business_licence_no: randomLicenceNumber(),
    legal_representative: '张三',
    contact: { name: '李四', phone: '13800138000', email: 'ops@merchant.test' },
    settlement_account: { bank_name: '中国工商银行杭州分行', account_name: '杭州测试商户有限公司', account_number: testAccountNumber },
    fee_plan: { rate_basis_points: 60, minimum_minor: 1, maximum_minor: 5000 },
    settlement_cycle: 'T1',
    risk_level: 'normal',
    ...overrides,
  };
}

export async function createActiveMerchant(context: PlatformContext, overrides: Partial<CreateMerchantInput> = {}): Promise<MerchantView> {
  const merchant = await createMerchant(context, testOperatorActor, merchantInput(overrides));
  return reviewMerchant(context, testOperatorActor, merchant.id, { decision: 'approve' });
}

export async function createActiveApp(
  context: PlatformContext,
  options: { merchantId?: string; input?: Partial<CreateAppInput> } = {},
): Promise<CreatedApp> {
  const merchantId = options.merchantId ?? (await createActiveMerchant(context)).id;
  return createApp(context, testOperatorActor, merchantId, { name: 'Test shop', notify_url: 'https://shop.test/notify', enabled_methods: ['alipay_qr', 'cashier'], ...options.input });
}

/** A fetch for the SDK that goes through app.inject; `remoteAddress` sets the caller's IP. */
export function injectFetch(app: FastifyInstance, options: { remoteAddress?: string } = {}) {
  return async (url: string, init: { method: string; headers: Record<string, string>; body?: string }) => {
    const target = new URL(url);
    const response = await app.inject({
      method: init.method as 'GET',
      url: `${target.pathname}${target.search}`,
      headers: init.headers,
      ...(init.body === undefined ? {} : { payload: init.body }),
      ...(options.remoteAddress ? { remoteAddress: options.remoteAddress } : {}),
    });
    return {
      status: response.statusCode,
      headers: {
        get: (name: string) => {
          const value = response.headers[name.toLowerCase()];
          return value === undefined ? null : String(value);
        },
      },
      text: async () => response.body,
    };
  };
}

export function signedClient(
  app: FastifyInstance,
  context: PlatformContext,
  credentials: { appId: string; appSecret: string; remoteAddress?: string },
): FenClient {
  return new FenClient({
    baseUrl: 'http://fen.test',
    appId: credentials.appId,
    appSecret: credentials.appSecret,
    fetch: injectFetch(app, { remoteAddress: credentials.remoteAddress }),
    now: () => context.clock.now(),
  });
}
