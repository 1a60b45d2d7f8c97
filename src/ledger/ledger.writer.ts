import { sql } from 'kysely';
import { assert } from '../platform/assert.js';
import type { DbExecutor } from '../platform/db/index.js';
import { fail, ok } from '../platform/errors.js';
import type { PostEntryFailure, PostEntryResult, PreparedEntry } from './ledger.types.js';

/**
 * The ledger's only writer: one call of `ledger_post_entries` (migration 0002)
 * per batch of entries, whatever their number, so booking is one round trip.
 */
interface FunctionRow {
  result_index: number;
  result_status: 'created' | 'exists' | PostEntryFailure;
  result_entry_id: string | null;
  result_detail: string | null;
}

/** Entries per database call: bounds a statement's size and the time its locks are held. */
export const batchEntriesMax = 64;

const databaseFailureMessages: Partial<Record<PostEntryFailure, (row: FunctionRow) => string>> = {
  account_not_found: (row) => `ledger account ${row.result_detail} does not exist`,
  currency_mismatch: (row) => `a posting's currency differs from that of account ${row.result_detail}`,
  insufficient_funds: (row) => `account ${row.result_detail} may not be overdrawn and holds too little`,
  exists_with_different_postings: (row) => `entry ${row.result_entry_id} has this dedupe key and different postings`,
};

function toResult(row: FunctionRow): PostEntryResult {
  if (row.result_status === 'created' || row.result_status === 'exists') {
    assert(row.result_entry_id, 'ledger_post_entries returned no entry id');
    return ok({ entryId: row.result_entry_id, status: row.result_status });
  }
  const describe = databaseFailureMessages[row.result_status];
  return fail(row.result_status, describe ? describe(row) : row.result_status);
}

/** Books prepared entries in order, each all or nothing, in one statement. */
export async function bookEntries(executor: DbExecutor, entries: readonly PreparedEntry[]): Promise<PostEntryResult[]> {
  assert(entries.length > 0 && entries.length <= batchEntriesMax, `a batch holds 1 to ${batchEntriesMax} entries`);
  const column = <T>(pick: (entry: PreparedEntry) => T): T[] => entries.map(pick);
  const postings = entries.flatMap((entry) => entry.input.postings);
  const { rows } = await sql<FunctionRow>`
    SELECT * FROM ledger_post_entries(
      ${column((entry) => entry.entryId)}::text[],
      ${column((entry) => entry.input.dedupeKey)}::text[],
      ${column((entry) => entry.input.kind)}::text[],
      ${column((entry) => entry.input.referenceType ?? null)}::text[],
      ${column((entry) => entry.input.referenceId ?? null)}::text[],
      ${column((entry) => entry.input.merchantId ?? null)}::text[],
      ${column((entry) => entry.input.description ?? null)}::text[],
      ${column((entry) => entry.postingsHash)}::text[],
      ${column((entry) => (entry.input.effectiveAt ?? entry.createdAt).toISOString())}::timestamptz[],
      ${column((entry) => entry.createdAt.toISOString())}::timestamptz[],
      ${column((entry) => entry.input.postings.length)}::integer[],
      ${postings.map((posting) => posting.accountId)}::text[],
      ${postings.map((posting) => posting.currency)}::text[],
      ${postings.map((posting) => posting.amount.toString())}::bigint[])`.execute(executor);
  assert(rows.length === entries.length, `ledger_post_entries answered ${rows.length} of ${entries.length} entries`);
  return rows.map((row, index) => {
    assert(row.result_index === index + 1, 'ledger_post_entries answered out of order');
    return toResult(row);
  });
}

/**
 * Concurrent posts through the pool are gathered into batches, the way
 * TigerBeetle's clients batch transfers: while a few batches are in flight,
 * new entries wait and leave together in the next one, so a busy process pays
 * one round trip, one statement and one commit per batch rather than per
 * entry. An idle process sends each entry at once: batching never adds a wait.
 * Each entry is still booked all or nothing, and its caller hears back only
 * once its batch has committed.
 */
const batchesInFlightMax = 4;

interface Waiting {
  entry: PreparedEntry;
  resolve(result: PostEntryResult): void;
  reject(error: unknown): void;
}

class EntryBatcher {
  private readonly waiting: Waiting[] = [];
  private inFlight = 0;

  constructor(private readonly db: DbExecutor) {}

  submit(entry: PreparedEntry): Promise<PostEntryResult> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ entry, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.inFlight < batchesInFlightMax && this.waiting.length > 0) {
      const batch = this.waiting.splice(0, batchEntriesMax);
      this.inFlight += 1;
      void this.send(batch).finally(() => {
        this.inFlight -= 1;
        this.pump();
      });
    }
  }

  private async send(batch: Waiting[]): Promise<void> {
    try {
      const results = await bookEntries(this.db, batch.map((item) => item.entry));
      batch.forEach((item, index) => item.resolve(results[index]!));
    } catch (error) {
      if (batch.length === 1) return batch[0]!.reject(error);
      // The batch rolled back as a whole. Book each entry alone, so that one
      // bad entry cannot fail its neighbours; an entry that did commit after
      // all (a lost reply) answers 'exists' through its dedupe key.
      await Promise.all(batch.map((item) => bookEntries(this.db, [item.entry]).then((results) => item.resolve(results[0]!), item.reject)));
    }
  }
}

const batchers = new WeakMap<DbExecutor, EntryBatcher>();

/** Books one entry on its own commit, possibly together with entries posted at the same moment. */
export function submitEntry(pool: DbExecutor, entry: PreparedEntry): Promise<PostEntryResult> {
  assert(!pool.isTransaction, 'entries posted in a transaction are booked in it, never batched');
  let batcher = batchers.get(pool);
  if (!batcher) {
    batcher = new EntryBatcher(pool);
    batchers.set(pool, batcher);
  }
  return batcher.submit(entry);
}
