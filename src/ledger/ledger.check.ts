import { sql, type RawBuilder } from 'kysely';
import type { DbExecutor, DbTransaction } from '../platform/db/index.js';

/**
 * `fen ledger check`: proves the books from the raw rows, trusting neither the
 * service nor the triggers. All checks read one snapshot (a read-only
 * REPEATABLE READ transaction), so entries landing meanwhile cannot make
 * slots and postings disagree for a moment and raise a false alarm.
 */
export type LedgerProblemCode =
  | 'postings_unbalanced'
  | 'entry_unbalanced'
  | 'entry_posting_count'
  | 'balance_mismatch'
  | 'currency_mismatch'
  | 'overdrawn'
  | 'guard_missing'
  | 'slot_count_mismatch';

export interface LedgerProblem {
  code: LedgerProblemCode;
  message: string;
}

export interface LedgerCheckStats {
  accounts: number;
  balanceSlots: number;
  entries: number;
  postings: number;
}

export interface LedgerCheck {
  ok: boolean;
  problems: LedgerProblem[];
  stats: LedgerCheckStats;
}

/** Each kind of problem is reported at most this many times: enough to act on, bounded on a broken ledger. */
export const checkProblemsPerKindMax = 100;

type Check = (trx: DbExecutor) => Promise<LedgerProblem[]>;

async function rowsOf<Row>(trx: DbExecutor, query: RawBuilder<Row>): Promise<Row[]> {
  return (await query.execute(trx)).rows;
}

const postingsBalancePerCurrency: Check = async (trx) => {
  const rows = await rowsOf(trx, sql<{ currency: string; total: string }>`
    SELECT currency, sum(amount)::text AS total FROM ledger_postings GROUP BY currency HAVING sum(amount) <> 0 ORDER BY currency`);
  return rows.map((row) => ({ code: 'postings_unbalanced', message: `all postings in ${row.currency} sum to ${row.total}, not zero` }));
};

const entriesBalance: Check = async (trx) => {
  const rows = await rowsOf(trx, sql<{ entry_id: string; currency: string; total: string }>`
    SELECT entry_id, currency, sum(amount)::text AS total FROM ledger_postings
    GROUP BY entry_id, currency HAVING sum(amount) <> 0 ORDER BY entry_id LIMIT ${checkProblemsPerKindMax}`);
  return rows.map((row) => ({ code: 'entry_unbalanced', message: `entry ${row.entry_id}: postings in ${row.currency} sum to ${row.total}, not zero` }));
};

const entriesComplete: Check = async (trx) => {
  const rows = await rowsOf(trx, sql<{ id: string; posting_count: number; found: string }>`
    SELECT e.id, e.posting_count, count(p.id)::text AS found
      FROM journal_entries e LEFT JOIN ledger_postings p ON p.entry_id = e.id
     GROUP BY e.id HAVING count(p.id) <> e.posting_count ORDER BY e.id LIMIT ${checkProblemsPerKindMax}`);
  return rows.map((row) => ({ code: 'entry_posting_count', message: `entry ${row.id} declares ${row.posting_count} postings but has ${row.found}` }));
};

const slotsMatchPostings: Check = async (trx) => {
  // Per slot, which implies per account: a posting lands on exactly one slot.
  const rows = await rowsOf(trx, sql<{ account_id: string; code: string; currency: string; slot: number; balance: string; total: string }>`
    SELECT s.account_id, a.code, a.currency, s.slot, s.balance::text AS balance, coalesce(p.total, 0)::text AS total
      FROM ledger_balance_slots s
      JOIN ledger_accounts a ON a.id = s.account_id
      LEFT JOIN (SELECT account_id, slot, sum(amount) AS total FROM ledger_postings GROUP BY account_id, slot) p
        ON p.account_id = s.account_id AND p.slot = s.slot
     WHERE s.balance <> coalesce(p.total, 0)
     ORDER BY s.account_id, s.slot LIMIT ${checkProblemsPerKindMax}`);
  return rows.map((row) => ({
    code: 'balance_mismatch',
    message: `account ${row.account_id} (${row.code} ${row.currency}) slot ${row.slot}: balance ${row.balance} but its postings sum to ${row.total}`,
  }));
};

const postingCurrencies: Check = async (trx) => {
  const rows = await rowsOf(trx, sql<{ id: string; entry_id: string; account_id: string; currency: string; account_currency: string }>`
    SELECT p.id::text AS id, p.entry_id, p.account_id, p.currency, a.currency AS account_currency
      FROM ledger_postings p JOIN ledger_accounts a ON a.id = p.account_id
     WHERE p.currency <> a.currency ORDER BY p.id LIMIT ${checkProblemsPerKindMax}`);
  return rows.map((row) => ({
    code: 'currency_mismatch',
    message: `posting ${row.id} of entry ${row.entry_id} is in ${row.currency} but account ${row.account_id} is in ${row.account_currency}`,
  }));
};

const nothingOverdrawn: Check = async (trx) => {
  const slots = await rowsOf(trx, sql<{ account_id: string; slot: number; guard: string; balance: string }>`
    SELECT account_id, slot, guard, balance::text AS balance FROM ledger_balance_slots
     WHERE (guard = 'debit' AND balance < 0) OR (guard = 'credit' AND balance > 0)
     ORDER BY account_id, slot LIMIT ${checkProblemsPerKindMax}`);
  const unguarded = await rowsOf(trx, sql<{ account_id: string; code: string; slot: number }>`
    SELECT s.account_id, a.code, s.slot FROM ledger_balance_slots s JOIN ledger_accounts a ON a.id = s.account_id
     WHERE a.no_overdraft AND s.guard = 'none' ORDER BY s.account_id, s.slot LIMIT ${checkProblemsPerKindMax}`);
  return [
    ...slots.map((row) => ({ code: 'overdrawn' as const, message: `account ${row.account_id} slot ${row.slot} (${row.guard} guard) is overdrawn: balance ${row.balance}` })),
    ...unguarded.map((row) => ({ code: 'guard_missing' as const, message: `account ${row.account_id} (${row.code}) may not be overdrawn but slot ${row.slot} has no guard` })),
  ];
};

const slotCounts: Check = async (trx) => {
  const rows = await rowsOf(trx, sql<{ id: string; code: string; slot_count: number; found: string }>`
    SELECT a.id, a.code, a.slot_count, count(s.slot)::text AS found
      FROM ledger_accounts a LEFT JOIN ledger_balance_slots s ON s.account_id = a.id
     GROUP BY a.id HAVING count(s.slot) <> a.slot_count OR max(s.slot) <> a.slot_count - 1
     ORDER BY a.id LIMIT ${checkProblemsPerKindMax}`);
  return rows.map((row) => ({ code: 'slot_count_mismatch', message: `account ${row.id} (${row.code}) declares ${row.slot_count} slots but has ${row.found}` }));
};

const checks: Check[] = [postingsBalancePerCurrency, entriesBalance, entriesComplete, slotsMatchPostings, postingCurrencies, nothingOverdrawn, slotCounts];

async function readStats(trx: DbExecutor): Promise<LedgerCheckStats> {
  const [row] = await rowsOf(trx, sql<{ accounts: string; slots: string; entries: string; postings: string }>`
    SELECT (SELECT count(*) FROM ledger_accounts)::text AS accounts,
           (SELECT count(*) FROM ledger_balance_slots)::text AS slots,
           (SELECT count(*) FROM journal_entries)::text AS entries,
           (SELECT count(*) FROM ledger_postings)::text AS postings`);
  return {
    accounts: Number(row?.accounts ?? 0),
    balanceSlots: Number(row?.slots ?? 0),
    entries: Number(row?.entries ?? 0),
    postings: Number(row?.postings ?? 0),
  };
}

async function runChecks(trx: DbExecutor): Promise<LedgerCheck> {
  const problems: LedgerProblem[] = [];
  for (const check of checks) problems.push(...(await check(trx)));
  return { ok: problems.length === 0, problems, stats: await readStats(trx) };
}

/** Checks every invariant of the books; `ok` is true only when no problem was found. */
export async function checkLedger(executor: DbExecutor): Promise<LedgerCheck> {
  if (executor.isTransaction) return runChecks(executor);
  return executor
    .transaction()
    .setIsolationLevel('repeatable read')
    .setAccessMode('read only')
    .execute((trx: DbTransaction) => runChecks(trx));
}
