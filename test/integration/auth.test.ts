import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { createOperator, csrfHeaderName, sessionCookieName, totpCodeAt, totpPeriodSeconds, type OperatorRole } from '../../src/auth/index.js';
import { hashSessionToken } from '../../src/auth/sessions.js';
import { buildApp } from '../../src/main/app.js';
import { limits } from '../../src/platform/limits.js';
import { createTestContext, type TestContext } from '../helpers/context.js';
import { signInOperator } from '../helpers/operators.js';

/**
 * Sign-in, sessions, lock-out and CSRF through the real HTTP routes. Each test
 * makes its own operator and, where failures are counted per address, uses an
 * address of its own, so the tests do not share lock-out or rate-limit state.
 */
const password = 'a long enough passphrase';

interface TestOperator {
  id: string;
  email: string;
  totpSecret: string;
}

describe('operator sign-in', () => {
  let context: TestContext;
  let app: FastifyInstance;
  let operatorCount = 0;

  beforeAll(async () => {
    context = await createTestContext();
    app = await buildApp(context, { logRequests: false });
  });
  afterAll(async () => {
    await app.close();
    await context.close();
  });

  async function newOperator(roles: OperatorRole[] = ['operations']): Promise<TestOperator> {
    operatorCount += 1;
    const email = `signin-${operatorCount}@fen.test`;
    const created = await createOperator(context, { email, name: `Sign-in ${operatorCount}`, password, roles });
    return { id: created.user.id, email, totpSecret: created.totpSecret };
  }

  async function currentCode(operator: TestOperator): Promise<string> {
    return totpCodeAt(operator.totpSecret, context.clock.now());
  }

  function login(body: { email: string; password: string; totp: string }, remoteAddress = '127.0.0.1') {
    return app.inject({ method: 'POST', url: '/admin/v1/auth/login', payload: body, remoteAddress });
  }

  function sessionHeaders(response: Awaited<ReturnType<typeof login>>): Record<string, string> {
    const cookie = response.cookies.find((candidate) => candidate.name === sessionCookieName);
    if (!cookie) throw new Error('no session cookie');
    return { cookie: `${sessionCookieName}=${cookie.value}`, [csrfHeaderName]: response.json<{ csrf_token: string }>().csrf_token };
  }

  async function auditActions(targetId: string): Promise<string[]> {
    const rows = await context.db.selectFrom('audit_log').select('action').where('target_id', '=', targetId).orderBy('sequence').execute();
    return rows.map((row) => row.action);
  }

  it('signs in with password and TOTP, sets a hardened cookie and stores only the token hash', async () => {
    const operator = await newOperator(['finance']);
    const response = await login({ email: operator.email.toUpperCase(), password, totp: await currentCode(operator) });
    expect(response.statusCode).toBe(200);
    const body = response.json();
    expect(body.operator).toEqual({ id: operator.id, email: operator.email, name: expect.any(String), roles: ['finance'] });
    expect(body.csrf_token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(response.headers['cache-control']).toBe('no-store');

    const setCookie = String(response.headers['set-cookie']);
    expect(setCookie).toMatch(/^fen_session=[A-Za-z0-9_-]{43};/);
    expect(setCookie).toContain('HttpOnly');
    expect(setCookie).toContain('SameSite=Strict');
    expect(setCookie).toContain('Path=/');
    expect(setCookie).not.toContain('Secure');

    const cookie = response.cookies.find((candidate) => candidate.name === sessionCookieName);
    const stored = await context.db.selectFrom('sessions').selectAll().where('user_id', '=', operator.id).execute();
    expect(stored).toHaveLength(1);
    expect(stored[0]?.token_hash).toBe(hashSessionToken(cookie?.value ?? ''));
    expect(stored[0]?.token_hash).not.toBe(cookie?.value);
    expect(stored[0]?.expires_at.getTime()).toBe(context.clock.now().getTime() + limits.sessionLifetimeSeconds * 1000);
    expect(await auditActions(operator.id)).toEqual(['operator.created', 'operator.signed_in']);

    const me = await app.inject({ method: 'GET', url: '/admin/v1/auth/me', headers: sessionHeaders(response) });
    expect(me.statusCode).toBe(200);
    expect(me.json().operator.permissions).toContain('settlement.run');
    expect(me.json().csrf_token).toBe(body.csrf_token);
  });

  it('refuses a wrong password and an unknown email with the same answer', async () => {
    const operator = await newOperator();
    const wrongPassword = await login({ email: operator.email, password: 'not the password at all', totp: await currentCode(operator) }, '10.0.1.1');
    const unknownEmail = await login({ email: 'nobody@fen.test', password, totp: '123456' }, '10.0.1.1');
    expect(wrongPassword.statusCode).toBe(401);
    expect(unknownEmail.statusCode).toBe(401);
    expect(wrongPassword.json()).toEqual(unknownEmail.json());
    expect(wrongPassword.json().error.code).toBe('invalid_credentials');
    expect(wrongPassword.headers['set-cookie']).toBeUndefined();
    expect(await auditActions(operator.id)).toEqual(['operator.created', 'operator.sign_in_failed']);
    const failure = await context.db.selectFrom('audit_log').select(['after', 'actor_type', 'ip']).where('target_id', '=', operator.id).where('action', '=', 'operator.sign_in_failed').executeTakeFirstOrThrow();
    expect(failure).toMatchObject({ actor_type: 'system', ip: '10.0.1.1', after: { reason: 'password', failed_login_count: 1 } });
  });

  it('refuses a wrong or malformed TOTP code', async () => {
    const operator = await newOperator();
    const code = await currentCode(operator);
    const wrong = String((Number(code) + 1) % 1_000_000).padStart(6, '0');
    for (const totp of [wrong, 'abcdef', '1234567']) {
      const response = await login({ email: operator.email, password, totp }, '10.0.2.1');
      expect(response.statusCode).toBe(401);
      expect(response.json().error.code).toBe('invalid_totp');
    }
  });

  it('accepts codes one step either side of now, and not two', async () => {
    const operator = await newOperator();
    const now = context.clock.now().getTime();
    const at = (steps: number) => totpCodeAt(operator.totpSecret, new Date(now + steps * totpPeriodSeconds * 1000));
    // Two steps behind is outside the window; one step behind is inside.
    expect((await login({ email: operator.email, password, totp: await at(-2) }, '10.0.3.1')).json().error.code).toBe('invalid_totp');
    expect((await login({ email: operator.email, password, totp: await at(-1) }, '10.0.3.1')).statusCode).toBe(200);
    expect((await login({ email: operator.email, password, totp: await at(1) }, '10.0.3.1')).statusCode).toBe(200);
    expect((await login({ email: operator.email, password, totp: await at(2) }, '10.0.3.1')).json().error.code).toBe('invalid_totp');
  });

  it('accepts a TOTP code once: a replay, or an older code after a newer one, is refused', async () => {
    const operator = await newOperator();
    const code = await currentCode(operator);
    expect((await login({ email: operator.email, password, totp: code })).statusCode).toBe(200);
    const replay = await login({ email: operator.email, password, totp: code }, '10.0.4.1');
    expect(replay.statusCode).toBe(401);
    expect(replay.json().error.code).toBe('invalid_totp');
    const previousStep = await totpCodeAt(operator.totpSecret, new Date(context.clock.now().getTime() - totpPeriodSeconds * 1000));
    expect((await login({ email: operator.email, password, totp: previousStep }, '10.0.4.1')).json().error.code).toBe('invalid_totp');
    const reasons = await context.db.selectFrom('audit_log').select('after').where('target_id', '=', operator.id).where('action', '=', 'operator.sign_in_failed').orderBy('sequence').execute();
    expect(reasons.map((row) => (row.after as { reason: string }).reason)).toEqual(['totp_replayed', 'totp_replayed']);
  });

  it('locks the account after too many failures, even for the right credentials, until the lock runs out', async () => {
    const operator = await newOperator();
    const address = '10.0.5.1';
    for (let attempt = 1; attempt <= limits.loginAttemptsMax; attempt += 1) {
      const response = await login({ email: operator.email, password: `wrong password ${attempt}`, totp: '000000' }, address);
      expect(response.json().error.code).toBe('invalid_credentials');
    }
    const user = await context.db.selectFrom('users').select(['locked_until']).where('id', '=', operator.id).executeTakeFirstOrThrow();
    expect(user.locked_until?.getTime()).toBe(context.clock.now().getTime() + limits.loginLockoutSeconds * 1000);

    const locked = await login({ email: operator.email, password, totp: await currentCode(operator) }, address);
    expect(locked.statusCode).toBe(423);
    expect(locked.json().error.code).toBe('account_locked');

    context.clock.advanceSeconds(limits.loginLockoutSeconds - totpPeriodSeconds);
    expect((await login({ email: operator.email, password, totp: await currentCode(operator) }, address)).statusCode).toBe(423);

    context.clock.advanceSeconds(totpPeriodSeconds + 1);
    const unlocked = await login({ email: operator.email, password, totp: await currentCode(operator) }, address);
    expect(unlocked.statusCode).toBe(200);
    const after = await context.db.selectFrom('users').select(['locked_until', 'failed_login_count']).where('id', '=', operator.id).executeTakeFirstOrThrow();
    expect(after).toEqual({ locked_until: null, failed_login_count: 0 });
  });

  it('counts wrong TOTP codes towards the lock-out, and resets the count on success', async () => {
    const operator = await newOperator();
    const address = '10.0.6.1';
    for (let attempt = 1; attempt < limits.loginAttemptsMax; attempt += 1) {
      expect((await login({ email: operator.email, password, totp: '999999' }, address)).statusCode).toBe(401);
    }
    expect((await login({ email: operator.email, password, totp: await currentCode(operator) }, address)).statusCode).toBe(200);
    context.clock.advanceSeconds(totpPeriodSeconds);
    // The counter started again from zero: one more failure does not lock.
    expect((await login({ email: operator.email, password, totp: '999999' }, address)).statusCode).toBe(401);
    expect((await login({ email: operator.email, password, totp: await currentCode(operator) }, address)).statusCode).toBe(200);
  });

  it('signs out: the session is revoked and the cookie cleared', async () => {
    const operator = await newOperator();
    const headers = sessionHeaders(await login({ email: operator.email, password, totp: await currentCode(operator) }));
    const logout = await app.inject({ method: 'POST', url: '/admin/v1/auth/logout', headers });
    expect(logout.statusCode).toBe(200);
    expect(String(logout.headers['set-cookie'])).toMatch(/^fen_session=;/);
    const me = await app.inject({ method: 'GET', url: '/admin/v1/auth/me', headers });
    expect(me.statusCode).toBe(401);
    expect(me.json().error.code).toBe('not_authenticated');
    expect(await auditActions(operator.id)).toEqual(['operator.created', 'operator.signed_in', 'operator.signed_out']);
  });

  it('ends a session when its lifetime runs out', async () => {
    const operator = await newOperator();
    const headers = sessionHeaders(await login({ email: operator.email, password, totp: await currentCode(operator) }));
    context.clock.advanceSeconds(limits.sessionLifetimeSeconds - 1);
    expect((await app.inject({ method: 'GET', url: '/admin/v1/auth/me', headers })).statusCode).toBe(200);
    context.clock.advanceSeconds(1);
    const expired = await app.inject({ method: 'GET', url: '/admin/v1/auth/me', headers });
    expect(expired.statusCode).toBe(401);
    expect(expired.json().error.code).toBe('not_authenticated');
  });

  it('refuses requests without a session, or with a forged cookie', async () => {
    for (const headers of [{}, { cookie: `${sessionCookieName}=forged` }, { cookie: `${sessionCookieName}=${'x'.repeat(500)}` }]) {
      const response = await app.inject({ method: 'GET', url: '/admin/v1/operators', headers });
      expect(response.statusCode).toBe(401);
      expect(response.json().error.code).toBe('not_authenticated');
    }
  });

  it('requires the CSRF token on state-changing requests', async () => {
    const { headers } = await signInOperator(app, context, { roles: ['admin'] });
    const body = { email: 'csrf-victim@fen.test', name: 'CSRF', password, roles: ['auditor'] };
    const withoutToken = await app.inject({ method: 'POST', url: '/admin/v1/operators', headers: { cookie: headers.cookie ?? '' }, payload: body });
    expect(withoutToken.statusCode).toBe(403);
    expect(withoutToken.json().error.code).toBe('csrf_token_invalid');
    const wrongToken = await app.inject({ method: 'POST', url: '/admin/v1/operators', headers: { ...headers, [csrfHeaderName]: 'not-the-token' }, payload: body });
    expect(wrongToken.statusCode).toBe(403);
    expect(wrongToken.json().error.code).toBe('csrf_token_invalid');
    // Reading needs no token: a cross-site page cannot read the answer anyway.
    expect((await app.inject({ method: 'GET', url: '/admin/v1/operators', headers: { cookie: headers.cookie ?? '' } })).statusCode).toBe(200);
    expect((await app.inject({ method: 'POST', url: '/admin/v1/operators', headers, payload: body })).statusCode).toBe(201);
  });

  it('authenticates before validating: no session or no permission wins over a bad body', async () => {
    const bad = { email: 'not an email' };
    const anonymous = await app.inject({ method: 'POST', url: '/admin/v1/operators', payload: bad });
    expect(anonymous.json().error.code).toBe('not_authenticated');
    const { headers } = await signInOperator(app, context, { roles: ['finance'] });
    const forbidden = await app.inject({ method: 'POST', url: '/admin/v1/operators', headers, payload: bad });
    expect(forbidden.statusCode).toBe(403);
    expect(forbidden.json().error.code).toBe('forbidden');
  });

  it('rate-limits failed sign-ins per address, apart from the per-account lock-out', async () => {
    const address = '10.0.9.9';
    let lastStatus = 0;
    for (let attempt = 0; attempt < 20; attempt += 1) {
      lastStatus = (await login({ email: `spray-${attempt}@fen.test`, password, totp: '000000' }, address)).statusCode;
    }
    expect(lastStatus).toBe(401);
    const limited = await login({ email: 'spray-last@fen.test', password, totp: '000000' }, address);
    expect(limited.statusCode).toBe(429);
    expect(limited.json().error.code).toBe('rate_limited');
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    // Another address is unaffected, and the limited one recovers as time passes.
    const operator = await newOperator();
    expect((await login({ email: operator.email, password, totp: await currentCode(operator) }, '10.0.9.10')).statusCode).toBe(200);
    context.clock.advanceSeconds(Number(limited.headers['retry-after']));
    expect((await login({ email: 'spray-later@fen.test', password, totp: '000000' }, address)).statusCode).toBe(401);
  });
});
