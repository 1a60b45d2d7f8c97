import { setTimeout as delay } from 'node:timers/promises';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { sha256Hex, signatureHeaders } from '../../sdk/index.js';
import { assert } from '../platform/assert.js';
import type { PlatformContext } from '../platform/context.js';
import type { IdempotencyKeysTable } from '../platform/db/index.js';
import { FenError } from '../platform/errors.js';
import { limits } from '../platform/limits.js';
import type { Selectable } from 'kysely';

/**
 * Idempotency for the merchant API (DESIGN.md §3.4). Every signed POST carries
 * an `Idempotency-Key`. The first request with a key claims it (state
 * in_progress, under a lease) and runs; its response is stored when sent. A
 * retry with the same key and the same request gets that response again, byte
 * for byte; the same key on a different request is refused. A duplicate that
 * arrives while the first still runs waits for it, polling without holding a
 * database connection, then replays. A 5xx is not stored: the claim is released
 * so a retry runs again. A claim whose lease ran out (its process died) can be
 * taken over.
 */
export const replayedHeader = 'Idempotency-Replayed';
const keyPattern = new RegExp(`^[\\x20-\\x7E]{1,${limits.idempotencyKeyLengthMax}}$`);

type IdempotencyRecord = Selectable<IdempotencyKeysTable>;

interface Claim {
  appId: string;
  key: string;
  /** The lease this request set: it identifies the claim, so a request whose claim was taken over cannot overwrite the new owner's. */
  leaseExpiresAt: Date;
  finished: boolean;
}

interface ClaimRequest {
  appId: string;
  merchantId: string;
  key: string;
  method: string;
  path: string;
  requestHash: string;
}

const claims = new WeakMap<FastifyRequest, Claim>();

function appliesTo(request: FastifyRequest): boolean {
  const config = request.routeOptions.config;
  return request.method === 'POST' && config?.auth === 'app' && config.idempotent !== false;
}

function readKey(request: FastifyRequest): string {
  const value = request.headers[signatureHeaders.idempotencyKey.toLowerCase()];
  if (value === undefined || value === '') {
    throw new FenError('idempotency_key_invalid', 'POST requests to the merchant API need an Idempotency-Key header (1 to 255 printable characters, e.g. a UUID); reuse it to retry safely');
  }
  if (typeof value !== 'string' || !keyPattern.test(value)) {
    throw new FenError('idempotency_key_invalid', `Idempotency-Key must be 1 to ${limits.idempotencyKeyLengthMax} printable ASCII characters`);
  }
  return value;
}

/** Hashes method, path and the exact body: a retry must be the same request, not merely an equivalent one. */
export function idempotencyRequestHash(method: string, path: string, rawBody: string): string {
  return sha256Hex(`${method}\n${path}\n${rawBody}`);
}

function leaseFrom(now: Date): Date {
  return new Date(now.getTime() + limits.idempotencyLeaseSeconds * 1000);
}

async function tryInsertClaim(context: PlatformContext, claim: ClaimRequest): Promise<Date | undefined> {
  const now = context.clock.now();
  const lease = leaseFrom(now);
  const inserted = await context.db
    .insertInto('idempotency_keys')
    .values({
      app_id: claim.appId,
      key: claim.key,
      merchant_id: claim.merchantId,
      method: claim.method,
      path: claim.path,
      request_hash: claim.requestHash,
      state: 'in_progress',
      lease_expires_at: lease,
      response_status: null,
      response_content_type: null,
      response_body: null,
      created_at: now,
      completed_at: null,
    })
    .onConflict((conflict) => conflict.columns(['app_id', 'key']).doNothing())
    .returning('key')
    .executeTakeFirst();
  return inserted ? lease : undefined;
}

async function tryTakeOver(context: PlatformContext, record: IdempotencyRecord): Promise<Date | undefined> {
  const lease = leaseFrom(context.clock.now());
  const taken = await context.db
    .updateTable('idempotency_keys')
    .set({ lease_expires_at: lease })
    .where('app_id', '=', record.app_id)
    .where('key', '=', record.key)
    .where('state', '=', 'in_progress')
    .where('lease_expires_at', '=', record.lease_expires_at)
    .returning('key')
    .executeTakeFirst();
  return taken ? lease : undefined;
}

async function findRecord(context: PlatformContext, appId: string, key: string): Promise<IdempotencyRecord | undefined> {
  return context.db.selectFrom('idempotency_keys').selectAll().where('app_id', '=', appId).where('key', '=', key).executeTakeFirst();
}

/** Claims the key, or returns the completed record to replay; waits while another request holds it. */
async function claimOrAwait(context: PlatformContext, claim: ClaimRequest): Promise<{ lease: Date } | { record: IdempotencyRecord }> {
  const deadline = performance.now() + limits.idempotencyWaitMs;
  for (;;) {
    const lease = await tryInsertClaim(context, claim);
    if (lease) return { lease };
    // Poll until the record completes, is released (then claim it afresh) or its lease runs out.
    for (;;) {
      const record = await findRecord(context, claim.appId, claim.key);
      if (!record) break;
      if (record.request_hash !== claim.requestHash) {
        throw new FenError('idempotency_key_reused', `Idempotency-Key ${claim.key} was already used for a different request (${record.method} ${record.path}); use a new key for a new request`);
      }
      if (record.state === 'completed') return { record };
      if (record.lease_expires_at.getTime() <= context.clock.now().getTime()) {
        const takenLease = await tryTakeOver(context, record);
        if (takenLease) return { lease: takenLease };
        continue;
      }
      if (performance.now() >= deadline) {
        throw new FenError('idempotency_request_in_progress', `a request with Idempotency-Key ${claim.key} is still being processed; retry later with the same key`);
      }
      await delay(limits.idempotencyPollMs);
    }
  }
}

async function replay(reply: FastifyReply, record: IdempotencyRecord): Promise<FastifyReply> {
  assert(record.response_status !== null && record.response_body !== null, 'a completed idempotency record has a response');
  reply.code(record.response_status).header(replayedHeader, 'true');
  if (record.response_content_type) reply.header('content-type', record.response_content_type);
  // A Buffer is sent exactly as given: no serializer runs, no charset is added.
  return reply.send(Buffer.from(record.response_body, 'utf8'));
}

async function complete(context: PlatformContext, claim: Claim, status: number, contentType: string | null, body: string): Promise<boolean> {
  const result = await context.db
    .updateTable('idempotency_keys')
    .set({ state: 'completed', response_status: status, response_content_type: contentType, response_body: body, completed_at: context.clock.now() })
    .where('app_id', '=', claim.appId)
    .where('key', '=', claim.key)
    .where('state', '=', 'in_progress')
    .where('lease_expires_at', '=', claim.leaseExpiresAt)
    .executeTakeFirst();
  return result.numUpdatedRows === 1n;
}

async function release(context: PlatformContext, claim: Claim): Promise<void> {
  await context.db
    .deleteFrom('idempotency_keys')
    .where('app_id', '=', claim.appId)
    .where('key', '=', claim.key)
    .where('state', '=', 'in_progress')
    .where('lease_expires_at', '=', claim.leaseExpiresAt)
    .execute();
}

function payloadText(payload: unknown): string | undefined {
  if (payload === undefined || payload === null) return '';
  if (typeof payload === 'string') return payload;
  if (Buffer.isBuffer(payload)) return payload.toString('utf8');
  return undefined;
}

async function storeResponse(context: PlatformContext, request: FastifyRequest, reply: FastifyReply, payload: unknown): Promise<void> {
  const claim = claims.get(request);
  if (!claim || claim.finished) return;
  claim.finished = true;
  const text = payloadText(payload);
  // A server fault is not the answer to the request: let a retry run it again. A stream cannot be stored.
  if (reply.statusCode >= 500 || text === undefined) return release(context, claim);
  const contentType = reply.getHeader('content-type');
  const stored = await complete(context, claim, reply.statusCode, typeof contentType === 'string' ? contentType : null, text);
  if (!stored) request.log.warn({ app_id: claim.appId }, 'idempotency claim was taken over before the response was stored');
}

/** Claims, replays and stores responses for idempotent POSTs; runs after app authentication (preValidation). */
export function registerIdempotency(app: FastifyInstance, context: PlatformContext): void {
  app.addHook('preHandler', async (request, reply) => {
    if (!appliesTo(request)) return;
    const key = readKey(request);
    const auth = request.appAuth;
    assert(auth, 'idempotency runs after app authentication');
    const path = request.url;
    const outcome = await claimOrAwait(context, {
      appId: auth.appId,
      merchantId: auth.merchantId,
      key,
      method: request.method,
      path,
      requestHash: idempotencyRequestHash(request.method, path, request.rawBody ?? ''),
    });
    if ('record' in outcome) return replay(reply, outcome.record);
    claims.set(request, { appId: auth.appId, key, leaseExpiresAt: outcome.lease, finished: false });
  });
  app.addHook('onSend', async (request, reply, payload) => {
    // Recording the answer must never replace it. With the database lost mid-request, a failed write here made
    // Fastify answer its own 500 body with the driver's message instead of Fen's (found by
    // test/chaos/postgres-restart.test.ts). The answer goes out; the key stays claimed until its lease runs out.
    await storeResponse(context, request, reply, payload).catch((error: unknown) => {
      request.log.error({ err: error }, 'idempotency record not stored; the key stays claimed until its lease runs out');
    });
    return payload;
  });
  // If the response never reached onSend (an error in a later hook), free the key rather than leave it to its lease.
  app.addHook('onResponse', async (request) => {
    const claim = claims.get(request);
    if (claim && !claim.finished) {
      claim.finished = true;
      await release(context, claim);
    }
  });
}
