import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { PlatformContext } from '../platform/context.js';
import { FenError } from '../platform/errors.js';
import { commonErrorResponses } from '../platform/http/index.js';
import { limits } from '../platform/limits.js';
import { createChannelAccount, getChannelAccount, setChannelAccountStatus, setPaymentRoute, type ChannelAccountRow } from './routing.service.js';

const tags = ['operator: channels'];

const channelAccountViewSchema = z.object({
  id: z.string(),
  channel: z.string(),
  name: z.string(),
  mode: z.enum(['shared', 'own']),
  merchant_id: z.string().nullable(),
  status: z.enum(['active', 'disabled']),
  methods: z.array(z.string()),
  settings: z.record(z.string(), z.unknown()),
  consecutive_failures: z.number().int(),
  circuit_open_until: z.string().nullable(),
  created_at: z.string(),
});

/** Secrets never leave: the view carries settings only. */
function channelAccountView(row: ChannelAccountRow): z.infer<typeof channelAccountViewSchema> {
  return {
    id: row.id,
    channel: row.channel,
    name: row.name,
    mode: row.mode,
    merchant_id: row.merchant_id,
    status: row.status,
    methods: row.methods,
    settings: row.settings,
    consecutive_failures: row.consecutive_failures,
    circuit_open_until: row.circuit_open_until?.toISOString() ?? null,
    created_at: row.created_at.toISOString(),
  };
}

const idParams = z.object({ id: z.string().regex(/^cha_[0-9a-z]{26}$/, 'must be a channel account id') });

const createBody = z
  .object({
    channel: z.enum(['alipay', 'wechatpay', 'unionpay']),
    name: z.string().trim().min(1).max(limits.stringFieldLengthMax),
    mode: z.enum(['shared', 'own']),
    merchant_id: z.string().regex(/^mch_[0-9a-z]{26}$/).optional(),
    methods: z.array(z.string().max(32)).min(1).max(10),
    settings: z.record(z.string(), z.unknown()),
    secrets: z.record(z.string(), z.string().max(16_384)),
  })
  .strict();

// Each account at most once: a repeated id broke the route's primary key and answered 500.
// Found by test/fuzz/operator-api.test.ts (PUT /admin/v1/apps/{id}/routes/{method}).
const routeBody = z
  .object({
    channel_account_ids: z
      .array(z.string().regex(/^cha_[0-9a-z]{26}$/))
      .max(10)
      .refine((ids) => new Set(ids).size === ids.length, 'each channel account may appear only once'),
  })
  .strict();
const routeParams = z.object({ id: z.string().regex(/^app_[0-9a-z]{26}$/, 'must be an app id'), method: z.string().min(1).max(32) });

export function registerRoutingRoutes(app: FastifyInstance, context: PlatformContext): void {
  const typed = app.withTypeProvider<ZodTypeProvider>();
  typed.post(
    '/admin/v1/channel-accounts',
    { schema: { tags, summary: 'Add a channel account (its secrets are sealed and never shown again)', body: createBody, response: { 201: channelAccountViewSchema, ...commonErrorResponses } }, config: { auth: 'operator', permission: 'channels.write' } },
    async (request, reply) => {
      const body = request.body;
      const row = await createChannelAccount(context, request.actor, { channel: body.channel, name: body.name, mode: body.mode, merchantId: body.merchant_id ?? null, methods: body.methods, settings: body.settings, secrets: body.secrets });
      return reply.code(201).send(channelAccountView(row));
    },
  );
  typed.get(
    '/admin/v1/channel-accounts',
    { schema: { tags, summary: 'All channel accounts', response: { 200: z.object({ data: z.array(channelAccountViewSchema) }), ...commonErrorResponses } }, config: { auth: 'operator', permission: 'channels.read' } },
    async () => {
      const rows = await context.db.selectFrom('channel_accounts').selectAll().orderBy('created_at').limit(limits.pageSizeMax * 10).execute();
      return { data: rows.map((row) => channelAccountView(row as ChannelAccountRow)) };
    },
  );
  typed.get(
    '/admin/v1/channel-accounts/:id',
    { schema: { tags, summary: 'One channel account', params: idParams, response: { 200: channelAccountViewSchema, ...commonErrorResponses } }, config: { auth: 'operator', permission: 'channels.read' } },
    async (request) => channelAccountView(await getChannelAccount(context, request.params.id)),
  );
  for (const [action, status] of [['disable', 'disabled'], ['enable', 'active']] as const) {
    typed.post(
      `/admin/v1/channel-accounts/:id/${action}`,
      { schema: { tags, summary: `${action === 'disable' ? 'Take an account out of' : 'Put an account back into'} rotation`, params: idParams, response: { 200: channelAccountViewSchema, ...commonErrorResponses } }, config: { auth: 'operator', permission: 'channels.write' } },
      async (request) => channelAccountView(await setChannelAccountStatus(context, request.actor, request.params.id, status)),
    );
  }
  typed.put(
    '/admin/v1/apps/:id/routes/:method',
    { schema: { tags, summary: 'Set the ordered channel accounts for one app and method', params: routeParams, body: routeBody, response: { 204: z.null(), ...commonErrorResponses } }, config: { auth: 'operator', permission: 'channels.write' } },
    async (request, reply) => {
      const app = await context.db.selectFrom('apps').select(['id', 'merchant_id']).where('id', '=', request.params.id).executeTakeFirst();
      if (!app) throw new FenError('app_not_found', `no app ${request.params.id}`);
      const accounts = request.body.channel_account_ids.length === 0 ? [] : await context.db.selectFrom('channel_accounts').select(['id', 'methods']).where('id', 'in', request.body.channel_account_ids).execute();
      const unusable = request.body.channel_account_ids.filter((id) => !accounts.some((account) => account.id === id && account.methods.includes(request.params.method)));
      if (unusable.length > 0) throw new FenError('invalid_request', `these accounts do not exist or do not offer ${request.params.method}: ${unusable.join(', ')}`);
      await setPaymentRoute(context, request.actor, { appId: app.id, merchantId: app.merchant_id, method: request.params.method, channelAccountIds: request.body.channel_account_ids });
      return reply.code(204).send(null);
    },
  );
}
