import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { PlatformContext } from '../platform/context.js';
import { FenError } from '../platform/errors.js';
import { commonErrorResponses, pageSchema } from '../platform/http/index.js';
import { limits } from '../platform/limits.js';
import { listAudit } from './audit.service.js';

const auditRecordSchema = z.object({
  id: z.string(),
  sequence: z.string(),
  occurred_at: z.string(),
  actor_type: z.string(),
  actor_id: z.string().nullable(),
  actor_roles: z.array(z.string()),
  ip: z.string().nullable(),
  action: z.string(),
  target_type: z.string(),
  target_id: z.string().nullable(),
  merchant_id: z.string().nullable(),
  before: z.unknown(),
  after: z.unknown(),
  hash: z.string(),
});

const querySchema = z.object({
  target_type: z.string().max(64).optional(),
  target_id: z.string().max(64).optional(),
  merchant_id: z.string().max(64).optional(),
  limit: z.coerce.number().int().min(1).max(limits.auditPageSizeMax).default(limits.pageSizeDefault),
  cursor: z.string().max(32).optional(),
});

export function registerAuditRoutes(app: FastifyInstance, context: PlatformContext): void {
  app.withTypeProvider<ZodTypeProvider>().get(
    '/admin/v1/audit',
    {
      schema: { tags: ['operator'], summary: 'List audit records, newest first', querystring: querySchema, response: { 200: pageSchema(auditRecordSchema), ...commonErrorResponses } },
      config: { auth: 'operator', permission: 'audit.read' },
    },
    async (request) => {
      const { cursor } = request.query;
      if (cursor !== undefined && !/^\d{1,18}$/.test(cursor)) throw new FenError('invalid_cursor', 'cursor must be the value of next_cursor from a previous page');
      const page = await listAudit(context.db, {
        targetType: request.query.target_type,
        targetId: request.query.target_id,
        merchantId: request.query.merchant_id,
        beforeSequence: cursor === undefined ? undefined : BigInt(cursor),
        limit: request.query.limit,
      });
      const data = page.rows.map((row) => ({
        id: row.id,
        sequence: row.sequence.toString(),
        occurred_at: row.occurred_at.toISOString(),
        actor_type: row.actor_type,
        actor_id: row.actor_id,
        actor_roles: row.actor_roles,
        ip: row.ip,
        action: row.action,
        target_type: row.target_type,
        target_id: row.target_id,
        merchant_id: row.merchant_id,
        before: row.before,
        after: row.after,
        hash: row.hash,
      }));
      const last = page.rows.at(-1);
      return { data, next_cursor: page.hasMore && last ? last.sequence.toString() : null };
    },
  );
}
