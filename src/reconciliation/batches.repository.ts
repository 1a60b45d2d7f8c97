import { sql, type Selectable } from 'kysely';
import type { DbExecutor, ReconBatchesTable, ReconBatchStatus, ReconDifferencesTable } from '../platform/db/index.js';
import { newId } from '../platform/ids.js';
import { lineDifferenceKinds, type BatchReport, type LineDifferenceKind } from './recon.types.js';

/**
 * Batches and their differences as rows. A bill_date is always read as text
 * (`::text`): pg would turn a DATE into a Date at local midnight, which is
 * not a Beijing day anywhere but in Beijing.
 */
export type BatchRow = Omit<Selectable<ReconBatchesTable>, 'bill_date'> & { bill_date: string };
export type DifferenceRow = Omit<Selectable<ReconDifferencesTable>, 'bill_date'> & { bill_date: string };

const batchColumns = sql`b.id, b.channel_account_id, b.channel, b.mode, b.bill_date::text AS bill_date, b.status, b.currency, b.lines_channel, b.lines_local,
  b.matched, b.channel_payments_amount, b.channel_refunds_amount, b.channel_fee_amount, b.channel_net_amount, b.fees_booked_amount,
  b.ledger_net_amount, b.open_delta_amount, b.fund_flow_drift, b.run_count, b.error_code, b.error_message, b.started_at, b.finished_at,
  b.created_at, b.updated_at`;

export const differenceColumns = sql`d.id, d.batch_id, d.channel_account_id, d.bill_date::text AS bill_date, d.kind, d.dedupe_key, d.line_kind,
  d.channel_trade_no, d.out_trade_no, d.out_refund_no, d.payment_id, d.refund_id, d.merchant_id, d.currency, d.channel_amount, d.local_amount,
  d.local_booked, d.channel_fee, d.expected_fee, d.channel_status, d.local_status, d.delta, d.occurred_at, d.line_number, d.detail, d.status,
  d.resolution, d.resolution_reason, d.resolved_by, d.resolved_at, d.entry_id, d.created_at, d.updated_at`;

/** The batch of an account and day, made on first use; a re-run reuses it and counts the run. */
export async function startBatch(executor: DbExecutor, input: { channelAccountId: string; channel: string; mode: 'shared' | 'own'; billDate: string; now: Date }): Promise<BatchRow> {
  const rows = await sql<BatchRow>`
    INSERT INTO recon_batches AS b (id, channel_account_id, channel, mode, bill_date, status, run_count, started_at, created_at, updated_at)
    VALUES (${newId('reconBatch', input.now.getTime())}, ${input.channelAccountId}, ${input.channel}, ${input.mode}, ${input.billDate}::date, 'running', 1,
            ${input.now}, ${input.now}, ${input.now})
    ON CONFLICT (channel_account_id, bill_date) DO UPDATE SET status = 'running', run_count = b.run_count + 1, started_at = excluded.started_at,
      error_code = NULL, error_message = NULL, updated_at = excluded.updated_at
    RETURNING ${batchColumns}`.execute(executor);
  return rows.rows[0]!;
}

export async function findBatch(executor: DbExecutor, id: string): Promise<BatchRow | undefined> {
  return (await sql<BatchRow>`SELECT ${batchColumns} FROM recon_batches b WHERE b.id = ${id}`.execute(executor)).rows[0];
}

export async function findBatchFor(executor: DbExecutor, channelAccountId: string, billDate: string): Promise<BatchRow | undefined> {
  return (await sql<BatchRow>`SELECT ${batchColumns} FROM recon_batches b WHERE b.channel_account_id = ${channelAccountId} AND b.bill_date = ${billDate}::date`.execute(executor)).rows[0];
}

export async function listBatches(executor: DbExecutor, filter: { billDate?: string; channelAccountId?: string; status?: ReconBatchStatus; limit: number; cursor?: string }): Promise<BatchRow[]> {
  const rows = await sql<BatchRow>`SELECT ${batchColumns} FROM recon_batches b
    WHERE (${filter.billDate ?? null}::date IS NULL OR b.bill_date = ${filter.billDate ?? null}::date)
      AND (${filter.channelAccountId ?? null}::text IS NULL OR b.channel_account_id = ${filter.channelAccountId ?? null})
      AND (${filter.status ?? null}::text IS NULL OR b.status = ${filter.status ?? null})
      AND (${filter.cursor ?? null}::text IS NULL OR b.id < ${filter.cursor ?? null})
    ORDER BY b.id DESC LIMIT ${filter.limit}`.execute(executor);
  return rows.rows;
}

export async function findDifference(executor: DbExecutor, id: string, options: { forUpdate?: boolean } = {}): Promise<DifferenceRow | undefined> {
  const lock = options.forUpdate ? sql`FOR UPDATE` : sql``;
  return (await sql<DifferenceRow>`SELECT ${differenceColumns} FROM recon_differences d WHERE d.id = ${id} ${lock}`.execute(executor)).rows[0];
}

export async function listDifferences(
  executor: DbExecutor,
  filter: { batchId?: string; status?: string; kind?: string; limit: number; cursor?: string },
): Promise<DifferenceRow[]> {
  const rows = await sql<DifferenceRow>`SELECT ${differenceColumns} FROM recon_differences d
    WHERE (${filter.batchId ?? null}::text IS NULL OR d.batch_id = ${filter.batchId ?? null})
      AND (${filter.status ?? null}::text IS NULL OR d.status = ${filter.status ?? null})
      AND (${filter.kind ?? null}::text IS NULL OR d.kind = ${filter.kind ?? null})
      AND (${filter.cursor ?? null}::text IS NULL OR d.id > ${filter.cursor ?? null})
    ORDER BY d.id LIMIT ${filter.limit}`.execute(executor);
  return rows.rows;
}

interface DifferenceCounts {
  byKind: Record<string, number>;
  open: number;
}

async function countDifferences(executor: DbExecutor, batchId: string): Promise<DifferenceCounts> {
  const rows = await sql<{ kind: string; total: string; open: string }>`
    SELECT kind, count(*)::text AS total, count(*) FILTER (WHERE status = 'open')::text AS open
      FROM recon_differences WHERE batch_id = ${batchId} AND status <> 'withdrawn' GROUP BY kind`.execute(executor);
  const byKind: Record<string, number> = {};
  let open = 0;
  for (const row of rows.rows) {
    byKind[row.kind] = Number(row.total);
    open += Number(row.open);
  }
  return { byKind, open };
}

async function countHeld(executor: DbExecutor, batch: BatchRow): Promise<number> {
  const rows = await sql<{ held: string }>`SELECT count(*)::text AS held FROM recon_pool
    WHERE channel_account_id = ${batch.channel_account_id} AND origin_date = ${batch.bill_date}::date AND status = 'held'`.execute(executor);
  return Number(rows.rows[0]?.held ?? 0);
}

/**
 * A finished batch's status from what it holds: open differences first,
 * then records still waiting in the pool, else balanced. Batches that did
 * not get a bill keep their status.
 */
export async function refreshBatchStatus(executor: DbExecutor, batchId: string, now: Date): Promise<void> {
  const batch = await findBatch(executor, batchId);
  if (!batch || batch.status === 'running' || batch.status === 'not_ready' || batch.status === 'failed') return;
  const counts = await countDifferences(executor, batchId);
  const held = await countHeld(executor, batch);
  const status: ReconBatchStatus = counts.open > 0 ? 'differences' : held > 0 ? 'holding' : 'balanced';
  if (status !== batch.status) await executor.updateTable('recon_batches').set({ status, updated_at: now }).where('id', '=', batchId).execute();
}

export async function batchReport(executor: DbExecutor, batch: BatchRow): Promise<BatchReport> {
  const counts = await countDifferences(executor, batch.id);
  const differences = Object.fromEntries(lineDifferenceKinds.map((kind) => [kind, counts.byKind[kind] ?? 0])) as Record<LineDifferenceKind, number>;
  return {
    batch_id: batch.id,
    channel_account: batch.channel_account_id,
    channel: batch.channel,
    date: batch.bill_date,
    lines_channel: batch.lines_channel,
    lines_local: batch.lines_local,
    matched: batch.matched,
    held: await countHeld(executor, batch),
    differences,
    fund_flow: { channel_net: batch.channel_net_amount, ledger_net: batch.ledger_net_amount, drift: batch.fund_flow_drift, differences: counts.byKind.fund_flow ?? 0 },
    internal_differences: counts.byKind.internal ?? 0,
    open_differences: counts.open,
    status: batch.status,
    error: batch.error_code ? { code: batch.error_code, message: batch.error_message ?? '' } : null,
  };
}
