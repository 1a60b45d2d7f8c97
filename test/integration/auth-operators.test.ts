import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { authCleanupTask, authJobHandlers, createOperator, csrfHeaderName, disableOperator, sessionCookieName, totpCodeAt } from '../../src/auth/index.js';
import { buildApp } from '../../src/main/app.js';
import { systemActor } from '../../src/platform/actor.js';
import { limits } from '../../src/platform/limits.js';
import { createTestContext, type TestContext } from '../helpers/context.js';
import { signInOperator } from '../helpers/operators.js';

/** Operator management over HTTP, the authenticator's own guarantees, and the cleanup job. */
const password = 'another long passphrase';

describe('operator management', () => {
  let context: TestContext;
  let app: FastifyInstance;
  let admin: { userId: string; headers: Record<string, string> };

  beforeAll(async () => {
    context = await createTestContext();
    app = await buildApp(context, {
      logRequests: false,
      extraRoutes: (instance) => {
        // Deliberately misconfigured routes: the authenticator must refuse to guess what they need.
        instance.get('/admin/v1/test/no-permission', { config: { auth: 'operator' } }, async () => ({ reached: true }));
        instance.get('/admin/v1/test/unknown-permission', { config: { auth: 'operator', permission: 'everything.write' } }, async () => ({ reached: true }));
      },
    });
    admin = await signInOperator(app, context, { roles: ['admin'], email: 'first-admin@fen.test' });
  });
  afterAll(async () => {
    await app.close();
    await context.close();
  });

  async function loginAs(email: string, totpSecret: string) {
    const response = await app.inject({ method: 'POST', url: '/admin/v1/auth/login', payload: { email, password, totp: await totpCodeAt(totpSecret, context.clock.now()) } });
    return response;
  }

  it('creates an operator whose TOTP secret is shown once and works for sign-in', async () => {
    const created = await app.inject({
      method: 'POST',
      url: '/admin/v1/operators',
      headers: admin.headers,
      payload: { email: 'New.Risk@fen.test', name: 'Risk Officer', password, roles: ['risk', 'auditor'] },
    });
    expect(created.statusCode).toBe(201);
    const body = created.json();
    expect(body.operator).toMatchObject({ email: 'New.Risk@fen.test', name: 'Risk Officer', roles: ['auditor', 'risk'], status: 'active' });
    expect(body.totp_secret).toMatch(/^[A-Z2-7]{32}$/);
    expect(body.otpauth_uri).toMatch(/^otpauth:\/\/totp\/Fen:New\.Risk%40fen\.test\?.*secret=/);
    expect(JSON.stringify(await context.db.selectFrom('users').selectAll().where('id', '=', body.operator.id).executeTakeFirstOrThrow())).not.toContain(body.totp_secret);

    expect((await loginAs('new.risk@fen.test', body.totp_secret)).statusCode).toBe(200);
    const listed = await app.inject({ method: 'GET', url: '/admin/v1/operators?limit=100', headers: admin.headers });
    expect(listed.json().data.map((operator: { id: string }) => operator.id)).toContain(body.operator.id);
    const shown = await app.inject({ method: 'GET', url: `/admin/v1/operators/${body.operator.id}`, headers: admin.headers });
    expect(shown.json()).not.toHaveProperty('totp_secret');

    const audit = await context.db.selectFrom('audit_log').selectAll().where('target_id', '=', body.operator.id).where('action', '=', 'operator.created').executeTakeFirstOrThrow();
    expect(audit).toMatchObject({ actor_type: 'operator', actor_id: admin.userId, actor_roles: ['admin'], ip: '127.0.0.1' });
    expect(JSON.stringify(audit.after)).not.toMatch(/password|totp/);
  });

  it('answers bad input with a 4xx, never a 500', async () => {
    const cases: { method: 'POST' | 'PATCH' | 'GET'; url: string; payload?: Record<string, unknown>; status: number; code: string }[] = [
      { method: 'POST', url: '/admin/v1/operators', payload: { email: 'short@fen.test', name: 'Short', password: 'too short', roles: ['risk'] }, status: 400, code: 'invalid_request' },
      { method: 'POST', url: '/admin/v1/operators', payload: { email: 'x@fen.test', name: 'X', password, roles: ['superuser'] }, status: 400, code: 'invalid_request' },
      { method: 'POST', url: '/admin/v1/operators', payload: { email: 'x@fen.test', name: 'X', password, roles: [] }, status: 400, code: 'invalid_request' },
      { method: 'POST', url: '/admin/v1/operators', payload: { email: 'FIRST-ADMIN@fen.test', name: 'Again', password, roles: ['risk'] }, status: 409, code: 'duplicate' },
      { method: 'PATCH', url: '/admin/v1/operators/usr_nobody', payload: { roles: ['risk'] }, status: 404, code: 'not_found' },
      { method: 'PATCH', url: `/admin/v1/operators/${admin.userId}`, payload: {}, status: 400, code: 'invalid_request' },
      { method: 'PATCH', url: `/admin/v1/operators/${admin.userId}`, payload: { password: 'sneaky' }, status: 400, code: 'invalid_request' },
      { method: 'GET', url: '/admin/v1/operators?limit=1000', status: 400, code: 'invalid_request' },
      { method: 'GET', url: '/admin/v1/operators?cursor=abc', status: 400, code: 'invalid_cursor' },
      { method: 'GET', url: '/admin/v1/operators/usr_nobody', status: 404, code: 'not_found' },
    ];
    for (const testCase of cases) {
      const response = await app.inject({ method: testCase.method, url: testCase.url, headers: admin.headers, ...(testCase.payload === undefined ? {} : { payload: testCase.payload }) });
      expect({ url: testCase.url, status: response.statusCode, code: response.json().error?.code }).toEqual({ url: testCase.url, status: testCase.status, code: testCase.code });
    }
  });

  it('changes roles with immediate effect on live sessions, audited before and after', async () => {
    const { userId, headers } = await signInOperator(app, context, { roles: ['auditor'] });
    expect((await app.inject({ method: 'GET', url: '/admin/v1/operators', headers })).statusCode).toBe(200);
    const patched = await app.inject({ method: 'PATCH', url: `/admin/v1/operators/${userId}`, headers: admin.headers, payload: { roles: ['finance'] } });
    expect(patched.statusCode).toBe(200);
    expect(patched.json().roles).toEqual(['finance']);
    const afterChange = await app.inject({ method: 'GET', url: '/admin/v1/operators', headers });
    expect(afterChange.statusCode).toBe(403);
    expect(afterChange.json().error.code).toBe('forbidden');
    const audit = await context.db.selectFrom('audit_log').selectAll().where('target_id', '=', userId).where('action', '=', 'operator.updated').executeTakeFirstOrThrow();
    expect(audit.before).toMatchObject({ roles: ['auditor'] });
    expect(audit.after).toMatchObject({ roles: ['finance'] });
  });

  it('disabling an operator ends their sessions and refuses their sign-in', async () => {
    const email = 'to-disable@fen.test';
    const created = await createOperator(context, { email, name: 'Leaving', password, roles: ['operations'] });
    const login = await loginAs(email, created.totpSecret);
    const cookie = `${sessionCookieName}=${login.cookies.find((candidate) => candidate.name === sessionCookieName)?.value}`;
    const patched = await app.inject({ method: 'PATCH', url: `/admin/v1/operators/${created.user.id}`, headers: admin.headers, payload: { status: 'disabled' } });
    expect(patched.json().status).toBe('disabled');
    expect((await app.inject({ method: 'GET', url: '/admin/v1/auth/me', headers: { cookie } })).statusCode).toBe(401);
    const revoked = await context.db.selectFrom('sessions').select('revoked_at').where('user_id', '=', created.user.id).execute();
    expect(revoked.every((session) => session.revoked_at !== null)).toBe(true);
    context.clock.advanceSeconds(30);
    const refused = await loginAs(email, created.totpSecret);
    expect(refused.statusCode).toBe(401);
    expect(refused.json().error.code).toBe('invalid_credentials');
  });

  it('keeps at least one active admin', async () => {
    const demoteSelf = await app.inject({ method: 'PATCH', url: `/admin/v1/operators/${admin.userId}`, headers: admin.headers, payload: { roles: ['auditor'] } });
    expect(demoteSelf.statusCode).toBe(409);
    expect(demoteSelf.json().error.code).toBe('invalid_state');
    const second = await signInOperator(app, context, { roles: ['admin'] });
    await disableOperator(context, { operatorId: second.userId, actor: systemActor });
    expect((await app.inject({ method: 'PATCH', url: `/admin/v1/operators/${admin.userId}`, headers: admin.headers, payload: { status: 'disabled' } })).statusCode).toBe(409);
    await app.inject({ method: 'PATCH', url: `/admin/v1/operators/${second.userId}`, headers: admin.headers, payload: { status: 'active' } });
    const nowAllowed = await app.inject({ method: 'PATCH', url: `/admin/v1/operators/${second.userId}`, headers: admin.headers, payload: { roles: ['risk'] } });
    expect(nowAllowed.statusCode).toBe(200);
  });

  it('lifts a lock-out on request', async () => {
    const email = 'locked-out@fen.test';
    const created = await createOperator(context, { email, name: 'Forgetful', password, roles: ['finance'] });
    for (let attempt = 0; attempt < limits.loginAttemptsMax; attempt += 1) {
      await app.inject({ method: 'POST', url: '/admin/v1/auth/login', payload: { email, password: 'not my password', totp: '000000' }, remoteAddress: '10.1.0.1' });
    }
    expect((await loginAs(email, created.totpSecret)).statusCode).toBe(423);
    const unlocked = await app.inject({ method: 'PATCH', url: `/admin/v1/operators/${created.user.id}`, headers: admin.headers, payload: { unlock: true } });
    expect(unlocked.json().locked_until).toBeNull();
    expect((await loginAs(email, created.totpSecret)).statusCode).toBe(200);
  });

  it('resets TOTP: the old secret stops working and sessions end', async () => {
    const email = 'lost-phone@fen.test';
    const created = await createOperator(context, { email, name: 'Lost Phone', password, roles: ['risk'] });
    const login = await loginAs(email, created.totpSecret);
    const cookie = `${sessionCookieName}=${login.cookies.find((candidate) => candidate.name === sessionCookieName)?.value}`;
    const reset = await app.inject({ method: 'POST', url: `/admin/v1/operators/${created.user.id}/totp/reset`, headers: admin.headers });
    expect(reset.statusCode).toBe(200);
    const { totp_secret: newSecret } = reset.json();
    expect(newSecret).not.toBe(created.totpSecret);
    expect((await app.inject({ method: 'GET', url: '/admin/v1/auth/me', headers: { cookie } })).statusCode).toBe(401);
    context.clock.advanceSeconds(30);
    expect((await loginAs(email, created.totpSecret)).json().error.code).toBe('invalid_totp');
    expect((await loginAs(email, newSecret)).statusCode).toBe(200);
  });

  it('treats an operator route without a valid permission as a programmer error', async () => {
    for (const url of ['/admin/v1/test/no-permission', '/admin/v1/test/unknown-permission']) {
      const response = await app.inject({ method: 'GET', url, headers: admin.headers });
      expect(response.statusCode).toBe(500);
      expect(response.json().error.code).toBe('internal_error');
    }
  });

  it('cleans up ended sessions and old TOTP steps', async () => {
    const { userId, headers } = await signInOperator(app, context, { roles: ['auditor'] });
    await app.inject({ method: 'POST', url: '/admin/v1/auth/logout', headers: { cookie: headers.cookie ?? '', [csrfHeaderName]: headers[csrfHeaderName] ?? '' } });
    const before = await context.db.selectFrom('totp_used_steps').select('time_step').where('user_id', '=', userId).execute();
    expect(before).toHaveLength(1);
    // The admin's own session is still live: it stays until it has ended and aged.
    context.clock.advanceSeconds(8 * 24 * 60 * 60);
    await authJobHandlers(context)[authCleanupTask]?.({}, { id: '1', attempts: 1 });
    expect(await context.db.selectFrom('sessions').select('token_hash').execute()).toEqual([]);
    expect(await context.db.selectFrom('totp_used_steps').select('time_step').execute()).toEqual([]);
  });
});
