import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newNonce, signedHeaders } from '../../sdk/index.js';
import type { CreatedApp } from '../../src/apps/index.js';
import { buildApp } from '../../src/main/app.js';
import { unixSeconds } from '../../src/platform/clock.js';
import { createTestContext, type TestContext } from '../helpers/context.js';
import { createActiveApp } from '../helpers/merchant-api.js';
import { signInOperator } from '../helpers/operators.js';
import { fingerprintDatabase } from '../helpers/snapshot.js';

/**
 * Bad input on every route, as the OpenAPI document lists them: wrong types,
 * missing and unknown fields, garbage ids, broken JSON, wrong content types and
 * bodies over the size limit. Each gets a 4xx with {error: {code, message}},
 * never a 5xx, and the database is exactly as it was.
 */
interface Operation {
  method: string;
  path: string;
  auth: 'operator' | 'app' | 'none';
  bodyProperties: Record<string, { type?: string }> | undefined;
}

interface OpenApiDocument {
  paths: Record<string, Record<string, { requestBody?: { content?: Record<string, { schema?: { properties?: Record<string, { type?: string }> } }> } }>>;
}

const garbageIds = ['x', 'pay_', "' OR 1=1 --", '%00', 'é'.repeat(300), '9'.repeat(40)];

function wrongValue(type: string | undefined): unknown[] {
  switch (type) {
    case 'integer':
    case 'number':
      return ['12', -1, 0, 1.5, 1e30, null];
    case 'string':
      return [42, '', 'x'.repeat(100_000), ['a'], null, '\u0000\ud800'];
    case 'boolean':
      return ['yes', 1];
    case 'array':
      return ['not a list', [null], {}];
    case 'object':
      return ['{}', 7, []];
    default:
      return [{ deeply: { nested: [1, 2, 3] } }, -1];
  }
}

function bodiesFor(operation: Operation): unknown[] {
  const bodies: unknown[] = [[], 'a string', 12, null, { unexpected_field: true }];
  for (const [name, schema] of Object.entries(operation.bodyProperties ?? {})) {
    for (const value of wrongValue(schema.type)) bodies.push({ [name]: value });
  }
  return bodies;
}

describe('bad input on every route', () => {
  let context: TestContext;
  let app: FastifyInstance;
  let operatorHeaders: Record<string, string>;
  let merchantApp: CreatedApp;
  let operations: Operation[];

  beforeAll(async () => {
    context = await createTestContext();
    app = await buildApp(context, { logRequests: false });
    operatorHeaders = (await signInOperator(app, context, { roles: ['admin'] })).headers;
    merchantApp = await createActiveApp(context);
    const document = (await app.inject({ method: 'GET', url: '/docs/json' })).json<OpenApiDocument>();
    operations = Object.entries(document.paths).flatMap(([path, methods]) =>
      Object.entries(methods).map(([method, spec]) => ({
        method: method.toUpperCase(),
        path,
        auth: path.startsWith('/admin/v1') ? ('operator' as const) : path.startsWith('/v1') ? ('app' as const) : ('none' as const),
        bodyProperties: spec.requestBody?.content?.['application/json']?.schema?.properties,
      })),
    );
    // Signing out ends the session the other operator requests use: it goes last.
    operations.sort((left, right) => Number(left.path.endsWith('/logout')) - Number(right.path.endsWith('/logout')));
  });
  afterAll(async () => {
    await app.close();
    await context.close();
  });

  async function send(operation: Operation, options: { url: string; payload?: string; contentType?: string }) {
    const headers: Record<string, string> = {};
    if (options.payload !== undefined) headers['content-type'] = options.contentType ?? 'application/json';
    if (operation.auth === 'operator') Object.assign(headers, operatorHeaders);
    if (operation.auth === 'app') {
      Object.assign(headers, signedHeaders({ appId: merchantApp.id, secret: merchantApp.app_secret, method: operation.method, pathWithQuery: options.url, timestamp: unixSeconds(context.clock.now()), nonce: newNonce(), body: options.payload ?? '' }));
      headers['idempotency-key'] = newNonce();
    }
    return app.inject({ method: operation.method as 'GET', url: options.url, headers, ...(options.payload === undefined ? {} : { payload: options.payload }) });
  }

  function urlWith(path: string, id: string): string {
    return path.replace(/\{[^}]+\}/g, encodeURIComponent(id));
  }

  it('answers every malformed request with a 4xx error body and changes nothing', async () => {
    expect(operations.length).toBeGreaterThan(20);
    const before = await fingerprintDatabase(context.db);
    const failures: string[] = [];
    const check = (operation: Operation, description: string, response: { statusCode: number; body: string }) => {
      const body = (() => {
        try {
          return JSON.parse(response.body) as { error?: { code?: unknown; message?: unknown } };
        } catch {
          return undefined;
        }
      })();
      const shaped = typeof body?.error?.code === 'string' && typeof body.error.message === 'string';
      if (response.statusCode < 400 || response.statusCode >= 500 || !shaped) failures.push(`${operation.method} ${operation.path} ${description}: ${response.statusCode} ${response.body.slice(0, 200)}`);
    };
    for (const operation of operations) {
      const hasParameters = operation.path.includes('{');
      const url = hasParameters ? urlWith(operation.path, garbageIds[0] as string) : operation.path;
      if (hasParameters) {
        for (const id of garbageIds) check(operation, `id ${id.slice(0, 20)}`, await send(operation, { url: urlWith(operation.path, id), ...(operation.method === 'GET' ? {} : { payload: '{}' }) }));
      }
      if (operation.method === 'GET' || operation.method === 'DELETE') continue;
      const validUrl = hasParameters ? urlWith(operation.path, 'pay_01jzzzzzzzzzzzzzzzzzzzzzzz') : url;
      check(operation, 'broken JSON', await send(operation, { url: validUrl, payload: '{"amount": 12,' }));
      check(operation, 'text/plain', await send(operation, { url: validUrl, payload: 'amount=12', contentType: 'text/plain' }));
      check(operation, 'over the size limit', await send(operation, { url: validUrl, payload: JSON.stringify({ padding: 'x'.repeat(1_100_000) }) }));
      if (operation.bodyProperties === undefined) continue;
      for (const body of bodiesFor(operation)) check(operation, `body ${JSON.stringify(body).slice(0, 60)}`, await send(operation, { url: validUrl, payload: JSON.stringify(body) }));
    }
    expect(failures).toEqual([]);
    expect(await fingerprintDatabase(context.db)).toEqual(before);
  });
});
