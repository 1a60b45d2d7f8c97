import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  accountCodes,
  accountSpecs,
  checkLedger,
  ensureAccount,
  ensureMerchantAccounts,
  ensurePlatformAccounts,
  getAccountBalance,
  getBalanceByCode,
  listAccounts,
  listEntries,
  postEntries,
  postEntry,
  postTransfer,
  type LedgerAccount,
} from '../../src/ledger/index.js';
import { AssertionFailure } from '../../src/platform/assert.js';
import { newId } from '../../src/platform/ids.js';
import { limits } from '../../src/platform/limits.js';
import { createTestContext, type TestContext } from '../helpers/context.js';
import { entryExists, ledgerRowCounts } from './ledger.helpers.js';

describe('ledger service', () => {
  let context: TestContext;
  let bank: LedgerAccount;
  let feeIncome: LedgerAccount;
  let merchantId: string;
  let pending: LedgerAccount;
  let available: LedgerAccount;

  beforeAll(async () => {
    context = await createTestContext();
    const platform = await ensurePlatformAccounts(context.db, context.clock, 'CNY');
    bank = platform.platformBank;
    feeIncome = platform.platformFeeIncome;
    merchantId = newId('merchant');
    const merchant = await ensureMerchantAccounts(context.db, context.clock, merchantId, 'CNY');
    pending = merchant.pending;
    available = merchant.available;
  });
  afterAll(async () => {
    await context.close();
  });

  describe('accounts', () => {
    it('creates each account once, with its slots and guard, however many callers race', async () => {
      const spec = accountSpecs.channelClearing(newId('channelAccount'), 'USD');
      const results = await Promise.all(Array.from({ length: 8 }, () => ensureAccount(context.db, context.clock, spec)));
      expect(new Set(results.map((account) => account.id)).size).toBe(1);
      const slots = await context.db.selectFrom('ledger_balance_slots').select(['slot', 'guard']).where('account_id', '=', results[0]!.id).orderBy('slot').execute();
      expect(slots.map((slot) => slot.slot)).toEqual(Array.from({ length: limits.hotAccountSlots }, (_, index) => index));
      expect(new Set(slots.map((slot) => slot.guard))).toEqual(new Set(['none']));
    });

    it('gives a no-overdraft liability one slot with a credit guard', async () => {
      expect(available).toMatchObject({ code: accountCodes.merchantAvailable(merchantId), slotCount: 1, noOverdraft: true, type: 'liability' });
      const slots = await context.db.selectFrom('ledger_balance_slots').selectAll().where('account_id', '=', available.id).execute();
      expect(slots).toEqual([{ account_id: available.id, slot: 0, balance: 0n, guard: 'credit' }]);
    });

    it('refuses to reuse a code with a different type', async () => {
      await expect(ensureAccount(context.db, context.clock, { ...accountSpecs.platformBank('CNY'), type: 'liability' })).rejects.toThrow(AssertionFailure);
    });

    it('lists accounts by merchant, page by page', async () => {
      const first = await listAccounts(context.db, { merchantId, limit: 2 });
      expect(first.items).toHaveLength(2);
      expect(first.nextCursor).toBe(first.items[1]!.id);
      const second = await listAccounts(context.db, { merchantId, limit: 2, cursor: first.nextCursor! });
      expect(second.items).toHaveLength(1);
      expect(second.nextCursor).toBeNull();
      const codes = [...first.items, ...second.items].map((account) => account.code).sort();
      expect(codes).toEqual([accountCodes.merchantAvailable(merchantId), accountCodes.merchantPending(merchantId), accountCodes.merchantReserve(merchantId)].sort());
    });
  });

  describe('posting', () => {
    it('books an entry once: a replay with the same postings in any order is "exists" and writes nothing', async () => {
      const postings = [
        { accountId: bank.id, amount: 10_000n, currency: 'CNY' as const },
        { accountId: pending.id, amount: -9_940n, currency: 'CNY' as const },
        { accountId: feeIncome.id, amount: -60n, currency: 'CNY' as const },
      ];
      const input = { dedupeKey: 'payment:pay_1:captured', kind: 'payment_captured', referenceType: 'payment', referenceId: 'pay_1', merchantId, postings };
      const first = await postEntry(context.db, context.clock, input);
      expect(first).toMatchObject({ ok: true, value: { status: 'created' } });
      const before = await ledgerRowCounts(context.db);
      const replay = await postEntry(context.db, context.clock, { ...input, postings: [...postings].reverse() });
      expect(replay).toEqual({ ok: true, value: { status: 'exists', entryId: first.ok ? first.value.entryId : '' } });
      expect(await ledgerRowCounts(context.db)).toEqual(before);

      const different = await postEntry(context.db, context.clock, { ...input, postings: postings.map((posting, index) => (index < 2 ? { ...posting, amount: posting.amount * 2n } : { ...posting, amount: -120n })) });
      expect(different).toMatchObject({ ok: false, code: 'exists_with_different_postings' });
      expect(await ledgerRowCounts(context.db)).toEqual(before);

      const [entry] = (await listEntries(context.db, { referenceType: 'payment', referenceId: 'pay_1' })).items;
      expect(entry?.postings.map((posting) => [posting.accountCode, posting.amount])).toEqual([
        [accountCodes.platformBank(), 10_000n],
        [accountCodes.merchantPending(merchantId), -9_940n],
        [accountCodes.platformFeeIncome(), -60n],
      ]);
      expect((await getBalanceByCode(context.db, accountCodes.merchantPending(merchantId), 'CNY'))?.normalBalance).toBe(9_940n);
      expect((await getAccountBalance(context.db, bank.id))?.balance).toBe(10_000n);
    });

    it('refuses to overdraw a no-overdraft account and leaves the caller\'s transaction usable', async () => {
      const entryKeys = ['txn:overdraw', 'txn:fund', 'txn:spend'];
      const outcome = await context.db.transaction().execute(async (trx) => {
        const overdraw = await postTransfer(trx, context.clock, { dedupeKey: entryKeys[0]!, kind: 'payout', debitAccountId: available.id, creditAccountId: bank.id, amount: 1n, currency: 'CNY' });
        const fund = await postTransfer(trx, context.clock, { dedupeKey: entryKeys[1]!, kind: 'settle', debitAccountId: pending.id, creditAccountId: available.id, amount: 500n, currency: 'CNY' });
        const spend = await postTransfer(trx, context.clock, { dedupeKey: entryKeys[2]!, kind: 'payout', debitAccountId: available.id, creditAccountId: bank.id, amount: 500n, currency: 'CNY' });
        return { overdraw, fund, spend };
      });
      expect(outcome.overdraw).toMatchObject({ ok: false, code: 'insufficient_funds' });
      expect(outcome.fund.ok && outcome.spend.ok).toBe(true);
      expect(await entryExists(context.db, entryKeys[0]!)).toBe(false);
      expect(await entryExists(context.db, entryKeys[2]!)).toBe(true);
      expect((await getAccountBalance(context.db, available.id))?.balance).toBe(0n);
    });

    it('writes nothing when the caller\'s transaction rolls back', async () => {
      const before = await ledgerRowCounts(context.db);
      await expect(
        context.db.transaction().execute(async (trx) => {
          const result = await postTransfer(trx, context.clock, { dedupeKey: 'rolled-back', kind: 'test', debitAccountId: bank.id, creditAccountId: pending.id, amount: 5n, currency: 'CNY' });
          expect(result.ok).toBe(true);
          throw new Error('the state change failed');
        }),
      ).rejects.toThrow('the state change failed');
      expect(await ledgerRowCounts(context.db)).toEqual(before);
      expect(await entryExists(context.db, 'rolled-back')).toBe(false);
    });

    it('spreads a hot account\'s postings over its slots by transaction, one slot per transaction', async () => {
      for (let index = 0; index < 40; index += 1) {
        const result = await postTransfer(context.db, context.clock, { dedupeKey: `hot:${index}`, kind: 'test', debitAccountId: bank.id, creditAccountId: feeIncome.id, amount: 1n, currency: 'CNY' });
        expect(result.ok).toBe(true);
      }
      const used = await context.db.selectFrom('ledger_postings').select('slot').distinct().where('account_id', '=', feeIncome.id).execute();
      // Forty transactions, forty transaction ids: they cannot all fall on one slot of 32.
      expect(used.length).toBeGreaterThan(1);

      const slots = await context.db.transaction().execute(async (trx) => {
        for (let index = 0; index < 5; index += 1) {
          const result = await postTransfer(trx, context.clock, { dedupeKey: `hot-in-one:${index}`, kind: 'test', debitAccountId: bank.id, creditAccountId: feeIncome.id, amount: 1n, currency: 'CNY' });
          expect(result.ok).toBe(true);
        }
        return trx.selectFrom('ledger_postings').innerJoin('journal_entries', 'journal_entries.id', 'ledger_postings.entry_id').select('ledger_postings.slot').distinct().where('journal_entries.dedupe_key', 'like', 'hot-in-one:%').execute();
      });
      expect(slots).toHaveLength(1);
    });

    it('books many entries in order with one answer each, a key used twice in one call included', async () => {
      const entry = (index: number, amount = 1n) => ({
        dedupeKey: `many:${index}`,
        kind: 'test',
        referenceType: 'many',
        postings: [
          { accountId: bank.id, amount, currency: 'CNY' as const },
          { accountId: pending.id, amount: -amount, currency: 'CNY' as const },
        ],
      });
      const inputs = [
        ...Array.from({ length: 70 }, (_, index) => entry(index)),
        entry(0),
        entry(1, 2n),
        { ...entry(999), postings: [] },
      ];
      const results = await postEntries(context.db, context.clock, inputs);
      const outcomes = results.map((result) => (result.ok ? result.value.status : result.code));
      expect(outcomes).toEqual([...Array.from({ length: 70 }, () => 'created'), 'exists', 'exists_with_different_postings', 'too_few_postings']);
      const first = results[0];
      if (!first?.ok) throw new Error('the first entry was not booked');
      expect(results[70]).toEqual({ ok: true, value: { entryId: first.value.entryId, status: 'exists' } });
      const booked = await listEntries(context.db, { referenceType: 'many', limit: 100 });
      expect(booked.items.map((item) => item.dedupeKey)).toEqual(Array.from({ length: 70 }, (_, index) => `many:${index}`));
    });

    it('treats malformed metadata as a programming error', async () => {
      await expect(postTransfer(context.db, context.clock, { dedupeKey: '', kind: 'test', debitAccountId: bank.id, creditAccountId: pending.id, amount: 1n, currency: 'CNY' })).rejects.toThrow(AssertionFailure);
      await expect(postTransfer(context.db, context.clock, { dedupeKey: 'negative', kind: 'test', debitAccountId: bank.id, creditAccountId: pending.id, amount: -1n, currency: 'CNY' })).rejects.toThrow(AssertionFailure);
    });

    it('keeps the books balanced', async () => {
      const check = await checkLedger(context.db);
      expect(check.problems).toEqual([]);
      expect(check.ok).toBe(true);
      expect(check.stats.entries).toBeGreaterThan(40);
    });
  });
});
