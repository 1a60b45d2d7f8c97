import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { PlatformContext } from '../platform/context.js';
import { assert } from '../platform/assert.js';
import { FenError } from '../platform/errors.js';
import { commonErrorResponses, pageSchema } from '../platform/http/index.js';
import { isId } from '../platform/ids.js';
import { findApp } from './apps.repository.js';
import {
  appIdParamsSchema,
  appViewSchema,
  createAppBodySchema,
  createdAppSchema,
  listAppsQuerySchema,
  merchantIdParamsSchema,
  rotateSecretBodySchema,
  rotatedSecretSchema,
  updateAppBodySchema,
  whoamiSchema,
} from './apps.schemas.js';
import { createApp, getApp, listApps, rotateAppSecret, updateApp } from './apps.service.js';

const tags = ['operator: apps'];

/** The operator's app API under /admin/v1, and the merchant API's `GET /v1/app`. */
export function registerAppRoutes(app: FastifyInstance, context: PlatformContext): void {
  registerOperatorAppRoutes(app, context);
  registerWhoamiRoute(app, context);
}

function registerOperatorAppRoutes(app: FastifyInstance, context: PlatformContext): void {
  const typed = app.withTypeProvider<ZodTypeProvider>();

  typed.post(
    '/admin/v1/merchants/:id/apps',
    {
      schema: {
        tags,
        summary: 'Create an app for an active merchant; its secrets are shown in this response only',
        params: merchantIdParamsSchema,
        body: createAppBodySchema,
        response: { 201: createdAppSchema, ...commonErrorResponses },
      },
      config: { auth: 'operator', permission: 'apps.write' },
    },
    async (request, reply) => reply.code(201).send(await createApp(context, request.actor, request.params.id, request.body)),
  );

  typed.get(
    '/admin/v1/apps',
    {
      schema: { tags, summary: 'List apps, newest first', querystring: listAppsQuerySchema, response: { 200: pageSchema(appViewSchema), ...commonErrorResponses } },
      config: { auth: 'operator', permission: 'apps.read' },
    },
    async (request) => {
      const page = await listApps(context, { merchantId: request.query.merchant_id, cursor: request.query.cursor, limit: request.query.limit });
      return { data: page.data, next_cursor: page.nextCursor };
    },
  );

  typed.get(
    '/admin/v1/apps/:id',
    {
      schema: { tags, summary: 'One app', params: appIdParamsSchema, response: { 200: appViewSchema, ...commonErrorResponses } },
      config: { auth: 'operator', permission: 'apps.read' },
    },
    async (request) => getApp(context, request.params.id),
  );

  typed.patch(
    '/admin/v1/apps/:id',
    {
      schema: { tags, summary: 'Change an app, or disable or enable it', params: appIdParamsSchema, body: updateAppBodySchema, response: { 200: appViewSchema, ...commonErrorResponses } },
      config: { auth: 'operator', permission: 'apps.write' },
    },
    async (request) => updateApp(context, request.actor, request.params.id, request.body),
  );

  typed.post(
    '/admin/v1/apps/:id/secrets/rotate',
    {
      schema: {
        tags,
        summary: 'Make a new API or webhook secret; the old one keeps working for grace_seconds',
        params: appIdParamsSchema,
        body: rotateSecretBodySchema,
        response: { 200: rotatedSecretSchema, ...commonErrorResponses },
      },
      config: { auth: 'operator', permission: 'apps.secrets' },
    },
    async (request) => rotateAppSecret(context, request.actor, request.params.id, request.body),
  );
}

/** The simplest signed route: who am I? Lets an integrator check their signing before anything else. */
function registerWhoamiRoute(app: FastifyInstance, context: PlatformContext): void {
  app.withTypeProvider<ZodTypeProvider>().get(
    '/v1/app',
    {
      schema: { tags: ['merchant API'], summary: 'The calling app', security: [{ appSignature: [] }], response: { 200: whoamiSchema, ...commonErrorResponses } },
      config: { auth: 'app' },
    },
    async (request) => {
      const auth = request.appAuth;
      assert(auth, 'app routes run after app authentication');
      const row = isId('app', auth.appId) ? await findApp(context.db, auth.appId) : undefined;
      if (!row) throw new FenError('app_not_found', `no app ${auth.appId}`);
      return { id: row.id, merchant_id: row.merchant_id, name: row.name, enabled_methods: row.enabled_methods, notify_url: row.notify_url };
    },
  );
}
