import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { PlatformContext } from '../platform/context.js';
import { commonErrorResponses, pageSchema } from '../platform/http/index.js';
import {
  createMerchantBodySchema,
  listMerchantsQuerySchema,
  merchantIdParamsSchema,
  merchantViewSchema,
  optionalReasonBodySchema,
  requiredReasonBodySchema,
  reviewBodySchema,
} from './merchants.schemas.js';
import {
  closeMerchant,
  createMerchant,
  freezeMerchant,
  getMerchant,
  listMerchants,
  reviewMerchant,
  unfreezeMerchant,
} from './merchants.service.js';

const tags = ['operator: merchants'];
const oneMerchant = { 200: merchantViewSchema, ...commonErrorResponses };

/** The operator's merchant API under /admin/v1/merchants. */
export function registerMerchantRoutes(app: FastifyInstance, context: PlatformContext): void {
  const typed = app.withTypeProvider<ZodTypeProvider>();

  typed.post(
    '/admin/v1/merchants',
    {
      schema: { tags, summary: 'Onboard a merchant (starts in pending_review)', body: createMerchantBodySchema, response: { 201: merchantViewSchema, ...commonErrorResponses } },
      config: { auth: 'operator', permission: 'merchants.write' },
    },
    async (request, reply) => reply.code(201).send(await createMerchant(context, request.actor, request.body)),
  );

  typed.get(
    '/admin/v1/merchants',
    {
      schema: { tags, summary: 'List merchants, newest first', querystring: listMerchantsQuerySchema, response: { 200: pageSchema(merchantViewSchema), ...commonErrorResponses } },
      config: { auth: 'operator', permission: 'merchants.read' },
    },
    async (request) => {
      const page = await listMerchants(context, { status: request.query.status, prefix: request.query.q, cursor: request.query.cursor, limit: request.query.limit });
      return { data: page.data, next_cursor: page.nextCursor };
    },
  );

  typed.get(
    '/admin/v1/merchants/:id',
    {
      schema: { tags, summary: 'One merchant', params: merchantIdParamsSchema, response: oneMerchant },
      config: { auth: 'operator', permission: 'merchants.read' },
    },
    async (request) => getMerchant(context, request.params.id),
  );

  typed.post(
    '/admin/v1/merchants/:id/review',
    {
      schema: { tags, summary: 'Approve or reject a pending merchant', params: merchantIdParamsSchema, body: reviewBodySchema, response: oneMerchant },
      config: { auth: 'operator', permission: 'merchants.review' },
    },
    async (request) => reviewMerchant(context, request.actor, request.params.id, request.body),
  );

  typed.post(
    '/admin/v1/merchants/:id/freeze',
    {
      schema: { tags, summary: 'Freeze an active merchant', params: merchantIdParamsSchema, body: requiredReasonBodySchema, response: oneMerchant },
      config: { auth: 'operator', permission: 'merchants.freeze' },
    },
    async (request) => freezeMerchant(context, request.actor, request.params.id, request.body.reason),
  );

  typed.post(
    '/admin/v1/merchants/:id/unfreeze',
    {
      schema: { tags, summary: 'Unfreeze a frozen merchant', params: merchantIdParamsSchema, body: optionalReasonBodySchema, response: oneMerchant },
      config: { auth: 'operator', permission: 'merchants.freeze' },
    },
    async (request) => unfreezeMerchant(context, request.actor, request.params.id, request.body?.reason),
  );

  typed.post(
    '/admin/v1/merchants/:id/close',
    {
      schema: { tags, summary: 'Close a merchant for good', params: merchantIdParamsSchema, body: requiredReasonBodySchema, response: oneMerchant },
      config: { auth: 'operator', permission: 'merchants.freeze' },
    },
    async (request) => closeMerchant(context, request.actor, request.params.id, request.body.reason),
  );
}
