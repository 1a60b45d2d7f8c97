import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { PlatformContext } from '../platform/context.js';
import { FenError } from '../platform/errors.js';
import { commonErrorResponses, pageSchema, paginationQuerySchema, shortText } from '../platform/http/index.js';
import { limits } from '../platform/limits.js';
import { passwordLengthMax, passwordLengthMin } from './passwords.js';
import { operatorRoles } from './permissions.js';
import { createOperator, getOperator, listOperators, resetTotp, updateOperator, type OperatorView } from './operators.service.js';

/** Operator management for admins: list, create (with TOTP enrolment), change roles and status, reset 2FA. */
const operatorSchema = z.object({
  id: z.string(),
  email: z.string(),
  name: z.string(),
  roles: z.array(z.string()),
  status: z.enum(['active', 'disabled']),
  locked_until: z.string().nullable(),
  last_login_at: z.string().nullable(),
  created_at: z.string(),
  updated_at: z.string(),
});

const enrolmentSchema = z.object({ totp_secret: z.string(), otpauth_uri: z.string() });
const rolesSchema = z.array(z.enum(operatorRoles)).min(1).max(operatorRoles.length);
const paramsSchema = z.object({ id: z.string().min(1).max(64) });

const listQuerySchema = paginationQuerySchema.extend({ status: z.enum(['active', 'disabled']).optional() });

const createBodySchema = z.object({
  email: z.email().max(limits.stringFieldLengthMax),
  name: shortText,
  password: z.string().min(passwordLengthMin).max(passwordLengthMax),
  roles: rolesSchema,
});

const updateBodySchema = z
  .object({ name: shortText.optional(), roles: rolesSchema.optional(), status: z.enum(['active', 'disabled']).optional(), unlock: z.literal(true).optional() })
  .strict()
  .refine((body) => Object.values(body).some((value) => value !== undefined), { message: 'give at least one of name, roles, status, unlock' });

function present(view: OperatorView): z.infer<typeof operatorSchema> {
  return {
    id: view.id,
    email: view.email,
    name: view.name,
    roles: view.roles,
    status: view.status,
    locked_until: view.lockedUntil?.toISOString() ?? null,
    last_login_at: view.lastLoginAt?.toISOString() ?? null,
    created_at: view.createdAt.toISOString(),
    updated_at: view.updatedAt.toISOString(),
  };
}

const tags = ['operator'];

export function registerOperatorRoutes(app: FastifyInstance, context: PlatformContext): void {
  registerOperatorReadRoutes(app, context);
  registerOperatorWriteRoutes(app, context);
}

function registerOperatorReadRoutes(app: FastifyInstance, context: PlatformContext): void {
  const typed = app.withTypeProvider<ZodTypeProvider>();

  typed.get(
    '/admin/v1/operators',
    {
      schema: { tags, summary: 'List operators, newest first', querystring: listQuerySchema, response: { 200: pageSchema(operatorSchema), ...commonErrorResponses } },
      config: { auth: 'operator', permission: 'operators.read' },
    },
    async (request) => {
      const { limit, cursor, status } = request.query;
      if (cursor !== undefined && !/^usr_[0-9a-z]{26}$/.test(cursor)) throw new FenError('invalid_cursor', 'cursor must be the value of next_cursor from a previous page');
      const page = await listOperators(context.db, { limit, cursor, status });
      return { data: page.operators.map(present), next_cursor: page.nextCursor };
    },
  );

  typed.get(
    '/admin/v1/operators/:id',
    {
      schema: { tags, summary: 'One operator', params: paramsSchema, response: { 200: operatorSchema, ...commonErrorResponses } },
      config: { auth: 'operator', permission: 'operators.read' },
    },
    async (request) => {
      const operator = await getOperator(context.db, request.params.id);
      if (!operator) throw new FenError('not_found', `no operator ${request.params.id}`);
      return present(operator);
    },
  );

}

function registerOperatorWriteRoutes(app: FastifyInstance, context: PlatformContext): void {
  const typed = app.withTypeProvider<ZodTypeProvider>();

  typed.post(
    '/admin/v1/operators',
    {
      schema: {
        tags,
        summary: 'Create an operator; the TOTP secret is in this response only',
        body: createBodySchema,
        response: { 201: z.object({ operator: operatorSchema }).extend(enrolmentSchema.shape), ...commonErrorResponses },
      },
      config: { auth: 'operator', permission: 'operators.write' },
    },
    async (request, reply) => {
      const created = await createOperator(context, { ...request.body, actor: request.actor });
      reply.code(201).header('cache-control', 'no-store');
      return { operator: present(created.user), totp_secret: created.totpSecret, otpauth_uri: created.otpauthUri };
    },
  );

  typed.patch(
    '/admin/v1/operators/:id',
    {
      schema: { tags, summary: 'Change an operator: name, roles, status, or lift a lock-out', params: paramsSchema, body: updateBodySchema, response: { 200: operatorSchema, ...commonErrorResponses } },
      config: { auth: 'operator', permission: 'operators.write' },
    },
    async (request) => {
      return present(await updateOperator(context, request.params.id, request.body, request.actor));
    },
  );

  typed.post(
    '/admin/v1/operators/:id/totp/reset',
    {
      schema: { tags, summary: "Replace an operator's TOTP secret and end their sessions", params: paramsSchema, response: { 200: enrolmentSchema, ...commonErrorResponses } },
      config: { auth: 'operator', permission: 'operators.write' },
    },
    async (request, reply) => {
      const enrolment = await resetTotp(context, { operatorId: request.params.id, actor: request.actor });
      reply.header('cache-control', 'no-store');
      return { totp_secret: enrolment.totpSecret, otpauth_uri: enrolment.otpauthUri };
    },
  );
}
