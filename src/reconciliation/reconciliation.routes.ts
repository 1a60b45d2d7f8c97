import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { PlatformContext } from '../platform/context.js';
import { FenError } from '../platform/errors.js';
import { commonErrorResponses, longText, pageSchema } from '../platform/http/index.js';
import { limits } from '../platform/limits.js';
import { minorToJsonNumber } from '../platform/money.js';
import { batchReport, findBatch, findDifference, listBatches, listDifferences, type DifferenceRow } from './batches.repository.js';
import { differencesCsv } from './csv.js';
import { isBillDate, lineDifferenceKinds, operatorResolutions, reconLimits, type BatchReport } from './recon.types.js';
import { reconcileAccountDay } from './reconciliation.service.js';
import { resolveDifference } from './resolution.js';

/**
 * Operator routes for reconciliation: batches and their differences (read),
 * running a batch again and resolving a difference (resolve), and a batch's
 * differences as CSV. Amounts are JSON integers of minor units.
 */
const tags = ['operator: reconciliation'];
const read = { auth: 'operator', permission: 'reconciliation.read' } as const;
const resolve = { auth: 'operator', permission: 'reconciliation.resolve' } as const;

const batchId = z.string().regex(/^rcb_[0-9a-hjkmnp-tv-z]{26}$/, 'must be a reconciliation batch id');
const differenceId = z.string().regex(/^dif_[0-9a-hjkmnp-tv-z]{26}$/, 'must be a difference id');
const channelAccountId = z.string().regex(/^cha_[0-9a-hjkmnp-tv-z]{26}$/, 'must be a channel account id');
const billDate = z.string().refine(isBillDate, 'must be a date, YYYY-MM-DD');
const pageLimit = z.coerce.number().int().min(1).max(limits.pageSizeMax).default(limits.pageSizeDefault);
const kinds = z.enum([...lineDifferenceKinds, 'fund_flow', 'internal']);

const batchSchema = z.object({
  batch_id: z.string(),
  channel_account: z.string(),
  channel: z.string(),
  date: z.string(),
  lines_channel: z.number().int(),
  lines_local: z.number().int(),
  matched: z.number().int(),
  held: z.number().int(),
  differences: z.object(Object.fromEntries(lineDifferenceKinds.map((kind) => [kind, z.number().int()])) as Record<(typeof lineDifferenceKinds)[number], z.ZodNumber>),
  fund_flow: z.object({ channel_net: z.number().int(), ledger_net: z.number().int().nullable(), drift: z.number().int().nullable(), differences: z.number().int() }),
  internal_differences: z.number().int(),
  open_differences: z.number().int(),
  status: z.string(),
  error: z.object({ code: z.string(), message: z.string() }).nullable(),
});

const differenceSchema = z.object({
  id: z.string(),
  batch_id: z.string(),
  channel_account_id: z.string(),
  bill_date: z.string(),
  kind: z.string(),
  status: z.enum(['open', 'resolved', 'withdrawn']),
  line_kind: z.string().nullable(),
  channel_trade_no: z.string().nullable(),
  out_trade_no: z.string().nullable(),
  out_refund_no: z.string().nullable(),
  payment_id: z.string().nullable(),
  refund_id: z.string().nullable(),
  merchant_id: z.string().nullable(),
  currency: z.string(),
  channel_amount: z.number().int().nullable(),
  local_amount: z.number().int().nullable(),
  channel_fee: z.number().int().nullable(),
  expected_fee: z.number().int().nullable(),
  channel_status: z.string().nullable(),
  local_status: z.string().nullable(),
  delta: z.number().int().describe('What channel_clearing must move by to agree with the channel, in minor units (debit positive).'),
  occurred_at: z.string().nullable(),
  line_number: z.number().int().nullable(),
  detail: z.string(),
  resolution: z.string().nullable(),
  resolution_reason: z.string().nullable(),
  resolved_by: z.string().nullable(),
  resolved_at: z.string().nullable(),
  entry_id: z.string().nullable(),
});

const amount = (value: bigint | null) => (value === null ? null : minorToJsonNumber(value));

function batchJson(report: BatchReport): z.infer<typeof batchSchema> {
  return { ...report, fund_flow: { ...report.fund_flow, channel_net: minorToJsonNumber(report.fund_flow.channel_net), ledger_net: amount(report.fund_flow.ledger_net), drift: amount(report.fund_flow.drift) } };
}

function differenceJson(row: DifferenceRow): z.infer<typeof differenceSchema> {
  return {
    ...row,
    channel_amount: amount(row.channel_amount),
    local_amount: amount(row.local_amount),
    channel_fee: amount(row.channel_fee),
    expected_fee: amount(row.expected_fee),
    delta: minorToJsonNumber(row.delta),
    occurred_at: row.occurred_at?.toISOString() ?? null,
    resolved_at: row.resolved_at?.toISOString() ?? null,
  };
}

async function requireBatch(context: PlatformContext, id: string) {
  const batch = await findBatch(context.db, id);
  if (!batch) throw new FenError('not_found', `no reconciliation batch ${id}`);
  return batch;
}

export function registerReconciliationRoutes(app: FastifyInstance, context: PlatformContext): void {
  registerBatchRoutes(app, context);
  registerDifferenceRoutes(app, context);
}

function registerBatchRoutes(app: FastifyInstance, context: PlatformContext): void {
  const typed = app.withTypeProvider<ZodTypeProvider>();
  const listQuery = z.object({ date: billDate.optional(), channel_account_id: channelAccountId.optional(), status: z.enum(['running', 'not_ready', 'failed', 'holding', 'differences', 'balanced']).optional(), limit: pageLimit, cursor: batchId.optional() });
  typed.get('/admin/v1/reconciliation/batches', { schema: { tags, summary: 'Reconciliation batches, newest first', querystring: listQuery, response: { 200: pageSchema(batchSchema), ...commonErrorResponses } }, config: read }, async (request) => {
    const { date, channel_account_id, status, limit, cursor } = request.query;
    const rows = await listBatches(context.db, { billDate: date, channelAccountId: channel_account_id, status, limit, cursor });
    const data = await Promise.all(rows.map(async (row) => batchJson(await batchReport(context.db, row))));
    return { data, next_cursor: rows.length === limit ? (rows.at(-1)?.id ?? null) : null };
  });
  typed.get('/admin/v1/reconciliation/batches/:id', { schema: { tags, summary: 'One batch with its counts and fund flow', params: z.object({ id: batchId }), response: { 200: batchSchema, ...commonErrorResponses } }, config: read }, async (request) => {
    return batchJson(await batchReport(context.db, await requireBatch(context, request.params.id)));
  });
  const runBody = z.object({ channel_account_id: channelAccountId, date: billDate }).strict();
  typed.post('/admin/v1/reconciliation/runs', { schema: { tags, summary: 'Run (or run again) the batch of a channel account and day', body: runBody, response: { 200: batchSchema, ...commonErrorResponses } }, config: resolve }, async (request) => {
    return batchJson(await reconcileAccountDay(context, request.body.channel_account_id, request.body.date));
  });
  typed.get('/admin/v1/reconciliation/batches/:id/differences.csv', { schema: { tags, summary: 'A batch’s differences as CSV', params: z.object({ id: batchId }), produces: ['text/csv'] }, config: read }, async (request, reply) => {
    const batch = await requireBatch(context, request.params.id);
    let body = '';
    for (let cursor: string | undefined, header = true; ; header = false) {
      const rows = await listDifferences(context.db, { batchId: batch.id, limit: reconLimits.csvChunkRows, cursor });
      body += differencesCsv(rows, { header }) || (header ? differencesCsv([], { header: true }) : '');
      if (rows.length < reconLimits.csvChunkRows) break;
      cursor = rows.at(-1)!.id;
    }
    return reply.type('text/csv; charset=utf-8').header('content-disposition', `attachment; filename="${batch.id}-differences.csv"`).send(body);
  });
}

function registerDifferenceRoutes(app: FastifyInstance, context: PlatformContext): void {
  const typed = app.withTypeProvider<ZodTypeProvider>();
  const listQuery = z.object({ status: z.enum(['open', 'resolved', 'withdrawn']).optional(), kind: kinds.optional(), limit: pageLimit, cursor: differenceId.optional() });
  typed.get('/admin/v1/reconciliation/batches/:id/differences', { schema: { tags, summary: 'A batch’s differences', params: z.object({ id: batchId }), querystring: listQuery, response: { 200: pageSchema(differenceSchema), ...commonErrorResponses } }, config: read }, async (request) => {
    const batch = await requireBatch(context, request.params.id);
    const { status, kind, limit, cursor } = request.query;
    const rows = await listDifferences(context.db, { batchId: batch.id, status, kind, limit, cursor });
    return { data: rows.map(differenceJson), next_cursor: rows.length === limit ? (rows.at(-1)?.id ?? null) : null };
  });
  typed.get('/admin/v1/reconciliation/differences/:id', { schema: { tags, summary: 'One difference', params: z.object({ id: differenceId }), response: { 200: differenceSchema, ...commonErrorResponses } }, config: read }, async (request) => {
    const difference = await findDifference(context.db, request.params.id);
    if (!difference) throw new FenError('not_found', `no difference ${request.params.id}`);
    return differenceJson(difference);
  });
  const resolveBody = z.object({ resolution: z.enum(operatorResolutions), reason: longText }).strict();
  typed.post(
    '/admin/v1/reconciliation/differences/:id/resolve',
    { schema: { tags, summary: 'Resolve a difference: trust the channel, trust Fen, or accept it; books a ledger entry and is audited', params: z.object({ id: differenceId }), body: resolveBody, response: { 200: differenceSchema, ...commonErrorResponses } }, config: resolve },
    async (request) => {
      const resolved = await resolveDifference(context, request.actor, { differenceId: request.params.id, resolution: request.body.resolution, reason: request.body.reason });
      return differenceJson(resolved);
    },
  );
}
