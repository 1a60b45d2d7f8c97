import { sql, type Selectable } from 'kysely';
import { appendAudit } from '../audit/index.js';
import { systemActor, type Actor } from '../platform/actor.js';
import type { PlatformContext } from '../platform/context.js';
import type { DbExecutor, DbTransaction, UsersTable } from '../platform/db/index.js';
import { FenError } from '../platform/errors.js';
import { newId } from '../platform/ids.js';
import { limits } from '../platform/limits.js';
import { hashPassword, passwordProblem } from './passwords.js';
import { operatorRoles, type OperatorRole } from './permissions.js';
import { revokeUserSessions } from './sessions.js';
import { generateTotpSecret, totpUri } from './totp.js';

/**
 * Operators: the platform's own staff, who sign in to the console with a
 * password and TOTP. Every change here is audited in the same transaction.
 */
export type OperatorStatus = 'active' | 'disabled';

export interface OperatorView {
  id: string;
  email: string;
  name: string;
  roles: OperatorRole[];
  status: OperatorStatus;
  lockedUntil: Date | null;
  lastLoginAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface TotpEnrolment {
  /** Base32 secret, shown once so the operator can add it to an authenticator app. */
  totpSecret: string;
  otpauthUri: string;
}

export interface CreateOperatorInput {
  email: string;
  name: string;
  password: string;
  roles: readonly OperatorRole[];
  actor?: Actor;
}

export interface OperatorChanges {
  name?: string;
  roles?: readonly OperatorRole[];
  status?: OperatorStatus;
  /** Clears a sign-in lock-out before it runs out. */
  unlock?: boolean;
}

type UserRow = Selectable<UsersTable>;

const uniqueViolation = '23505';
/** Serialises changes that could leave no active admin (two admins demoting each other at once). */
const adminChangeLockKey = 'fen.operators.admins';
const emailPattern = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

export function isOperatorRole(value: string): value is OperatorRole {
  return (operatorRoles as readonly string[]).includes(value);
}

export function totpSecretContext(userId: string): string {
  return `totp:${userId}`;
}

export function toOperatorView(row: Pick<UserRow, 'id' | 'email' | 'name' | 'roles' | 'status' | 'locked_until' | 'last_login_at' | 'created_at' | 'updated_at'>): OperatorView {
  return {
    id: row.id,
    email: row.email,
    name: row.name,
    roles: row.roles.filter(isOperatorRole),
    status: row.status,
    lockedUntil: row.locked_until,
    lastLoginAt: row.last_login_at,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/** What the audit log records about an operator: never the password hash or the TOTP secret. */
function auditedFields(view: OperatorView): Record<string, unknown> {
  return { email: view.email, name: view.name, roles: view.roles, status: view.status };
}

function checkRoles(roles: readonly string[]): OperatorRole[] {
  const unknown = roles.filter((role) => !isOperatorRole(role));
  if (unknown.length > 0) throw new FenError('invalid_request', `unknown roles: ${unknown.join(', ')}`);
  if (roles.length === 0) throw new FenError('invalid_request', 'an operator needs at least one role');
  return [...new Set(roles as OperatorRole[])].sort();
}

function checkNewOperator(input: CreateOperatorInput): { email: string; name: string; roles: OperatorRole[] } {
  const email = input.email.trim();
  const name = input.name.trim();
  if (!emailPattern.test(email) || email.length > limits.stringFieldLengthMax) throw new FenError('invalid_request', 'email is not a valid address');
  if (name.length === 0 || name.length > limits.stringFieldLengthMax) throw new FenError('invalid_request', 'name must be 1 to 256 characters');
  const problem = passwordProblem(input.password);
  if (problem) throw new FenError('invalid_request', problem);
  return { email, name, roles: checkRoles(input.roles) };
}

function isUniqueViolation(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === uniqueViolation;
}

export async function createOperator(context: PlatformContext, input: CreateOperatorInput): Promise<{ user: OperatorView } & TotpEnrolment> {
  const { email, name, roles } = checkNewOperator(input);
  const passwordHash = await hashPassword(input.password);
  const id = newId('user');
  const totpSecret = generateTotpSecret();
  const now = context.clock.now();
  try {
    const user = await context.db.transaction().execute(async (trx) => {
      const row = await trx
        .insertInto('users')
        .values({
          id,
          kind: 'operator',
          merchant_id: null,
          email,
          name,
          password_hash: passwordHash,
          totp_secret_sealed: context.secretBox.seal(totpSecret, totpSecretContext(id)),
          roles,
          status: 'active',
          created_at: now,
          updated_at: now,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      const view = toOperatorView(row);
      await appendAudit(trx, context.clock, { actor: input.actor ?? systemActor, action: 'operator.created', targetType: 'operator', targetId: id, after: auditedFields(view) });
      return view;
    });
    return { user, totpSecret, otpauthUri: totpUri(totpSecret, email) };
  } catch (error) {
    if (isUniqueViolation(error)) throw new FenError('duplicate', `a user with email ${email} already exists`);
    throw error;
  }
}

async function lockOperator(trx: DbTransaction, operatorId: string): Promise<UserRow> {
  const row = await trx.selectFrom('users').selectAll().where('id', '=', operatorId).where('kind', '=', 'operator').forUpdate().executeTakeFirst();
  if (!row) throw new FenError('not_found', `no operator ${operatorId}`);
  return row;
}

function isActiveAdmin(view: Pick<OperatorView, 'roles' | 'status'>): boolean {
  return view.status === 'active' && view.roles.includes('admin');
}

/** Refuses a change that would leave the platform with no active admin, who alone can manage operators. */
async function keepOneAdmin(trx: DbTransaction, before: OperatorView, after: Pick<OperatorView, 'roles' | 'status'>): Promise<void> {
  if (!isActiveAdmin(before) || isActiveAdmin(after)) return;
  await sql`SELECT pg_advisory_xact_lock(hashtext(${adminChangeLockKey}))`.execute(trx);
  const others = await trx
    .selectFrom('users')
    .select((eb) => eb.fn.countAll<string>().as('count'))
    .where('kind', '=', 'operator')
    .where('status', '=', 'active')
    .where('id', '<>', before.id)
    .where(sql<boolean>`'admin' = ANY(roles)`)
    .executeTakeFirstOrThrow();
  if (Number(others.count) === 0) throw new FenError('invalid_state', 'this is the last active admin: make another operator admin first');
}

export async function updateOperator(context: PlatformContext, operatorId: string, changes: OperatorChanges, actor: Actor): Promise<OperatorView> {
  const roles = changes.roles === undefined ? undefined : checkRoles(changes.roles);
  const name = changes.name?.trim();
  if (name !== undefined && (name.length === 0 || name.length > limits.stringFieldLengthMax)) throw new FenError('invalid_request', 'name must be 1 to 256 characters');
  return context.db.transaction().execute(async (trx) => {
    const before = toOperatorView(await lockOperator(trx, operatorId));
    const next = { name: name ?? before.name, roles: roles ?? before.roles, status: changes.status ?? before.status };
    const unlock = changes.unlock === true && before.lockedUntil !== null;
    const changed = unlock || next.name !== before.name || next.status !== before.status || next.roles.join() !== before.roles.join();
    if (!changed) return before;
    await keepOneAdmin(trx, before, next);
    const row = await trx
      .updateTable('users')
      .set({ ...next, updated_at: context.clock.now(), ...(unlock ? { locked_until: null, failed_login_count: 0 } : {}) })
      .where('id', '=', operatorId)
      .returningAll()
      .executeTakeFirstOrThrow();
    const after = toOperatorView(row);
    if (after.status === 'disabled') await revokeUserSessions(trx, context.clock, operatorId);
    await appendAudit(trx, context.clock, {
      actor,
      action: 'operator.updated',
      targetType: 'operator',
      targetId: operatorId,
      before: { ...auditedFields(before), locked_until: before.lockedUntil },
      after: { ...auditedFields(after), locked_until: after.lockedUntil },
    });
    return after;
  });
}

export function setOperatorRoles(context: PlatformContext, input: { operatorId: string; roles: readonly OperatorRole[]; actor: Actor }): Promise<OperatorView> {
  return updateOperator(context, input.operatorId, { roles: input.roles }, input.actor);
}

/** Disables an operator and ends their sessions at once. */
export function disableOperator(context: PlatformContext, input: { operatorId: string; actor: Actor }): Promise<OperatorView> {
  return updateOperator(context, input.operatorId, { status: 'disabled' }, input.actor);
}

/**
 * Gives an operator a new TOTP secret (a lost phone). Their sessions end, and
 * the remembered time steps go with the old secret.
 */
export async function resetTotp(context: PlatformContext, input: { operatorId: string; actor: Actor }): Promise<TotpEnrolment> {
  const totpSecret = generateTotpSecret();
  const email = await context.db.transaction().execute(async (trx) => {
    const row = await lockOperator(trx, input.operatorId);
    await trx
      .updateTable('users')
      .set({ totp_secret_sealed: context.secretBox.seal(totpSecret, totpSecretContext(row.id)), updated_at: context.clock.now() })
      .where('id', '=', row.id)
      .execute();
    await trx.deleteFrom('totp_used_steps').where('user_id', '=', row.id).execute();
    const revoked = await revokeUserSessions(trx, context.clock, row.id);
    await appendAudit(trx, context.clock, { actor: input.actor, action: 'operator.totp_reset', targetType: 'operator', targetId: row.id, after: { sessions_revoked: revoked } });
    return row.email;
  });
  return { totpSecret, otpauthUri: totpUri(totpSecret, email) };
}

/**
 * Sets a new password (an admin or the CLI for someone else, or the operator
 * for themselves). Other sessions end; `keepSessionHash` spares the caller's own.
 */
export async function setOperatorPassword(
  context: PlatformContext,
  input: { operatorId: string; password: string; actor: Actor; keepSessionHash?: string },
): Promise<void> {
  const problem = passwordProblem(input.password);
  if (problem) throw new FenError('invalid_request', problem);
  const passwordHash = await hashPassword(input.password);
  await context.db.transaction().execute(async (trx) => {
    const row = await lockOperator(trx, input.operatorId);
    await trx.updateTable('users').set({ password_hash: passwordHash, updated_at: context.clock.now() }).where('id', '=', row.id).execute();
    const revoked = await revokeUserSessions(trx, context.clock, row.id, input.keepSessionHash);
    await appendAudit(trx, context.clock, { actor: input.actor, action: 'operator.password_changed', targetType: 'operator', targetId: row.id, after: { sessions_revoked: revoked } });
  });
}

export async function getOperator(db: DbExecutor, operatorId: string): Promise<OperatorView | undefined> {
  const row = await db.selectFrom('users').selectAll().where('id', '=', operatorId).where('kind', '=', 'operator').executeTakeFirst();
  return row ? toOperatorView(row) : undefined;
}

export async function findOperatorByEmail(db: DbExecutor, email: string): Promise<UserRow | undefined> {
  return db
    .selectFrom('users')
    .selectAll()
    .where(sql<string>`lower(email)`, '=', email.trim().toLowerCase())
    .where('kind', '=', 'operator')
    .executeTakeFirst();
}

/** Operators newest first; the cursor is the last id of the previous page. */
export async function listOperators(
  db: DbExecutor,
  query: { limit: number; cursor?: string | undefined; status?: OperatorStatus | undefined },
): Promise<{ operators: OperatorView[]; nextCursor: string | null }> {
  let statement = db.selectFrom('users').selectAll().where('kind', '=', 'operator').orderBy('id', 'desc').limit(query.limit + 1);
  if (query.cursor !== undefined) statement = statement.where('id', '<', query.cursor);
  if (query.status !== undefined) statement = statement.where('status', '=', query.status);
  const rows = await statement.execute();
  const page = rows.slice(0, query.limit).map(toOperatorView);
  const last = page.at(-1);
  return { operators: page, nextCursor: rows.length > query.limit && last ? last.id : null };
}
