import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  accountSpecs,
  checkLedger,
  ensureAccount,
  ensureMerchantAccounts,
  getAccountBalance,
  postEntry,
  postTransfer,
  type LedgerAccount,
  type PostEntryResult,
  type TransferInput,
} from '../../src/ledger/index.js';
import { newId } from '../../src/platform/ids.js';
import { createTestContext, type TestContext } from '../helpers/context.js';
import { slotAndPostingSums } from './ledger.helpers.js';

/**
 * Real concurrency on a real PostgreSQL: many posts at once, through the pool
 * (where they are batched) and each in its own transaction (where they are
 * not, and genuinely race for row locks and the dedupe index).
 */
const concurrentPosts = 50;

describe('ledger under concurrency', () => {
  let context: TestContext;

  beforeAll(async () => {
    context = await createTestContext({ poolSize: 16 });
  });
  afterAll(async () => {
    await context.close();
  });

  type Way = 'pool' | 'transactions';

  function post(way: Way, transfer: TransferInput): Promise<PostEntryResult> {
    if (way === 'pool') return postTransfer(context.db, context.clock, transfer);
    return context.db.transaction().execute((trx) => postTransfer(trx, context.clock, transfer));
  }

  const outcome = (result: PostEntryResult) => (result.ok ? result.value.status : result.code);

  async function expectBooksBalanced(): Promise<void> {
    for (const [id, sums] of await slotAndPostingSums(context.db)) expect({ id, slots: sums.slots }).toEqual({ id, slots: sums.postings });
    const check = await checkLedger(context.db);
    expect(check.problems).toEqual([]);
  }

  async function twoAccounts(kind: 'ordinary' | 'hot'): Promise<[LedgerAccount, LedgerAccount]> {
    if (kind === 'hot') {
      return [
        await ensureAccount(context.db, context.clock, accountSpecs.channelClearing(newId('channelAccount'), 'CNY')),
        await ensureAccount(context.db, context.clock, { ...accountSpecs.platformFeeIncome('CNY'), code: `fee_income_test:${newId('request')}` }),
      ];
    }
    const merchant = newId('merchant');
    return [
      await ensureAccount(context.db, context.clock, { ...accountSpecs.merchantPending(merchant, 'CNY'), type: 'asset' }),
      await ensureAccount(context.db, context.clock, accountSpecs.merchantReserve(merchant, 'CNY')),
    ];
  }

  for (const kind of ['ordinary', 'hot'] as const) {
    for (const way of ['pool', 'transactions'] as const) {
      it(`lands ${concurrentPosts} concurrent entries on the same two ${kind} accounts (${way}), in both directions, without deadlock`, async () => {
        const [left, right] = await twoAccounts(kind);
        const amounts = Array.from({ length: concurrentPosts }, (_, index) => BigInt(index + 1));
        // Half the entries go left to right and half right to left, so any lock-order mistake would deadlock.
        const results = await Promise.all(
          amounts.map((amount, index) => {
            const [debit, credit] = index % 2 === 0 ? [left, right] : [right, left];
            return post(way, { dedupeKey: `${kind}:${way}:${index}`, kind: 'test', debitAccountId: debit.id, creditAccountId: credit.id, amount, currency: 'CNY' });
          }),
        );
        expect(results.map(outcome)).toEqual(amounts.map(() => 'created'));
        const expected = amounts.reduce((sum, amount, index) => (index % 2 === 0 ? sum + amount : sum - amount), 0n);
        expect((await getAccountBalance(context.db, left.id))?.balance).toBe(expected);
        expect((await getAccountBalance(context.db, right.id))?.balance).toBe(-expected);
        await expectBooksBalanced();
      });
    }
  }

  for (const way of ['pool', 'transactions'] as const) {
    it(`never overdraws a no-overdraft account under ${concurrentPosts} concurrent withdrawals (${way})`, async () => {
      const merchant = newId('merchant');
      const { pending, available } = await ensureMerchantAccounts(context.db, context.clock, merchant, 'CNY');
      const bank = await ensureAccount(context.db, context.clock, accountSpecs.platformBank('CNY'));
      const funded = await postTransfer(context.db, context.clock, { dedupeKey: `fund:${merchant}`, kind: 'settle', debitAccountId: pending.id, creditAccountId: available.id, amount: 1_000n, currency: 'CNY' });
      expect(funded.ok).toBe(true);

      const results = await Promise.all(
        Array.from({ length: concurrentPosts }, (_, index) =>
          post(way, { dedupeKey: `payout:${merchant}:${index}`, kind: 'payout', debitAccountId: available.id, creditAccountId: bank.id, amount: 30n, currency: 'CNY' }),
        ),
      );
      const outcomes = results.map(outcome);
      expect(outcomes.filter((value) => value === 'created')).toHaveLength(33);
      expect(outcomes.filter((value) => value === 'insufficient_funds')).toHaveLength(concurrentPosts - 33);
      expect((await getAccountBalance(context.db, available.id))?.normalBalance).toBe(10n);
      await expectBooksBalanced();
    });

    it(`books a dedupe key once when ${concurrentPosts} callers post it at the same moment (${way})`, async () => {
      const [left, right] = await twoAccounts('ordinary');
      const dedupeKey = `duplicate:${way}:${newId('request')}`;
      const results = await Promise.all(
        Array.from({ length: concurrentPosts }, () => post(way, { dedupeKey, kind: 'test', debitAccountId: left.id, creditAccountId: right.id, amount: 7n, currency: 'CNY' })),
      );
      const outcomes = results.map(outcome);
      expect(outcomes.filter((value) => value === 'created')).toHaveLength(1);
      expect(outcomes.filter((value) => value === 'exists')).toHaveLength(concurrentPosts - 1);
      expect(new Set(results.map((result) => (result.ok ? result.value.entryId : null))).size).toBe(1);
      expect((await getAccountBalance(context.db, left.id))?.balance).toBe(7n);
      await expectBooksBalanced();
    });
  }

  it('keeps a batch\'s entries apart: one refused entry does not fail the others posted with it', async () => {
    const [left, right] = await twoAccounts('ordinary');
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, index) =>
        postEntry(context.db, context.clock, {
          dedupeKey: `mixed:${index}`,
          kind: 'test',
          postings: [
            { accountId: index % 5 === 0 ? newId('ledgerAccount') : left.id, amount: 3n, currency: 'CNY' },
            { accountId: right.id, amount: -3n, currency: 'CNY' },
          ],
        }),
      ),
    );
    expect(results.map(outcome)).toEqual(Array.from({ length: 20 }, (_, index) => (index % 5 === 0 ? 'account_not_found' : 'created')));
    expect((await getAccountBalance(context.db, left.id))?.balance).toBe(48n);
  });
});
