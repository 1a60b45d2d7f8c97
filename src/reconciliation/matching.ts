import { sql, type Kysely, type RawBuilder } from 'kysely';
import type { BillLine } from '../channels/index.js';
import type { Database } from '../platform/db/index.js';
import { reconLimits } from './recon.types.js';

/**
 * Matching a bill against Fen's records, set-based, in PostgreSQL.
 *
 * Everything runs on one connection with session temporary tables: Fen's
 * records of the bill day are loaded first (one statement, no query per
 * record), the bill's lines are streamed in as they are parsed (a few
 * statements per read chunk, each carrying its lines as one text value that
 * PostgreSQL splits, so Node does little more than join strings while the
 * server does the rest on its own core), and once the bill has been read to
 * its end the lines are paired with Fen's records by joins. Neither side of a
 * million-line day is ever held in Node's memory.
 *
 * Temporary tables:
 *  - recon_fen: Fen's side — the day's succeeded payments, refunds and
 *    exceptions by business time (day_set), plus the records that lines of
 *    the bill name although they belong to another day or did not succeed;
 *    each with what its booking put on channel_clearing (booked).
 *  - recon_lines: the bill's lines, as parsed.
 *  - recon_matched: every line with the Fen record it paired with (f_*).
 */

export interface MatchScope {
  channelAccountId: string;
  /** channel_clearing of the account; null for a merchant's own account, whose funds never pass the platform. */
  clearingAccountId: string | null;
  feeRateBasisPoints: bigint;
  billDate: string;
  day: { start: Date; end: Date };
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

export async function createTempTables(db: Connection): Promise<void> {
  await run(db, sql`DROP TABLE IF EXISTS pg_temp.recon_lines, pg_temp.recon_fen, pg_temp.recon_matched`);
  // A plan compiled per statement and hashes spilled to disk would cost more than the joins themselves.
  await run(db, sql`SET jit = off`);
  await run(db, sql`SET work_mem = '256MB'`);
  // The joins need row counts and key widths, not fine histograms: a small sample keeps ANALYZE of a million rows cheap.
  await run(db, sql`SET default_statistics_target = 10`);
  await run(db, sql`CREATE TEMP TABLE recon_lines (
      match_key text NOT NULL, kind text NOT NULL, channel_trade_no text NOT NULL, out_trade_no text NOT NULL, out_refund_no text,
      amount bigint NOT NULL, fee bigint NOT NULL, currency text NOT NULL, status text NOT NULL,
      occurred_at timestamptz NOT NULL, line_number integer NOT NULL)`);
  await run(db, sql`CREATE TEMP TABLE recon_fen (
      match_key text NOT NULL, item_type text NOT NULL, item_id text NOT NULL, payment_id text NOT NULL, line_kind text NOT NULL,
      channel_trade_no text, amount bigint NOT NULL, currency text NOT NULL, status text NOT NULL,
      business_at timestamptz, merchant_id text, entry_id text, booked bigint NOT NULL DEFAULT 0,
      expected_fee bigint NOT NULL, day_set boolean NOT NULL)`);
}

export async function dropTempTables(db: Connection): Promise<void> {
  await run(db, sql`DROP TABLE IF EXISTS pg_temp.recon_lines, pg_temp.recon_fen, pg_temp.recon_matched`);
  await run(db, sql`RESET jit`);
  await run(db, sql`RESET work_mem`);
  await run(db, sql`RESET default_statistics_target`);
}

/**
 * What a line and a record are paired by, one column on each side so the
 * pairing is a single hash join: a payment by the channel's trade number, a
 * refund by Fen's refund id.
 */
const lineKey = (kind: RawBuilder<unknown>, tradeNo: RawBuilder<unknown>, refundNo: RawBuilder<unknown>) =>
  sql`CASE WHEN ${kind} = 'payment' THEN 'p:' || ${tradeNo} ELSE 'r:' || ${refundNo} END`;

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
  return sql<bigint>`CASE WHEN r.source = 'exception' THEN ${expectedFee(sql`r.amount`, rate)}
    ELSE (2 * ${paymentFee} * ${upTo} + p.amount) / (2 * p.amount) - (2 * ${paymentFee} * (${upTo} - r.amount) + p.amount) / (2 * p.amount) END`;
}

const fenColumns = sql`match_key, item_type, item_id, payment_id, line_kind, channel_trade_no, amount, currency, status, business_at, merchant_id, entry_id, booked, expected_fee, day_set`;

/** Fen's payments, refunds and exceptions matching `where`, into recon_fen. */
async function loadFen(db: Connection, scope: MatchScope, where: { payments: RawBuilder<unknown>; refunds: RawBuilder<unknown>; exceptions: RawBuilder<unknown> }, daySet: boolean): Promise<void> {
  const rate = scope.feeRateBasisPoints;
  await run(db, sql`INSERT INTO recon_fen (${fenColumns})
    SELECT coalesce('p:' || p.channel_trade_no, 'none:' || p.id), 'payment', p.id, p.id, 'payment', p.channel_trade_no, p.amount, p.currency, p.status, p.paid_at, p.merchant_id,
           e.id, coalesce(lp.amount, 0), ${expectedFee(sql`p.amount`, rate)}, ${daySet}
      FROM payments p ${booking(sql`'payment:' || p.id || ':capture'`, scope.clearingAccountId)}
     WHERE p.channel_account_id = ${scope.channelAccountId} AND ${where.payments}`);
  await run(db, sql`INSERT INTO recon_fen (${fenColumns})
    SELECT 'r:' || r.id, 'refund', r.id, r.payment_id, 'refund', coalesce(x.channel_trade_no, p.channel_trade_no), r.amount, r.currency, r.status,
           r.succeeded_at, r.merchant_id, e.id, coalesce(lp.amount, 0), ${refundFeeExpected(rate)}, ${daySet}
      FROM refunds r JOIN payments p ON p.id = r.payment_id
      LEFT JOIN payment_exceptions x ON x.refund_id = r.id
      ${booking(sql`'refund:' || r.id`, scope.clearingAccountId)}
     WHERE p.channel_account_id = ${scope.channelAccountId} AND ${where.refunds}`);
  await run(db, sql`INSERT INTO recon_fen (${fenColumns})
    SELECT 'p:' || x.channel_trade_no, 'exception', x.id, x.payment_id, 'payment', x.channel_trade_no, x.amount, x.currency, 'succeeded', x.created_at, x.merchant_id,
           e.id, coalesce(lp.amount, 0), ${expectedFee(sql`x.amount`, rate)}, ${daySet}
      FROM payment_exceptions x JOIN payments p ON p.id = x.payment_id
      ${booking(sql`'exception:' || x.id || ':suspense'`, scope.clearingAccountId)}
     WHERE p.channel_account_id = ${scope.channelAccountId} AND ${where.exceptions}`);
}

/** The day's records by business time: what the bill is expected to list. */
export async function loadFenDay(db: Connection, scope: MatchScope): Promise<void> {
  const { start, end } = scope.day;
  await loadFen(
    db,
    scope,
    {
      payments: sql`p.status = 'succeeded' AND p.paid_at >= ${start} AND p.paid_at < ${end}`,
      refunds: sql`r.status = 'succeeded' AND r.succeeded_at >= ${start} AND r.succeeded_at < ${end}`,
      exceptions: sql`x.created_at >= ${start} AND x.created_at < ${end}`,
    },
    true,
  );
}

/** Identifiers come from the channel's file: nothing in them may break the line format the lines travel in. */
function cell(text: string): string {
  return /[\t\n\r\0\\]/.test(text) ? text.replace(/[\t\n\r\0\\]/g, ' ') : text;
}

export function lineRow(line: BillLine): string {
  return `${line.kind}\t${cell(line.channelTradeNo)}\t${cell(line.outTradeNo)}\t${cell(line.outRefundNo ?? '')}\t${line.amount.amount}\t${line.fee.amount}\t${line.amount.currency}\t${line.status}\t${line.occurredAt.getTime()}\t${line.lineNumber}`;
}

const ingestStatement = (rows: string) => sql`INSERT INTO recon_lines
    (match_key, kind, channel_trade_no, out_trade_no, out_refund_no, amount, fee, currency, status, occurred_at, line_number)
  SELECT ${lineKey(sql`f[1]`, sql`f[2]`, sql`f[4]`)}, f[1], f[2], f[3], nullif(f[4], ''), f[5]::bigint, f[6]::bigint, f[7], f[8],
         timestamptz 'epoch' + f[9]::bigint * interval '1 millisecond', f[10]::integer
    FROM string_to_table(${rows}::text, E'\n') AS t(line), LATERAL string_to_array(t.line, E'\t') AS f`;

/**
 * Streams lines into recon_lines while the parse goes on: statements are sent
 * without waiting for the previous one (the connection queues them), and only
 * when too many are waiting does the parse wait, so memory stays bounded.
 */
export class LineIngest {
  private readonly pending: Promise<void>[] = [];
  private rows: string[] = [];
  lineCount = 0;

  constructor(private readonly db: Connection) {}

  /** Lines are gathered across read chunks into statements of up to ingestLinesPerStatement: fewer, larger statements cost the server less. */
  async add(lines: readonly BillLine[]): Promise<void> {
    for (const line of lines) this.rows.push(lineRow(line));
    this.lineCount += lines.length;
    if (this.rows.length >= reconLimits.ingestLinesPerStatement) await this.send();
  }

  private async send(): Promise<void> {
    if (this.rows.length === 0) return;
    const text = this.rows.join('\n');
    this.rows = [];
    this.pending.push(run(this.db, ingestStatement(text)));
    while (this.pending.length >= reconLimits.ingestStatementsInFlightMax) await this.pending.shift();
  }

  async finish(): Promise<void> {
    await this.send();
    // Every statement is awaited, so a failed one is never left as an unhandled rejection.
    const results = await Promise.allSettled(this.pending.splice(0));
    const failed = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
    if (failed) throw failed.reason;
  }

  /** After a failed parse: wait for what was sent, ignoring its outcome; the tables are dropped next. */
  async abandon(): Promise<void> {
    this.rows = [];
    await Promise.allSettled(this.pending.splice(0));
  }
}

/**
 * Pairs every line with a Fen record: first with the day's records (by the
 * channel's trade number for a payment, by Fen's refund id for a refund), then
 * the lines left over are looked up among all of the account's records (by
 * trade number, then by Fen's payment id), which finds what belongs to
 * another day and what Fen holds in another state. A line that names a Fen
 * payment already paid under another trade number is a second payment of the
 * order: it pairs with nothing and keeps the payment as dup_payment_id.
 */
export async function pairLines(db: Connection, scope: MatchScope): Promise<void> {
  await run(db, sql`ANALYZE recon_lines`);
  await run(db, sql`ANALYZE recon_fen`);
  await run(db, sql`CREATE TEMP TABLE recon_matched AS
    SELECT l.*, f.item_type AS f_item_type, f.item_id AS f_item_id, f.payment_id AS f_payment_id, f.channel_trade_no AS f_channel_trade_no,
           f.amount AS f_amount, f.currency AS f_currency, f.status AS f_status, f.business_at AS f_business_at, f.merchant_id AS f_merchant_id,
           f.entry_id AS f_entry_id, f.booked AS f_booked, f.expected_fee AS f_expected_fee, f.day_set AS f_day_set,
           NULL::text AS f_via, NULL::text AS dup_payment_id
      FROM recon_lines l LEFT JOIN recon_fen f ON f.match_key = l.match_key`);
  const unpaired = await sql<{ found: boolean }>`SELECT EXISTS (SELECT 1 FROM recon_matched WHERE f_item_id IS NULL) AS found`.execute(db);
  if (unpaired.rows[0]?.found) await lookUpUnpaired(db, scope);
  await setAsideRepeats(db);
}

const setFen = sql`f_item_type = f.item_type, f_item_id = f.item_id, f_payment_id = f.payment_id, f_channel_trade_no = f.channel_trade_no,
  f_amount = f.amount, f_currency = f.currency, f_status = f.status, f_business_at = f.business_at, f_merchant_id = f.merchant_id,
  f_entry_id = f.entry_id, f_booked = f.booked, f_expected_fee = f.expected_fee, f_day_set = f.day_set`;

async function lookUpUnpaired(db: Connection, scope: MatchScope): Promise<void> {
  const unpaired = (kind: string, column: RawBuilder<unknown>) => sql`(SELECT ${column} FROM recon_matched WHERE f_item_id IS NULL AND kind = ${kind})`;
  const absent = (alias: RawBuilder<unknown>) => sql`NOT EXISTS (SELECT 1 FROM recon_fen known WHERE known.item_id = ${alias})`;
  await loadFen(
    db,
    scope,
    {
      payments: sql`(p.channel_trade_no IN ${unpaired('payment', sql`channel_trade_no`)} OR p.id IN ${unpaired('payment', sql`out_trade_no`)}) AND ${absent(sql`p.id`)}`,
      refunds: sql`r.id IN ${unpaired('refund', sql`out_refund_no`)} AND ${absent(sql`r.id`)}`,
      exceptions: sql`x.channel_trade_no IN ${unpaired('payment', sql`channel_trade_no`)} AND ${absent(sql`x.id`)}`,
    },
    false,
  );
  await run(db, sql`UPDATE recon_matched m SET ${setFen}, f_via = 'trade_no' FROM recon_fen f
     WHERE m.f_item_id IS NULL AND m.kind = 'payment' AND f.line_kind = 'payment' AND f.channel_trade_no = m.channel_trade_no`);
  await run(db, sql`UPDATE recon_matched m SET ${setFen}, f_via = 'refund_no' FROM recon_fen f
     WHERE m.f_item_id IS NULL AND m.kind = 'refund' AND f.line_kind = 'refund' AND f.item_id = m.out_refund_no`);
  await run(db, sql`UPDATE recon_matched m SET ${setFen}, f_via = 'out_trade_no' FROM recon_fen f
     WHERE m.f_item_id IS NULL AND m.kind = 'payment' AND f.item_type = 'payment' AND f.item_id = m.out_trade_no`);
  // Paid under another trade number: this line is a second payment of the order, not the order's own.
  await run(db, sql`UPDATE recon_matched SET dup_payment_id = f_item_id, f_item_type = NULL, f_item_id = NULL, f_via = NULL
     WHERE f_via = 'out_trade_no' AND f_status = 'succeeded' AND f_channel_trade_no IS DISTINCT FROM channel_trade_no`);
}

/** A record listed twice pairs with its first line; every later line listing it is one Fen does not have. */
async function setAsideRepeats(db: Connection): Promise<void> {
  await run(db, sql`UPDATE recon_matched m SET f_item_type = NULL, f_item_id = NULL, f_via = 'repeat'
    FROM (SELECT f_item_id, min(line_number) AS first_line FROM recon_matched WHERE f_item_id IS NOT NULL
          GROUP BY f_item_id HAVING count(*) > 1) r
   WHERE m.f_item_id = r.f_item_id AND m.line_number <> r.first_line`);
}

/**
 * The outcome of one paired line: matched, or the kind of difference. A line
 * has at most one difference, the most telling: the money is there or not
 * (status) before how much (amount) before what it cost (fee).
 */
export const lineOutcome = sql<string>`CASE
    WHEN f_item_id IS NULL THEN 'missing_local'
    WHEN status = 'succeeded' AND f_status <> 'succeeded' THEN 'status_mismatch'
    WHEN status <> 'succeeded' AND f_status = 'succeeded' THEN 'status_mismatch'
    WHEN status <> 'succeeded' THEN 'matched'
    WHEN amount <> f_amount OR currency <> f_currency THEN 'amount_mismatch'
    WHEN fee <> f_expected_fee THEN 'fee_mismatch'
    ELSE 'matched' END`;

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

export interface MatchCounts {
  linesChannel: number;
  linesLocal: number;
  matched: number;
  byOutcome: Record<string, number>;
  /** What the paired records' bookings put on channel_clearing. */
  pairedBooked: bigint;
}

export async function countOutcomes(db: Connection): Promise<MatchCounts> {
  const outcomes = await sql<{ outcome: string; lines: string; booked: bigint | null }>`
    SELECT ${lineOutcome} AS outcome, count(*)::text AS lines, (sum(f_booked) FILTER (WHERE f_item_id IS NOT NULL))::bigint AS booked FROM recon_matched GROUP BY 1`.execute(db);
  const local = await sql<{ items: string }>`SELECT count(*)::text AS items FROM recon_fen WHERE day_set`.execute(db);
  const byOutcome: Record<string, number> = {};
  let linesChannel = 0;
  let pairedBooked = 0n;
  for (const row of outcomes.rows) {
    byOutcome[row.outcome] = Number(row.lines);
    linesChannel += Number(row.lines);
    pairedBooked += row.booked ?? 0n;
  }
  return { linesChannel, linesLocal: Number(local.rows[0]?.items ?? 0), matched: byOutcome.matched ?? 0, byOutcome, pairedBooked };
}
