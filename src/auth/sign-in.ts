import { sql } from 'kysely';
import { appendAudit } from '../audit/index.js';
import { systemActor, type Actor } from '../platform/actor.js';
import type { PlatformContext } from '../platform/context.js';
import type { DbTransaction } from '../platform/db/index.js';
import { FenError, fail, ok, type Result } from '../platform/errors.js';
import { limits } from '../platform/limits.js';
import { findOperatorByEmail, toOperatorView, totpSecretContext, type OperatorView } from './operators.service.js';
import { dummyPasswordHash, hashPassword, passwordNeedsRehash, verifyPassword } from './passwords.js';
import { createSession, type NewSession } from './sessions.js';
import { matchTotp } from './totp.js';

/**
 * Operator sign-in: password, then TOTP, then a session. Failures are
 * counted per account; after limits.loginAttemptsMax of them in a row the
 * account is locked for limits.loginLockoutSeconds, and while locked even the
 * right password and code are refused. A failure is written (counter and
 * audit record) and committed before the error goes back to the client.
 */
export interface SignInInput {
  email: string;
  password: string;
  totpCode: string;
  ip: string | null;
  userAgent: string | null;
}

export interface SignedIn {
  operator: OperatorView;
  session: NewSession;
}

type SignInFailure = 'invalid_credentials' | 'invalid_totp' | 'account_locked';
type FailureReason = 'unknown_email' | 'disabled' | 'locked' | 'password' | 'totp' | 'totp_replayed' | 'totp_not_enrolled';

/** The same words whether the email is unknown, the account disabled or the password wrong. */
const invalidCredentialsMessage = 'the email or password is wrong';
const invalidTotpMessage = 'the authentication code is wrong or was already used';
const looksLikeEmail = /^[^\s@]{1,128}@[^\s@]{1,128}$/;

function attemptActor(ip: string | null): Actor {
  return { ...systemActor, ip };
}

export async function signIn(context: PlatformContext, input: SignInInput): Promise<SignedIn> {
  const user = await findOperatorByEmail(context.db, input.email);
  if (!user) {
    // Spend the same scrypt work as for a real account, so timing does not tell which emails exist.
    await verifyPassword(input.password, await dummyPasswordHash());
    await context.db.transaction().execute((trx) =>
      appendAudit(trx, context.clock, {
        actor: attemptActor(input.ip),
        action: 'operator.sign_in_failed',
        targetType: 'operator',
        targetId: null,
        after: { reason: 'unknown_email' satisfies FailureReason, email: looksLikeEmail.test(input.email) ? input.email.trim().toLowerCase() : null },
      }),
    );
    throw new FenError('invalid_credentials', invalidCredentialsMessage);
  }
  // The password is checked before the transaction, so the row lock below is not held through scrypt.
  const passwordMatches = await verifyPassword(input.password, user.password_hash);
  const outcome = await context.db.transaction().execute((trx) => settleSignIn(trx, context, user.id, passwordMatches, input));
  if (!outcome.ok) throw new FenError(outcome.code, outcome.message);
  return outcome.value;
}

/** Everything after the password check, under a lock on the user row so concurrent attempts count one by one. */
async function settleSignIn(
  trx: DbTransaction,
  context: PlatformContext,
  userId: string,
  passwordMatches: boolean,
  input: SignInInput,
): Promise<Result<SignedIn, SignInFailure>> {
  const now = context.clock.now();
  const user = await trx.selectFrom('users').selectAll().where('id', '=', userId).forUpdate().executeTakeFirstOrThrow();
  if (user.locked_until && user.locked_until > now) {
    await auditFailure(trx, context, userId, input.ip, { reason: 'locked', locked_until: user.locked_until });
    return fail('account_locked', `too many failed sign-ins: the account is locked until ${user.locked_until.toISOString()}`);
  }
  if (user.status !== 'active') {
    await auditFailure(trx, context, userId, input.ip, { reason: 'disabled' });
    return fail('invalid_credentials', invalidCredentialsMessage);
  }
  if (!passwordMatches) return recordFailure(trx, context, userId, input.ip, 'password');
  if (!user.totp_secret_sealed) return recordFailure(trx, context, userId, input.ip, 'totp_not_enrolled');
  const totp = await checkTotp(trx, context, userId, user.totp_secret_sealed, input.totpCode);
  if (totp !== 'ok') return recordFailure(trx, context, userId, input.ip, totp);

  const passwordHash = passwordNeedsRehash(user.password_hash) ? await hashPassword(input.password) : user.password_hash;
  const row = await trx
    .updateTable('users')
    .set({ failed_login_count: 0, locked_until: null, last_login_at: now, password_hash: passwordHash })
    .where('id', '=', userId)
    .returningAll()
    .executeTakeFirstOrThrow();
  const operator = toOperatorView(row);
  const session = await createSession(trx, context.clock, { userId, ip: input.ip, userAgent: input.userAgent });
  const actor: Actor = { type: 'operator', id: userId, roles: operator.roles, ip: input.ip, merchantId: null };
  await appendAudit(trx, context.clock, { actor, action: 'operator.signed_in', targetType: 'operator', targetId: userId, after: { session_expires_at: session.expiresAt } });
  return ok({ operator, session });
}

/**
 * Matches the code and remembers its time step. Steps at or before the last one
 * used are refused by the match itself; the insert is the second guard, should
 * two attempts ever race past the row lock.
 */
async function checkTotp(trx: DbTransaction, context: PlatformContext, userId: string, sealedSecret: string, code: string): Promise<'ok' | 'totp' | 'totp_replayed'> {
  const secret = context.secretBox.open(sealedSecret, totpSecretContext(userId));
  const now = context.clock.now();
  const last = await trx
    .selectFrom('totp_used_steps')
    .select((eb) => eb.fn.max('time_step').as('time_step'))
    .where('user_id', '=', userId)
    .executeTakeFirst();
  const lastStep = last?.time_step === null || last?.time_step === undefined ? undefined : Number(last.time_step);
  const step = await matchTotp(secret, code, now, lastStep);
  if (step === undefined) {
    // Tell a replay apart from a wrong code for the audit log only; the client hears the same either way.
    const wouldMatch = lastStep !== undefined && (await matchTotp(secret, code, now)) !== undefined;
    return wouldMatch ? 'totp_replayed' : 'totp';
  }
  const inserted = await trx
    .insertInto('totp_used_steps')
    .values({ user_id: userId, time_step: BigInt(step) })
    .onConflict((conflict) => conflict.doNothing())
    .returning('time_step')
    .executeTakeFirst();
  return inserted ? 'ok' : 'totp_replayed';
}

async function recordFailure(
  trx: DbTransaction,
  context: PlatformContext,
  userId: string,
  ip: string | null,
  reason: Exclude<FailureReason, 'unknown_email' | 'disabled' | 'locked'>,
): Promise<Result<SignedIn, SignInFailure>> {
  const lockUntil = new Date(context.clock.now().getTime() + limits.loginLockoutSeconds * 1000);
  // The counter restarts once the lock is set, so after the lock-out runs out the operator has the full number of attempts again.
  const row = await trx
    .updateTable('users')
    .set({
      failed_login_count: sql<number>`CASE WHEN failed_login_count + 1 >= ${limits.loginAttemptsMax} THEN 0 ELSE failed_login_count + 1 END`,
      locked_until: sql<Date | null>`CASE WHEN failed_login_count + 1 >= ${limits.loginAttemptsMax} THEN ${lockUntil}::timestamptz ELSE locked_until END`,
    })
    .where('id', '=', userId)
    .returning(['failed_login_count', 'locked_until'])
    .executeTakeFirstOrThrow();
  const lockedNow = row.locked_until !== null && row.locked_until.getTime() === lockUntil.getTime();
  await auditFailure(trx, context, userId, ip, { reason, failed_login_count: lockedNow ? limits.loginAttemptsMax : row.failed_login_count, locked_until: lockedNow ? lockUntil : null });
  return reason === 'password' ? fail('invalid_credentials', invalidCredentialsMessage) : fail('invalid_totp', invalidTotpMessage);
}

async function auditFailure(trx: DbTransaction, context: PlatformContext, userId: string, ip: string | null, details: { reason: FailureReason } & Record<string, unknown>): Promise<void> {
  await appendAudit(trx, context.clock, { actor: attemptActor(ip), action: 'operator.sign_in_failed', targetType: 'operator', targetId: userId, after: details });
}
