import fc from 'fast-check';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accountSpecs, ensureAccount, ensureMerchantAccounts, postTransfer, type LedgerAccount } from '../../src/ledger/index.js';
import { newId } from '../../src/platform/ids.js';
import { createTestContext, type TestContext } from '../helpers/context.js';
import { ledgerRowCounts } from '../integration/ledger.helpers.js';

/**
 * The database's own line of defence: with the service bypassed entirely,
 * plain SQL still cannot book an unbalanced entry, change or remove a posting
 * or an entry, or overdraw a no-overdraft account.
 */
describe('the ledger schema refuses bad money on its own', () => {
  let context: TestContext;
  let client: pg.PoolClient;
  let bank: LedgerAccount;
  let clearing: LedgerAccount;
  let available: LedgerAccount;
  let usdBank: LedgerAccount;

  beforeAll(async () => {
    context = await createTestContext();
    client = await context.database.pool.connect();
    bank = await ensureAccount(context.db, context.clock, accountSpecs.platformBank('CNY'));
    clearing = await ensureAccount(context.db, context.clock, accountSpecs.channelClearing('cha_raw', 'CNY'));
    available = (await ensureMerchantAccounts(context.db, context.clock, newId('merchant'), 'CNY')).available;
    usdBank = await ensureAccount(context.db, context.clock, accountSpecs.platformBank('USD'));
    const funded = await postTransfer(context.db, context.clock, { dedupeKey: 'fund', kind: 'test', debitAccountId: bank.id, creditAccountId: available.id, amount: 1_000n, currency: 'CNY' });
    expect(funded.ok).toBe(true);
  });
  afterAll(async () => {
    client.release();
    await context.close();
  });

  /** Runs statements in one transaction and returns the error that ended it, or undefined when it committed. */
  async function attempt(statements: Array<[string, unknown[]]>): Promise<string | undefined> {
    await client.query('BEGIN');
    try {
      for (const [text, values] of statements) await client.query(text, values);
      await client.query('COMMIT');
      return undefined;
    } catch (error) {
      await client.query('ROLLBACK');
      return (error as Error).message;
    }
  }

  const entrySql = `INSERT INTO journal_entries (id, dedupe_key, kind, posting_count, postings_hash, effective_at, created_at)
                    VALUES ($1, $2, 'raw', $3, 'raw', now(), now())`;
  const postingsSql = (count: number) =>
    `INSERT INTO ledger_postings (entry_id, account_id, slot, currency, amount, created_at) VALUES ${Array.from(
      { length: count },
      (_, index) => `($1, $${index * 3 + 2}, 0, $${index * 3 + 3}, $${index * 3 + 4}, now())`,
    ).join(', ')}`;
  const postingValues = (entryId: string, postings: Array<[string, string, bigint]>) => [entryId, ...postings.flatMap(([account, currency, amount]) => [account, currency, amount.toString()])];

  const nonZero = fc.bigInt({ min: -1_000_000n, max: 1_000_000n }).filter((value) => value !== 0n);

  it('refuses any INSERT whose postings do not sum to zero', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(nonZero, { minLength: 2, maxLength: 6 }).filter((amounts) => amounts.reduce((sum, value) => sum + value, 0n) !== 0n), async (amounts) => {
        const before = await ledgerRowCounts(context.db);
        const entryId = newId('journalEntry');
        const postings = amounts.map((amount, index): [string, string, bigint] => [index % 2 === 0 ? bank.id : clearing.id, 'CNY', amount]);
        const error = await attempt([
          [entrySql, [entryId, `raw:${entryId}`, postings.length]],
          [postingsSql(postings.length), postingValues(entryId, postings)],
        ]);
        expect(error).toMatch(/unbalanced journal entry/);
        expect(await ledgerRowCounts(context.db)).toEqual(before);
      }),
      { numRuns: 40 },
    );
  });

  it('checks every statement, so two halves that balance only together are refused', async () => {
    const entryId = newId('journalEntry');
    const error = await attempt([
      [entrySql, [entryId, `raw:${entryId}`, 2]],
      [postingsSql(1), postingValues(entryId, [[bank.id, 'CNY', 5n]])],
      [postingsSql(1), postingValues(entryId, [[clearing.id, 'CNY', -5n]])],
    ]);
    expect(error).toMatch(/unbalanced journal entry/);
  });

  it('refuses postings in a currency that is not their account\'s', async () => {
    const entryId = newId('journalEntry');
    const error = await attempt([
      [entrySql, [entryId, `raw:${entryId}`, 2]],
      [postingsSql(2), postingValues(entryId, [[usdBank.id, 'CNY', 5n], [clearing.id, 'CNY', -5n]])],
    ]);
    expect(error).toMatch(/posting currency differs/);
  });

  it('refuses at commit an entry whose postings are not the ones it declared', async () => {
    const entryId = newId('journalEntry');
    const error = await attempt([
      [entrySql, [entryId, `raw:${entryId}`, 3]],
      [postingsSql(2), postingValues(entryId, [[bank.id, 'CNY', 5n], [clearing.id, 'CNY', -5n]])],
    ]);
    expect(error).toMatch(/has 2 postings, declared 3/);
    const bare = newId('journalEntry');
    expect(await attempt([[entrySql, [bare, `raw:${bare}`, 2]]])).toMatch(/has 0 postings, declared 2/);
  });

  it('lets a balanced raw entry through, so the refusals above are about balance alone', async () => {
    const entryId = newId('journalEntry');
    const error = await attempt([
      [entrySql, [entryId, `raw:${entryId}`, 2]],
      [postingsSql(2), postingValues(entryId, [[bank.id, 'CNY', 5n], [clearing.id, 'CNY', -5n]])],
    ]);
    expect(error).toBeUndefined();
  });

  it('never lets a posting or an entry be changed or removed', async () => {
    for (const statement of [
      'UPDATE ledger_postings SET amount = amount + 1',
      'DELETE FROM ledger_postings',
      'TRUNCATE ledger_postings CASCADE',
      "UPDATE journal_entries SET kind = 'changed'",
      'DELETE FROM journal_entries',
      'TRUNCATE journal_entries CASCADE',
    ]) {
      expect(await attempt([[statement, []]]), statement).toMatch(/append-only/);
    }
  });

  it('never lets a no-overdraft account go below zero, whatever writes the slot', async () => {
    await fc.assert(
      fc.asyncProperty(fc.bigInt({ min: 1n, max: 10n ** 12n }), async (excess) => {
        // The merchant's available balance is a liability holding 1000 (a balance of -1000, credit-positive).
        const error = await attempt([['UPDATE ledger_balance_slots SET balance = balance + $2 WHERE account_id = $1', [available.id, (1_000n + excess).toString()]]]);
        expect(error).toMatch(/ledger_no_overdraft/);
      }),
      { numRuns: 20 },
    );
    const slot = await context.database.superuserQuery('SELECT balance FROM ledger_balance_slots WHERE account_id = $1', [available.id]);
    expect(slot.rows[0].balance).toBe(-1_000n);
  });
});
