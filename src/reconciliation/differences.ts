import { sql, type RawBuilder } from 'kysely';
import type { DbExecutor, DbTransaction, ReconDifferenceKind } from '../platform/db/index.js';
import { newId } from '../platform/ids.js';
import { lineDelta, lineOutcome, type MatchScope } from './matching.js';
import { addDays, reconLimits } from './recon.types.js';

/**
 * Turning the matching into differences and holding-pool rows, set-based and
 * idempotent: every difference has a dedupe key unique per channel account
 * (the line or record it is about, and its kind), so a re-run finds the rows
 * it made before instead of adding them again. A re-run also withdraws an open
 * difference it no longer finds (a channel that corrected its bill), and a
 * record listed late — on a later bill, or after it was reported missing —
 * withdraws the missing_channel difference it had caused. Withdrawn is not
 * resolved: nothing was wrong, so nothing is booked.
 */

export interface PersistScope extends MatchScope {
  batchId: string;
  now: Date;
}

const lineKey = sql<string>`'line:' || kind || ':' || channel_trade_no || ':' || coalesce(out_refund_no, '') || ':' ||
  CASE WHEN f_via = 'repeat' THEN 'repeat:' ELSE '' END || (${lineOutcome})`;
const itemKey = (alias: string) => sql<string>`'item:' || ${sql.ref(`${alias}.item_type`)} || ':' || ${sql.ref(`${alias}.item_id`)} || ':missing_channel'`;

const lineDetail = sql<string>`CASE (${lineOutcome})
  WHEN 'missing_local' THEN CASE WHEN dup_payment_id IS NOT NULL THEN format('a second payment (trade %s) of payment %s, which Fen holds as paid by trade %s', channel_trade_no, dup_payment_id, f_channel_trade_no)
                                 WHEN f_via = 'repeat' THEN format('the bill lists %s %s more than once', kind, channel_trade_no)
                                 ELSE format('the channel lists a %s (trade %s, out_trade_no %s) that Fen does not have', kind, channel_trade_no, out_trade_no) END
  WHEN 'status_mismatch' THEN format('the channel says %s, Fen says %s', status, f_status)
  WHEN 'amount_mismatch' THEN format('the channel says %s %s, Fen says %s %s', amount, currency, f_amount, f_currency)
  ELSE format('the channel’s fee is %s, the expected fee is %s', fee, f_expected_fee) END`;

/** This run's line differences, kept in recon_detected so the ones no longer found can be withdrawn. */
export async function insertLineDifferences(trx: DbTransaction, scope: PersistScope): Promise<void> {
  await sql`DROP TABLE IF EXISTS pg_temp.recon_detected`.execute(trx);
  await sql`CREATE TEMP TABLE recon_detected (dedupe_key text PRIMARY KEY)`.execute(trx);
  await sql`
    WITH candidates AS (
      SELECT DISTINCT ON (dedupe_key) * FROM (
        SELECT ${lineKey} AS dedupe_key, ${lineOutcome} AS outcome, ${lineDelta} AS delta, ${lineDetail} AS detail, m.*
          FROM recon_matched m WHERE ${lineOutcome} <> 'matched') c ORDER BY dedupe_key, line_number
    ), inserted AS (
      INSERT INTO recon_differences (id, batch_id, channel_account_id, bill_date, kind, dedupe_key, line_kind, channel_trade_no, out_trade_no,
        out_refund_no, payment_id, refund_id, merchant_id, currency, channel_amount, local_amount, local_booked, channel_fee, expected_fee,
        channel_status, local_status, delta, occurred_at, line_number, detail, status, created_at, updated_at)
      SELECT recon_new_id('dif', ${scope.now}), ${scope.batchId}, ${scope.channelAccountId}, ${scope.billDate}::date, outcome, dedupe_key, kind,
             channel_trade_no, out_trade_no, out_refund_no, coalesce(f_payment_id, dup_payment_id), CASE WHEN f_item_type = 'refund' THEN f_item_id END,
             f_merchant_id, currency, amount, CASE WHEN f_item_id IS NULL THEN NULL ELSE f_amount END, CASE WHEN f_item_id IS NULL THEN NULL ELSE f_booked END,
             fee, CASE WHEN f_item_id IS NULL THEN NULL ELSE f_expected_fee END, status, CASE WHEN f_item_id IS NULL THEN NULL ELSE f_status END,
             delta, occurred_at, line_number, detail, 'open', ${scope.now}, ${scope.now}
        FROM candidates
      ON CONFLICT (channel_account_id, dedupe_key) DO NOTHING
    )
    INSERT INTO recon_detected SELECT dedupe_key FROM candidates`.execute(trx);
}

function nearCutoff(scope: PersistScope): RawBuilder<boolean> {
  const windowMs = reconLimits.cutoffWindowSeconds * 1000;
  const early = new Date(scope.day.start.getTime() + windowMs);
  const late = new Date(scope.day.end.getTime() - windowMs);
  return sql<boolean>`(u.business_at < ${early} OR u.business_at >= ${late})`;
}

/** Whether records of this day may still wait in the pool: until three days after the day ends. */
function holdingOpen(scope: PersistScope): boolean {
  return scope.now.getTime() < scope.day.end.getTime() + reconLimits.holdingDaysMax * 24 * 60 * 60 * 1000;
}

const missingChannelColumns = sql`id, batch_id, channel_account_id, bill_date, kind, dedupe_key, line_kind, channel_trade_no, out_trade_no,
  out_refund_no, payment_id, refund_id, merchant_id, currency, local_amount, local_booked, local_status, delta, occurred_at, detail, status, created_at, updated_at`;

/**
 * The day's records the bill did not list (recon_unlisted, found by the
 * matching): matched by another day's bill (nothing to do), held in the pool
 * when close to a midnight and still within the holding time, and otherwise
 * missing on the channel's side (短款).
 */
export async function placeUnpairedRecords(trx: DbTransaction, scope: PersistScope): Promise<void> {
  await sql`DROP TABLE IF EXISTS pg_temp.recon_unpaired`.execute(trx);
  await sql`CREATE TEMP TABLE recon_unpaired AS
    SELECT u.*, u.item_type || ':' || u.item_id AS item_key, pool.status AS pool_status, ${nearCutoff(scope)} AND ${holdingOpen(scope)} AS hold
      FROM recon_unlisted u LEFT JOIN recon_pool pool ON pool.channel_account_id = ${scope.channelAccountId} AND pool.item_key = u.item_type || ':' || u.item_id
     WHERE pool.status IS DISTINCT FROM 'matched'`.execute(trx);
  await sql`INSERT INTO recon_pool (channel_account_id, item_key, item_type, item_id, line_kind, payment_id, merchant_id, channel_trade_no, currency,
      amount, booked, business_at, origin_date, status, created_at, updated_at)
    SELECT ${scope.channelAccountId}, item_key, item_type, item_id, line_kind, payment_id, merchant_id, channel_trade_no, currency, amount, booked,
           business_at, ${scope.billDate}::date, CASE WHEN hold THEN 'held' ELSE 'expired' END, ${scope.now}, ${scope.now}
      FROM recon_unpaired u
    ON CONFLICT (channel_account_id, item_key) DO UPDATE SET status = excluded.status, booked = excluded.booked, updated_at = excluded.updated_at`.execute(trx);
  await sql`INSERT INTO recon_differences (${missingChannelColumns})
    SELECT recon_new_id('dif', ${scope.now}), ${scope.batchId}, ${scope.channelAccountId}, ${scope.billDate}::date, 'missing_channel', ${itemKey('u')},
           u.line_kind, u.channel_trade_no, u.payment_id, CASE WHEN u.item_type = 'refund' THEN u.item_id END, u.payment_id,
           CASE WHEN u.item_type = 'refund' THEN u.item_id END, u.merchant_id, u.currency, u.amount, u.booked, u.status,
           (CASE WHEN u.line_kind = 'payment' THEN -1 ELSE 1 END) * u.amount, u.business_at,
           format('Fen has a %s %s of %s %s that the channel''s bill does not list', u.line_kind, u.item_id, u.amount, u.currency), 'open', ${scope.now}, ${scope.now}
      FROM recon_unpaired u WHERE NOT u.hold
    ON CONFLICT (channel_account_id, dedupe_key) DO NOTHING`.execute(trx);
  await sql`INSERT INTO recon_detected SELECT ${itemKey('u')} FROM recon_unpaired u WHERE NOT u.hold ON CONFLICT DO NOTHING`.execute(trx);
}

/**
 * Records of another day this bill listed: remembered in the pool as matched,
 * so their own day's batch does not report them missing, and any missing
 * difference already reported for them is withdrawn.
 */
export async function recordCrossDayPairs(trx: DbTransaction, scope: PersistScope): Promise<void> {
  await sql`INSERT INTO recon_pool (channel_account_id, item_key, item_type, item_id, line_kind, payment_id, merchant_id, channel_trade_no, currency,
      amount, booked, business_at, origin_date, status, matched_batch_id, created_at, updated_at)
    SELECT ${scope.channelAccountId}, f_item_type || ':' || f_item_id, f_item_type, f_item_id, kind, f_payment_id, f_merchant_id, f_channel_trade_no,
           f_currency, f_amount, f_booked, f_business_at, (f_business_at AT TIME ZONE 'Asia/Shanghai')::date, 'matched', ${scope.batchId}, ${scope.now}, ${scope.now}
      FROM recon_matched WHERE f_item_id IS NOT NULL AND NOT f_day_set AND f_status = 'succeeded' AND f_business_at IS NOT NULL
    ON CONFLICT (channel_account_id, item_key) DO UPDATE SET status = 'matched', matched_batch_id = excluded.matched_batch_id, updated_at = excluded.updated_at`.execute(trx);
  await sql`UPDATE recon_pool pool SET status = 'matched', matched_batch_id = ${scope.batchId}, updated_at = ${scope.now}
     FROM recon_matched m
    WHERE pool.channel_account_id = ${scope.channelAccountId} AND pool.status <> 'matched' AND m.f_day_set AND m.f_item_id IS NOT NULL
      AND pool.item_key = m.f_item_type || ':' || m.f_item_id`.execute(trx);
  await sql`UPDATE recon_differences d SET status = 'withdrawn', updated_at = ${scope.now},
           detail = d.detail || format(' — listed on the bill of %s after all', ${scope.billDate}::text)
     FROM recon_matched m
    WHERE d.channel_account_id = ${scope.channelAccountId} AND d.kind = 'missing_channel' AND d.status = 'open' AND m.f_item_id IS NOT NULL
      AND d.dedupe_key = 'item:' || m.f_item_type || ':' || m.f_item_id || ':missing_channel'`.execute(trx);
}

/** Open line differences of the batch that this run did not find again: the channel corrected its bill. */
export async function withdrawVanished(trx: DbTransaction, scope: PersistScope): Promise<void> {
  await sql`UPDATE recon_differences d SET status = 'withdrawn', updated_at = ${scope.now}, detail = d.detail || ' — not found on a later run'
     WHERE d.batch_id = ${scope.batchId} AND d.status = 'open'
       AND d.kind IN ('missing_local', 'missing_channel', 'amount_mismatch', 'status_mismatch', 'fee_mismatch')
       AND NOT EXISTS (SELECT 1 FROM recon_detected x WHERE x.dedupe_key = d.dedupe_key)`.execute(trx);
}

/**
 * Held records whose holding time is over, whichever day they belong to,
 * become missing_channel differences of their own day's batch.
 */
export async function expireHeld(executor: DbExecutor, channelAccountId: string, now: Date): Promise<string[]> {
  const lastOpenDay = addDays(new Date(now.getTime() + 8 * 60 * 60 * 1000).toISOString().slice(0, 10), -reconLimits.holdingDaysMax);
  const expired = await sql<{ batch_id: string }>`
    WITH due AS (
      UPDATE recon_pool pool SET status = 'expired', updated_at = ${now}
       WHERE pool.channel_account_id = ${channelAccountId} AND pool.status = 'held' AND pool.origin_date < ${lastOpenDay}::date
      RETURNING pool.*
    )
    INSERT INTO recon_differences (${missingChannelColumns})
    SELECT recon_new_id('dif', ${now}), b.id, ${channelAccountId}, due.origin_date, 'missing_channel', ${itemKey('due')}, due.line_kind,
           due.channel_trade_no, due.payment_id, CASE WHEN due.item_type = 'refund' THEN due.item_id END, due.payment_id,
           CASE WHEN due.item_type = 'refund' THEN due.item_id END, due.merchant_id, due.currency, due.amount, due.booked, 'succeeded',
           (CASE WHEN due.line_kind = 'payment' THEN -1 ELSE 1 END) * due.amount, due.business_at,
           format('Fen has a %s %s of %s %s that no bill listed within %s days', due.line_kind, due.item_id, due.amount, due.currency, ${reconLimits.holdingDaysMax}::int),
           'open', ${now}, ${now}
      FROM due JOIN recon_batches b ON b.channel_account_id = ${channelAccountId} AND b.bill_date = due.origin_date
    ON CONFLICT (channel_account_id, dedupe_key) DO NOTHING
    RETURNING batch_id`.execute(executor);
  return [...new Set(expired.rows.map((row) => row.batch_id))];
}

export interface BatchDifferenceInput {
  batchId: string;
  channelAccountId: string;
  billDate: string;
  kind: Extract<ReconDifferenceKind, 'fund_flow' | 'internal'>;
  dedupeKey: string;
  currency: string;
  delta: bigint;
  detail: string;
  paymentId?: string | null;
  refundId?: string | null;
  merchantId?: string | null;
  localAmount?: bigint | null;
}

/**
 * A difference about the day as a whole (fund flow) or about Fen's own
 * records (internal). An open one is brought up to date with what was found
 * now; a resolved one stays as it was resolved.
 */
export async function upsertBatchDifference(executor: DbExecutor, now: Date, input: BatchDifferenceInput): Promise<void> {
  await executor
    .insertInto('recon_differences')
    .values({
      id: newId('difference', now.getTime()),
      batch_id: input.batchId,
      channel_account_id: input.channelAccountId,
      bill_date: input.billDate,
      kind: input.kind,
      dedupe_key: input.dedupeKey,
      payment_id: input.paymentId ?? null,
      refund_id: input.refundId ?? null,
      merchant_id: input.merchantId ?? null,
      currency: input.currency,
      local_amount: input.localAmount ?? null,
      delta: input.delta,
      detail: input.detail,
      status: 'open',
      created_at: now,
      updated_at: now,
    })
    .onConflict((conflict) =>
      conflict
        .columns(['channel_account_id', 'dedupe_key'])
        .doUpdateSet({ delta: input.delta, detail: input.detail, updated_at: now, status: 'open' })
        .where('recon_differences.status', 'in', ['open', 'withdrawn']),
    )
    .execute();
}

/** Withdraws an open day-level difference that is no longer found. */
export async function withdrawBatchDifference(executor: DbExecutor, now: Date, channelAccountId: string, dedupeKey: string): Promise<void> {
  await executor
    .updateTable('recon_differences')
    .set({ status: 'withdrawn', updated_at: now })
    .where('channel_account_id', '=', channelAccountId)
    .where('dedupe_key', '=', dedupeKey)
    .where('status', '=', 'open')
    .execute();
}
