import { afterEach, describe, expect, it } from 'vitest';
import { createOperator, resetTotp, setOperatorPassword, updateOperator } from '../../src/auth/index.js';
import { verifyAuditChain } from '../../src/audit/index.js';
import { systemActor, type Actor } from '../../src/platform/actor.js';
import { createTestContext, type TestContext } from '../helpers/context.js';
import { minimumHashParameters, setPasswordHashParameters } from '../../src/auth/passwords.js';

setPasswordHashParameters(minimumHashParameters);

/**
 * The audit log is append-only and hash-chained. These tests make real audited
 * changes, then tamper with the table as a database superuser would (with the
 * append-only trigger switched off for that one transaction) and check that
 * verification names the first record that no longer fits. Every case gets a
 * database of its own.
 */
const password = 'audited passphrase';
const admin: Actor = { type: 'operator', id: 'usr_auditadmin', roles: ['admin'], ip: '192.0.2.10', merchantId: null };

const contexts: TestContext[] = [];

afterEach(async () => {
  while (contexts.length > 0) await contexts.pop()?.close();
});

/** A fresh database with six audited changes: sequences 1 to 6. */
async function contextWithHistory(): Promise<TestContext> {
  const context = await createTestContext();
  contexts.push(context);
  const first = await createOperator(context, { email: 'one@fen.test', name: 'One', password, roles: ['admin'] });
  await createOperator(context, { email: 'two@fen.test', name: 'Two', password, roles: ['finance'], actor: admin });
  const third = await createOperator(context, { email: 'three@fen.test', name: 'Three', password, roles: ['risk'], actor: admin });
  context.clock.advanceSeconds(60);
  await updateOperator(context, third.user.id, { roles: ['risk', 'auditor'] }, admin);
  await resetTotp(context, { operatorId: third.user.id, actor: admin });
  await setOperatorPassword(context, { operatorId: first.user.id, password: `${password} renewed`, actor: systemActor });
  return context;
}

/** Runs statements in one transaction on one connection, with triggers (the append-only guard) off for it alone. */
async function tamper(context: TestContext, statements: string): Promise<void> {
  await context.database.superuserQuery(`BEGIN; SET LOCAL session_replication_role = replica; ${statements}; COMMIT;`);
}

const swappedColumns = ['id', 'occurred_at', 'actor_type', 'actor_id', 'actor_roles', 'ip', 'action', 'target_type', 'target_id', 'merchant_id', 'before', 'after', 'previous_hash', 'hash'];

describe('audit log', () => {
  it('records every change in a chain that verifies', async () => {
    const context = await contextWithHistory();
    const rows = await context.db.selectFrom('audit_log').selectAll().orderBy('sequence').execute();
    expect(rows.map((row) => row.action)).toEqual(['operator.created', 'operator.created', 'operator.created', 'operator.updated', 'operator.totp_reset', 'operator.password_changed']);
    expect(rows[1]).toMatchObject({ actor_type: 'operator', actor_id: admin.id, actor_roles: ['admin'], ip: admin.ip });
    expect(rows[3]?.before).toMatchObject({ roles: ['risk'] });
    expect(rows[3]?.after).toMatchObject({ roles: ['auditor', 'risk'] });
    expect(JSON.stringify(rows.map((row) => [row.before, row.after]))).not.toMatch(/passphrase|scrypt\$|fsb1\./);
    expect(await verifyAuditChain(context.db)).toEqual({ ok: true, records: 6 });
  });

  it('refuses UPDATE, DELETE and TRUNCATE, even from a superuser, unless triggers are switched off', async () => {
    const context = await contextWithHistory();
    await expect(context.database.superuserQuery(`UPDATE audit_log SET action = 'operator.nothing' WHERE sequence = 2`)).rejects.toThrow(/append-only/);
    await expect(context.database.superuserQuery('DELETE FROM audit_log WHERE sequence = 6')).rejects.toThrow(/append-only/);
    await expect(context.database.superuserQuery('TRUNCATE audit_log')).rejects.toThrow(/append-only/);
    await expect(context.db.deleteFrom('audit_log').where('sequence', '=', 1n).execute()).rejects.toThrow(/append-only/);
    expect(await verifyAuditChain(context.db)).toEqual({ ok: true, records: 6 });
  });

  it('reports a record whose content was altered', async () => {
    const context = await contextWithHistory();
    await tamper(context, `UPDATE audit_log SET after = jsonb_set(after, '{roles}', '["admin"]') WHERE sequence = 4`);
    expect(await verifyAuditChain(context.db)).toMatchObject({ ok: false, problem: 'altered', sequence: 4n, records: 3 });
  });

  it('reports a record deleted from the middle as missing', async () => {
    const context = await contextWithHistory();
    await tamper(context, 'DELETE FROM audit_log WHERE sequence = 3');
    expect(await verifyAuditChain(context.db)).toMatchObject({ ok: false, problem: 'missing', sequence: 3n, records: 2 });
  });

  it('reports two records whose contents were swapped at the first of them', async () => {
    const context = await contextWithHistory();
    const assignments = swappedColumns.map((column) => `${column} = other.${column}`).join(', ');
    await tamper(
      context,
      [
        'CREATE TEMP TABLE audit_swap ON COMMIT DROP AS SELECT * FROM audit_log WHERE sequence IN (2, 5)',
        // Ids are unique: move both aside first, so the swap never holds one id twice.
        `UPDATE audit_log SET id = id || '-moving' WHERE sequence IN (2, 5)`,
        `UPDATE audit_log SET ${assignments} FROM audit_swap other WHERE (audit_log.sequence, other.sequence) IN ((2, 5), (5, 2))`,
      ].join('; '),
    );
    const swapped = await context.db.selectFrom('audit_log').select(['sequence', 'action']).where('sequence', 'in', [2n, 5n]).orderBy('sequence').execute();
    expect(swapped.map((row) => row.action)).toEqual(['operator.totp_reset', 'operator.created']);
    // Record 2 now holds record 5's content and hash, which were computed for sequence 5 after record 4.
    expect(await verifyAuditChain(context.db)).toMatchObject({ ok: false, problem: 'altered', sequence: 2n, records: 1 });
  });

  it('reports the last record deleted as a head mismatch', async () => {
    const context = await contextWithHistory();
    await tamper(context, 'DELETE FROM audit_log WHERE sequence = 6');
    expect(await verifyAuditChain(context.db)).toMatchObject({ ok: false, problem: 'head_mismatch', records: 5 });
  });
});
