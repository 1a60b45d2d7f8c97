import { sql } from 'kysely';
import type { DbExecutor } from '../../src/platform/db/index.js';

/**
 * Shared by the ledger tests: reads straight from the tables, bypassing the
 * ledger module, so the tests check the module against the rows themselves.
 */
export interface LedgerRowCounts {
  entries: bigint;
  postings: bigint;
}

export async function ledgerRowCounts(db: DbExecutor): Promise<LedgerRowCounts> {
  const { rows } = await sql<LedgerRowCounts>`
    SELECT (SELECT count(*) FROM journal_entries) AS entries, (SELECT count(*) FROM ledger_postings) AS postings`.execute(db);
  const [row] = rows;
  if (!row) throw new Error('no counts');
  return row;
}

/** Every account's slot sum and postings sum, keyed by account id. */
export async function slotAndPostingSums(db: DbExecutor): Promise<Map<string, { slots: bigint; postings: bigint }>> {
  const { rows } = await sql<{ id: string; slots: bigint; postings: bigint }>`
    SELECT a.id,
           (SELECT coalesce(sum(balance), 0)::bigint FROM ledger_balance_slots s WHERE s.account_id = a.id) AS slots,
           (SELECT coalesce(sum(amount), 0)::bigint FROM ledger_postings p WHERE p.account_id = a.id) AS postings
      FROM ledger_accounts a`.execute(db);
  return new Map(rows.map((row) => [row.id, { slots: row.slots, postings: row.postings }]));
}

export async function entryExists(db: DbExecutor, dedupeKey: string): Promise<boolean> {
  const row = await db.selectFrom('journal_entries').select('id').where('dedupe_key', '=', dedupeKey).executeTakeFirst();
  return row !== undefined;
}
