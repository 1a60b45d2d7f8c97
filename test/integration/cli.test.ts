import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendAudit } from '../../src/audit/index.js';
import { accountSpecs, ensureAccount, postTransfer } from '../../src/ledger/index.js';
import { systemActor } from '../../src/platform/actor.js';
import { createTestContext, type TestContext } from '../helpers/context.js';
import { runFen } from '../helpers/process.js';

/**
 * The operator's checks as they run them: `fen ledger check` and `fen audit
 * verify` as child processes, exit 0 on a sound database and 1 — not 0 —
 * once a row has been tampered with.
 */
describe('fen ledger check and fen audit verify', () => {
  let context: TestContext;
  const fen = (args: string[]) => runFen(args, { DATABASE_URL: context.databaseUrl, FEN_DATA_DIR: '/tmp/fen-cli-test', LOG_LEVEL: 'warn' });

  beforeAll(async () => {
    context = await createTestContext();
    const bank = await ensureAccount(context.db, context.clock, accountSpecs.platformBank('CNY'));
    const pending = await ensureAccount(context.db, context.clock, accountSpecs.merchantPending('mch_01jz0000000000000000000000', 'CNY'));
    const posted = await postTransfer(context.db, context.clock, { dedupeKey: 'cli-test', kind: 'test', debitAccountId: bank.id, creditAccountId: pending.id, amount: 500n, currency: 'CNY' });
    expect(posted.ok).toBe(true);
    await context.db.transaction().execute((trx) => appendAudit(trx, context.clock, { actor: systemActor, action: 'test.done', targetType: 'test', targetId: null, after: { n: 1 } }));
  });
  afterAll(async () => context.close());

  it('pass on a sound database', async () => {
    expect((await fen(['ledger', 'check'])).code).toBe(0);
    const audit = await fen(['audit', 'verify', '--json']);
    expect(audit.code).toBe(0);
    expect(audit.output).toContain('"ok":true');
  });

  it('exit 1 with a report once a balance or an audit record is tampered with', async () => {
    await context.database.superuserQuery(`UPDATE ledger_balance_slots SET balance = balance + 1 WHERE slot = 0 AND account_id IN (SELECT id FROM ledger_accounts WHERE code = 'platform_bank')`);
    const ledger = await fen(['ledger', 'check']);
    expect(ledger.code).toBe(1);
    expect(ledger.output).toContain('BROKEN');
    await context.database.superuserQuery(`ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only; UPDATE audit_log SET action = 'test.forged'; ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only`);
    const audit = await fen(['audit', 'verify']);
    expect(audit.code).toBe(1);
    expect(audit.output).toContain('altered');
  });
});
