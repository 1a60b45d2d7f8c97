import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { accountCodes, getBalanceByCode } from '../ledger/index.js';
import { deliverEvent } from '../notify/index.js';
import { assert } from '../platform/assert.js';
import type { PlatformContext } from '../platform/context.js';
import { FenError } from '../platform/errors.js';
import { commonErrorResponses, pageSchema, type AuthenticatedApp } from '../platform/http/index.js';
import { minorToJsonNumber, type Currency } from '../platform/money.js';
import { findPayment, findRefund, paymentView, refundView } from './payments.repository.js';
import {
  createPaymentBodySchema,
  createRefundBodySchema,
  eventIdParamsSchema,
  eventViewSchema,
  findPaymentQuerySchema,
  listEventsQuerySchema,
  paymentIdParamsSchema,
  paymentViewSchema,
  refundIdParamsSchema,
  refundViewSchema,
} from './payments.schemas.js';
import { closePayment, createPayment } from './payments.service.js';
import { createRefund } from './refunds.service.js';

const tags = ['merchant: payments'];

function appOf(request: { appAuth: AuthenticatedApp | undefined }): AuthenticatedApp {
  assert(request.appAuth, 'merchant API route reached without app authentication');
  return request.appAuth;
}

/** The merchant API for payments, refunds and events (`/v1`, signed by apps). */
export function registerPaymentRoutes(app: FastifyInstance, context: PlatformContext): void {
  registerPaymentCreation(app, context);
  registerPaymentReads(app, context);
  registerRefundRoutes(app, context);
  registerEventRoutes(app, context);
  registerBalanceRoute(app, context);
}

function registerPaymentCreation(app: FastifyInstance, context: PlatformContext): void {
  const typed = app.withTypeProvider<ZodTypeProvider>();
  const view = (row: Parameters<typeof paymentView>[0]) => paymentView(row, context.config.publicUrl);
  typed.post(
    '/v1/payments',
    {
      schema: { tags, summary: 'Create a payment; with method "cashier" the payer chooses on the cashier page', body: createPaymentBodySchema, response: { 201: paymentViewSchema, ...commonErrorResponses } },
      config: { auth: 'app' },
    },
    async (request, reply) => {
      const body = request.body;
      const row = await createPayment(context, appOf(request), {
        outTradeNo: body.out_trade_no,
        amount: BigInt(body.amount),
        currency: body.currency as Currency,
        subject: body.subject,
        method: body.method,
        notifyUrl: body.notify_url ?? null,
        returnUrl: body.return_url ?? null,
        expiresInSeconds: body.expires_in,
        clientIp: body.client_ip ?? null,
        metadata: body.metadata ?? null,
      });
      return reply.code(201).send(view(row));
    },
  );
  typed.post(
    '/v1/payments/:id/close',
    { schema: { tags, summary: 'Close an unpaid payment (at the channel too)', params: paymentIdParamsSchema, response: { 200: paymentViewSchema, ...commonErrorResponses } }, config: { auth: 'app', idempotent: false } },
    async (request) => {
      const payment = await findPayment(context.db, request.params.id);
      if (!payment || payment.app_id !== appOf(request).appId) throw new FenError('not_found', `no payment ${request.params.id}`);
      return view(await closePayment(context, payment.id, { code: 'closed_by_merchant', message: 'closed by the merchant' }));
    },
  );
}

function registerPaymentReads(app: FastifyInstance, context: PlatformContext): void {
  const typed = app.withTypeProvider<ZodTypeProvider>();
  const view = (row: Parameters<typeof paymentView>[0]) => paymentView(row, context.config.publicUrl);
  typed.get(
    '/v1/payments/:id',
    { schema: { tags, summary: 'One payment', params: paymentIdParamsSchema, response: { 200: paymentViewSchema, ...commonErrorResponses } }, config: { auth: 'app' } },
    async (request) => {
      const payment = await findPayment(context.db, request.params.id);
      if (!payment || payment.app_id !== appOf(request).appId) throw new FenError('not_found', `no payment ${request.params.id}`);
      return view(payment);
    },
  );
  typed.get(
    '/v1/payments',
    { schema: { tags, summary: 'Find a payment by the merchant’s out_trade_no', querystring: findPaymentQuerySchema, response: { 200: paymentViewSchema, ...commonErrorResponses } }, config: { auth: 'app' } },
    async (request) => {
      const payment = await context.db.selectFrom('payments').selectAll().where('app_id', '=', appOf(request).appId).where('out_trade_no', '=', request.query.out_trade_no).executeTakeFirst();
      if (!payment) throw new FenError('not_found', `no payment with out_trade_no ${request.query.out_trade_no}`);
      return view(payment);
    },
  );
}

function registerRefundRoutes(app: FastifyInstance, context: PlatformContext): void {
  const typed = app.withTypeProvider<ZodTypeProvider>();
  typed.post(
    '/v1/payments/:id/refunds',
    {
      schema: { tags, summary: 'Refund part or all of a succeeded payment', params: paymentIdParamsSchema, body: createRefundBodySchema, response: { 201: refundViewSchema, ...commonErrorResponses } },
      config: { auth: 'app' },
    },
    async (request, reply) => {
      const refund = await createRefund(context, appOf(request), { paymentId: request.params.id, amount: BigInt(request.body.amount), outRefundNo: request.body.out_refund_no, reason: request.body.reason ?? null });
      return reply.code(201).send(refundView(refund));
    },
  );
  typed.get(
    '/v1/refunds/:id',
    { schema: { tags, summary: 'One refund', params: refundIdParamsSchema, response: { 200: refundViewSchema, ...commonErrorResponses } }, config: { auth: 'app' } },
    async (request) => {
      const refund = await findRefund(context.db, request.params.id);
      if (!refund || refund.app_id !== appOf(request).appId) throw new FenError('not_found', `no refund ${request.params.id}`);
      return refundView(refund);
    },
  );
}

async function eventView(context: PlatformContext, row: { id: string; type: string; object_id: string; delivery_status: 'pending' | 'delivered' | 'failed' | 'no_endpoint'; attempts: number; next_attempt_at: Date | null; delivered_at: Date | null; created_at: Date; body: string }, withDeliveries: boolean) {
  const base = {
    id: row.id,
    type: row.type,
    object_id: row.object_id,
    delivery_status: row.delivery_status,
    attempts: row.attempts,
    next_attempt_at: row.next_attempt_at?.toISOString() ?? null,
    delivered_at: row.delivered_at?.toISOString() ?? null,
    created_at: row.created_at.toISOString(),
    body: row.body,
  };
  if (!withDeliveries) return base;
  const deliveries = await context.db.selectFrom('event_deliveries').selectAll().where('event_id', '=', row.id).orderBy('attempt').execute();
  return { ...base, deliveries: deliveries.map((item) => ({ attempt: item.attempt, attempted_at: item.attempted_at.toISOString(), status_code: item.status_code, latency_ms: item.latency_ms, error: item.error, manual: item.manual })) };
}

function registerEventRoutes(app: FastifyInstance, context: PlatformContext): void {
  const typed = app.withTypeProvider<ZodTypeProvider>();
  const eventTags = ['merchant: events'];
  typed.get(
    '/v1/events',
    { schema: { tags: eventTags, summary: 'Events sent to this app, newest first', querystring: listEventsQuerySchema, response: { 200: pageSchema(eventViewSchema), ...commonErrorResponses } }, config: { auth: 'app' } },
    async (request) => {
      let query = context.db.selectFrom('events').selectAll().where('app_id', '=', appOf(request).appId).orderBy('id', 'desc').limit(request.query.limit + 1);
      if (request.query.cursor) query = query.where('id', '<', request.query.cursor);
      if (request.query.object_id) query = query.where('object_id', '=', request.query.object_id);
      const rows = await query.execute();
      const page = rows.slice(0, request.query.limit);
      return { data: await Promise.all(page.map((row) => eventView(context, row, false))), next_cursor: rows.length > request.query.limit ? (page.at(-1)?.id ?? null) : null };
    },
  );
  typed.get(
    '/v1/events/:id',
    { schema: { tags: eventTags, summary: 'One event with every delivery attempt', params: eventIdParamsSchema, response: { 200: eventViewSchema, ...commonErrorResponses } }, config: { auth: 'app' } },
    async (request) => {
      const row = await context.db.selectFrom('events').selectAll().where('id', '=', request.params.id).where('app_id', '=', appOf(request).appId).executeTakeFirst();
      if (!row) throw new FenError('not_found', `no event ${request.params.id}`);
      return eventView(context, row, true);
    },
  );
  typed.post(
    '/v1/events/:id/resend',
    {
      schema: { tags: eventTags, summary: 'Deliver an event again now', params: eventIdParamsSchema, response: { 200: z.object({ event_id: z.string(), attempt: z.number().int(), delivered: z.boolean(), status_code: z.number().int().nullable(), error: z.string().nullable() }), ...commonErrorResponses } },
      config: { auth: 'app', idempotent: false },
    },
    async (request) => {
      const row = await context.db.selectFrom('events').select(['id', 'notify_url']).where('id', '=', request.params.id).where('app_id', '=', appOf(request).appId).executeTakeFirst();
      if (!row) throw new FenError('not_found', `no event ${request.params.id}`);
      if (!row.notify_url) throw new FenError('invalid_state', `event ${row.id} has no notify URL to send to`);
      const outcome = await deliverEvent(context, row.id, { manual: true });
      assert(outcome, `event ${row.id} could not be claimed for a manual resend`);
      return { event_id: outcome.eventId, attempt: outcome.attempt, delivered: outcome.delivered, status_code: outcome.statusCode, error: outcome.error };
    },
  );
}

const balanceQuerySchema = z.object({ currency: z.enum(['CNY', 'HKD', 'USD', 'EUR', 'JPY']).default('CNY') });
const balanceSchema = z.object({ merchant_id: z.string(), currency: z.string(), pending: z.number().int(), available: z.number().int(), reserved: z.number().int() });

/** What the platform owes the app's merchant, from the books: not yet settleable, settleable, held back. */
function registerBalanceRoute(app: FastifyInstance, context: PlatformContext): void {
  app.withTypeProvider<ZodTypeProvider>().get(
    '/v1/balance',
    { schema: { tags: ['merchant: balance'], summary: "The merchant's balances in minor units", querystring: balanceQuerySchema, response: { 200: balanceSchema, ...commonErrorResponses } }, config: { auth: 'app' } },
    async (request) => {
      const merchantId = appOf(request).merchantId;
      const currency = request.query.currency as Currency;
      const owed = async (code: string) => (await getBalanceByCode(context.db, code, currency))?.normalBalance ?? 0n;
      return {
        merchant_id: merchantId,
        currency,
        pending: minorToJsonNumber(await owed(accountCodes.merchantPending(merchantId))),
        available: minorToJsonNumber(await owed(accountCodes.merchantAvailable(merchantId))),
        reserved: minorToJsonNumber(await owed(accountCodes.merchantReserve(merchantId))),
      };
    },
  );
}
