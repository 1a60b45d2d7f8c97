import { sql } from 'kysely';
import type { DbExecutor, LedgerAccountType } from '../platform/db/index.js';
import { limits } from '../platform/limits.js';
import type { Currency } from '../platform/money.js';
import { normalBalance, type LedgerAccount } from './accounts.js';

/**
 * Reads of the books. An account's balance is the sum of its slots, read in one
 * statement so it is one consistent snapshot even while entries land.
 */
export interface AccountBalance extends LedgerAccount {
  /** Signed, debit-positive: the sum of the account's slots and of its postings. */
  balance: bigint;
  /** The balance on the account's normal side: what an asset holds, what a liability owes. */
  normalBalance: bigint;
  createdAt: Date;
}

interface AccountBalanceRow {
  id: string;
  code: string;
  currency: string;
  type: LedgerAccountType;
  merchant_id: string | null;
  slot_count: number;
  no_overdraft: boolean;
  created_at: Date;
  balance: bigint;
}

function toAccountBalance(row: AccountBalanceRow): AccountBalance {
  return {
    id: row.id,
    code: row.code,
    currency: row.currency as Currency,
    type: row.type,
    merchantId: row.merchant_id,
    slotCount: row.slot_count,
    noOverdraft: row.no_overdraft,
    createdAt: row.created_at,
    balance: row.balance,
    normalBalance: normalBalance(row.type, row.balance),
  };
}

function accountsWithBalances(executor: DbExecutor) {
  return executor
    .selectFrom('ledger_accounts as a')
    .innerJoin('ledger_balance_slots as s', 's.account_id', 'a.id')
    .select(['a.id', 'a.code', 'a.currency', 'a.type', 'a.merchant_id', 'a.slot_count', 'a.no_overdraft', 'a.created_at'])
    .select(sql<bigint>`sum(s.balance)::bigint`.as('balance'))
    .groupBy('a.id');
}

export async function getAccountBalance(executor: DbExecutor, accountId: string): Promise<AccountBalance | undefined> {
  const row = await accountsWithBalances(executor).where('a.id', '=', accountId).executeTakeFirst();
  return row ? toAccountBalance(row) : undefined;
}

export async function getBalanceByCode(executor: DbExecutor, code: string, currency: Currency): Promise<AccountBalance | undefined> {
  const row = await accountsWithBalances(executor).where('a.code', '=', code).where('a.currency', '=', currency).executeTakeFirst();
  return row ? toAccountBalance(row) : undefined;
}

export interface AccountQuery {
  merchantId?: string | undefined;
  code?: string | undefined;
  currency?: string | undefined;
  limit: number;
  /** The id of the last account of the previous page. */
  cursor?: string | undefined;
}

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

function clampLimit(limit: number): number {
  return Math.max(1, Math.min(Math.trunc(limit), limits.pageSizeMax));
}

/** Accounts in id order (ids are time-sortable, so oldest first). */
export async function listAccounts(executor: DbExecutor, query: AccountQuery): Promise<Page<AccountBalance>> {
  const limit = clampLimit(query.limit);
  let statement = accountsWithBalances(executor).orderBy('a.id').limit(limit + 1);
  if (query.merchantId !== undefined) statement = statement.where('a.merchant_id', '=', query.merchantId);
  if (query.code !== undefined) statement = statement.where('a.code', '=', query.code);
  if (query.currency !== undefined) statement = statement.where('a.currency', '=', query.currency);
  if (query.cursor !== undefined) statement = statement.where('a.id', '>', query.cursor);
  const rows = await statement.execute();
  const items = rows.slice(0, limit).map(toAccountBalance);
  return { items, nextCursor: rows.length > limit ? (items.at(-1)?.id ?? null) : null };
}

export interface PostingView {
  id: bigint;
  accountId: string;
  accountCode: string;
  slot: number;
  currency: Currency;
  amount: bigint;
}

export interface EntryView {
  id: string;
  dedupeKey: string;
  kind: string;
  referenceType: string | null;
  referenceId: string | null;
  merchantId: string | null;
  description: string | null;
  effectiveAt: Date;
  createdAt: Date;
  postings: PostingView[];
}

export interface EntryQuery {
  referenceType?: string | undefined;
  referenceId?: string | undefined;
  merchantId?: string | undefined;
  limit?: number | undefined;
  /** The id of the last entry of the previous page. */
  cursor?: string | undefined;
}

/** Entries in id order (oldest first), each with its postings in the order they were written. */
export async function listEntries(executor: DbExecutor, query: EntryQuery): Promise<Page<EntryView>> {
  const limit = clampLimit(query.limit ?? limits.pageSizeMax);
  let statement = executor.selectFrom('journal_entries').selectAll().orderBy('id').limit(limit + 1);
  if (query.referenceType !== undefined) statement = statement.where('reference_type', '=', query.referenceType);
  if (query.referenceId !== undefined) statement = statement.where('reference_id', '=', query.referenceId);
  if (query.merchantId !== undefined) statement = statement.where('merchant_id', '=', query.merchantId);
  if (query.cursor !== undefined) statement = statement.where('id', '>', query.cursor);
  const rows = await statement.execute();
  const pageRows = rows.slice(0, limit);
  const postings = pageRows.length === 0 ? [] : await executor
    .selectFrom('ledger_postings as p')
    .innerJoin('ledger_accounts as a', 'a.id', 'p.account_id')
    .select(['p.id', 'p.entry_id', 'p.account_id', 'a.code', 'p.slot', 'p.currency', 'p.amount'])
    .where('p.entry_id', 'in', pageRows.map((row) => row.id))
    .orderBy('p.id')
    .execute();
  const byEntry = new Map<string, PostingView[]>();
  for (const posting of postings) {
    const list = byEntry.get(posting.entry_id) ?? [];
    list.push({ id: posting.id, accountId: posting.account_id, accountCode: posting.code, slot: posting.slot, currency: posting.currency as Currency, amount: posting.amount });
    byEntry.set(posting.entry_id, list);
  }
  const items = pageRows.map((row) => ({
    id: row.id,
    dedupeKey: row.dedupe_key,
    kind: row.kind,
    referenceType: row.reference_type,
    referenceId: row.reference_id,
    merchantId: row.merchant_id,
    description: row.description,
    effectiveAt: row.effective_at,
    createdAt: row.created_at,
    postings: byEntry.get(row.id) ?? [],
  }));
  return { items, nextCursor: rows.length > limit ? (items.at(-1)?.id ?? null) : null };
}
