import { sql, type Kysely, type RawBuilder } from 'kysely';
import type { BillLine } from '../channels/index.js';
import type { Database } from '../platform/db/index.js';

/**
 * Matching a bill against Fen's records, set-based, in PostgreSQL.
 *
 * While the bill is parsed, the run's main connection loads Fen's records of
 * the bill day into a work table (one statement per kind of record, no query
 * per record) and a second connection copies the parsed lines into another
 * (line-copy.ts), so the server works on both at once. Once the bill has been
 * read to its end, a FULL JOIN pairs every line with the record of its key and
 * keeps only what needs a look: lines without a record or with a difference,
 * records without a line, and pairs that earlier runs left something about.
 * The join runs in two halves, split by a hash of the key, one on each
 * connection: together they cost a little more than one join, but two cores
 * do them at once. A day where everything agrees keeps nothing, so the steps
 * after the join (looking up leftover lines among all of the account's
 * records, writing differences and the pool) work on a handful of rows, not on
 * a million. Neither side of a day is ever held in Node's memory.
 *
 * Work tables (unlogged, schema recon_work, one set per batch: a temporary
 * table would be seen by one connection only):
 *  - lines_<batch>: the bill's lines, as parsed.
 *  - fen_<batch>: Fen's side — the day's succeeded payments, refunds and
 *    exceptions by business time (day_set), plus the records that leftover
 *    lines name although they belong to another day or did not succeed; each
 *    with what its booking put on channel_clearing (booked). The internal
 *    check reads it as recon_fen.
 *  - kept_<batch>: the rows the join kept, before they are split into the
 *    main connection's temporary tables:
 *  - recon_matched: the kept lines, each with the Fen record it paired with
 *    (f_*), if any. Every line with a difference is there; a line that is not
 *    is matched with a record of the day.
 *  - recon_unlisted: the day's records that no line of the bill lists.
 */

export interface MatchScope {
  channelAccountId: string;
  /** channel_clearing of the account; null for a merchant's own account, whose funds never pass the platform. */
  clearingAccountId: string | null;
  feeRateBasisPoints: bigint;
  billDate: string;
  day: { start: Date; end: Date };
  /** The batch being run: the entries its resolved differences booked are looked for among the pairs. */
  batchId: string;
}

/** Fen's side of the day as loaded: how many records, and what their bookings put on channel_clearing. */
export interface FenDay {
  records: number;
  booked: bigint;
}

type Connection = Kysely<Database>;

async function run(db: Connection, statement: RawBuilder<unknown>): Promise<void> {
  await statement.execute(db);
}

/** Half-up fee of an amount at the account's rate: the same rounding as the channel's (docs/reconciliation.md). */
function expectedFee(amount: RawBuilder<unknown>, rate: bigint): RawBuilder<bigint> {
  return sql<bigint>`((${amount}) * ${rate}::bigint + 5000) / 10000`;
}

/**
 * The booking entry of a record (by its dedupe key, one index probe) and what
 * it put on channel_clearing: every booking Fen makes moves clearing by one
 * posting at most.
 */
function booking(dedupeKey: RawBuilder<unknown>, clearingAccountId: string | null): RawBuilder<unknown> {
  return sql`LEFT JOIN journal_entries e ON e.dedupe_key = ${dedupeKey}
    LEFT JOIN ledger_postings lp ON lp.entry_id = e.id AND lp.account_id = ${clearingAccountId}`;
}

/** A batch's work tables (see above): one set per batch, as two runs of one batch never overlap (they hold its advisory lock). */
export interface WorkTables {
  lines: string;
  fen: string;
  kept: string;
}

export function workTablesOf(batchId: string): WorkTables {
  if (!/^[a-z0-9_]+$/.test(batchId)) throw new Error(`not a batch id: ${batchId}`);
  return { lines: `recon_work.lines_${batchId}`, fen: `recon_work.fen_${batchId}`, kept: `recon_work.kept_${batchId}` };
}

const tempTables = sql`pg_temp.recon_matched, pg_temp.recon_unlisted, pg_temp.recon_candidates`;

/** Settings for the statements of a run, on each of its connections. */
export async function tuneSession(db: Connection): Promise<void> {
  // Hashes spilled to disk would cost more than the joins themselves.
  await run(db, sql`SET work_mem = '256MB'`);
  // Compiled expressions pay for themselves on a million rows; optimising and inlining them does not.
  await run(db, sql`SET jit_optimize_above_cost = -1`);
  await run(db, sql`SET jit_inline_above_cost = -1`);
  // The joins need row counts and key widths, not fine histograms: a small sample keeps ANALYZE of a million rows cheap.
  await run(db, sql`SET default_statistics_target = 10`);
  // The run spreads its work over its own connections already; parallel workers on top would only fight them for the cores.
  await run(db, sql`SET max_parallel_workers_per_gather = 0`);
}

/** The main connection's side of a run: its settings, no temporary table of an earlier run, and the work table for Fen's side. */
export async function prepareMatching(db: Connection, work: WorkTables): Promise<void> {
  await run(db, sql`DROP TABLE IF EXISTS ${tempTables}`);
  await dropWorkTables(db, work);
  await tuneSession(db);
  await run(db, sql`CREATE UNLOGGED TABLE ${sql.table(work.fen)} (
      match_key text, item_type text NOT NULL, item_id text NOT NULL, payment_id text NOT NULL, line_kind text NOT NULL,
      channel_trade_no text, amount bigint NOT NULL, currency text NOT NULL, status text NOT NULL,
      business_at timestamptz, merchant_id text, entry_id text, booked bigint NOT NULL DEFAULT 0,
      expected_fee bigint NOT NULL, day_set boolean NOT NULL)`);
}

export async function endMatching(db: Connection, work: WorkTables): Promise<void> {
  await run(db, sql`DROP TABLE IF EXISTS ${tempTables}`);
  await dropWorkTables(db, work);
  await run(db, sql`RESET work_mem`);
  await run(db, sql`RESET jit_optimize_above_cost`);
  await run(db, sql`RESET jit_inline_above_cost`);
  await run(db, sql`RESET default_statistics_target`);
  await run(db, sql`RESET max_parallel_workers_per_gather`);
}

/** Drops work tables: the lines once paired, all of them when the run ends (or an interrupted one left them). */
export async function dropWorkTables(db: Connection, work: Partial<WorkTables>): Promise<void> {
  for (const table of [work.lines, work.fen, work.kept]) if (table) await run(db, sql`DROP TABLE IF EXISTS ${sql.table(table)}`);
}

/** Fen's side as the internal check reads it (internal.ts), on the connection that runs the check. */
export async function showFenAsReconFen(db: Connection, work: WorkTables): Promise<void> {
  await run(db, sql`CREATE OR REPLACE TEMP VIEW recon_fen AS SELECT * FROM ${sql.table(work.fen)}`);
}

export async function hideReconFen(db: Connection): Promise<void> {
  await run(db, sql`DROP VIEW IF EXISTS pg_temp.recon_fen`);
}

/**
 * The refund's share of the channel's fee handed back, as the channel computes
 * it: on the running total of the payment's refunds (fee × refunded so far ÷
 * total, less what earlier refunds handed back), so a full refund hands back
 * exactly the fee charged. An exception's refund hands back the whole fee of
 * the money it returns.
 */
function refundFeeExpected(rate: bigint): RawBuilder<bigint> {
  const paymentFee = expectedFee(sql`p.amount`, rate);
  const upTo = sql`(SELECT sum(r2.amount) FROM refunds r2
      WHERE r2.payment_id = r.payment_id AND r2.status = 'succeeded' AND r2.source <> 'exception'
        AND (r2.succeeded_at, r2.id) <= (r.succeeded_at, r.id))`;
  // A refund that has not succeeded has no running total (its succeeded_at is NULL) and hands nothing back; its fee is
  // never compared, but the column must not be NULL. Before, such a refund on the bill stopped the run with a NOT NULL
  // violation. Found by test/integration/recon-wechatpay.test.ts.
  return sql<bigint>`coalesce(CASE WHEN r.source = 'exception' THEN ${expectedFee(sql`r.amount`, rate)}
    ELSE (2 * ${paymentFee} * ${upTo} + p.amount) / (2 * p.amount) - (2 * ${paymentFee} * (${upTo} - r.amount) + p.amount) / (2 * p.amount) END, 0)`;
}

const fenColumns = sql`match_key, item_type, item_id, payment_id, line_kind, channel_trade_no, amount, currency, status, business_at, merchant_id, entry_id, booked, expected_fee, day_set`;

interface FenWhere {
  payments: RawBuilder<unknown>;
  refunds: RawBuilder<unknown>;
  exceptions: RawBuilder<unknown>;
}

/**
 * Fen's payments, refunds and exceptions matching `where`, into `table`. A
 * record's key is what a line names it by: a payment's (or an exception's)
 * channel trade number, a refund's id; a payment without a trade number has
 * none and no line can pair with it.
 */
async function loadFen(db: Connection, scope: MatchScope, table: RawBuilder<unknown>, where: FenWhere, daySet: boolean): Promise<FenDay> {
  const rate = scope.feeRateBasisPoints;
  // Each statement counts what it loaded as it goes, so the day's totals cost no second pass over a million rows.
  const loaded = (select: RawBuilder<unknown>) =>
    sql<{ records: string; booked: bigint | null }>`WITH loaded AS (INSERT INTO ${table} (${fenColumns}) ${select} RETURNING booked)
      SELECT count(*)::text AS records, sum(booked)::bigint AS booked FROM loaded`.execute(db);
  const results = [
    await loaded(sql`SELECT p.channel_trade_no, 'payment', p.id, p.id, 'payment', p.channel_trade_no, p.amount, p.currency, p.status, p.paid_at, p.merchant_id,
           e.id, coalesce(lp.amount, 0), ${expectedFee(sql`p.amount`, rate)}, ${daySet}
      FROM payments p ${booking(sql`'payment:' || p.id || ':capture'`, scope.clearingAccountId)}
     WHERE p.channel_account_id = ${scope.channelAccountId} AND ${where.payments}`),
    await loaded(sql`SELECT r.id, 'refund', r.id, r.payment_id, 'refund', coalesce(x.channel_trade_no, p.channel_trade_no), r.amount, r.currency, r.status,
           r.succeeded_at, r.merchant_id, e.id, coalesce(lp.amount, 0), ${refundFeeExpected(rate)}, ${daySet}
      FROM refunds r JOIN payments p ON p.id = r.payment_id
      LEFT JOIN payment_exceptions x ON x.refund_id = r.id
      ${booking(sql`'refund:' || r.id`, scope.clearingAccountId)}
     WHERE p.channel_account_id = ${scope.channelAccountId} AND ${where.refunds}`),
    await loaded(sql`SELECT x.channel_trade_no, 'exception', x.id, x.payment_id, 'payment', x.channel_trade_no, x.amount, x.currency, 'succeeded', x.created_at, x.merchant_id,
           e.id, coalesce(lp.amount, 0), ${expectedFee(sql`x.amount`, rate)}, ${daySet}
      FROM payment_exceptions x JOIN payments p ON p.id = x.payment_id
      ${booking(sql`'exception:' || x.id || ':suspense'`, scope.clearingAccountId)}
     WHERE p.channel_account_id = ${scope.channelAccountId} AND ${where.exceptions}`),
  ];
  return results.reduce<FenDay>((sum, result) => ({ records: sum.records + Number(result.rows[0]?.records ?? 0), booked: sum.booked + (result.rows[0]?.booked ?? 0n) }), { records: 0, booked: 0n });
}

/** The day's records by business time: what the bill is expected to list. */
export async function loadFenDay(db: Connection, scope: MatchScope, work: WorkTables): Promise<FenDay> {
  const { start, end } = scope.day;
  const fen = sql.table(work.fen);
  const loaded = await loadFen(
    db,
    scope,
    fen,
    {
      payments: sql`p.status = 'succeeded' AND p.paid_at >= ${start} AND p.paid_at < ${end}`,
      refunds: sql`r.status = 'succeeded' AND r.succeeded_at >= ${start} AND r.succeeded_at < ${end}`,
      exceptions: sql`x.created_at >= ${start} AND x.created_at < ${end}`,
    },
    true,
  );
  await run(db, sql`ANALYZE ${fen}`);
  return loaded;
}

/** Identifiers come from the channel's file: nothing in them may break the text format of COPY (tab, line end, backslash, NUL). */
function cell(text: string): string {
  return /[\t\n\r\0\\]/.test(text) ? text.replace(/[\t\n\r\0\\]/g, ' ') : text;
}

/** One line as a row of COPY's text format (line-copy.ts); a line without a refund number has NULL (`\N`) there, not an empty string. */
export function lineRow(line: BillLine): string {
  const refundNo = line.outRefundNo ? cell(line.outRefundNo) : '\\N';
  return `${line.kind}\t${cell(line.channelTradeNo)}\t${cell(line.outTradeNo)}\t${refundNo}\t${line.amount.amount}\t${line.fee.amount}\t${line.amount.currency}\t${line.status}\t${line.occurredAt.getTime()}\t${line.lineNumber}`;
}

/**
 * The outcome of one paired line: matched, or the kind of difference. A line
 * has at most one difference, the most telling: the money is there or not
 * (status) before how much (amount) before what it cost (fee). A line that
 * moved no money (closed, failed, pending) and names nothing Fen holds has
 * nothing to reconcile: counted as missing_local, it would have been booked
 * to suspense as money the channel never took.
 */
export const lineOutcome = sql<string>`CASE
    WHEN f_item_id IS NULL AND status = 'succeeded' THEN 'missing_local'
    WHEN f_item_id IS NULL THEN 'matched'
    WHEN status = 'succeeded' AND f_status <> 'succeeded' THEN 'status_mismatch'
    WHEN status <> 'succeeded' AND f_status = 'succeeded' THEN 'status_mismatch'
    WHEN status <> 'succeeded' THEN 'matched'
    WHEN amount <> f_amount OR currency <> f_currency THEN 'amount_mismatch'
    WHEN fee <> f_expected_fee THEN 'fee_mismatch'
    ELSE 'matched' END`;

/**
 * Whether a line paired with a record differs from it: lineOutcome <> 'matched'
 * for a pair (the join's columns are never NULL), written as the few
 * comparisons it comes down to, as the join evaluates it a million times.
 */
export const pairDiffers = sql<boolean>`((status = 'succeeded') <> (f_status = 'succeeded')
    OR (status = 'succeeded' AND (amount <> f_amount OR currency <> f_currency OR fee <> f_expected_fee)))`;

/**
 * What channel_clearing must move by for the books to agree with the channel
 * about a line (debits positive): a payment adds to what the channel owes, a
 * refund takes from it, and a fee different from the expected one is the
 * part of the fee not yet booked.
 */
export const lineDelta = sql<bigint>`(CASE WHEN kind = 'payment' THEN 1 ELSE -1 END) * (CASE ${lineOutcome}
    WHEN 'missing_local' THEN amount
    WHEN 'status_mismatch' THEN CASE WHEN status = 'succeeded' THEN amount ELSE -f_amount END
    WHEN 'amount_mismatch' THEN amount - f_amount
    WHEN 'fee_mismatch' THEN -(fee - f_expected_fee)
    ELSE 0 END)`;

/** What a line names its record by, the counterpart of match_key on Fen's side: a payment's trade number, a refund's refund number. */
const lineKey = (alias: string) => sql`CASE WHEN ${sql.ref(`${alias}.kind`)} = 'payment' THEN ${sql.ref(`${alias}.channel_trade_no`)} ELSE ${sql.ref(`${alias}.out_refund_no`)} END`;

const pairedWith = (lines: string, fen: string) => sql`${sql.ref(`${fen}.line_kind`)} = ${sql.ref(`${lines}.kind`)} AND ${sql.ref(`${fen}.match_key`)} = ${lineKey(lines)}`;

const lineColumns = sql`l.kind, l.channel_trade_no, l.out_trade_no, l.out_refund_no, l.amount, l.fee, l.currency, l.status, l.occurred_ms, l.line_number`;

const pairColumns = sql`f.item_type AS f_item_type, f.item_id AS f_item_id, f.payment_id AS f_payment_id,
  f.channel_trade_no AS f_channel_trade_no, f.amount AS f_amount, f.currency AS f_currency, f.status AS f_status, f.business_at AS f_business_at,
  f.merchant_id AS f_merchant_id, f.entry_id AS f_entry_id, f.booked AS f_booked, f.expected_fee AS f_expected_fee, f.day_set AS f_day_set`;

/** recon_matched's columns: the line, when it happened, the record it paired with, and how (set by the look-ups). */
const matchedColumns = sql`kind, channel_trade_no, out_trade_no, out_refund_no, amount, fee, currency, status,
  timestamptz 'epoch' + occurred_ms * interval '1 millisecond' AS occurred_at, line_number,
  f_item_type, f_item_id, f_payment_id, f_channel_trade_no, f_amount, f_currency, f_status, f_business_at, f_merchant_id,
  f_entry_id, f_booked, f_expected_fee, f_day_set, NULL::text AS f_via, NULL::text AS dup_payment_id`;

/**
 * The records a matched pair must still be kept for, because persisting the
 * run changes something about them: a record waiting in the pool (held, or
 * reported missing) that the bill now lists, a record with an open
 * missing_channel difference to withdraw, a record whose booking entry one of
 * this batch's resolved differences names (the fund flow must not count that
 * entry twice: a booking's dedupe key names its record, `payment:<id>:capture`,
 * `refund:<id>`, `exception:<id>:suspense`).
 */
function watchedItems(scope: MatchScope): RawBuilder<unknown> {
  return sql`(SELECT item_id FROM recon_pool WHERE channel_account_id = ${scope.channelAccountId} AND status <> 'matched'
    UNION ALL SELECT split_part(dedupe_key, ':', 3) FROM recon_differences
     WHERE channel_account_id = ${scope.channelAccountId} AND kind = 'missing_channel' AND status = 'open'
    UNION ALL SELECT split_part(e.dedupe_key, ':', 2) FROM recon_differences d JOIN journal_entries e ON e.id = d.entry_id
     WHERE d.batch_id = ${scope.batchId} AND d.status = 'resolved')`;
}

/**
 * Whether a joined row is kept: a record no line lists, a line with a
 * difference (or without a record), or a pair whose record is watched — a
 * test left out when nothing is watched, as on most days.
 */
async function keptRow(db: Connection, scope: MatchScope): Promise<RawBuilder<boolean>> {
  const watching = await sql<{ any: boolean }>`SELECT EXISTS ${watchedItems(scope)} AS any`.execute(db);
  const watched = watching.rows[0]?.any ? sql`OR f_item_id IN ${watchedItems(scope)}` : sql``;
  return sql<boolean>`(line_number IS NULL OR f_item_id IS NULL OR ${pairDiffers} ${watched})`;
}

/** The halves the join is split into, by a hash of the key (the same on both sides, so a line and its record meet in one half). */
export const joinHalves = 2;

const inHalf = (key: RawBuilder<unknown>, half: number) => sql`(hashtext(coalesce(${key}, '')) & ${joinHalves - 1}) = ${half}`;

/** Makes the table the halves of the join write into (the rows they keep, by their place in the work tables); returns what a row is kept for. */
export async function prepareJoin(db: Connection, scope: MatchScope, work: WorkTables): Promise<RawBuilder<boolean>> {
  await run(db, sql`CREATE UNLOGGED TABLE ${sql.table(work.kept)} (l_row tid, f_row tid)`);
  return keptRow(db, scope);
}

/**
 * One half of the FULL JOIN of the lines with the day's records. Only what the
 * outcome needs travels through the join, and a kept row is written as the
 * places of its line and record: the hash tables stay small, and the few rows
 * kept are read in full afterwards.
 */
export async function joinHalf(db: Connection, work: WorkTables, kept: RawBuilder<boolean>, half: number): Promise<void> {
  await run(db, sql`INSERT INTO ${sql.table(work.kept)} (l_row, f_row)
    SELECT l_row, f_row FROM (
      SELECT l.row AS l_row, l.line_number, l.status, l.amount, l.currency, l.fee,
             f.row AS f_row, f.item_id AS f_item_id, f.status AS f_status, f.amount AS f_amount, f.currency AS f_currency, f.expected_fee AS f_expected_fee
        FROM (SELECT ctid AS row, * FROM ${sql.table(work.lines)} l WHERE ${inHalf(lineKey('l'), half)}) l
        FULL JOIN (SELECT ctid AS row, * FROM ${sql.table(work.fen)} f WHERE f.day_set AND ${inHalf(sql`f.match_key`, half)}) f ON ${pairedWith('l', 'f')}) j
     WHERE ${kept}`);
}

/** What the join found beyond the kept rows, to tell whether a record was listed more than once. */
interface JoinCounts {
  unpairedLines: number;
  unlisted: number;
}

/** The kept rows in full, split into recon_matched (lines) and recon_unlisted (records no line lists). */
async function splitKept(db: Connection, work: WorkTables): Promise<JoinCounts> {
  const kept = sql.table(work.kept);
  const fen = sql.table(work.fen);
  await run(db, sql`CREATE TEMP TABLE recon_matched AS
    SELECT ${matchedColumns} FROM (
      SELECT ${lineColumns}, ${pairColumns} FROM ${kept} k JOIN ${sql.table(work.lines)} l ON l.ctid = k.l_row LEFT JOIN ${fen} f ON f.ctid = k.f_row) j`);
  await run(db, sql`CREATE TEMP TABLE recon_unlisted AS SELECT f.* FROM ${kept} k JOIN ${fen} f ON f.ctid = k.f_row WHERE k.l_row IS NULL`);
  const counts = await sql<{ unpaired_lines: string; unlisted: string }>`
    SELECT (SELECT count(*) FROM recon_matched WHERE f_item_id IS NULL)::text AS unpaired_lines, (SELECT count(*) FROM recon_unlisted)::text AS unlisted`.execute(db);
  return { unpairedLines: Number(counts.rows[0]?.unpaired_lines ?? 0), unlisted: Number(counts.rows[0]?.unlisted ?? 0) };
}

/**
 * After the join: pairs the lines left over. They are looked up among all of
 * the account's records (by trade number, then by Fen's payment id), which
 * finds what belongs to another day and what Fen holds in another state. A
 * line that names a Fen payment already paid under another trade number is a
 * second payment of the order: it pairs with nothing and keeps the payment as
 * dup_payment_id. A record listed more than once pairs with its first line
 * only.
 */
export async function pairLeftovers(db: Connection, scope: MatchScope, work: WorkTables, lines: { count: number; fenDay: FenDay }): Promise<void> {
  const joined = await splitKept(db, work);
  if (joined.unpairedLines > 0) await lookUpUnpaired(db, scope, work);
  // Each record of the day pairs with the lines of its key. More paired lines than paired records means a
  // record some line names again; only then are the lines sharing a key looked for (every key of the day's
  // records is its own: one trade number is captured once, a refund has its own id).
  if (lines.count - joined.unpairedLines > lines.fenDay.records - joined.unlisted) await keepRepeatedLines(db, work);
  await setAsideRepeats(db);
}

const setFen = sql`f_item_type = f.item_type, f_item_id = f.item_id, f_payment_id = f.payment_id, f_channel_trade_no = f.channel_trade_no,
  f_amount = f.amount, f_currency = f.currency, f_status = f.status, f_business_at = f.business_at, f_merchant_id = f.merchant_id,
  f_entry_id = f.entry_id, f_booked = f.booked, f_expected_fee = f.expected_fee, f_day_set = f.day_set`;

/**
 * The records that leftover lines name, whatever their day or state, come
 * into recon_candidates by index look-ups; those of the day's set are already
 * in Fen's work table (one scan finds them), the rest join it as records of another
 * day. The leftover lines then pair among the candidates.
 */
async function lookUpUnpaired(db: Connection, scope: MatchScope, work: WorkTables): Promise<void> {
  const fen = sql.table(work.fen);
  const unpaired = (kind: string, column: RawBuilder<unknown>) => sql`(SELECT ${column} FROM recon_matched WHERE f_item_id IS NULL AND kind = ${kind})`;
  await run(db, sql`CREATE TEMP TABLE recon_candidates (LIKE ${fen})`);
  await loadFen(
    db,
    scope,
    sql`recon_candidates`,
    {
      payments: sql`(p.channel_trade_no IN ${unpaired('payment', sql`channel_trade_no`)} OR p.id IN ${unpaired('payment', sql`out_trade_no`)})`,
      refunds: sql`r.id IN ${unpaired('refund', sql`out_refund_no`)}`,
      exceptions: sql`x.channel_trade_no IN ${unpaired('payment', sql`channel_trade_no`)}`,
    },
    false,
  );
  await run(db, sql`UPDATE recon_candidates c SET day_set = true FROM ${fen} f WHERE f.item_id = c.item_id`);
  await run(db, sql`INSERT INTO ${fen} SELECT * FROM recon_candidates WHERE NOT day_set`);
  await run(db, sql`UPDATE recon_matched m SET ${setFen}, f_via = 'trade_no' FROM recon_candidates f
     WHERE m.f_item_id IS NULL AND m.kind = 'payment' AND f.line_kind = 'payment' AND f.channel_trade_no = m.channel_trade_no`);
  await run(db, sql`UPDATE recon_matched m SET ${setFen}, f_via = 'refund_no' FROM recon_candidates f
     WHERE m.f_item_id IS NULL AND m.kind = 'refund' AND f.line_kind = 'refund' AND f.item_id = m.out_refund_no`);
  await run(db, sql`UPDATE recon_matched m SET ${setFen}, f_via = 'out_trade_no' FROM recon_candidates f
     WHERE m.f_item_id IS NULL AND m.kind = 'payment' AND f.item_type = 'payment' AND f.item_id = m.out_trade_no`);
  // Paid under another trade number: this line is a second payment of the order, not the order's own.
  await run(db, sql`UPDATE recon_matched SET dup_payment_id = f_item_id, f_item_type = NULL, f_item_id = NULL, f_via = NULL
     WHERE f_via = 'out_trade_no' AND f_status = 'succeeded' AND f_channel_trade_no IS DISTINCT FROM channel_trade_no`);
  await run(db, sql`DROP TABLE recon_candidates`);
}

/** The join kept only the lines that disagree with their record: every line of a repeated key joins recon_matched. */
async function keepRepeatedLines(db: Connection, work: WorkTables): Promise<void> {
  const lines = sql.table(work.lines);
  await run(db, sql`INSERT INTO recon_matched
    SELECT ${matchedColumns} FROM (
      SELECT ${lineColumns}, ${pairColumns} FROM ${lines} l JOIN ${sql.table(work.fen)} f ON f.day_set AND ${pairedWith('l', 'f')}
       WHERE (l.kind, ${lineKey('l')}) IN (SELECT r.kind, ${lineKey('r')} FROM ${lines} r GROUP BY 1, 2 HAVING count(*) > 1)
         AND NOT EXISTS (SELECT 1 FROM recon_matched m WHERE m.line_number = l.line_number)) j`);
}

/** A record listed twice pairs with its first line; every later line listing it is one Fen does not have. */
async function setAsideRepeats(db: Connection): Promise<void> {
  await run(db, sql`UPDATE recon_matched m SET f_item_type = NULL, f_item_id = NULL, f_via = 'repeat'
    FROM (SELECT f_item_id, min(line_number) AS first_line FROM recon_matched WHERE f_item_id IS NOT NULL
          GROUP BY f_item_id HAVING count(*) > 1) r
   WHERE m.f_item_id = r.f_item_id AND m.line_number <> r.first_line`);
}

export interface MatchCounts {
  linesChannel: number;
  linesLocal: number;
  matched: number;
  byOutcome: Record<string, number>;
  /** What the paired records' bookings put on channel_clearing. */
  pairedBooked: bigint;
}

/**
 * The outcomes of all lines from the few rows kept: every line with a
 * difference is in recon_matched, so the lines not there are matched with a
 * record of the day. The records paired are the day's (less those unlisted)
 * and the other days' records that kept lines found.
 */
export async function countOutcomes(db: Connection, lineCount: number, fenDay: FenDay): Promise<MatchCounts> {
  const outcomes = await sql<{ outcome: string; lines: string; booked: bigint | null }>`
    SELECT ${lineOutcome} AS outcome, count(*)::text AS lines, (sum(f_booked) FILTER (WHERE f_item_id IS NOT NULL AND NOT f_day_set))::bigint AS booked
      FROM recon_matched GROUP BY 1`.execute(db);
  const unlisted = await sql<{ booked: bigint | null }>`SELECT sum(booked)::bigint AS booked FROM recon_unlisted`.execute(db);
  const byOutcome: Record<string, number> = { matched: lineCount };
  let pairedBooked = fenDay.booked - (unlisted.rows[0]?.booked ?? 0n);
  for (const row of outcomes.rows) {
    if (row.outcome !== 'matched') {
      byOutcome[row.outcome] = Number(row.lines);
      byOutcome.matched! -= Number(row.lines);
    }
    pairedBooked += row.booked ?? 0n;
  }
  return { linesChannel: lineCount, linesLocal: fenDay.records, matched: byOutcome.matched!, byOutcome, pairedBooked };
}
