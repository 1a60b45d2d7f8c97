import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import { FenApiError } from '../../sdk/index.js';
import { getAppSecrets, resolveWebhookSecret, resolveWebhookSecrets, type AppView, type CreatedApp, type RotatedSecret } from '../../src/apps/index.js';
import { buildApp } from '../../src/main/app.js';
import { createMerchant } from '../../src/merchants/index.js';
import { limits } from '../../src/platform/limits.js';
import { createTestContext, type TestContext } from '../helpers/context.js';
import { createActiveMerchant, merchantInput, signedClient, testOperatorActor } from '../helpers/merchant-api.js';
import { signInOperator } from '../helpers/operators.js';
import { fingerprintDatabase } from '../helpers/snapshot.js';

describe('apps', () => {
  let context: TestContext;
  let app: FastifyInstance;
  let admin: Record<string, string>;

  beforeAll(async () => {
    context = await createTestContext();
    app = await buildApp(context, { logRequests: false });
    admin = (await signInOperator(app, context, { roles: ['admin'] })).headers;
  });
  afterAll(async () => {
    await app.close();
    await context.close();
  });

  async function createAppRoute(merchantId: string, payload: unknown) {
    return app.inject({ method: 'POST', url: `/admin/v1/merchants/${merchantId}/apps`, headers: admin, payload: payload as object });
  }

  async function newApp(input: Record<string, unknown> = {}): Promise<CreatedApp> {
    const merchant = await createActiveMerchant(context);
    const response = await createAppRoute(merchant.id, { name: 'Online shop', ...input });
    expect(response.statusCode, response.body).toBe(201);
    return response.json<CreatedApp>();
  }

  async function rotate(appId: string, body: unknown) {
    return app.inject({ method: 'POST', url: `/admin/v1/apps/${appId}/secrets/rotate`, headers: admin, payload: body as object });
  }

  async function whoami(appId: string, appSecret: string, remoteAddress?: string) {
    return signedClient(app, context, { appId, appSecret, ...(remoteAddress ? { remoteAddress } : {}) }).request<{ id: string }>('GET', '/v1/app');
  }

  async function tableText(table: 'audit_log' | 'apps' | 'app_secrets'): Promise<string> {
    const result = await sql<{ text: string | null }>`SELECT string_agg(t::text, '|') AS text FROM ${sql.table(table)} t`.execute(context.db);
    return result.rows[0]?.text ?? '';
  }

  it('creates an app and shows its secrets exactly once', async () => {
    const created = await newApp({
      notify_url: 'https://shop.example.com/fen/notify',
      ip_allowlist: ['203.0.113.0/24', '2001:db8::1', '203.0.113.0/24'],
      enabled_methods: ['alipay_qr', 'wechat_native', 'alipay_qr'],
    });
    expect(created).toMatchObject({
      status: 'active',
      notify_url: 'https://shop.example.com/fen/notify',
      ip_allowlist: ['203.0.113.0/24', '2001:db8::1'],
      enabled_methods: ['alipay_qr', 'wechat_native'],
    });
    expect(created.id).toMatch(/^app_/);
    expect(created.app_secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(created.webhook_secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(created.app_secret).not.toBe(created.webhook_secret);
    expect(created.secrets.map((secret) => secret.kind).sort()).toEqual(['api', 'webhook']);

    const read = await app.inject({ method: 'GET', url: `/admin/v1/apps/${created.id}`, headers: admin });
    expect(read.statusCode).toBe(200);
    expect(read.json()).not.toHaveProperty('app_secret');
    const list = await app.inject({ method: 'GET', url: `/admin/v1/apps?merchant_id=${created.merchant_id}`, headers: admin });
    expect(list.json().data.map((item: AppView) => item.id)).toEqual([created.id]);
    for (const text of [read.body, list.body, await tableText('audit_log'), await tableText('apps'), await tableText('app_secrets')]) {
      expect(text).not.toContain(created.app_secret);
      expect(text).not.toContain(created.webhook_secret);
    }
    expect(await resolveWebhookSecret(context, created.id)).toBe(created.webhook_secret);
    expect(await whoami(created.id, created.app_secret, '203.0.113.9')).toMatchObject({ id: created.id });
  });

  it('creates apps only for an active merchant', async () => {
    const pending = await createMerchant(context, testOperatorActor, merchantInput());
    const before = await fingerprintDatabase(context.db);
    const response = await createAppRoute(pending.id, { name: 'Too early' });
    expect(response.statusCode).toBe(409);
    expect(response.json().error.code).toBe('merchant_not_active');
    const unknown = await createAppRoute('mch_01jc8x0000000000000000000a', { name: 'Nobody' });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json().error.code).toBe('merchant_not_found');
    expect(await fingerprintDatabase(context.db)).toEqual(before);
  });

  it('refuses bad app input with 400 and changes nothing', async () => {
    const merchant = await createActiveMerchant(context);
    const before = await fingerprintDatabase(context.db);
    for (const body of [
      {},
      { name: '' },
      { name: 'x', notify_url: 'ftp://shop.example.com/notify' },
      { name: 'x', notify_url: 'not a url' },
      { name: 'x', ip_allowlist: ['10.0.0.0/33'] },
      { name: 'x', ip_allowlist: ['shop.example.com'] },
      { name: 'x', ip_allowlist: '10.0.0.1' },
      { name: 'x', ip_allowlist: Array.from({ length: limits.ipAllowlistEntriesMax + 1 }, (_, index) => `10.0.0.${index}`) },
      { name: 'x', enabled_methods: ['bitcoin'] },
      { name: 'x', secret: 'mine' },
    ]) {
      const response = await createAppRoute(merchant.id, body);
      expect(response.statusCode, JSON.stringify(body)).toBe(400);
      expect(response.json().error.code).toBe('invalid_request');
    }
    expect(await fingerprintDatabase(context.db)).toEqual(before);
  });

  it('changes, disables and re-enables an app, audited with before and after', async () => {
    const created = await newApp();
    const patch = (payload: unknown) => app.inject({ method: 'PATCH', url: `/admin/v1/apps/${created.id}`, headers: admin, payload: payload as object });
    const renamed = await patch({ name: 'Renamed shop', notify_url: null, ip_allowlist: ['127.0.0.1'], enabled_methods: ['cashier'] });
    expect(renamed.statusCode, renamed.body).toBe(200);
    expect(renamed.json()).toMatchObject({ name: 'Renamed shop', notify_url: null, ip_allowlist: ['127.0.0.1'], enabled_methods: ['cashier'] });
    expect(await whoami(created.id, created.app_secret)).toMatchObject({ id: created.id });

    expect((await patch({ status: 'disabled' })).json()).toMatchObject({ status: 'disabled' });
    const refused = await whoami(created.id, created.app_secret).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(FenApiError);
    expect(refused).toMatchObject({ status: 403, code: 'app_disabled' });
    expect((await patch({ status: 'active' })).json()).toMatchObject({ status: 'active' });
    expect(await whoami(created.id, created.app_secret)).toMatchObject({ id: created.id });

    const audit = await context.db.selectFrom('audit_log').selectAll().where('target_id', '=', created.id).orderBy('sequence').execute();
    expect(audit.map((row) => row.action)).toEqual(['app.created', 'app.updated', 'app.updated', 'app.updated']);
    expect(audit[2]?.before).toMatchObject({ status: 'active' });
    expect(audit[2]?.after).toMatchObject({ status: 'disabled' });
  });

  it('refuses bad changes with 400 or 404 and changes nothing', async () => {
    const created = await newApp();
    const before = await fingerprintDatabase(context.db);
    for (const body of [{}, { status: 'deleted' }, { ip_allowlist: ['999.0.0.1'] }, { enabled_methods: 'alipay_qr' }, { merchant_id: 'mch_x' }]) {
      const response = await app.inject({ method: 'PATCH', url: `/admin/v1/apps/${created.id}`, headers: admin, payload: body });
      expect(response.statusCode, JSON.stringify(body)).toBe(400);
      expect(response.json().error.code).toBe('invalid_request');
    }
    for (const id of ['app_01jc8x0000000000000000000a', 'nope']) {
      const response = await app.inject({ method: 'PATCH', url: `/admin/v1/apps/${id}`, headers: admin, payload: { name: 'x' } });
      expect(response.statusCode).toBe(404);
      expect(response.json().error.code).toBe('app_not_found');
      expect((await app.inject({ method: 'GET', url: `/admin/v1/apps/${id}`, headers: admin })).statusCode).toBe(404);
      expect((await rotate(id, { kind: 'api' })).statusCode).toBe(404);
    }
    for (const body of [{}, { kind: 'ssh' }, { kind: 'api', grace_seconds: -1 }, { kind: 'api', grace_seconds: limits.appSecretGraceSecondsMax + 1 }, { kind: 'api', grace_seconds: 1.5 }]) {
      const response = await rotate(created.id, body);
      expect(response.statusCode, JSON.stringify(body)).toBe(400);
      expect(response.json().error.code).toBe('invalid_request');
    }
    for (const query of ['cursor=xyz', 'limit=1000', 'merchant=mch_x']) {
      expect((await app.inject({ method: 'GET', url: `/admin/v1/apps?${query}`, headers: admin })).statusCode, query).toBe(400);
    }
    expect(await fingerprintDatabase(context.db)).toEqual(before);
  });

  it('rotates the API secret: the old one works through its grace period, then stops', async () => {
    const created = await newApp();
    const response = await rotate(created.id, { kind: 'api', grace_seconds: 3600 });
    expect(response.statusCode, response.body).toBe(200);
    const rotated = response.json<RotatedSecret>();
    expect(rotated.secret).not.toBe(created.app_secret);
    const graceEnds = new Date(context.clock.now().getTime() + 3600 * 1000).toISOString();
    expect(rotated.secrets.filter((secret) => secret.kind === 'api').map((secret) => secret.retires_at)).toEqual([null, graceEnds]);

    expect(await whoami(created.id, created.app_secret)).toMatchObject({ id: created.id });
    expect(await whoami(created.id, rotated.secret)).toMatchObject({ id: created.id });
    context.clock.advanceSeconds(3599);
    expect(await whoami(created.id, created.app_secret)).toMatchObject({ id: created.id });
    context.clock.advanceSeconds(1);
    await expect(whoami(created.id, created.app_secret)).rejects.toMatchObject({ status: 401, code: 'invalid_signature' });
    expect(await whoami(created.id, rotated.secret)).toMatchObject({ id: created.id });

    const read = await app.inject({ method: 'GET', url: `/admin/v1/apps/${created.id}`, headers: admin });
    expect(read.json().secrets.filter((secret: { kind: string }) => secret.kind === 'api')).toHaveLength(1);
    expect(read.body).not.toContain(rotated.secret);
    expect(await tableText('audit_log')).not.toContain(rotated.secret);
    const audit = await context.db.selectFrom('audit_log').select('action').where('target_id', '=', created.id).execute();
    expect(audit.map((row) => row.action)).toContain('app.secret_rotated');
  });

  it('uses the default grace period, and a second rotation never extends an old secret', async () => {
    const created = await newApp();
    const first = (await rotate(created.id, { kind: 'api' })).json<RotatedSecret>();
    const defaultEnd = new Date(context.clock.now().getTime() + limits.appSecretGraceSecondsDefault * 1000).toISOString();
    expect(first.secrets.find((secret) => secret.retires_at !== null)?.retires_at).toBe(defaultEnd);
    context.clock.advanceSeconds(60);
    const second = (await rotate(created.id, { kind: 'api', grace_seconds: limits.appSecretGraceSecondsMax })).json<RotatedSecret>();
    const apiSecrets = second.secrets.filter((secret) => secret.kind === 'api');
    expect(apiSecrets).toHaveLength(3);
    expect(apiSecrets.map((secret) => secret.retires_at)).toContain(defaultEnd);
    const live = await getAppSecrets(context, created.id, 'api');
    expect(live.map((secret) => secret.secret)).toEqual([second.secret, first.secret, created.app_secret]);
  });

  it('rotates the webhook secret with an immediate cut-over when the grace is zero', async () => {
    const created = await newApp();
    const withGrace = (await rotate(created.id, { kind: 'webhook', grace_seconds: 600 })).json<RotatedSecret>();
    expect(await resolveWebhookSecret(context, created.id)).toBe(withGrace.secret);
    expect(await resolveWebhookSecrets(context, created.id)).toEqual([withGrace.secret, created.webhook_secret]);
    const immediate = (await rotate(created.id, { kind: 'webhook', grace_seconds: 0 })).json<RotatedSecret>();
    expect(await resolveWebhookSecrets(context, created.id)).toEqual([immediate.secret]);
    // The API secret is untouched by webhook rotations.
    expect(await whoami(created.id, created.app_secret)).toMatchObject({ id: created.id });
  });

  it('lists apps newest first with cursor pagination', async () => {
    const merchant = await createActiveMerchant(context);
    const ids: string[] = [];
    for (let index = 0; index < 3; index += 1) {
      const response = await createAppRoute(merchant.id, { name: `App ${index}` });
      ids.push(response.json<CreatedApp>().id);
    }
    const first = await app.inject({ method: 'GET', url: `/admin/v1/apps?merchant_id=${merchant.id}&limit=2`, headers: admin });
    const firstPage = first.json<{ data: AppView[]; next_cursor: string | null }>();
    const second = await app.inject({ method: 'GET', url: `/admin/v1/apps?merchant_id=${merchant.id}&limit=2&cursor=${firstPage.next_cursor}`, headers: admin });
    const secondPage = second.json<{ data: AppView[]; next_cursor: string | null }>();
    expect([...firstPage.data, ...secondPage.data].map((item) => item.id)).toEqual([...ids].reverse());
    expect(secondPage.next_cursor).toBeNull();
  });

  it('needs the apps permissions', async () => {
    const created = await newApp();
    const finance = (await signInOperator(app, context, { roles: ['finance'] })).headers;
    expect((await app.inject({ method: 'GET', url: `/admin/v1/apps/${created.id}`, headers: finance })).statusCode).toBe(200);
    const rotateResponse = await app.inject({ method: 'POST', url: `/admin/v1/apps/${created.id}/secrets/rotate`, headers: finance, payload: { kind: 'api' } });
    expect(rotateResponse.statusCode).toBe(403);
    expect(rotateResponse.json().error.code).toBe('forbidden');
  });
});
