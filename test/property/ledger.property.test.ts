import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  accountSpecs,
  checkLedger,
  ensureAccount,
  getAccountBalance,
  postEntries,
  postEntry,
  postingAmountMaxMinor,
  type AccountSpec,
  type EntryInput,
  type LedgerAccount,
  type PostEntryResult,
  type PostingInput,
} from '../../src/ledger/index.js';
import { newId } from '../../src/platform/ids.js';
import { limits } from '../../src/platform/limits.js';
import type { Currency } from '../../src/platform/money.js';
import { createTestContext, type TestContext } from '../helpers/context.js';
import { entryExists, ledgerRowCounts, slotAndPostingSums } from '../integration/ledger.helpers.js';

/**
 * Model-based: random entries, good and bad, go through the ledger in one of
 * its three ways in (one by one through the pool, one by one in a caller's
 * transaction, all at once through postEntries). A plain map of balances
 * predicts every answer; after each run the books must equal the model, every
 * slot sum must equal its postings, and a refused entry must leave no trace.
 */
const currencies: Currency[] = ['CNY', 'USD', 'JPY'];

interface ModelAccount extends LedgerAccount {
  guard: 'none' | 'debit' | 'credit';
}

type Fault = 'unbalanced' | 'zero_amount' | 'account_not_found' | 'currency_mismatch' | 'too_few_postings' | 'too_many_postings' | 'amount_too_large';

interface Command {
  postings: PostingInput[];
  /** Set when the command was made faulty on purpose: the code the ledger must answer with. */
  fault?: Fault;
}

describe('ledger properties', () => {
  let context: TestContext;
  const accounts: ModelAccount[] = [];
  const model = new Map<string, bigint>();
  let sequence = 0;

  const accountsIn = (currency: Currency) => accounts.filter((account) => account.currency === currency);

  beforeAll(async () => {
    context = await createTestContext();
    const merchantId = newId('merchant');
    for (const currency of currencies) {
      const specs: AccountSpec[] = [
        accountSpecs.platformBank(currency),
        accountSpecs.merchantPending(merchantId, currency),
        accountSpecs.merchantReserve(merchantId, currency),
        accountSpecs.channelClearing(`cha_${currency.toLowerCase()}`, currency),
        accountSpecs.merchantAvailable(merchantId, currency),
        // A guarded asset: may never go below zero.
        { code: `prepaid_float:${merchantId}`, currency, type: 'asset', merchantId, slotCount: 1, noOverdraft: true },
      ];
      for (const spec of specs) {
        const account = await ensureAccount(context.db, context.clock, spec);
        const guard = !spec.noOverdraft ? 'none' : spec.type === 'asset' ? 'debit' : 'credit';
        accounts.push({ ...account, guard });
        model.set(account.id, 0n);
      }
    }
  });
  afterAll(async () => {
    await context.close();
  });

  const amount = fc.bigInt({ min: -1_000_000n, max: 1_000_000n }).filter((value) => value !== 0n);

  /** 2 to 5 postings in one currency that sum to zero, none of them zero. */
  const balancedLeg = (currency: Currency) =>
    fc
      .tuple(fc.array(fc.tuple(fc.nat(), amount), { minLength: 1, maxLength: 4 }), fc.nat())
      .map(([legs, lastAccount]) => {
        const pool = accountsIn(currency);
        const postings = legs.map(([pick, value]) => ({ accountId: pool[pick % pool.length]!.id, amount: value, currency }));
        const sum = postings.reduce((total, posting) => total + posting.amount, 0n);
        return [...postings, { accountId: pool[lastAccount % pool.length]!.id, amount: -sum, currency }];
      })
      .filter((postings) => postings.every((posting) => posting.amount !== 0n));

  const balancedEntry = fc
    .uniqueArray(fc.constantFrom(...currencies), { minLength: 1, maxLength: 2 })
    .chain((chosen) => fc.tuple(...chosen.map((currency) => balancedLeg(currency))))
    .map((legs) => legs.flat());

  const faulty: fc.Arbitrary<Command> = fc.tuple(balancedEntry, fc.constantFrom<Fault>('unbalanced', 'zero_amount', 'account_not_found', 'currency_mismatch', 'too_few_postings', 'too_many_postings', 'amount_too_large'), amount, fc.nat()).map(
    ([postings, fault, value, pick]) => {
      const target = pick % postings.length;
      const first = postings[0]!;
      switch (fault) {
        case 'unbalanced':
          return { fault, postings: [...postings, { ...first, amount: value }] };
        case 'zero_amount':
          return { fault, postings: [...postings, { ...first, amount: 0n }] };
        case 'account_not_found':
          return { fault, postings: postings.map((posting, index) => (index === target ? { ...posting, accountId: newId('ledgerAccount') } : posting)) };
        case 'currency_mismatch': {
          const other = accounts.find((account) => account.currency !== postings[target]!.currency)!;
          return { fault, postings: postings.map((posting, index) => (index === target ? { ...posting, accountId: other.id } : posting)) };
        }
        case 'too_few_postings':
          return { fault, postings: postings.slice(0, pick % 2) };
        case 'too_many_postings': {
          const count = limits.postingsPerEntryMax;
          const ones = Array.from({ length: count }, () => ({ ...first, amount: 1n }));
          return { fault, postings: [...ones, { ...first, amount: -BigInt(count) }] };
        }
        case 'amount_too_large':
          return { fault, postings: [{ ...first, amount: postingAmountMaxMinor + 1n }, { ...first, amount: -(postingAmountMaxMinor + 1n) }] };
      }
    },
  );

  const command: fc.Arbitrary<Command> = fc.oneof({ weight: 3, arbitrary: balancedEntry.map((postings) => ({ postings })) }, { weight: 1, arbitrary: faulty });

  /** What the model says the ledger must answer, applying the entry to the model when it lands. */
  function predictAndApply(item: Command): 'created' | Fault | 'insufficient_funds' {
    if (item.fault) return item.fault;
    const next = new Map<string, bigint>();
    for (const posting of item.postings) next.set(posting.accountId, (next.get(posting.accountId) ?? model.get(posting.accountId)!) + posting.amount);
    for (const [accountId, balance] of next) {
      const guard = accounts.find((account) => account.id === accountId)!.guard;
      if ((guard === 'debit' && balance < 0n) || (guard === 'credit' && balance > 0n)) return 'insufficient_funds';
    }
    for (const [accountId, balance] of next) model.set(accountId, balance);
    return 'created';
  }

  async function submit(mode: 'pool' | 'transaction' | 'batch', entries: EntryInput[]): Promise<PostEntryResult[]> {
    if (mode === 'batch') return postEntries(context.db, context.clock, entries);
    if (mode === 'pool') {
      const results: PostEntryResult[] = [];
      for (const entry of entries) results.push(await postEntry(context.db, context.clock, entry));
      return results;
    }
    return context.db.transaction().execute(async (trx) => {
      const results: PostEntryResult[] = [];
      for (const entry of entries) results.push(await postEntry(trx, context.clock, entry));
      return results;
    });
  }

  it('books what balances, refuses the rest without a trace, and keeps every balance equal to its postings', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(command, { minLength: 1, maxLength: 8 }), fc.constantFrom('pool' as const, 'transaction' as const, 'batch' as const), async (commands, mode) => {
        const before = await ledgerRowCounts(context.db);
        const entries = commands.map((item) => ({ dedupeKey: `property:${(sequence += 1)}`, kind: 'property_test', postings: item.postings }));
        const expected = commands.map(predictAndApply);
        const results = await submit(mode, entries);

        expect(results.map((result) => (result.ok ? result.value.status : result.code))).toEqual(expected);
        const created = commands.filter((_, index) => expected[index] === 'created');
        const after = await ledgerRowCounts(context.db);
        expect(after.entries - before.entries).toBe(BigInt(created.length));
        expect(after.postings - before.postings).toBe(BigInt(created.reduce((total, item) => total + item.postings.length, 0)));
        for (const [index, entry] of entries.entries()) expect(await entryExists(context.db, entry.dedupeKey)).toBe(expected[index] === 'created');

        const sums = await slotAndPostingSums(context.db);
        for (const account of accounts) expect({ id: account.id, ...sums.get(account.id) }).toEqual({ id: account.id, slots: model.get(account.id), postings: model.get(account.id) });
        const sampled = accounts[sequence % accounts.length]!;
        expect((await getAccountBalance(context.db, sampled.id))?.balance).toBe(model.get(sampled.id));

        // A replay of a booked entry is answered with it and writes nothing.
        const firstCreated = entries.find((_, index) => expected[index] === 'created');
        if (firstCreated) {
          const replay = await postEntry(context.db, context.clock, { ...firstCreated, postings: [...firstCreated.postings].reverse() });
          expect(replay).toMatchObject({ ok: true, value: { status: 'exists' } });
          expect(await ledgerRowCounts(context.db)).toEqual(after);
        }
      }),
      { numRuns: 60 },
    );
    const check = await checkLedger(context.db);
    expect(check.problems).toEqual([]);
    expect(check.ok).toBe(true);
  });
});
