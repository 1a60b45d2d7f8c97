import type { FastifyRequest } from 'fastify';
import { hexDigestsEqual, signRequest, signatureHeaders } from '../../sdk/index.js';
import { unixSeconds } from '../platform/clock.js';
import type { PlatformContext } from '../platform/context.js';
import { FenError } from '../platform/errors.js';
import type { RouteHook } from '../platform/http/index.js';
import { isId } from '../platform/ids.js';
import { limits } from '../platform/limits.js';
import { findAppForAuthentication, type AppForAuthentication } from './apps.repository.js';
import { appSecretSealContext } from './apps.service.js';
import { isAddressAllowed } from './ip-allowlist.js';

/**
 * Authenticates merchant-API requests (routes with `auth: 'app'`).
 *
 * The order of the checks matters. Only cheap syntax checks come before the
 * signature; everything that reveals something about the app (disabled, its
 * merchant's status, its allow-list) comes after it, so an unauthenticated
 * caller learns nothing but "unknown app" or "bad signature". The nonce is
 * recorded only after the signature and timestamp pass, so nobody without the
 * secret can use up an app's nonces.
 */
const noncePattern = new RegExp(`^[A-Za-z0-9_-]{${limits.nonceLengthMin},${limits.nonceLengthMax}}$`);
const timestampPattern = /^\d{1,12}$/;
const signaturePattern = /^[0-9a-f]{64}$/;

interface AuthHeaders {
  appId: string;
  timestamp: string;
  nonce: string;
  signature: string;
}

function readAuthHeaders(request: FastifyRequest): AuthHeaders {
  const read = (name: string): string | undefined => {
    const value = request.headers[name.toLowerCase()];
    return typeof value === 'string' && value.length > 0 ? value : undefined;
  };
  const appId = read(signatureHeaders.appId);
  const timestamp = read(signatureHeaders.timestamp);
  const nonce = read(signatureHeaders.nonce);
  const signature = read(signatureHeaders.signature);
  if (appId === undefined || timestamp === undefined || nonce === undefined || signature === undefined) {
    const missing = Object.values(signatureHeaders)
      .filter((name) => name !== signatureHeaders.idempotencyKey && read(name) === undefined)
      .join(', ');
    throw new FenError('missing_authentication', `the merchant API needs signed requests; missing header(s): ${missing}`);
  }
  return { appId, timestamp, nonce, signature };
}

function verifySignature(context: PlatformContext, app: AppForAuthentication, headers: AuthHeaders, request: FastifyRequest): void {
  const signed = { method: request.method, pathWithQuery: request.url, timestamp: headers.timestamp, nonce: headers.nonce, body: request.rawBody ?? '' };
  const given = headers.signature;
  // Every live secret is tried (the current one and any still in grace); no early exit, so timing does not tell them apart.
  let matched = false;
  for (const sealed of app.api_secrets_sealed) {
    const secret = context.secretBox.open(sealed, appSecretSealContext(app.id, 'api'));
    matched = hexDigestsEqual(signRequest(secret, signed), given) || matched;
  }
  if (!matched) {
    request.log.warn({ app_id: app.id }, 'merchant API request with an invalid signature');
    throw new FenError('invalid_signature', 'Fen-Signature does not match: sign METHOD\\nPATH_WITH_QUERY\\nTIMESTAMP\\nNONCE\\nSHA256_HEX(body) with HMAC-SHA256 and the app secret');
  }
}

function checkTimestamp(context: PlatformContext, timestamp: string): void {
  const nowSeconds = unixSeconds(context.clock.now());
  if (Math.abs(nowSeconds - Number(timestamp)) > limits.signatureWindowSeconds) {
    throw new FenError('timestamp_out_of_window', `Fen-Timestamp ${timestamp} is more than ${limits.signatureWindowSeconds}s from the server's time (${nowSeconds}); check the client's clock`);
  }
}

/**
 * Records the nonce; false when it was seen before. A nonce lives for twice the
 * window: a replay after that carries a timestamp outside the window anyway. A
 * row already past its expiry (not yet swept) is taken over, not counted as a reuse.
 */
async function recordNonce(context: PlatformContext, appId: string, nonce: string): Promise<boolean> {
  const now = context.clock.now();
  const expiresAt = new Date(now.getTime() + 2 * limits.signatureWindowSeconds * 1000);
  const result = await context.db
    .insertInto('api_nonces')
    .values({ app_id: appId, nonce, expires_at: expiresAt })
    .onConflict((conflict) =>
      conflict
        .columns(['app_id', 'nonce'])
        .doUpdateSet({ expires_at: expiresAt })
        .where('api_nonces.expires_at', '<=', now),
    )
    .executeTakeFirst();
  return result.numInsertedOrUpdatedRows === 1n;
}

function checkStanding(app: AppForAuthentication, request: FastifyRequest): void {
  if (app.status !== 'active') throw new FenError('app_disabled', `app ${app.id} is disabled`);
  if (app.merchant_status !== 'active') {
    throw new FenError('merchant_disabled', `merchant ${app.merchant_id} is ${app.merchant_status ?? 'missing'}; its apps cannot use the API`);
  }
  if (!isAddressAllowed(app.ip_allowlist, request.ip)) {
    throw new FenError('ip_not_allowed', `requests from ${request.ip} are not in app ${app.id}'s IP allow-list`);
  }
}

export function createAppAuthenticator(context: PlatformContext): RouteHook {
  return async (request) => {
    const headers = readAuthHeaders(request);
    if (!timestampPattern.test(headers.timestamp)) throw new FenError('timestamp_out_of_window', 'Fen-Timestamp must be unix seconds');
    if (!noncePattern.test(headers.nonce)) {
      throw new FenError('nonce_invalid', `Fen-Nonce must be ${limits.nonceLengthMin} to ${limits.nonceLengthMax} characters from A-Z, a-z, 0-9, _ and -`);
    }
    const app = isId('app', headers.appId) ? await findAppForAuthentication(context.db, headers.appId, context.clock.now()) : undefined;
    if (!app) throw new FenError('unknown_app', `no app ${headers.appId}`);
    if (!signaturePattern.test(headers.signature)) throw new FenError('invalid_signature', 'Fen-Signature must be 64 lowercase hex characters');
    verifySignature(context, app, headers, request);
    checkTimestamp(context, headers.timestamp);
    if (!(await recordNonce(context, app.id, headers.nonce))) {
      request.log.warn({ app_id: app.id }, 'merchant API request replayed a nonce');
      throw new FenError('nonce_reused', 'this Fen-Nonce was already used; send a fresh random nonce with every request');
    }
    checkStanding(app, request);
    request.appAuth = { appId: app.id, merchantId: app.merchant_id, enabledMethods: app.enabled_methods, notifyUrl: app.notify_url };
    request.actor = { type: 'app', id: app.id, roles: [], ip: request.ip, merchantId: app.merchant_id };
  };
}
