import { createPublicKey } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type pg from 'pg';
import { pino } from 'pino';
import { z } from 'zod';
import { systemClock, type Clock } from '../../platform/clock.js';
import type { Logger } from '../../platform/logging.js';
import { badRequest, registerSharedAdminRoutes, requireAdminToken } from '../shared/admin-routes.js';
import { DeliveryLoop } from '../shared/delivery-loop.js';
import { openSimulatorPool } from '../shared/transactions.js';
import { handleApiRequest, handleBillDownload, type ApiContext, type ApiOutcome, type ApiRequest } from './api.js';
import { billUrlSecret, defaultWechatpayBillSettings, type BillFileReply } from './bills.js';
import type { ApiOperation } from './faults.js';
import { clearFaults, faultSettingSchema, insertFault, listFaults, type ActiveFault, type FaultSetting } from './faults.js';
import { deliverDueNotifications, type DeliveryReport, type NotifierContext } from './notifier.js';
import { messagePage, payerPage } from './payer-page.js';
import { jsapiSignContent, newRequestId, signedHeaders, verifySha256Rsa, type PlatformKey } from './protocol.js';
import {
  ensureSchema,
  findMerchantKeys,
  findRefund,
  findTrade,
  loadPlatformKey,
  upsertMerchant,
  upsertMerchantKey,
  withTransaction,
  type SimRefund,
  type SimTrade,
} from './store.js';
import { completeRefunds, payTrade } from './trades.js';

/**
 * The WeChat Pay simulator: a Fastify server of its own that speaks WeChat Pay
 * API v3, so wechatpay-axios-plugin — and therefore Fen — talks to it as to
 * api.mch.weixin.qq.com: register a merchant (registerMerchant or
 * POST /__sim/merchants) with its APIv3 key and API certificate's public key
 * and serial, point the SDK's baseURL at the simulator with its platform
 * public key and PUB_KEY_ID_… (GET /__sim/platform-key), pay on the payer
 * page (/wechatpay/pay/<token>), and steer misbehaviour with fault switches
 * (setFault or POST /__sim/faults).
 */

export interface WechatpaySimulatorOptions {
  /** A pool on the database that holds (or will hold) the `sim_wechatpay` schema… */
  pool?: pg.Pool;
  /** …or a URL to open one; the simulator then closes it itself. */
  databaseUrl?: string;
  /** Where payers and Fen reach the simulator; defaults to the address it listens on. */
  publicBaseUrl?: string;
  /** The simulator's time: orders, expiry, refunds, the notification schedule and notification signatures. */
  clock?: Clock;
  /** Multiplies WeChat Pay's notification retry delays and refund durations (0.001: 3 minutes become 180 ms). Default 1. */
  timeScale?: number;
  /** How long a refund stays PROCESSING before it completes, before timeScale. Default 60 s. */
  refundDurationMs?: number;
  logger?: Logger;
  /** The simulator's platform key pair and PUB_KEY_ID_…; by default one is made on first start and kept in the schema. */
  platformKey?: PlatformKey;
  /** When set, `/__sim/*` requires the header `x-sim-admin-token`. */
  adminToken?: string;
  /** How often the delivery loop looks for due refunds and notifications. Default 500 ms. */
  pollIntervalMs?: number;
  /** How long one notification POST may take. Default 10 s. */
  notificationTimeoutMs?: number;
  /** Trade bills: WeChat Pay's fee in basis points (default 60, i.e. 0.6%), written to five decimal places. */
  billFeeRateBasisPoints?: bigint;
  /** How long after a Beijing day ends its bill can be requested (default 10 h: 10:00 the next morning). */
  billAvailableAfterMs?: number;
  /** How long a bill's download_url stays valid (default 5 minutes). */
  billUrlLifetimeMs?: number;
}

export interface RegisterMerchantInput {
  mchId: string;
  /** The merchant's 32-character APIv3 key, which notifications are encrypted with. */
  apiV3Key: string;
  /** The serial number of the merchant's API certificate, as sent in its Authorization header. */
  merchantSerialNo: string;
  /** The public half of the merchant's API key. */
  merchantPublicKeyPem: string;
  /** The AppIDs bound to the merchant; absent or empty: any AppID is accepted. */
  appIds?: string[];
}

export interface CompletionAndDeliveryReport extends DeliveryReport {
  /** Refunds that came due and completed in this pass. */
  refundsCompleted: number;
}

export interface WechatpaySimulator {
  readonly app: FastifyInstance;
  /** "WeChat Pay's public key": configure it in Fen as the account's platformPublicKeyPem… */
  readonly platformPublicKeyPem: string;
  /** …with this as its platformPublicKeyId. */
  readonly platformPublicKeyId: string;
  /** The SDK's baseURL. */
  readonly baseUrl: string;
  /** Listens and (unless told not to) starts the delivery loop; returns the base URL. */
  listen(options?: { host?: string; port?: number; deliveryLoop?: boolean }): Promise<string>;
  close(): Promise<void>;
  registerMerchant(input: RegisterMerchantInput): Promise<void>;
  setFault(setting: FaultSetting): Promise<ActiveFault>;
  clearFaults(filter?: { id?: number; outTradeNo?: string }): Promise<number>;
  listFaults(): Promise<ActiveFault[]>;
  /** One pass of the loop at the clock's current time: refunds that came due complete, then notifications go out. */
  deliverDueNotifications(): Promise<CompletionAndDeliveryReport>;
  /** Completes processing refunds now, whatever their time (all, or one by number); returns how many. */
  completeRefunds(filter?: { outRefundNo?: string; mchId?: string }): Promise<number>;
  startDeliveryLoop(): void;
  stopDeliveryLoop(): Promise<void>;
  findTrade(outTradeNo: string, mchId?: string): Promise<SimTrade | undefined>;
  findRefund(outRefundNo: string, mchId?: string): Promise<SimRefund | undefined>;
}

const defaultPollIntervalMs = 500;
const defaultNotificationTimeoutMs = 10_000;
const defaultRefundDurationMs = 60_000;
const requestBodyBytesMax = 256 * 1024;

interface ServerParts {
  app: FastifyInstance;
  context: ApiContext;
  platformKey: PlatformKey;
  holds: AbortController;
  adminToken: string | undefined;
}

async function holdFor(durationMs: number, signal: AbortSignal): Promise<void> {
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, durationMs);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Every answer is signed with the real time, because the SDK compares it with its own Date.now(). */
function sendApiOutcome(reply: FastifyReply, outcome: ApiOutcome, platformKey: PlatformKey, wallClock: Clock): FastifyReply {
  if (outcome.kind === 'http_error') {
    return reply.code(outcome.httpStatus).type('text/html; charset=utf-8').send(`<html><body><h1>${outcome.httpStatus} Bad Gateway</h1></body></html>`);
  }
  const text = outcome.reply.body === undefined ? '' : JSON.stringify(outcome.reply.body);
  void reply.code(outcome.reply.httpStatus).headers({ ...signedHeaders(text, platformKey, wallClock.now()), 'Request-ID': newRequestId() });
  if (outcome.reply.httpStatus === 204) return reply.send();
  return reply.type('application/json; charset=utf-8').send(text);
}

/** JSON bodies stay text: the merchant signed the exact bytes, so they are verified before anything parses them. */
function registerBodyParsing(app: FastifyInstance): void {
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: requestBodyBytesMax }, (_request, body, done) => done(null, body));
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: requestBodyBytesMax }, (_request, body, done) => done(null, body));
}

/** A bill file goes back as it is: WeChat Pay does not sign downloads. */
function sendBillFile(reply: FastifyReply, file: BillFileReply): FastifyReply {
  return reply
    .code(200)
    .headers({ 'Request-ID': newRequestId(), 'content-disposition': `attachment; filename="${encodeURIComponent(file.fileName)}"` })
    .type('application/octet-stream')
    .send(file.body);
}

function registerApi({ app, context, platformKey, holds }: ServerParts): void {
  const apiRequest = (request: FastifyRequest, operation: ApiOperation, numberParameter?: 'outTradeNo' | 'outRefundNo'): ApiRequest => {
    const params = request.params as Record<string, string | undefined>;
    return {
      operation,
      httpMethod: request.method,
      url: request.url,
      authorization: request.headers.authorization,
      rawBody: typeof request.body === 'string' ? request.body : '',
      pathNumber: numberParameter ? params[numberParameter] : undefined,
      query: request.query as Record<string, string>,
    };
  };
  const route = (operation: ApiOperation, numberParameter?: 'outTradeNo' | 'outRefundNo') => async (request: FastifyRequest, reply: FastifyReply) => {
    const outcome = await handleApiRequest(context, apiRequest(request, operation, numberParameter));
    if (outcome.kind === 'reply' && outcome.holdMs !== undefined) await holdFor(outcome.holdMs, holds.signal);
    return sendApiOutcome(reply, outcome, platformKey, context.wallClock);
  };
  app.post('/v3/pay/transactions/native', route('native'));
  app.post('/v3/pay/transactions/h5', route('h5'));
  app.post('/v3/pay/transactions/jsapi', route('jsapi'));
  app.get('/v3/pay/transactions/out-trade-no/:outTradeNo', route('query', 'outTradeNo'));
  app.post('/v3/pay/transactions/out-trade-no/:outTradeNo/close', route('close', 'outTradeNo'));
  app.post('/v3/refund/domestic/refunds', route('refund'));
  app.get('/v3/refund/domestic/refunds/:outRefundNo', route('refund_query', 'outRefundNo'));
  app.get('/v3/bill/tradebill', route('tradebill'));
  // Where download_url points, as WeChat Pay serves its bill files.
  app.get('/v3/billdownload/file', async (request, reply) => {
    const outcome = await handleBillDownload(context, apiRequest(request, 'bill_download'));
    if (outcome.kind !== 'http_error' && outcome.holdMs !== undefined) await holdFor(outcome.holdMs, holds.signal);
    return outcome.kind === 'file' ? sendBillFile(reply, outcome) : sendApiOutcome(reply, outcome, platformKey, context.wallClock);
  });
  app.setNotFoundHandler((request, reply) => {
    const outcome: ApiOutcome = { kind: 'reply', reply: { httpStatus: 404, body: { code: 'NOT_FOUND', message: '请求的资源不存在' } } };
    if (request.url.startsWith('/v3/')) return sendApiOutcome(reply, outcome, platformKey, context.wallClock);
    return reply.code(404).type('text/html; charset=utf-8').send(messagePage('Not found', '没有这个页面 · No such page'));
  });
}

function registerPayerPages({ app, context }: ServerParts): void {
  const redirectOf = (request: FastifyRequest) => (request.query as { redirect_url?: string }).redirect_url || undefined;
  const withRedirect = (path: string, request: FastifyRequest, extra = '') => {
    const redirectUrl = redirectOf(request);
    const query = [extra, redirectUrl ? `redirect_url=${encodeURIComponent(redirectUrl)}` : ''].filter(Boolean).join('&');
    return query ? `${path}?${query}` : path;
  };
  const tradeFor = async (request: FastifyRequest, reply: FastifyReply): Promise<SimTrade | undefined> => {
    const trade = await findTrade(context.pool, { payerToken: (request.params as { token: string }).token });
    if (!trade) void reply.code(404).type('text/html; charset=utf-8').send(messagePage('Not found', '没有这笔订单 · No such order'));
    return trade;
  };
  app.get('/wechatpay/pay/:token', async (request, reply) => {
    const trade = await tradeFor(request, reply);
    if (!trade) return reply;
    const options = { cancelled: (request.query as { cancelled?: string }).cancelled === '1', redirectUrl: redirectOf(request) };
    return reply.type('text/html; charset=utf-8').send(payerPage(trade, options));
  });
  // The h5_url opens the same page; WeChat's H5 cashier takes redirect_url the same way.
  app.get('/wechatpay/h5/:token', async (request, reply) => reply.redirect(withRedirect(`/wechatpay/pay/${(request.params as { token: string }).token}`, request), 302));
  app.post('/wechatpay/pay/:token/pay', async (request, reply) => {
    const trade = await tradeFor(request, reply);
    if (!trade) return reply;
    await payTrade(context, trade);
    return reply.redirect(withRedirect(`/wechatpay/pay/${trade.payerToken}`, request), 303);
  });
  // WeChat Pay leaves an order open when the payer gives up; only the merchant's close or expiry ends it.
  app.post('/wechatpay/pay/:token/cancel', async (request, reply) => {
    const trade = await tradeFor(request, reply);
    if (!trade) return reply;
    return reply.redirect(withRedirect(`/wechatpay/pay/${trade.payerToken}`, request, 'cancelled=1'), 303);
  });
  app.get('/wechatpay/jsapi', async (request, reply) => openJsapiPayment(context.pool, request, reply));
}

/**
 * What WeChat's client does with a JSAPI payment's parameters: checks
 * paySign with the merchant's key, then shows the order. Here the parameters
 * arrive as a query string (appId, timeStamp, nonceStr, package, signType, paySign).
 */
async function openJsapiPayment(pool: pg.Pool, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const parameters = request.query as Record<string, string | undefined>;
  const refuse = (message: string) => reply.code(400).type('text/html; charset=utf-8').send(messagePage('Error', message));
  const prepayId = /^prepay_id=(.+)$/.exec(parameters.package ?? '')?.[1];
  const trade = prepayId ? await findTrade(pool, { prepayId }) : undefined;
  if (!trade || parameters.appId !== trade.appId) return refuse('没有这笔订单 · No such order');
  const content = jsapiSignContent(parameters.appId, parameters.timeStamp ?? '', parameters.nonceStr ?? '', parameters.package ?? '');
  const keys = [...(await findMerchantKeys(pool, trade.mchId)).values()];
  if (parameters.signType !== 'RSA' || !keys.some((key) => verifySha256Rsa(content, parameters.paySign ?? '', key))) return refuse('签名错误 · Invalid paySign');
  return reply.redirect(`/wechatpay/pay/${trade.payerToken}`, 302);
}

const registerMerchantSchema = z.object({
  mchId: z.string().regex(/^\d{8,12}$/),
  apiV3Key: z.string().regex(/^[\x21-\x7e]{32}$/),
  merchantSerialNo: z.string().regex(/^[0-9A-Fa-f]{8,64}$/),
  merchantPublicKeyPem: z.string().min(100).max(4096),
  appIds: z.array(z.string().min(1).max(32)).max(20).optional(),
});

function jsonBody(request: FastifyRequest): unknown {
  if (typeof request.body !== 'string' || request.body === '') return undefined;
  try {
    return JSON.parse(request.body) as unknown;
  } catch {
    return undefined;
  }
}

/** Bigints as decimal strings, for the admin API's JSON. */
function plain(value: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, typeof item === 'bigint' ? item.toString() : item]));
}

function registerAdmin(parts: ServerParts, simulator: () => WechatpaySimulator): void {
  const { app, adminToken } = parts;
  requireAdminToken(app, adminToken);
  registerSharedAdminRoutes(app, { settingSchema: faultSettingSchema, orderKey: 'outTradeNo', body: (request) => jsonBody(request), simulator });
  app.get('/__sim/platform-key', async () => ({ publicKeyId: simulator().platformPublicKeyId, publicKeyPem: simulator().platformPublicKeyPem, baseUrl: simulator().baseUrl }));
  app.post('/__sim/merchants', async (request, reply) => {
    const parsed = registerMerchantSchema.safeParse(jsonBody(request));
    if (!parsed.success) return badRequest(reply, parsed.error);
    await simulator().registerMerchant(parsed.data);
    return reply.code(201).send({ mchId: parsed.data.mchId });
  });
  app.post('/__sim/refunds/complete', async (request) => {
    const { outRefundNo } = request.query as { outRefundNo?: string };
    return { completed: await simulator().completeRefunds(outRefundNo ? { outRefundNo } : {}) };
  });
  app.get('/__sim/trades/:outTradeNo', async (request, reply) => {
    const trade = await simulator().findTrade((request.params as { outTradeNo: string }).outTradeNo);
    return trade ? plain(trade) : reply.code(404).send({ error: 'no such trade' });
  });
}

async function registerSimulatorMerchant(pool: pg.Pool, clock: Clock, input: RegisterMerchantInput): Promise<void> {
  const parsed = registerMerchantSchema.parse(input);
  // A key that does not parse would only fail later, as SIGN_ERROR on every request; refuse it now.
  const publicKeyPem = createPublicKey(parsed.merchantPublicKeyPem).export({ type: 'spki', format: 'pem' }).toString();
  await withTransaction(pool, async (client) => {
    await upsertMerchant(client, { mchId: parsed.mchId, apiV3Key: parsed.apiV3Key, appIds: parsed.appIds ?? [] }, clock.now());
    await upsertMerchantKey(client, parsed.mchId, parsed.merchantSerialNo, publicKeyPem, clock.now());
  });
}

function createApiContext(
  pool: pg.Pool,
  clock: Clock,
  platformKey: PlatformKey,
  logger: Logger,
  options: WechatpaySimulatorOptions,
  publicBaseUrl: () => string,
): ApiContext {
  const notifier: NotifierContext = {
    pool,
    clock,
    timeScale: options.timeScale ?? 1,
    platformKey,
    logger,
    requestTimeoutMs: options.notificationTimeoutMs ?? defaultNotificationTimeoutMs,
  };
  const bills = {
    feeRateBasisPoints: options.billFeeRateBasisPoints ?? defaultWechatpayBillSettings.feeRateBasisPoints,
    availableAfterMs: options.billAvailableAfterMs ?? defaultWechatpayBillSettings.availableAfterMs,
    urlLifetimeMs: options.billUrlLifetimeMs ?? defaultWechatpayBillSettings.urlLifetimeMs,
    urlSecret: billUrlSecret(platformKey.privateKeyPem),
  };
  // Request signatures are made with the real time whatever the simulator's clock says, so they are checked against it.
  return { pool, clock, notifier, refundDurationMs: options.refundDurationMs ?? defaultRefundDurationMs, wallClock: systemClock, publicBaseUrl, bills };
}

/** Creates the schema if needed, loads or makes the platform key, and builds the server (not yet listening). */
export async function createWechatpaySimulator(options: WechatpaySimulatorOptions): Promise<WechatpaySimulator> {
  if (!options.pool && !options.databaseUrl) throw new Error('the WeChat Pay simulator needs a pool or a databaseUrl');
  const { pool, ownPool } = openSimulatorPool(options);
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? pino({ level: 'info', base: { service: 'wechatpay-simulator' } });
  await ensureSchema(pool);
  const platformKey = await loadPlatformKey(pool, options.platformKey);
  let baseUrl = options.publicBaseUrl?.replace(/\/$/, '') ?? 'http://127.0.0.1';
  const context = createApiContext(pool, clock, platformKey, logger, options, () => baseUrl);
  const notifier = context.notifier;
  const app = Fastify({ logger: false, bodyLimit: requestBodyBytesMax });
  const holds = new AbortController();
  const parts: ServerParts = { app, context, platformKey, holds, adminToken: options.adminToken };
  const pass = async (): Promise<CompletionAndDeliveryReport> => {
    const refundsCompleted = await completeRefunds(context, { dueBy: clock.now() });
    return { ...(await deliverDueNotifications(notifier)), refundsCompleted };
  };
  const loop = new DeliveryLoop(pass, logger, options.pollIntervalMs ?? defaultPollIntervalMs, 'wechatpay simulator delivery pass failed');
  notifier.onScheduled = () => loop.kick();

  const simulator: WechatpaySimulator = {
    app,
    platformPublicKeyPem: platformKey.publicKeyPem,
    platformPublicKeyId: platformKey.publicKeyId,
    get baseUrl() {
      return baseUrl;
    },
    async listen(listenOptions = {}) {
      const address = await app.listen({ host: listenOptions.host ?? '127.0.0.1', port: listenOptions.port ?? 0 });
      if (!options.publicBaseUrl) baseUrl = address.replace('[::1]', 'localhost');
      if (listenOptions.deliveryLoop !== false) loop.start();
      logger.info({ baseUrl, platformPublicKeyId: platformKey.publicKeyId }, 'wechatpay simulator listening');
      return baseUrl;
    },
    async close() {
      holds.abort();
      await loop.stop();
      await app.close();
      if (ownPool) await ownPool.end();
    },
    registerMerchant: (input) => registerSimulatorMerchant(pool, clock, input),
    setFault: (setting) => insertFault(pool, setting, clock.now()),
    clearFaults: (filter) => clearFaults(pool, filter),
    listFaults: () => listFaults(pool),
    deliverDueNotifications: pass,
    completeRefunds: (filter = {}) => completeRefunds(context, filter),
    startDeliveryLoop: () => loop.start(),
    stopDeliveryLoop: () => loop.stop(),
    findTrade: (outTradeNo, mchId) => findTrade(pool, { outTradeNo, mchId }),
    findRefund: (outRefundNo, mchId) => findRefund(pool, { outRefundNo, mchId }),
  };

  registerBodyParsing(app);
  registerApi(parts);
  registerPayerPages(parts);
  registerAdmin(parts, () => simulator);
  return simulator;
}
