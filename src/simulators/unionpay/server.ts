import { createPrivateKey, X509Certificate } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type pg from 'pg';
import { pino } from 'pino';
import { z } from 'zod';
import { systemClock, type Clock } from '../../platform/clock.js';
import type { Logger } from '../../platform/logging.js';
import { badRequest, registerSharedAdminRoutes, requireAdminToken } from '../shared/admin-routes.js';
import { DeliveryLoop } from '../shared/delivery-loop.js';
import { openSimulatorPool } from '../shared/transactions.js';
import { certIdOfPem, issueMerchantCertificate, loadAuthority, signerNameOf, type UnionpayAuthority } from './authority.js';
import { clearFaults, faultSettingSchema, insertFault, listFaults, type ActiveFault, type FaultSetting } from './faults.js';
import { defaultUnionpayBillSettings } from './bills.js';
import { handleGatewayRequest, type GatewayContext, type GatewayReply, type SimEndpoint } from './gateway.js';
import { deliverDueNotifications, transactionFields, type DeliveryReport, type NotifierContext, type UnionpaySigner } from './notifier.js';
import { messagePage, payerPage } from './payer-page.js';
import { answerText, signedMessage } from './protocol.js';
import { ensureSchema, findTransaction, findTransactionsByOrderId, upsertMerchant, type SimTransaction } from './store.js';
import { cancelOrder, expireIfDue, payOrder } from './transactions.js';

/**
 * The UnionPay simulator: a Fastify server of its own that speaks UnionPay's
 * ACP 5.1.0 gateway protocol, so Fen's connector talks to it as to UnionPay:
 * configure Fen with the simulator's root and middle certificates
 * (GET /__sim/ca) and its gateway URLs (the file transfer's too, for
 * reconciliation files: ./bills.ts), register the merchant's signing
 * certificate per merId (registerMerchant, or let the simulator issue one with
 * issueMerchantCertificate / POST /__sim/merchants/:merId/certificate), pay on
 * the payer page the consumption form lands on, and steer misbehaviour with
 * fault switches (setFault or POST /__sim/faults).
 */

export interface UnionpaySimulatorOptions {
  /** A pool on the database that holds (or will hold) the `sim_unionpay` schema… */
  pool?: pg.Pool;
  /** …or a URL to open one; the simulator then closes it itself. */
  databaseUrl?: string;
  /** Where payers and Fen reach the simulator; defaults to the address it listens on. */
  publicBaseUrl?: string;
  clock?: Clock;
  /** Multiplies the notification retry delays (0.001: a minute becomes 60 ms). Default 1. */
  timeScale?: number;
  logger?: Logger;
  /** The simulator's CA and signing certificate; by default made on first start and kept in the schema. */
  authority?: UnionpayAuthority;
  /** The organisation the signing certificate names, when the simulator makes its CA (first start). Default 中国银联股份有限公司. */
  signerName?: string;
  /** When set, `/__sim/*` requires the header `x-sim-admin-token`. */
  adminToken?: string;
  /** How often the delivery loop looks for due notifications. Default 500 ms. */
  pollIntervalMs?: number;
  /** How long one notification POST may take. Default 10 s. */
  notificationTimeoutMs?: number;
  /** Reconciliation files: the merchant fee in basis points (default 60, i.e. 0.6%, half-up per payment). */
  billFeeRateBasisPoints?: bigint;
  /** How long after a Beijing day ends its settlement files can be fetched (default 9 h: 09:00 the next morning). */
  billAvailableAfterMs?: number;
}

export interface RegisterMerchantInput {
  /** UnionPay's 15-digit merchant number. */
  merId: string;
  /** The merchant's signing certificate (PEM); its serial is the certId its requests must carry. */
  certificatePem: string;
}

export interface IssuedMerchantCertificate {
  merId: string;
  certId: string;
  certificatePem: string;
  privateKeyPem: string;
}

/** What Fen's UnionPay account needs to point at this simulator (apart from the merchant's own certificate). */
export interface UnionpaySimulatorEndpoints {
  rootCertPem: string;
  middleCertPem: string;
  signerName: string;
  frontTransUrl: string;
  backTransUrl: string;
  singleQueryUrl: string;
  /** The file transfer (reconciliation files); UnionPay's own is https://filedownload.95516.com/. */
  fileTransUrl: string;
}

export interface UnionpaySimulator {
  readonly app: FastifyInstance;
  readonly authority: UnionpayAuthority;
  readonly baseUrl: string;
  /** The CA certificates and URLs to configure in Fen. */
  endpoints(): UnionpaySimulatorEndpoints;
  /** Listens and (unless told not to) starts the notification loop; returns the base URL. */
  listen(options?: { host?: string; port?: number; deliveryLoop?: boolean }): Promise<string>;
  close(): Promise<void>;
  registerMerchant(input: RegisterMerchantInput): Promise<{ certId: string }>;
  /** Issues a signing certificate for the merchant from the simulator's middle CA and registers it. */
  issueMerchantCertificate(merId: string): Promise<IssuedMerchantCertificate>;
  setFault(setting: FaultSetting): Promise<ActiveFault>;
  clearFaults(filter?: { id?: number; orderId?: string }): Promise<number>;
  listFaults(): Promise<ActiveFault[]>;
  /** One pass of the notification loop at the clock's current time. */
  deliverDueNotifications(): Promise<DeliveryReport>;
  startDeliveryLoop(): void;
  stopDeliveryLoop(): Promise<void>;
  /** The transaction with this orderId (the newest, when several txnTimes share it). */
  findTransaction(orderId: string, txnTime?: string): Promise<SimTransaction | undefined>;
}

const defaultPollIntervalMs = 500;
const defaultNotificationTimeoutMs = 10_000;
const requestBodyBytesMax = 256 * 1024;
const gatewayPaths: Record<SimEndpoint, string> = {
  frontTransReq: '/gateway/api/frontTransReq.do',
  backTransReq: '/gateway/api/backTransReq.do',
  queryTrans: '/gateway/api/queryTrans.do',
  fileTransRequest: '/gateway/api/fileTransRequest.do',
};

interface ServerParts {
  app: FastifyInstance;
  context: GatewayContext;
  signer: UnionpaySigner;
  holds: AbortController;
  adminToken: string | undefined;
}

function registerBodyParsing(app: FastifyInstance): void {
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: requestBodyBytesMax }, (_request, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(body as string)));
  });
}

function formOf(request: FastifyRequest): Record<string, string> {
  return typeof request.body === 'object' && request.body !== null ? (request.body as Record<string, string>) : {};
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

function sendGatewayReply(reply: FastifyReply, answer: GatewayReply, signer: UnionpaySigner): FastifyReply {
  switch (answer.kind) {
    case 'answer':
      return reply.type('text/plain;charset=UTF-8').send(answerText(signedMessage(answer.fields, signer)));
    case 'redirect':
      // 303: the browser follows a POSTed form with a GET of the payer page.
      return reply.redirect(answer.location, 303);
    case 'html':
      return reply.code(answer.statusCode).type('text/html; charset=utf-8').send(messagePage(answer.title, answer.message));
    case 'http_error':
      return reply.code(answer.statusCode).type('text/html; charset=utf-8').send(`<html><body><h1>${answer.statusCode} Bad Gateway</h1></body></html>`);
  }
}

function registerGateway({ app, context, signer, holds }: ServerParts): void {
  for (const [endpoint, path] of Object.entries(gatewayPaths) as [SimEndpoint, string][]) {
    app.post(path, async (request, reply) => {
      const outcome = await handleGatewayRequest(context, endpoint, formOf(request));
      if (outcome.holdMs !== undefined) await holdFor(outcome.holdMs, holds.signal);
      return sendGatewayReply(reply, outcome.reply, signer);
    });
  }
}

/** The signed front notification (前台通知) the paid page posts to the merchant's frontUrl. */
function frontNotificationFor(transaction: SimTransaction, signer: UnionpaySigner): Record<string, string> | undefined {
  if (transaction.status !== 'succeeded' || !transaction.frontUrl) return undefined;
  return signedMessage(transactionFields(transaction, '00'), signer);
}

function registerPayerPages({ app, context, signer }: ServerParts): void {
  const orderFor = async (request: FastifyRequest, reply: FastifyReply): Promise<SimTransaction | undefined> => {
    const { token } = request.params as { token: string };
    const found = await findTransaction(context.pool, { payerToken: token });
    if (!found) void reply.code(404).type('text/html; charset=utf-8').send(messagePage('Not found', '没有这笔交易 · No such order'));
    return found;
  };
  app.get('/unionpay/pay/:token', async (request, reply) => {
    const found = await orderFor(request, reply);
    if (!found) return reply;
    const order = await expireIfDue(context, found);
    return reply.type('text/html; charset=utf-8').send(payerPage(order, frontNotificationFor(order, signer)));
  });
  app.post('/unionpay/pay/:token/pay', async (request, reply) => {
    const order = await orderFor(request, reply);
    if (!order) return reply;
    await payOrder(context, order);
    return reply.redirect(`/unionpay/pay/${order.payerToken}`, 303);
  });
  app.post('/unionpay/pay/:token/cancel', async (request, reply) => {
    const order = await orderFor(request, reply);
    if (!order) return reply;
    await cancelOrder(context, order);
    return reply.redirect(`/unionpay/pay/${order.payerToken}`, 303);
  });
}

const merIdPattern = /^\d{15}$/;
const registerMerchantSchema = z.object({ merId: z.string().regex(merIdPattern), certificatePem: z.string().min(100).max(16_384) });

/** Transactions as JSON, amounts as strings of fen (JSON numbers cannot carry bigint). */
function transactionJson(transaction: SimTransaction): Record<string, unknown> {
  return { ...transaction, txnFen: transaction.txnFen.toString(), refundedFen: transaction.refundedFen.toString() };
}

function registerAdmin(parts: ServerParts, simulator: () => UnionpaySimulator): void {
  const { app, adminToken } = parts;
  requireAdminToken(app, adminToken);
  registerSharedAdminRoutes(app, { settingSchema: faultSettingSchema, orderKey: 'orderId', body: (request) => request.body, simulator });
  app.get('/__sim/ca', async () => simulator().endpoints());
  app.post('/__sim/merchants', async (request, reply) => {
    const parsed = registerMerchantSchema.safeParse(request.body);
    if (!parsed.success) return badRequest(reply, parsed.error);
    try {
      return reply.code(201).send({ merId: parsed.data.merId, ...(await simulator().registerMerchant(parsed.data)) });
    } catch {
      return reply.code(400).send({ error: 'certificatePem is not a certificate' });
    }
  });
  app.post('/__sim/merchants/:merId/certificate', async (request, reply) => {
    const { merId } = request.params as { merId: string };
    if (!merIdPattern.test(merId)) return reply.code(400).send({ error: 'merId must be 15 digits' });
    return reply.code(201).send(await simulator().issueMerchantCertificate(merId));
  });
  app.get('/__sim/transactions/:orderId', async (request, reply) => {
    const transaction = await simulator().findTransaction((request.params as { orderId: string }).orderId);
    if (!transaction) return reply.code(404).send({ error: 'no such transaction' });
    return transactionJson(transaction);
  });
}

async function registerSimulatorMerchant(pool: pg.Pool, clock: Clock, input: RegisterMerchantInput): Promise<{ certId: string }> {
  if (!merIdPattern.test(input.merId)) throw new Error('merId must be 15 digits');
  // Parsing first: a PEM that is not a certificate is refused rather than stored.
  const certificate = new X509Certificate(input.certificatePem);
  const certId = certIdOfPem(certificate.toString());
  await upsertMerchant(pool, { merId: input.merId, certificatePem: certificate.toString(), certId }, clock.now());
  return { certId };
}

/**
 * The signing certificate as UnionPay writes it in signPubKeyCert: CRLF line
 * ends and no final line end. This matters beyond looks: a browser posting the
 * front notification to frontUrl turns every line end in a form value into
 * CRLF, so a certificate signed with bare LFs would arrive changed.
 */
function messageCertificatePem(pem: string): string {
  return pem.trim().replace(/\r?\n/g, '\r\n');
}

function endpointsOf(authority: UnionpayAuthority, signerName: string, baseUrl: string): UnionpaySimulatorEndpoints {
  return {
    rootCertPem: authority.rootCertPem,
    middleCertPem: authority.middleCertPem,
    signerName,
    frontTransUrl: `${baseUrl}${gatewayPaths.frontTransReq}`,
    backTransUrl: `${baseUrl}${gatewayPaths.backTransReq}`,
    singleQueryUrl: `${baseUrl}${gatewayPaths.queryTrans}`,
    fileTransUrl: `${baseUrl}${gatewayPaths.fileTransRequest}`,
  };
}

/** Creates the schema if needed, loads or makes the CA, and builds the server (not yet listening). */
export async function createUnionpaySimulator(options: UnionpaySimulatorOptions): Promise<UnionpaySimulator> {
  if (!options.pool && !options.databaseUrl) throw new Error('the UnionPay simulator needs a pool or a databaseUrl');
  const { pool, ownPool } = openSimulatorPool(options, 'fen-sim-unionpay');
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? pino({ level: 'silent' });
  await ensureSchema(pool);
  const authority = await loadAuthority(pool, clock.now(), { given: options.authority, signerName: options.signerName });
  const signer: UnionpaySigner = { certificatePem: messageCertificatePem(authority.signerCertPem), privateKey: createPrivateKey(authority.signerPrivateKeyPem) };
  let baseUrl = options.publicBaseUrl?.replace(/\/$/, '') ?? 'http://127.0.0.1';
  const notifier: NotifierContext = { pool, clock, timeScale: options.timeScale ?? 1, signer, logger, requestTimeoutMs: options.notificationTimeoutMs ?? defaultNotificationTimeoutMs };
  const bills = {
    feeRateBasisPoints: options.billFeeRateBasisPoints ?? defaultUnionpayBillSettings.feeRateBasisPoints,
    availableAfterMs: options.billAvailableAfterMs ?? defaultUnionpayBillSettings.availableAfterMs,
  };
  const context: GatewayContext = { pool, clock, notifier, bills };
  const app = Fastify({ logger: false, bodyLimit: requestBodyBytesMax });
  const holds = new AbortController();
  const parts: ServerParts = { app, context, signer, holds, adminToken: options.adminToken };
  const loop = new DeliveryLoop(() => deliverDueNotifications(notifier), logger, options.pollIntervalMs ?? defaultPollIntervalMs, 'unionpay simulator delivery pass failed');
  notifier.onScheduled = () => loop.kick();
  // The stored certificate decides, not the option: it only shapes a CA made now.
  const signerName = signerNameOf(authority);

  const simulator: UnionpaySimulator = {
    app,
    authority,
    get baseUrl() {
      return baseUrl;
    },
    endpoints: () => endpointsOf(authority, signerName, baseUrl),
    async listen(listenOptions = {}) {
      const address = await app.listen({ host: listenOptions.host ?? '127.0.0.1', port: listenOptions.port ?? 0 });
      if (!options.publicBaseUrl) baseUrl = address.replace('[::1]', 'localhost');
      if (listenOptions.deliveryLoop !== false) loop.start();
      logger.info({ baseUrl }, 'unionpay simulator listening');
      return baseUrl;
    },
    async close() {
      holds.abort();
      await loop.stop();
      await app.close();
      if (ownPool) await ownPool.end();
    },
    registerMerchant: (input) => registerSimulatorMerchant(pool, clock, input),
    async issueMerchantCertificate(merId) {
      const issued = issueMerchantCertificate(authority, merId, clock.now());
      const { certId } = await registerSimulatorMerchant(pool, clock, { merId, certificatePem: issued.certificatePem });
      return { merId, certId, ...issued };
    },
    setFault: (setting) => insertFault(pool, setting, clock.now()),
    clearFaults: (filter) => clearFaults(pool, filter),
    listFaults: () => listFaults(pool),
    deliverDueNotifications: () => deliverDueNotifications(notifier),
    startDeliveryLoop: () => loop.start(),
    stopDeliveryLoop: () => loop.stop(),
    findTransaction: async (orderId, txnTime) =>
      (await findTransactionsByOrderId(pool, orderId)).find((transaction) => txnTime === undefined || transaction.txnTime === txnTime),
  };

  registerBodyParsing(app);
  registerGateway(parts);
  registerPayerPages(parts);
  registerAdmin(parts, () => simulator);
  return simulator;
}
