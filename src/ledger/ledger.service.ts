import { createHash } from 'node:crypto';
import { assert } from '../platform/assert.js';
import type { Clock } from '../platform/clock.js';
import type { DbExecutor } from '../platform/db/index.js';
import { fail, ok, type Result } from '../platform/errors.js';
import { newId } from '../platform/ids.js';
import { limits } from '../platform/limits.js';
import type { Currency } from '../platform/money.js';
import type { EntryInput, PostEntryFailure, PostEntryResult, PostingInput, PreparedEntry } from './ledger.types.js';
import { batchEntriesMax, bookEntries, submitEntry } from './ledger.writer.js';

/**
 * Posting journal entries: the only way money moves in Fen (DESIGN.md §3.2).
 *
 * An entry is checked twice. Here, before the database is asked: the postings
 * balance per currency, none is zero, there are 2 to 64 of them, no amount is
 * absurd. Then in PostgreSQL: `ledger_post_entries` (migration 0002) resolves
 * the accounts, locks their balance slots in order and checks the no-overdraft
 * ones under the lock, and the triggers and CHECKs of 0001 refuse anything
 * unbalanced or overdrawn even if both layers above were bypassed.
 */

const postingsPerEntryMin = 2;
/**
 * No single posting moves more than this. It sits far above any payment or
 * settlement batch and keeps 64 postings summed far inside BIGINT and every
 * balance inside JSON's exact integer range.
 */
export const postingAmountMaxMinor = 10n ** 14n;
const dedupeKeyLengthMax = limits.idempotencyKeyLengthMax;
const textLengthMax = limits.stringFieldLengthMax;

function checkMetadata(input: EntryInput): void {
  // Bad metadata is a programming error in the calling module, not a client's mistake.
  assert(input.dedupeKey.length > 0 && input.dedupeKey.length <= dedupeKeyLengthMax, 'dedupeKey must be 1 to 255 characters');
  assert(input.kind.length > 0 && input.kind.length <= textLengthMax, 'kind must be 1 to 256 characters');
  assert(input.effectiveAt === undefined || !Number.isNaN(input.effectiveAt.getTime()), 'effectiveAt must be a valid date');
  for (const value of [input.referenceType, input.referenceId, input.merchantId]) {
    assert(value === undefined || value === null || value.length <= textLengthMax, 'references must be at most 256 characters');
  }
  assert(input.description === undefined || input.description === null || input.description.length <= limits.textFieldLengthMax, 'description must be at most 2000 characters');
}

/** The service's own checks, which need no database. */
export function validatePostings(postings: readonly PostingInput[]): Result<null, PostEntryFailure> {
  if (postings.length < postingsPerEntryMin) return fail('too_few_postings', `an entry needs at least ${postingsPerEntryMin} postings, got ${postings.length}`);
  if (postings.length > limits.postingsPerEntryMax) return fail('too_many_postings', `an entry has at most ${limits.postingsPerEntryMax} postings, got ${postings.length}`);
  const sums = new Map<string, bigint>();
  for (const [index, posting] of postings.entries()) {
    if (posting.amount === 0n) return fail('zero_amount', `posting ${index} has a zero amount`);
    const magnitude = posting.amount < 0n ? -posting.amount : posting.amount;
    if (magnitude > postingAmountMaxMinor) return fail('amount_too_large', `posting ${index} moves more than ${postingAmountMaxMinor} minor units`);
    sums.set(posting.currency, (sums.get(posting.currency) ?? 0n) + posting.amount);
  }
  for (const [currency, sum] of sums) {
    if (sum !== 0n) return fail('unbalanced', `postings in ${currency} sum to ${sum}, not zero`);
  }
  return ok(null);
}

/**
 * A fingerprint of the postings, independent of their order, so a replay of an
 * entry can be told from a different entry that reuses its key.
 */
export function postingsHash(postings: readonly PostingInput[]): string {
  const lines = postings.map((posting) => `${posting.accountId}|${posting.currency}|${posting.amount}`).sort();
  return createHash('sha256').update(lines.join('\n')).digest('hex');
}

function prepare(clock: Clock, input: EntryInput): PreparedEntry {
  const createdAt = clock.now();
  return { entryId: newId('journalEntry', createdAt.getTime()), input, postingsHash: postingsHash(input.postings), createdAt };
}

/**
 * Books one balanced entry. Given a transaction, it runs inside it (one round
 * trip) and, on an expected failure, writes nothing and leaves the transaction
 * usable. Given the pool, the entry commits on its own, possibly in one batch
 * with entries posted at the same moment by other callers.
 */
export async function postEntry(executor: DbExecutor, clock: Clock, input: EntryInput): Promise<PostEntryResult> {
  checkMetadata(input);
  const valid = validatePostings(input.postings);
  if (!valid.ok) return valid;
  const entry = prepare(clock, input);
  if (executor.isTransaction) return (await bookEntries(executor, [entry]))[0]!;
  return submitEntry(executor, entry);
}

/**
 * Books several entries in order, each all or nothing, with one result per
 * entry: one round trip per 64 entries. Given the pool, they commit together
 * in a transaction of their own; given a transaction, with it.
 */
export async function postEntries(executor: DbExecutor, clock: Clock, inputs: readonly EntryInput[]): Promise<PostEntryResult[]> {
  const results: PostEntryResult[] = new Array<PostEntryResult>(inputs.length);
  const prepared: Array<{ index: number; entry: PreparedEntry }> = [];
  inputs.forEach((input, index) => {
    checkMetadata(input);
    const valid = validatePostings(input.postings);
    if (valid.ok) prepared.push({ index, entry: prepare(clock, input) });
    else results[index] = valid;
  });
  const bookAll = async (target: DbExecutor) => {
    for (let start = 0; start < prepared.length; start += batchEntriesMax) {
      const chunk = prepared.slice(start, start + batchEntriesMax);
      const booked = await bookEntries(target, chunk.map((item) => item.entry));
      chunk.forEach((item, offset) => {
        results[item.index] = booked[offset]!;
      });
    }
  };
  // One call is one statement and so its own transaction; more calls need one around them.
  if (prepared.length > batchEntriesMax && !executor.isTransaction) await executor.transaction().execute(bookAll);
  else await bookAll(executor);
  return results;
}

export interface TransferInput extends Omit<EntryInput, 'postings'> {
  debitAccountId: string;
  creditAccountId: string;
  /** Positive minor units moved from the credited account to the debited one. */
  amount: bigint;
  currency: Currency;
}

/** The two postings of a simple transfer: debit one account, credit another. */
export function transferPostings(transfer: Pick<TransferInput, 'debitAccountId' | 'creditAccountId' | 'amount' | 'currency'>): PostingInput[] {
  return [
    { accountId: transfer.debitAccountId, amount: transfer.amount, currency: transfer.currency },
    { accountId: transfer.creditAccountId, amount: -transfer.amount, currency: transfer.currency },
  ];
}

/** Books a two-posting entry. A negative amount is a caller's bug: swap the accounts instead. */
export async function postTransfer(executor: DbExecutor, clock: Clock, transfer: TransferInput): Promise<PostEntryResult> {
  assert(transfer.amount >= 0n, `a transfer moves a non-negative amount, got ${transfer.amount}`);
  const { debitAccountId, creditAccountId, amount, currency, ...entry } = transfer;
  return postEntry(executor, clock, { ...entry, postings: transferPostings({ debitAccountId, creditAccountId, amount, currency }) });
}
