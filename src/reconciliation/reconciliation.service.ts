import { sql, type Kysely } from 'kysely';
import { BillFormatError } from './bill.types.js';
import type { BillResult, ChannelBill, ChannelBillTotals } from '../channels/index.js';
import { accountSpecs, ensureAccount } from '../ledger/index.js';
import type { PlatformContext } from '../platform/context.js';
import type { Database, DbTransaction } from '../platform/db/index.js';
import { FenError } from '../platform/errors.js';
import type { Currency } from '../platform/money.js';
import { connectorFor, getChannelAccount, type ChannelAccountRow } from '../routing/index.js';
import { beijingDayOf } from './bills/index.js';
import { batchReport, findBatch, refreshBatchStatus, startBatch, type BatchRow } from './batches.repository.js';
import { expireHeld, insertLineDifferences, placeUnpairedRecords, recordCrossDayPairs, withdrawVanished, type PersistScope } from './differences.js';
import { bookBillFees, checkFundFlow } from './fund-flow.js';
import { checkInternal } from './internal.js';
import { MatchRun, timed, type BillRead, type PhaseReport } from './match-run.js';
import type { MatchCounts, MatchScope } from './matching.js';
import { isBillDate, type BatchReport } from './recon.types.js';
import { resolveAutomatically } from './resolution.js';

/**
 * One reconciliation run of a channel account's bill day (a batch, `rcb_`):
 * download the bill through the connector, match it against Fen's records
 * (matching.ts: the lines stream in on a connection of their own while the
 * main one loads Fen's side), then in one transaction write what was found
 * (differences, the holding pool, the bill's fees, the batch's figures); then,
 * outside any transaction because it may call the channel, resolve what can
 * be resolved without a person; then the fund flow and the internal check.
 * A run can be repeated at will: everything it writes has a key of its own.
 */

export interface RunOptions {
  /** A bill already at hand (the benchmark's); otherwise the connector downloads it. */
  bill?: ChannelBill;
  /** Told how long each phase took (the benchmark prints them). */
  onPhase?: (phase: string, durationMs: number) => void;
}

interface AccountSettings extends ChannelAccountRow {
  channel_fee_rate_basis_points: bigint;
}

async function accountSettings(context: PlatformContext, channelAccountId: string): Promise<AccountSettings> {
  const account = await getChannelAccount(context, channelAccountId);
  return account as AccountSettings;
}

/** Runs (or re-runs) the batch of one channel account and bill date; returns its report. */
export async function reconcileAccountDay(context: PlatformContext, channelAccountId: string, billDate: string, options: RunOptions = {}): Promise<BatchReport> {
  const day = isBillDate(billDate) ? beijingDayOf(billDate) : undefined;
  if (!day) throw new FenError('invalid_request', `bill dates are YYYY-MM-DD, not ${billDate}`);
  const account = await accountSettings(context, channelAccountId);
  const batchId = await context.db.connection().execute(async (db) => {
    const key = `recon:${account.id}:${billDate}`;
    const locked = await sql<{ locked: boolean }>`SELECT pg_try_advisory_lock(hashtextextended(${key}, 0)) AS locked`.execute(db);
    if (!locked.rows[0]?.locked) throw new FenError('conflict', `the batch of ${account.id} for ${billDate} is running already`);
    try {
      return await runLocked(db, context, account, { billDate, day }, options);
    } finally {
      await sql`SELECT pg_advisory_unlock(hashtextextended(${key}, 0))`.execute(db);
    }
  });
  const batch = await findBatch(context.db, batchId);
  if (!batch) throw new Error(`batch ${batchId} vanished`);
  return batchReport(context.db, batch);
}

async function runLocked(db: Kysely<Database>, context: PlatformContext, account: AccountSettings, when: { billDate: string; day: { start: Date; end: Date } }, options: RunOptions): Promise<string> {
  const batch = await startBatch(db, { channelAccountId: account.id, channel: account.channel, mode: account.mode, billDate: when.billDate, now: context.clock.now() });
  for (const expiredIn of await expireHeld(db, account.id, context.clock.now())) await refreshBatchStatus(db, expiredIn, context.clock.now());
  const result: BillResult = options.bill ? { status: 'ready', bill: options.bill } : await download(context, account, when.billDate);
  if (result.status !== 'ready') {
    const status = result.status === 'not_ready' ? 'not_ready' : 'failed';
    const code = result.status === 'unknown' ? `unknown_${result.reason}` : result.channelCode;
    await endWithoutBill(db, context, batch.id, status, code, result.message);
    return batch.id;
  }
  try {
    const clearing = account.mode === 'shared' ? await ensureAccount(context.db, context.clock, accountSpecs.channelClearing(account.id, 'CNY')) : undefined;
    const scope: MatchScope = {
      channelAccountId: account.id,
      clearingAccountId: clearing?.id ?? null,
      feeRateBasisPoints: account.channel_fee_rate_basis_points,
      billDate: when.billDate,
      day: when.day,
      batchId: batch.id,
    };
    await matchBill(db, context, batch, scope, result.bill, options.onPhase ?? (() => undefined));
  } finally {
    await result.bill.discard().catch(() => undefined);
  }
  return batch.id;
}

async function download(context: PlatformContext, account: ChannelAccountRow, billDate: string): Promise<BillResult> {
  const connector = connectorFor(context, account);
  if (!connector.downloadBill) return { status: 'failed', reason: 'rejected', channelCode: 'bill_download_unsupported', message: `the ${account.channel} connector cannot download bills yet` };
  return connector.downloadBill({ billDate });
}

async function endWithoutBill(db: Kysely<Database>, context: PlatformContext, batchId: string, status: 'not_ready' | 'failed', code: string, message: string): Promise<void> {
  const now = context.clock.now();
  await db.updateTable('recon_batches').set({ status, error_code: code.slice(0, 64), error_message: message.slice(0, 2000), finished_at: now, updated_at: now }).where('id', '=', batchId).execute();
}

/**
 * Matches the bill (match-run.ts), then writes what was found in one
 * transaction. The internal check reads only Fen's side, so once the bill has
 * been read (and found sound) it runs on a connection of its own, beside the
 * pairing, persisting, resolving and the fund flow.
 */
async function matchBill(db: Kysely<Database>, context: PlatformContext, batch: BatchRow, scope: MatchScope, bill: ChannelBill, phase: PhaseReport): Promise<void> {
  const matching = new MatchRun(db, context.databaseUrl, scope);
  try {
    let read: BillRead;
    try {
      read = await timed(phase, 'read', () => matching.read(bill, phase));
    } catch (error) {
      if (!(error instanceof BillFormatError)) throw error;
      await endWithoutBill(db, context, batch.id, 'failed', `bill_${error.code}`, error.message);
      return;
    }
    const internal = matching.runAside((worker) => timed(phase, 'internal', () => checkInternal(worker, context, batch)));
    const counts = await timed(phase, 'pair', () => matching.pair(read, phase));
    const persisted = await timed(phase, 'persist', () => db.transaction().execute((trx) => persist(trx, context, batch, scope, { counts, totals: read.totals })));
    await timed(phase, 'resolve', () => resolveAutomatically(context, batch.id));
    if (scope.clearingAccountId) await timed(phase, 'fund_flow', () => checkFundFlow(db, context, persisted, { clearingAccountId: scope.clearingAccountId!, paired: counts.pairedBooked }));
    await internal;
    for (const other of await batchesTouched(db, batch.id)) await refreshBatchStatus(context.db, other, context.clock.now());
  } finally {
    await matching.end();
  }
}

/** This batch and the batches whose held records or missing differences its bill settled. */
async function batchesTouched(db: Kysely<Database>, batchId: string): Promise<string[]> {
  const rows = await sql<{ id: string }>`
    SELECT ${batchId}::text AS id
    UNION SELECT b.id FROM recon_pool p JOIN recon_batches b ON b.channel_account_id = p.channel_account_id AND b.bill_date = p.origin_date
     WHERE p.matched_batch_id = ${batchId}`.execute(db);
  return rows.rows.map((row) => row.id);
}

async function persist(trx: DbTransaction, context: PlatformContext, batch: BatchRow, scope: MatchScope, found: { counts: MatchCounts; totals: ChannelBillTotals }): Promise<BatchRow> {
  const now = context.clock.now();
  const persistScope: PersistScope = { ...scope, batchId: batch.id, now };
  await insertLineDifferences(trx, persistScope);
  await placeUnpairedRecords(trx, persistScope);
  await recordCrossDayPairs(trx, persistScope);
  await withdrawVanished(trx, persistScope);
  const { totals, counts } = found;
  // Lines that carry a difference, found now or on an earlier run (resolved since), are not matched: a re-run counts the same.
  const differing = await trx
    .selectFrom('recon_differences')
    .select((eb) => eb.fn.countAll<string>().as('lines'))
    .where('batch_id', '=', batch.id)
    .where('kind', 'in', ['missing_local', 'amount_mismatch', 'status_mismatch', 'fee_mismatch'])
    .where('status', '<>', 'withdrawn')
    .executeTakeFirstOrThrow();
  const matched = Math.max(0, counts.linesChannel - Number(differing.lines));
  const currency = totals.netAmount.currency;
  const feeNet = totals.payments.fee.amount - totals.refunds.fee.amount;
  await trx
    .updateTable('recon_batches')
    .set({
      status: 'differences',
      currency,
      lines_channel: counts.linesChannel,
      lines_local: counts.linesLocal,
      matched,
      channel_payments_amount: totals.payments.amount.amount,
      channel_refunds_amount: totals.refunds.amount.amount,
      channel_fee_amount: feeNet,
      channel_net_amount: totals.netAmount.amount,
      finished_at: now,
      updated_at: now,
    })
    .where('id', '=', batch.id)
    .execute();
  const fees = await bookBillFees(trx, context, { batch, channelFeeNet: feeNet, currency: currency as Currency });
  await trx.updateTable('recon_batches').set({ fees_booked_amount: fees }).where('id', '=', batch.id).execute();
  await refreshBatchStatus(trx, batch.id, now);
  const updated = await findBatch(trx, batch.id);
  if (!updated) throw new Error(`batch ${batch.id} vanished`);
  return updated;
}

/** The channel accounts a day is reconciled for: the one named, or every active one whose connector can fetch bills. */
export async function accountsToReconcile(context: PlatformContext, channelAccountId?: string): Promise<ChannelAccountRow[]> {
  if (channelAccountId) return [await getChannelAccount(context, channelAccountId)];
  const rows = (await context.db.selectFrom('channel_accounts').selectAll().where('status', '=', 'active').orderBy('id').execute()) as unknown as ChannelAccountRow[];
  return rows.filter((account) => {
    try {
      return connectorFor(context, account).downloadBill !== undefined;
    } catch {
      return false;
    }
  });
}

/** `fen reconcile`: the day's batch of every account (or the one named), one after the other. */
export async function reconcileDay(context: PlatformContext, input: { billDate: string; channelAccountId?: string }): Promise<BatchReport[]> {
  const reports: BatchReport[] = [];
  for (const account of await accountsToReconcile(context, input.channelAccountId)) {
    reports.push(await reconcileAccountDay(context, account.id, input.billDate));
  }
  return reports;
}
