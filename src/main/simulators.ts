import type pg from 'pg';
import type { FenConfig } from '../platform/config.js';
import type { PlatformContext } from '../platform/context.js';
import { createPlainPool } from '../platform/db/index.js';
import {
  createAlipaySimulator,
  createUnionpaySimulator,
  createWechatpaySimulator,
  type AlipaySimulator,
  type UnionpaySimulator,
  type WechatpaySimulator,
} from '../simulators/index.js';

/**
 * The channel simulators as a role: Alipay, WeChat Pay and UnionPay, each an
 * HTTP server of its own. Alipay listens on FEN_SIMULATOR_PORT, WeChat Pay on
 * the next port and UnionPay on the one after (or free ports when it is 0).
 * Their state lives in their own schemas of the same database, so `fen sim` can
 * run apart from the API and survive restarts.
 */
export interface RunningSimulators {
  name: string;
  alipay: AlipaySimulator;
  wechatpay: WechatpaySimulator;
  unionpay: UnionpaySimulator;
  urls: { alipay: string; wechatpay: string; unionpay: string };
  stop(): Promise<void>;
}

function portFor(config: FenConfig, offset: number): number {
  return config.simulator.port === 0 ? 0 : config.simulator.port + offset;
}

function publicBaseUrl(config: FenConfig, offset: number): { publicBaseUrl?: string } {
  return config.simulator.port === 0 ? {} : { publicBaseUrl: `http://${config.host}:${portFor(config, offset)}` };
}

export async function startSimulatorsRole(context: PlatformContext, config: FenConfig): Promise<RunningSimulators> {
  const pool: pg.Pool = createPlainPool(context.databaseUrl, 8, 'fen-sim');
  const common = { pool, timeScale: config.simulator.timeScale };
  const logger = context.logger.child({ role: 'simulator' });
  const alipay = await createAlipaySimulator({ ...common, ...publicBaseUrl(config, 0), logger: logger.child({ channel: 'alipay' }) });
  const wechatpay = await createWechatpaySimulator({ ...common, ...publicBaseUrl(config, 1), logger: logger.child({ channel: 'wechatpay' }) });
  const unionpay = await createUnionpaySimulator({ ...common, ...publicBaseUrl(config, 2), logger: logger.child({ channel: 'unionpay' }) });
  const urls = {
    alipay: await alipay.listen({ host: config.host, port: portFor(config, 0) }),
    wechatpay: await wechatpay.listen({ host: config.host, port: portFor(config, 1) }),
    unionpay: await unionpay.listen({ host: config.host, port: portFor(config, 2) }),
  };
  return {
    name: 'simulators',
    alipay,
    wechatpay,
    unionpay,
    urls,
    stop: async () => {
      await Promise.all([alipay.close(), wechatpay.close(), unionpay.close()]);
      await pool.end();
    },
  };
}
