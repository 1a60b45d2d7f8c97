import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { sql } from 'kysely';
import { z } from 'zod';
import { newNonce, signedHeaders } from '../../sdk/index.js';
import { appJobHandlers, appCleanupTask, idempotencyRequestHash, type CreatedApp } from '../../src/apps/index.js';
import { buildApp } from '../../src/main/app.js';
import { unixSeconds } from '../../src/platform/clock.js';
import { FenError } from '../../src/platform/errors.js';
import { limits } from '../../src/platform/limits.js';
import { createTestContext, type TestContext } from '../helpers/context.js';
import { createActiveApp, signedClient } from '../helpers/merchant-api.js';

/**
 * The idempotency plugin, exercised through real signed POST /v1 routes that
 * this file registers (there is no production POST /v1 route yet). Each route
 * writes a row to a scratch table, so "one effect" is a row count.
 */
interface Gate {
  promise: Promise<void>;
  open(): void;
}

function newGate(): Gate {
  let open = () => {};
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

describe('idempotency', () => {
  let context: TestContext;
  let app: FastifyInstance;
  let shop: CreatedApp;
  let gate: Gate | undefined;
  let flakyAttempts = 0;

  async function recordEffect(appId: string, label: string): Promise<number> {
    const result = await sql<{ id: number }>`INSERT INTO test_effects (app_id, label) VALUES (${appId}, ${label}) RETURNING id`.execute(context.db);
    return result.rows[0]?.id ?? 0;
  }

  function registerTestRoutes(instance: FastifyInstance): void {
    const typed = instance.withTypeProvider<ZodTypeProvider>();
    const body = z.strictObject({ label: z.string().min(1) });
    const signed = { auth: 'app' as const };
    typed.post('/v1/test-effects', { schema: { body }, config: signed }, async (request, reply) => {
      if (gate) await gate.promise;
      const id = await recordEffect(request.appAuth?.appId ?? '', request.body.label);
      return reply.code(201).send({ id, label: request.body.label, at: context.clock.now().toISOString() });
    });
    typed.post('/v1/test-flaky', { schema: { body }, config: signed }, async (request, reply) => {
      flakyAttempts += 1;
      if (flakyAttempts === 1) throw new FenError('service_unavailable', 'the channel is down');
      return reply.code(201).send({ id: await recordEffect(request.appAuth?.appId ?? '', request.body.label) });
    });
    typed.post('/v1/test-conflict', { schema: { body }, config: signed }, async (request) => {
      await recordEffect(request.appAuth?.appId ?? '', request.body.label);
      throw new FenError('conflict', 'out_trade_no already paid');
    });
    typed.post('/v1/test-empty', { config: signed }, async (request, reply) => {
      await recordEffect(request.appAuth?.appId ?? '', 'empty');
      return reply.code(204).send();
    });
    typed.post('/v1/test-unguarded', { schema: { body }, config: { auth: 'app', idempotent: false } }, async (request) => ({
      id: await recordEffect(request.appAuth?.appId ?? '', request.body.label),
    }));
  }

  beforeAll(async () => {
    context = await createTestContext({ poolSize: 20 });
    await sql`CREATE TABLE test_effects (id SERIAL PRIMARY KEY, app_id TEXT NOT NULL, label TEXT NOT NULL)`.execute(context.db);
    app = await buildApp(context, { logRequests: false, extraRoutes: registerTestRoutes });
    shop = await createActiveApp(context);
  });
  afterAll(async () => {
    await app.close();
    await context.close();
  });

  function post(url: string, body: string, key: string | undefined, options: { credentials?: CreatedApp; secret?: string } = {}) {
    const credentials = options.credentials ?? shop;
    const headers: Record<string, string> = {
      ...signedHeaders({
        appId: credentials.id,
        secret: options.secret ?? credentials.app_secret,
        method: 'POST',
        pathWithQuery: url,
        timestamp: unixSeconds(context.clock.now()),
        nonce: newNonce(),
        body,
      }),
      ...(body ? { 'content-type': 'application/json' } : {}),
      ...(key === undefined ? {} : { 'idempotency-key': key }),
    };
    return app.inject({ method: 'POST', url, headers, ...(body ? { payload: body } : {}) });
  }

  async function effects(label: string): Promise<number> {
    const result = await sql<{ count: bigint }>`SELECT count(*) AS count FROM test_effects WHERE label = ${label}`.execute(context.db);
    return Number(result.rows[0]?.count ?? 0n);
  }

  let keyCounter = 0;
  function freshKey(): string {
    keyCounter += 1;
    return `key-${Date.now().toString(36)}-${keyCounter}`;
  }

  it('replays the first response byte for byte, marked as a replay', async () => {
    const key = freshKey();
    const body = '{"label":"replay"}';
    const first = await post('/v1/test-effects', body, key);
    expect(first.statusCode, first.body).toBe(201);
    expect(first.headers['idempotency-replayed']).toBeUndefined();
    context.clock.advanceSeconds(30);
    const second = await post('/v1/test-effects', body, key);
    expect(second.statusCode).toBe(201);
    expect(second.body).toBe(first.body);
    expect(second.headers['content-type']).toBe(first.headers['content-type']);
    expect(second.headers['idempotency-replayed']).toBe('true');
    expect(await effects('replay')).toBe(1);
    const record = await context.db.selectFrom('idempotency_keys').selectAll().where('key', '=', key).executeTakeFirstOrThrow();
    expect(record).toMatchObject({
      app_id: shop.id,
      merchant_id: shop.merchant_id,
      state: 'completed',
      response_status: 201,
      response_body: first.body,
      request_hash: idempotencyRequestHash('POST', '/v1/test-effects', body),
    });
  });

  it('409 idempotency_key_reused for the same key on a different body or path', async () => {
    const key = freshKey();
    expect((await post('/v1/test-effects', '{"label":"reuse"}', key)).statusCode).toBe(201);
    for (const [url, body] of [
      ['/v1/test-effects', '{"label":"reuse-other"}'],
      ['/v1/test-effects', '{"label": "reuse"}'],
      ['/v1/test-unguarded', '{"label":"reuse"}'],
      ['/v1/test-flaky', '{"label":"reuse"}'],
    ] as const) {
      const response = await post(url, body, key);
      if (url === '/v1/test-unguarded') {
        // A route that opts out never looks at the key.
        expect(response.statusCode).toBe(200);
        continue;
      }
      expect(response.statusCode, `${url} ${body}`).toBe(409);
      expect(response.json().error.code).toBe('idempotency_key_reused');
    }
    expect(await effects('reuse')).toBe(2);
    expect(await effects('reuse-other')).toBe(0);
  });

  it('400 idempotency_key_invalid for a missing, empty, too long or non-ASCII key', async () => {
    const missing = await post('/v1/test-effects', '{"label":"keyless"}', undefined);
    expect(missing.statusCode).toBe(400);
    expect(missing.json().error).toEqual({ code: 'idempotency_key_invalid', message: expect.stringContaining('need an Idempotency-Key header') });
    for (const key of ['', 'k'.repeat(limits.idempotencyKeyLengthMax + 1), 'ключ-1']) {
      const response = await post('/v1/test-effects', '{"label":"keyless"}', key);
      expect(response.statusCode, key).toBe(400);
      expect(response.json().error.code).toBe('idempotency_key_invalid');
    }
    expect(await effects('keyless')).toBe(0);
    expect((await post('/v1/test-effects', '{"label":"long-key"}', 'k'.repeat(limits.idempotencyKeyLengthMax))).statusCode).toBe(201);
  });

  it('runs 100 concurrent requests with one key once, and answers all 100 identically', async () => {
    const crowd = await createActiveApp(context);
    const key = freshKey();
    const body = '{"label":"crowd"}';
    gate = newGate();
    const pending = Array.from({ length: 100 }, () => post('/v1/test-effects', body, key, { credentials: crowd }));
    // Hold the first request inside its handler until every request has passed authentication.
    for (;;) {
      const seen = await context.db.selectFrom('api_nonces').select((select) => select.fn.countAll<bigint>().as('count')).where('app_id', '=', crowd.id).executeTakeFirstOrThrow();
      if (Number(seen.count) >= 100) break;
      await delay(5);
    }
    gate.open();
    gate = undefined;
    const responses = await Promise.all(pending);
    expect(await effects('crowd')).toBe(1);
    expect(new Set(responses.map((response) => response.statusCode))).toEqual(new Set([201]));
    expect(new Set(responses.map((response) => response.body)).size).toBe(1);
    expect(responses.filter((response) => response.headers['idempotency-replayed'] === 'true')).toHaveLength(99);
  });

  it('does not store a 5xx: the claim is released and a retry runs again', async () => {
    const key = freshKey();
    const failed = await post('/v1/test-flaky', '{"label":"flaky"}', key);
    expect(failed.statusCode).toBe(503);
    expect(await context.db.selectFrom('idempotency_keys').select('key').where('key', '=', key).executeTakeFirst()).toBeUndefined();
    const retried = await post('/v1/test-flaky', '{"label":"flaky"}', key);
    expect(retried.statusCode).toBe(201);
    expect(retried.headers['idempotency-replayed']).toBeUndefined();
    expect(await effects('flaky')).toBe(1);
    expect(flakyAttempts).toBe(2);
  });

  it('stores a 4xx answer from the handler and replays it', async () => {
    const key = freshKey();
    const first = await post('/v1/test-conflict', '{"label":"conflict"}', key);
    expect(first.statusCode).toBe(409);
    const second = await post('/v1/test-conflict', '{"label":"conflict"}', key);
    expect(second.statusCode).toBe(409);
    expect(second.body).toBe(first.body);
    expect(second.headers['idempotency-replayed']).toBe('true');
    expect(await effects('conflict')).toBe(1);
  });

  it('replays an empty 204 answer', async () => {
    const key = freshKey();
    const first = await post('/v1/test-empty', '', key);
    expect(first.statusCode).toBe(204);
    const second = await post('/v1/test-empty', '', key);
    expect(second.statusCode).toBe(204);
    expect(second.body).toBe('');
    expect(second.headers['idempotency-replayed']).toBe('true');
    expect(await effects('empty')).toBe(1);
  });

  it('claims nothing for a request refused by authentication or validation', async () => {
    const key = freshKey();
    expect((await post('/v1/test-effects', '{"label":"late"}', key, { secret: 'wrong' })).statusCode).toBe(401);
    expect((await post('/v1/test-effects', '{"label":5}', key)).statusCode).toBe(400);
    const accepted = await post('/v1/test-effects', '{"label":"late"}', key);
    expect(accepted.statusCode).toBe(201);
    expect(accepted.headers['idempotency-replayed']).toBeUndefined();
  });

  it('takes over a claim whose lease ran out (its process died)', async () => {
    const key = freshKey();
    const body = '{"label":"orphan"}';
    const now = context.clock.now();
    const orphan = {
      app_id: shop.id,
      key,
      merchant_id: shop.merchant_id,
      method: 'POST',
      path: '/v1/test-effects',
      request_hash: idempotencyRequestHash('POST', '/v1/test-effects', body),
      state: 'in_progress' as const,
      lease_expires_at: new Date(now.getTime() + limits.idempotencyLeaseSeconds * 1000),
      response_status: null,
      response_content_type: null,
      response_body: null,
      created_at: now,
      completed_at: null,
    };
    await context.db.insertInto('idempotency_keys').values(orphan).execute();
    const waiting = post('/v1/test-effects', body, key);
    context.clock.advanceSeconds(limits.idempotencyLeaseSeconds + 1);
    const response = await waiting;
    expect(response.statusCode, response.body).toBe(201);
    expect(response.headers['idempotency-replayed']).toBeUndefined();
    expect(await effects('orphan')).toBe(1);
    const record = await context.db.selectFrom('idempotency_keys').select('state').where('key', '=', key).executeTakeFirstOrThrow();
    expect(record.state).toBe('completed');
  });

  it('scopes keys to the app', async () => {
    const other = await createActiveApp(context);
    const key = freshKey();
    expect((await post('/v1/test-effects', '{"label":"scoped"}', key)).statusCode).toBe(201);
    const second = await post('/v1/test-effects', '{"label":"scoped"}', key, { credentials: other });
    expect(second.statusCode).toBe(201);
    expect(second.headers['idempotency-replayed']).toBeUndefined();
    expect(await effects('scoped')).toBe(2);
  });

  it('leaves routes that opt out, and GET requests, alone', async () => {
    expect((await post('/v1/test-unguarded', '{"label":"free"}', undefined)).statusCode).toBe(200);
    expect((await post('/v1/test-unguarded', '{"label":"free"}', undefined)).statusCode).toBe(200);
    expect(await effects('free')).toBe(2);
    const client = signedClient(app, context, { appId: shop.id, appSecret: shop.app_secret });
    const whoami = await client.requestWithResponse('GET', '/v1/app');
    expect(whoami.status).toBe(200);
  });

  it('gives every SDK POST its own key unless the caller passes one', async () => {
    const client = signedClient(app, context, { appId: shop.id, appSecret: shop.app_secret });
    await client.request('POST', '/v1/test-effects', { label: 'sdk' });
    await client.request('POST', '/v1/test-effects', { label: 'sdk' });
    expect(await effects('sdk')).toBe(2);
    const first = await client.requestWithResponse('POST', '/v1/test-effects', { label: 'sdk-keyed' }, { idempotencyKey: 'order-7' });
    const again = await client.requestWithResponse('POST', '/v1/test-effects', { label: 'sdk-keyed' }, { idempotencyKey: 'order-7' });
    expect(again.data).toEqual(first.data);
    expect(again.headers.get('idempotency-replayed')).toBe('true');
    expect(await effects('sdk-keyed')).toBe(1);
  });

  it('cleans up records past their retention and nonces past their expiry', async () => {
    const key = freshKey();
    expect((await post('/v1/test-effects', '{"label":"old"}', key)).statusCode).toBe(201);
    context.clock.advanceSeconds(limits.idempotencyRetentionHours * 3600 + 1);
    const freshKeyValue = freshKey();
    expect((await post('/v1/test-effects', '{"label":"new"}', freshKeyValue)).statusCode).toBe(201);
    const handler = appJobHandlers(context)[appCleanupTask];
    expect(handler).toBeDefined();
    await handler?.({}, { id: '1', attempts: 1 });
    const keys = await context.db.selectFrom('idempotency_keys').select('key').execute();
    expect(keys.map((row) => row.key)).toEqual([freshKeyValue]);
    const nonces = await context.db.selectFrom('api_nonces').select('expires_at').execute();
    expect(nonces.length).toBeGreaterThan(0);
    expect(nonces.every((nonce) => nonce.expires_at.getTime() > context.clock.now().getTime())).toBe(true);
  });
});
