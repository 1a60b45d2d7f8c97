import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  accountSpecs,
  checkLedger,
  ensureAccount,
  ensureMerchantAccounts,
  postTransfer,
  type LedgerAccount,
  type LedgerCheck,
} from '../../src/ledger/index.js';
import { newId } from '../../src/platform/ids.js';
import { createTestContext, type TestContext } from '../helpers/context.js';

/**
 * `fen ledger check` on purpose-broken books: each test tampers with the rows
 * as a superuser would (bypassing the service and, where needed, the
 * triggers) and expects the check to name the damage. Each test gets a fresh
 * database, so one test's damage never leaks into another's.
 */
describe('checkLedger', () => {
  let context: TestContext;
  let bank: LedgerAccount;
  let clearing: LedgerAccount;
  let available: LedgerAccount;
  let pending: LedgerAccount;

  beforeEach(async () => {
    context = await createTestContext();
    bank = await ensureAccount(context.db, context.clock, accountSpecs.platformBank('CNY'));
    clearing = await ensureAccount(context.db, context.clock, accountSpecs.channelClearing('cha_check', 'CNY'));
    ({ available, pending } = await ensureMerchantAccounts(context.db, context.clock, newId('merchant'), 'CNY'));
    for (const [index, [debit, credit, amount]] of ([[clearing, pending, 500n], [pending, available, 300n], [bank, clearing, 200n]] as const).entries()) {
      const result = await postTransfer(context.db, context.clock, { dedupeKey: `seed:${index}`, kind: 'seed', debitAccountId: debit.id, creditAccountId: credit.id, amount, currency: 'CNY' });
      expect(result.ok).toBe(true);
    }
  });
  afterEach(async () => {
    await context.close();
  });

  const tamper = (text: string, values: unknown[] = []) => context.database.superuserQuery(text, values);
  const codes = (check: LedgerCheck) => [...new Set(check.problems.map((problem) => problem.code))].sort();

  it('passes intact books and counts what it read', async () => {
    const check = await checkLedger(context.db);
    expect(check).toEqual({ ok: true, problems: [], stats: { accounts: 5, balanceSlots: 32 + 32 + 8 + 1 + 1, entries: 3, postings: 6 } });
  });

  it('finds a balance slot changed behind the ledger\'s back', async () => {
    // The pending account has several slots; the one to tamper with is one its postings went to.
    const [slot] = await context.db.selectFrom('ledger_balance_slots').select(['slot', 'balance']).where('account_id', '=', pending.id).where('balance', '<>', 0n).orderBy('slot').limit(1).execute();
    await tamper('UPDATE ledger_balance_slots SET balance = balance + 1 WHERE account_id = $1 AND slot = $2', [pending.id, slot!.slot]);
    const check = await checkLedger(context.db);
    expect(check.ok).toBe(false);
    expect(codes(check)).toEqual(['balance_mismatch']);
    expect(check.problems[0]?.message).toContain(pending.id);
    expect(check.problems[0]?.message).toContain(`slot ${slot!.slot}: balance ${slot!.balance + 1n} but its postings sum to ${slot!.balance}`);
  });

  it('finds an unbalanced entry slipped in with the triggers off', async () => {
    await tamper('ALTER TABLE ledger_postings DISABLE TRIGGER USER');
    await tamper('ALTER TABLE journal_entries DISABLE TRIGGER USER');
    const entryId = newId('journalEntry');
    await tamper(`INSERT INTO journal_entries (id, dedupe_key, kind, posting_count, postings_hash, effective_at, created_at) VALUES ($1, 'forged', 'forged', 2, 'x', now(), now())`, [entryId]);
    await tamper(`INSERT INTO ledger_postings (entry_id, account_id, slot, currency, amount, created_at) VALUES ($1, $2, 0, 'CNY', 50, now())`, [entryId, pending.id]);
    const check = await checkLedger(context.db);
    expect(codes(check)).toEqual(['balance_mismatch', 'entry_posting_count', 'entry_unbalanced', 'postings_unbalanced']);
    expect(check.problems.find((problem) => problem.code === 'entry_unbalanced')?.message).toContain(entryId);
  });

  it('finds a posting in a currency that is not its account\'s', async () => {
    await tamper('ALTER TABLE ledger_postings DISABLE TRIGGER USER');
    await tamper(`INSERT INTO ledger_postings (entry_id, account_id, slot, currency, amount, created_at)
                  SELECT entry_id, account_id, slot, 'USD', amount, now() FROM ledger_postings ORDER BY id LIMIT 1`);
    expect(codes(await checkLedger(context.db))).toContain('currency_mismatch');
  });

  it('finds an overdrawn account and a missing guard', async () => {
    await tamper('ALTER TABLE ledger_balance_slots DROP CONSTRAINT ledger_no_overdraft');
    await tamper('UPDATE ledger_balance_slots SET balance = 5 WHERE account_id = $1', [available.id]);
    expect(codes(await checkLedger(context.db))).toEqual(['balance_mismatch', 'overdrawn']);
    await tamper(`UPDATE ledger_balance_slots SET guard = 'none' WHERE account_id = $1`, [available.id]);
    expect(codes(await checkLedger(context.db))).toEqual(['balance_mismatch', 'guard_missing']);
  });

  it('finds an account whose slots are not the ones it declares', async () => {
    const suspense = await ensureAccount(context.db, context.clock, accountSpecs.suspense('CNY'));
    await tamper('DELETE FROM ledger_balance_slots WHERE account_id = $1 AND slot = 31', [suspense.id]);
    const check = await checkLedger(context.db);
    expect(codes(check)).toEqual(['slot_count_mismatch']);
    expect(check.problems[0]?.message).toContain('declares 32 slots but has 31');
  });
});
