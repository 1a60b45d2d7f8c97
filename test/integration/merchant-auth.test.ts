import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { newNonce, signedHeaders } from '../../sdk/index.js';
import { updateApp, type CreatedApp } from '../../src/apps/index.js';
import { buildApp } from '../../src/main/app.js';
import { freezeMerchant, unfreezeMerchant } from '../../src/merchants/index.js';
import { unixSeconds } from '../../src/platform/clock.js';
import { limits } from '../../src/platform/limits.js';
import { createTestContext, type TestContext } from '../helpers/context.js';
import { createActiveApp, signedClient, testOperatorActor } from '../helpers/merchant-api.js';

/**
 * Merchant-API authentication: one test per way a request is refused, each with
 * its exact status and code, plus the ways it succeeds. Requests are signed by
 * the SDK, or by its exported signing functions where a test needs to bend one
 * part of a request.
 */
describe('merchant API authentication', () => {
  let context: TestContext;
  let app: FastifyInstance;
  let shop: CreatedApp;

  beforeAll(async () => {
    context = await createTestContext();
    app = await buildApp(context, {
      logRequests: false,
      extraRoutes: (instance) => {
        // A signed POST route with a strict body, to show what the actor is and that authentication precedes validation.
        instance.withTypeProvider<ZodTypeProvider>().post(
          '/v1/test-echo',
          { schema: { body: z.strictObject({ word: z.string().min(1) }) }, config: { auth: 'app', idempotent: false } },
          async (request) => ({ word: request.body.word, actor: request.actor, app_auth: request.appAuth }),
        );
      },
    });
    shop = await createActiveApp(context);
  });
  afterAll(async () => {
    await app.close();
    await context.close();
  });

  interface Signable {
    method?: string;
    url?: string;
    body?: string;
    appId?: string;
    secret?: string;
    timestamp?: number | string;
    nonce?: string;
    remoteAddress?: string;
  }

  /** Signs a request with the SDK's functions, letting a test change any one part. */
  function send(options: Signable = {}) {
    const method = options.method ?? 'GET';
    const url = options.url ?? '/v1/app';
    const body = options.body ?? '';
    const headers = signedHeaders({
      appId: options.appId ?? shop.id,
      secret: options.secret ?? shop.app_secret,
      method,
      pathWithQuery: url,
      timestamp: options.timestamp ?? unixSeconds(context.clock.now()),
      nonce: options.nonce ?? newNonce(),
      body,
    });
    return app.inject({
      method: method as 'GET',
      url,
      headers: body ? { ...headers, 'content-type': 'application/json' } : headers,
      ...(body ? { payload: body } : {}),
      remoteAddress: options.remoteAddress ?? '127.0.0.1',
    });
  }

  function expectRefused(response: Awaited<ReturnType<typeof send>>, status: number, code: string): void {
    expect(response.statusCode, response.body).toBe(status);
    expect(response.json()).toEqual({ error: { code, message: expect.any(String) } });
  }

  it('accepts a request signed by the SDK and tells the app who it is', async () => {
    const client = signedClient(app, context, { appId: shop.id, appSecret: shop.app_secret });
    expect(await client.request('GET', '/v1/app')).toEqual({
      id: shop.id,
      merchant_id: shop.merchant_id,
      name: shop.name,
      enabled_methods: shop.enabled_methods,
      notify_url: shop.notify_url,
    });
  });

  it('signs the query string and the body, and makes the app the actor', async () => {
    expect((await send({ url: '/v1/app?verbose=1&x=%20y' })).statusCode).toBe(200);
    const echo = await send({ method: 'POST', url: '/v1/test-echo', body: '{"word":"你好"}' });
    expect(echo.statusCode, echo.body).toBe(200);
    expect(echo.json()).toEqual({
      word: '你好',
      actor: { type: 'app', id: shop.id, roles: [], ip: '127.0.0.1', merchantId: shop.merchant_id },
      app_auth: { appId: shop.id, merchantId: shop.merchant_id, enabledMethods: shop.enabled_methods, notifyUrl: shop.notify_url },
    });
  });

  it('401 missing_authentication when any header is missing', async () => {
    expectRefused(await app.inject({ method: 'GET', url: '/v1/app' }), 401, 'missing_authentication');
    const complete = signedHeaders({ appId: shop.id, secret: shop.app_secret, method: 'GET', pathWithQuery: '/v1/app', timestamp: unixSeconds(context.clock.now()), nonce: newNonce(), body: '' });
    for (const name of Object.keys(complete)) {
      const headers = { ...complete };
      delete headers[name];
      const response = await app.inject({ method: 'GET', url: '/v1/app', headers });
      expectRefused(response, 401, 'missing_authentication');
      expect(response.json().error.message).toContain(name);
    }
  });

  it('401 missing_authentication, not a 400 about the schema, for an unsigned request with a bad body', async () => {
    const response = await app.inject({ method: 'POST', url: '/v1/test-echo', payload: { nonsense: true } });
    expectRefused(response, 401, 'missing_authentication');
  });

  it('401 unknown_app for an app id that does not exist or is malformed', async () => {
    expectRefused(await send({ appId: 'app_01jc8x0000000000000000000a' }), 401, 'unknown_app');
    expectRefused(await send({ appId: 'shop-1' }), 401, 'unknown_app');
  });

  it('401 invalid_signature for a wrong secret, a changed path, a changed body or a malformed signature', async () => {
    expectRefused(await send({ secret: 'not-the-secret' }), 401, 'invalid_signature');
    const headers = signedHeaders({ appId: shop.id, secret: shop.app_secret, method: 'GET', pathWithQuery: '/v1/app', timestamp: unixSeconds(context.clock.now()), nonce: newNonce(), body: '' });
    expectRefused(await app.inject({ method: 'GET', url: '/v1/app?x=1', headers }), 401, 'invalid_signature');
    const signedForBody = signedHeaders({ appId: shop.id, secret: shop.app_secret, method: 'POST', pathWithQuery: '/v1/test-echo', timestamp: unixSeconds(context.clock.now()), nonce: newNonce(), body: '{"word":"a"}' });
    const tampered = await app.inject({ method: 'POST', url: '/v1/test-echo', headers: { ...signedForBody, 'content-type': 'application/json' }, payload: '{"word":"b"}' });
    expectRefused(tampered, 401, 'invalid_signature');
    const upper = { ...headers, 'Fen-Signature': (headers['Fen-Signature'] ?? '').toUpperCase() };
    expectRefused(await app.inject({ method: 'GET', url: '/v1/app', headers: upper }), 401, 'invalid_signature');
    expectRefused(await app.inject({ method: 'GET', url: '/v1/app', headers: { ...headers, 'Fen-Signature': 'abc' } }), 401, 'invalid_signature');
  });

  it('401 timestamp_out_of_window beyond the window either way, and accepts its edges', async () => {
    const now = unixSeconds(context.clock.now());
    const window = limits.signatureWindowSeconds;
    expect((await send({ timestamp: now - window })).statusCode).toBe(200);
    expect((await send({ timestamp: now + window })).statusCode).toBe(200);
    expectRefused(await send({ timestamp: now - window - 1 }), 401, 'timestamp_out_of_window');
    expectRefused(await send({ timestamp: now + window + 1 }), 401, 'timestamp_out_of_window');
    expectRefused(await send({ timestamp: `${now}.5` }), 401, 'timestamp_out_of_window');
    expectRefused(await send({ timestamp: new Date().toISOString() }), 401, 'timestamp_out_of_window');
  });

  it('401 nonce_invalid for a nonce of the wrong length or alphabet', async () => {
    for (const nonce of ['short', 'x'.repeat(limits.nonceLengthMax + 1), 'has spaces in it here!', 'nonce/with/slashes/0123']) {
      expectRefused(await send({ nonce }), 401, 'nonce_invalid');
    }
    expect((await send({ nonce: 'a'.repeat(limits.nonceLengthMin) })).statusCode).toBe(200);
  });

  it('401 nonce_reused for a second use of a nonce within the window', async () => {
    const nonce = newNonce();
    expect((await send({ nonce })).statusCode).toBe(200);
    expectRefused(await send({ nonce }), 401, 'nonce_reused');
    context.clock.advanceSeconds(limits.signatureWindowSeconds);
    expectRefused(await send({ nonce }), 401, 'nonce_reused');
  });

  it('lets nobody without the secret burn a nonce', async () => {
    const nonce = newNonce();
    expectRefused(await send({ nonce, secret: 'attacker-guess' }), 401, 'invalid_signature');
    expectRefused(await send({ nonce, timestamp: unixSeconds(context.clock.now()) - 3600 }), 401, 'timestamp_out_of_window');
    expect((await send({ nonce })).statusCode).toBe(200);
  });

  it('accepts a nonce again once its record has expired (a replay then fails on its timestamp)', async () => {
    const nonce = newNonce();
    const signedAt = unixSeconds(context.clock.now());
    expect((await send({ nonce, timestamp: signedAt })).statusCode).toBe(200);
    context.clock.advanceSeconds(2 * limits.signatureWindowSeconds + 1);
    expectRefused(await send({ nonce, timestamp: signedAt }), 401, 'timestamp_out_of_window');
    expect((await send({ nonce })).statusCode).toBe(200);
  });

  it('403 app_disabled for a disabled app, only once the signature is good', async () => {
    const disabled = await createActiveApp(context);
    await updateApp(context, testOperatorActor, disabled.id, { status: 'disabled' });
    expectRefused(await send({ appId: disabled.id, secret: 'wrong' }), 401, 'invalid_signature');
    expectRefused(await send({ appId: disabled.id, secret: disabled.app_secret }), 403, 'app_disabled');
  });

  it('403 merchant_disabled while the merchant is frozen', async () => {
    const other = await createActiveApp(context);
    await freezeMerchant(context, testOperatorActor, other.merchant_id, 'investigation');
    expectRefused(await send({ appId: other.id, secret: other.app_secret }), 403, 'merchant_disabled');
    await unfreezeMerchant(context, testOperatorActor, other.merchant_id);
    expect((await send({ appId: other.id, secret: other.app_secret })).statusCode).toBe(200);
  });

  it('403 ip_not_allowed outside a non-empty allow-list, CIDR aware for IPv4 and IPv6', async () => {
    const fenced = await createActiveApp(context, { input: { ip_allowlist: ['10.0.0.0/8', '198.51.100.7', '2001:db8::/32'] } });
    const from = (remoteAddress: string) => send({ appId: fenced.id, secret: fenced.app_secret, remoteAddress });
    expect((await from('10.20.30.40')).statusCode).toBe(200);
    expect((await from('198.51.100.7')).statusCode).toBe(200);
    expect((await from('2001:db8:1::9')).statusCode).toBe(200);
    expect((await from('::ffff:10.1.1.1')).statusCode).toBe(200);
    expectRefused(await from('198.51.100.8'), 403, 'ip_not_allowed');
    expectRefused(await from('2001:db9::1'), 403, 'ip_not_allowed');
    expectRefused(await from('127.0.0.1'), 403, 'ip_not_allowed');
  });
});
