import type { Result } from '../platform/errors.js';
import type { Currency } from '../platform/money.js';

/** One posting: a signed amount in minor units, debits positive and credits negative. */
export interface PostingInput {
  accountId: string;
  amount: bigint;
  currency: Currency;
}

export interface EntryInput {
  /** Unique per movement of money: a second post with the same key books nothing. */
  dedupeKey: string;
  /** What the entry records, e.g. "payment_captured", "payout_sent". */
  kind: string;
  referenceType?: string | null;
  referenceId?: string | null;
  merchantId?: string | null;
  description?: string | null;
  /** When the movement happened in business terms; defaults to now. */
  effectiveAt?: Date;
  postings: readonly PostingInput[];
}

/** Expected refusals, stable codes in the manner of TigerBeetle's transfer results. */
export type PostEntryFailure =
  | 'unbalanced'
  | 'too_few_postings'
  | 'too_many_postings'
  | 'zero_amount'
  | 'amount_too_large'
  | 'account_not_found'
  | 'currency_mismatch'
  | 'insufficient_funds'
  | 'exists_with_different_postings';

export interface PostedEntry {
  entryId: string;
  /** 'exists' when an entry with the same key and the same postings was booked before; nothing was written. */
  status: 'created' | 'exists';
}

export type PostEntryResult = Result<PostedEntry, PostEntryFailure>;

/** An entry that passed the service's checks, with its id and fingerprint, ready for the database. */
export interface PreparedEntry {
  entryId: string;
  input: EntryInput;
  postingsHash: string;
  createdAt: Date;
}
