import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type pg from 'pg';
import { pino } from 'pino';
import { z } from 'zod';
import { systemClock, type Clock } from '../../platform/clock.js';
import type { Logger } from '../../platform/logging.js';
import { badRequest, registerSharedAdminRoutes, requireAdminToken } from '../shared/admin-routes.js';
import { DeliveryLoop } from '../shared/delivery-loop.js';
import { openSimulatorPool } from '../shared/transactions.js';
import { cashierPage, messagePage } from './cashier.js';
import { clearFaults, insertFault, listFaults, type ActiveFault, type FaultSetting, faultSettingSchema } from './faults.js';
import { billUrlSecret, defaultBillSettings, serveBillDownload } from './bills.js';
import { handleGatewayRequest, type GatewayContext, type GatewayReply } from './gateway.js';
import { deliverDueNotifications, type DeliveryReport, type NotifierContext } from './notifier.js';
import { beijingTime, newBuyerId, notificationSignContent, signRsa2, signedResponseText, signTypeRsa2, yuanFromFen } from './protocol.js';
import { ensureSchema, findApp, findTrade, loadSigningKey, upsertApp, type SigningKey, type SimTrade } from './store.js';
import { closeWaitingTrade, openTrade, payTrade } from './trades.js';

/**
 * The Alipay simulator: a Fastify server of its own that speaks Alipay's
 * openapi gateway protocol, so the official alipay-sdk — and therefore Fen —
 * talks to it as to Alipay: register an app's public key (registerApp or
 * POST /__sim/apps), point the SDK's gateway at `<base>/gateway.do` with the
 * simulator's public key (GET /__sim/public-key), pay on the payer pages
 * (/alipay/qr/<token>, /alipay/cashier/<token>), and steer misbehaviour with
 * fault switches (setFault or POST /__sim/faults).
 */

export interface AlipaySimulatorOptions {
  /** A pool on the database that holds (or will hold) the `sim_alipay` schema… */
  pool?: pg.Pool;
  /** …or a URL to open one; the simulator then closes it itself. */
  databaseUrl?: string;
  /** Where payers and Fen reach the simulator; defaults to the address it listens on. */
  publicBaseUrl?: string;
  clock?: Clock;
  /** Multiplies Alipay's notification retry delays (0.001: four minutes become 240 ms). Default 1. */
  timeScale?: number;
  logger?: Logger;
  /** The simulator's ("Alipay's") key pair; by default one is made on first start and kept in the schema. */
  signingKey?: SigningKey;
  /** When set, `/__sim/*` requires the header `x-sim-admin-token`. */
  adminToken?: string;
  /** How often the delivery loop looks for due notifications. Default 500 ms. */
  pollIntervalMs?: number;
  /** How long one notification POST may take. Default 10 s. */
  notificationTimeoutMs?: number;
  /** Trade bills: Alipay's service fee in basis points (default 60, i.e. 0.6%, half-up per line). */
  billFeeRateBasisPoints?: bigint;
  /** How long after a Beijing day ends its bill can be downloaded (default 9 h: 09:00 the next morning). */
  billAvailableAfterMs?: number;
  /** How long a bill download URL stays valid (default 30 s, as Alipay's). */
  billUrlLifetimeMs?: number;
}

export interface RegisterAppInput {
  appId: string;
  /** The app's RSA public key (PEM, or Alipay's bare base64). */
  publicKeyPem: string;
  sellerId?: string;
  sellerEmail?: string;
}

export interface AlipaySimulator {
  readonly app: FastifyInstance;
  /** "Alipay's public key": configure it in Fen as the account's alipayPublicKeyPem. */
  readonly publicKeyPem: string;
  readonly baseUrl: string;
  readonly gatewayUrl: string;
  /** Listens and (unless told not to) starts the notification loop; returns the base URL. */
  listen(options?: { host?: string; port?: number; deliveryLoop?: boolean }): Promise<string>;
  close(): Promise<void>;
  registerApp(input: RegisterAppInput): Promise<void>;
  setFault(setting: FaultSetting): Promise<ActiveFault>;
  clearFaults(filter?: { id?: number; outTradeNo?: string }): Promise<number>;
  listFaults(): Promise<ActiveFault[]>;
  /** One pass of the notification loop at the clock's current time. */
  deliverDueNotifications(): Promise<DeliveryReport>;
  startDeliveryLoop(): void;
  stopDeliveryLoop(): void;
  findTrade(outTradeNo: string, appId?: string): Promise<SimTrade | undefined>;
}

const defaultPollIntervalMs = 500;
const defaultNotificationTimeoutMs = 10_000;
const requestBodyBytesMax = 256 * 1024;

function asPublicKeyPem(key: string): string {
  if (key.includes('BEGIN')) return key;
  const body = key.replace(/\s+/g, '').match(/.{1,64}/g)?.join('\n') ?? '';
  return `-----BEGIN PUBLIC KEY-----\n${body}\n-----END PUBLIC KEY-----\n`;
}

/** Query string and form body merged, as Alipay reads a gateway request (the SDK splits them). */
function gatewayParameters(request: FastifyRequest): Record<string, string> {
  const query = Object.fromEntries(new URL(request.url, 'http://simulator').searchParams);
  const body = typeof request.body === 'object' && request.body !== null ? (request.body as Record<string, string>) : {};
  return { ...query, ...body };
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

function sendGatewayReply(reply: FastifyReply, answer: GatewayReply, signingKey: SigningKey): FastifyReply {
  switch (answer.kind) {
    case 'json':
      return reply.type('application/json;charset=utf-8').send(signedResponseText(answer.responseKey, answer.body, signingKey.privateKeyPem));
    case 'redirect':
      return reply.redirect(answer.location, 302);
    case 'html':
      return reply.code(answer.statusCode).type('text/html; charset=utf-8').send(messagePage(answer.title, answer.message));
    case 'http_error':
      return reply.code(answer.statusCode).type('text/html; charset=utf-8').send(`<html><body><h1>${answer.statusCode} Bad Gateway</h1></body></html>`);
  }
}

/** The signed synchronous return to the merchant's return_url after a page payment, as Alipay redirects. */
function returnLinkFor(trade: SimTrade, sellerId: string, now: Date, privateKeyPem: string): string | undefined {
  if (!trade.returnUrl || trade.status !== 'TRADE_SUCCESS') return undefined;
  const fields: Record<string, string> = {
    method: 'alipay.trade.page.pay.return',
    app_id: trade.appId,
    auth_app_id: trade.appId,
    charset: 'utf-8',
    version: '1.0',
    timestamp: beijingTime(now),
    out_trade_no: trade.outTradeNo,
    trade_no: trade.tradeNo,
    total_amount: yuanFromFen(trade.totalFen),
    seller_id: sellerId,
  };
  const sign = signRsa2(notificationSignContent(fields), privateKeyPem);
  const url = new URL(trade.returnUrl);
  for (const [name, value] of Object.entries({ ...fields, sign, sign_type: signTypeRsa2 })) url.searchParams.set(name, value);
  return url.toString();
}

interface ServerParts {
  app: FastifyInstance;
  context: GatewayContext;
  signingKey: SigningKey;
  holds: AbortController;
  adminToken: string | undefined;
}

function registerBodyParsing(app: FastifyInstance): void {
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: requestBodyBytesMax }, (_request, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(body as string)));
  });
}

function registerGateway({ app, context, signingKey, holds }: ServerParts): void {
  const handle = async (request: FastifyRequest, reply: FastifyReply) => {
    const outcome = await handleGatewayRequest(context, gatewayParameters(request));
    if (outcome.holdMs !== undefined) await holdFor(outcome.holdMs, holds.signal);
    return sendGatewayReply(reply, outcome.reply, signingKey);
  };
  app.post('/gateway.do', handle);
  app.get('/gateway.do', handle);
  // Where bill_download_url points, as Alipay's bill centre serves its zips.
  app.get('/downloadBillFile.resource', async (request, reply) => {
    const download = await serveBillDownload(context, request.query as Record<string, string | undefined>);
    if (download.fileName) void reply.header('content-disposition', `attachment; filename="${encodeURIComponent(download.fileName)}"`);
    return reply.code(download.statusCode).type(download.contentType).send(download.body);
  });
}

function registerPayerPages({ app, context, signingKey }: ServerParts): void {
  const tradeFor = async (request: FastifyRequest, reply: FastifyReply): Promise<SimTrade | undefined> => {
    const { token } = request.params as { token: string };
    const trade = await findTrade(context.pool, { payerToken: token });
    if (!trade) void reply.code(404).type('text/html; charset=utf-8').send(messagePage('Not found', '没有这笔交易 · No such order'));
    return trade;
  };
  // Opening the QR code is the payer's scan: from now on Alipay's query knows the trade.
  app.get('/alipay/qr/:token', async (request, reply) => {
    const trade = await tradeFor(request, reply);
    if (!trade) return reply;
    await openTrade(context, trade);
    return reply.redirect(`/alipay/cashier/${trade.payerToken}`, 302);
  });
  app.get('/alipay/cashier/:token', async (request, reply) => {
    const found = await tradeFor(request, reply);
    if (!found) return reply;
    const trade = await openTrade(context, found);
    const app = await findApp(context.pool, trade.appId);
    const returnLink = app ? returnLinkFor(trade, app.sellerId, context.clock.now(), signingKey.privateKeyPem) : undefined;
    return reply.type('text/html; charset=utf-8').send(cashierPage(trade, returnLink));
  });
  app.post('/alipay/cashier/:token/pay', async (request, reply) => {
    const trade = await tradeFor(request, reply);
    if (!trade) return reply;
    await payTrade(context, trade);
    return reply.redirect(`/alipay/cashier/${trade.payerToken}`, 303);
  });
  app.post('/alipay/cashier/:token/cancel', async (request, reply) => {
    const trade = await tradeFor(request, reply);
    if (!trade) return reply;
    const opened = await openTrade(context, trade);
    if (opened.status === 'WAIT_BUYER_PAY') await closeWaitingTrade(context, opened);
    return reply.redirect(`/alipay/cashier/${trade.payerToken}`, 303);
  });
}

const registerAppSchema = z.object({
  appId: z.string().regex(/^\d{1,32}$/),
  publicKeyPem: z.string().min(100).max(4096),
  sellerId: z.string().regex(/^2088\d{12}$/).optional(),
  sellerEmail: z.string().max(128).optional(),
});

function registerAdmin(parts: ServerParts, simulator: () => AlipaySimulator): void {
  const { app, adminToken } = parts;
  requireAdminToken(app, adminToken);
  registerSharedAdminRoutes(app, { settingSchema: faultSettingSchema, orderKey: 'outTradeNo', body: (request) => request.body, simulator });
  app.get('/__sim/public-key', async () => ({ publicKeyPem: simulator().publicKeyPem, gatewayUrl: simulator().gatewayUrl }));
  app.post('/__sim/apps', async (request, reply) => {
    const parsed = registerAppSchema.safeParse(request.body);
    if (!parsed.success) return badRequest(reply, parsed.error);
    await simulator().registerApp(parsed.data);
    return reply.code(201).send({ appId: parsed.data.appId });
  });
  app.get('/__sim/trades/:outTradeNo', async (request, reply) => {
    const trade = await simulator().findTrade((request.params as { outTradeNo: string }).outTradeNo);
    if (!trade) return reply.code(404).send({ error: 'no such trade' });
    return { ...trade, totalAmount: yuanFromFen(trade.totalFen), refundedAmount: yuanFromFen(trade.refundedFen), totalFen: undefined, refundedFen: undefined };
  });
}

function createNotifierContext(pool: pg.Pool, clock: Clock, signingKey: SigningKey, logger: Logger, options: AlipaySimulatorOptions): NotifierContext {
  return {
    pool,
    clock,
    timeScale: options.timeScale ?? 1,
    signingPrivateKeyPem: signingKey.privateKeyPem,
    logger,
    requestTimeoutMs: options.notificationTimeoutMs ?? defaultNotificationTimeoutMs,
  };
}

async function registerSimulatorApp(pool: pg.Pool, clock: Clock, input: RegisterAppInput): Promise<void> {
  const existing = await findApp(pool, input.appId);
  const app = {
    appId: input.appId,
    publicKeyPem: asPublicKeyPem(input.publicKeyPem),
    sellerId: input.sellerId ?? existing?.sellerId ?? newBuyerId(),
    sellerEmail: input.sellerEmail ?? existing?.sellerEmail ?? `merchant-${input.appId}@example.com`,
  };
  await upsertApp(pool, app, clock.now());
}

/** Creates the schema if needed, loads or makes the signing key, and builds the server (not yet listening). */
export async function createAlipaySimulator(options: AlipaySimulatorOptions): Promise<AlipaySimulator> {
  if (!options.pool && !options.databaseUrl) throw new Error('the Alipay simulator needs a pool or a databaseUrl');
  const { pool, ownPool } = openSimulatorPool(options, 'fen-sim-alipay');
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? pino({ level: 'silent' });
  await ensureSchema(pool);
  const signingKey = await loadSigningKey(pool, options.signingKey);
  let baseUrl = options.publicBaseUrl?.replace(/\/$/, '') ?? 'http://127.0.0.1';
  const notifier = createNotifierContext(pool, clock, signingKey, logger, options);
  const bills = {
    feeRateBasisPoints: options.billFeeRateBasisPoints ?? defaultBillSettings.feeRateBasisPoints,
    availableAfterMs: options.billAvailableAfterMs ?? defaultBillSettings.availableAfterMs,
    urlLifetimeMs: options.billUrlLifetimeMs ?? defaultBillSettings.urlLifetimeMs,
    urlSecret: billUrlSecret(signingKey.privateKeyPem),
  };
  const context: GatewayContext = { pool, clock, notifier, publicBaseUrl: () => baseUrl, bills };
  const app = Fastify({ logger: false, bodyLimit: requestBodyBytesMax });
  const holds = new AbortController();
  const parts: ServerParts = { app, context, signingKey, holds, adminToken: options.adminToken };
  const loop = new DeliveryLoop(() => deliverDueNotifications(notifier), logger, options.pollIntervalMs ?? defaultPollIntervalMs, 'alipay simulator delivery pass failed');
  notifier.onScheduled = () => loop.kick();

  const simulator: AlipaySimulator = {
    app,
    publicKeyPem: signingKey.publicKeyPem,
    get baseUrl() {
      return baseUrl;
    },
    get gatewayUrl() {
      return `${baseUrl}/gateway.do`;
    },
    async listen(listenOptions = {}) {
      const address = await app.listen({ host: listenOptions.host ?? '127.0.0.1', port: listenOptions.port ?? 0 });
      if (!options.publicBaseUrl) baseUrl = address.replace('[::1]', 'localhost');
      if (listenOptions.deliveryLoop !== false) loop.start();
      logger.info({ baseUrl }, 'alipay simulator listening');
      return baseUrl;
    },
    async close() {
      holds.abort();
      await loop.stop();
      await app.close();
      if (ownPool) await ownPool.end();
    },
    registerApp: (input) => registerSimulatorApp(pool, clock, input),
    setFault: (setting) => insertFault(pool, setting, clock.now()),
    clearFaults: (filter) => clearFaults(pool, filter),
    listFaults: () => listFaults(pool),
    deliverDueNotifications: () => deliverDueNotifications(notifier),
    startDeliveryLoop: () => loop.start(),
    stopDeliveryLoop: () => void loop.stop(),
    findTrade: (outTradeNo, appId) => findTrade(pool, { outTradeNo, appId }),
  };

  registerBodyParsing(app);
  registerGateway(parts);
  registerPayerPages(parts);
  registerAdmin(parts, () => simulator);
  return simulator;
}
