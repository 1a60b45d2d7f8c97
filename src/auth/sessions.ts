import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { sql } from 'kysely';
import type { Clock } from '../platform/clock.js';
import type { DbExecutor, DbTransaction } from '../platform/db/index.js';
import { limits } from '../platform/limits.js';

/**
 * Operator sessions. The browser holds a random token in an HttpOnly cookie;
 * the database holds only its SHA-256, so a leaked copy of the sessions table
 * cannot be replayed as cookies. Each session also has a CSRF token that
 * state-changing requests must echo in a header.
 */
export const sessionCookieName = 'fen_session';
export const csrfHeaderName = 'x-csrf-token';

const sessionTokenBytes = 32;
const csrfTokenBytes = 32;
/** Session tokens are base64url of 32 bytes: anything far longer is not one of ours and is not hashed. */
const sessionTokenLengthMax = 128;

export interface NewSession {
  token: string;
  csrfToken: string;
  expiresAt: Date;
}

export interface LiveSession {
  tokenHash: string;
  userId: string;
  csrfToken: string;
  expiresAt: Date;
  email: string;
  name: string;
  roles: string[];
}

export function hashSessionToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** Compares two secrets without leaking through timing how much of them matched. */
export function secretsEqual(given: string, expected: string): boolean {
  const givenDigest = createHash('sha256').update(given, 'utf8').digest();
  const expectedDigest = createHash('sha256').update(expected, 'utf8').digest();
  return timingSafeEqual(givenDigest, expectedDigest);
}

export async function createSession(
  trx: DbTransaction,
  clock: Clock,
  input: { userId: string; ip: string | null; userAgent: string | null },
): Promise<NewSession> {
  const token = randomBytes(sessionTokenBytes).toString('base64url');
  const csrfToken = randomBytes(csrfTokenBytes).toString('base64url');
  const now = clock.now();
  const expiresAt = new Date(now.getTime() + limits.sessionLifetimeSeconds * 1000);
  await trx
    .insertInto('sessions')
    .values({
      token_hash: hashSessionToken(token),
      user_id: input.userId,
      csrf_token: csrfToken,
      ip: input.ip,
      user_agent: input.userAgent?.slice(0, limits.stringFieldLengthMax) ?? null,
      created_at: now,
      expires_at: expiresAt,
    })
    .execute();
  return { token, csrfToken, expiresAt };
}

/** The session behind a cookie, when it is unexpired, unrevoked, and its operator is active. */
export async function findLiveSession(db: DbExecutor, clock: Clock, token: string): Promise<LiveSession | undefined> {
  if (token.length === 0 || token.length > sessionTokenLengthMax) return undefined;
  const row = await db
    .selectFrom('sessions')
    .innerJoin('users', 'users.id', 'sessions.user_id')
    .select(['sessions.token_hash', 'sessions.user_id', 'sessions.csrf_token', 'sessions.expires_at', 'users.email', 'users.name', 'users.roles'])
    .where('sessions.token_hash', '=', hashSessionToken(token))
    .where('sessions.revoked_at', 'is', null)
    .where('sessions.expires_at', '>', clock.now())
    .where('users.kind', '=', 'operator')
    .where('users.status', '=', 'active')
    .executeTakeFirst();
  if (!row) return undefined;
  return {
    tokenHash: row.token_hash,
    userId: row.user_id,
    csrfToken: row.csrf_token,
    expiresAt: row.expires_at,
    email: row.email,
    name: row.name,
    roles: row.roles,
  };
}

export async function revokeSession(trx: DbExecutor, clock: Clock, tokenHash: string): Promise<boolean> {
  const result = await trx
    .updateTable('sessions')
    .set({ revoked_at: clock.now() })
    .where('token_hash', '=', tokenHash)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

/** Ends every session of one user (disabled, password or 2FA reset), optionally sparing the one making the change. */
export async function revokeUserSessions(trx: DbExecutor, clock: Clock, userId: string, exceptTokenHash?: string): Promise<number> {
  let statement = trx.updateTable('sessions').set({ revoked_at: clock.now() }).where('user_id', '=', userId).where('revoked_at', 'is', null);
  if (exceptTokenHash) statement = statement.where('token_hash', '<>', exceptTokenHash);
  const result = await statement.executeTakeFirst();
  return Number(result.numUpdatedRows);
}

/**
 * Deletes sessions that ended (expired or revoked) before `endedBefore`, at
 * most `batchSize` of them, so one run never holds locks for long.
 */
export async function deleteEndedSessions(db: DbExecutor, endedBefore: Date, batchSize: number): Promise<number> {
  const result = await sql<{ count: string }>`
    WITH doomed AS (
      SELECT token_hash FROM sessions
      WHERE expires_at < ${endedBefore} OR revoked_at < ${endedBefore}
      LIMIT ${batchSize}
    )
    DELETE FROM sessions WHERE token_hash IN (SELECT token_hash FROM doomed)`.execute(db);
  return Number(result.numAffectedRows ?? 0n);
}
