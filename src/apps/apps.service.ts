import { randomBytes } from 'node:crypto';
import type { z } from 'zod';
import { appendAudit } from '../audit/index.js';
import { merchantStatusOf } from '../merchants/index.js';
import type { Actor } from '../platform/actor.js';
import type { PlatformContext } from '../platform/context.js';
import type { DbExecutor, DbTransaction } from '../platform/db/index.js';
import { FenError } from '../platform/errors.js';
import { isId, newId } from '../platform/ids.js';
import {
  findApp,
  insertApp,
  insertSecret,
  retireLiveSecrets,
  selectApps,
  selectLiveSecrets,
  toAppView,
  updateAppRow,
  type AppRow,
} from './apps.repository.js';
import {
  createAppBodySchema,
  rotateSecretBodySchema,
  updateAppBodySchema,
  type AppView,
  type CreatedApp,
  type RotatedSecret,
  type SecretKind,
} from './apps.schemas.js';

/**
 * Apps: the systems that call the merchant API for a merchant. Each has an API
 * secret (to sign requests) and a webhook secret (to check Fen's webhooks),
 * both sealed at rest and shown in clear exactly once: when made.
 */
const secretBytes = 32;

export function generateSecret(): string {
  return randomBytes(secretBytes).toString('base64url');
}

/** Binds a sealed secret to its app and kind, so a sealed value copied onto another row does not open. */
export function appSecretSealContext(appId: string, kind: SecretKind): string {
  return `app_secret:${appId}:${kind}`;
}

function parseInput<Schema extends z.ZodType>(schema: Schema, input: unknown): z.output<Schema> {
  const parsed = schema.safeParse(input);
  if (parsed.success) return parsed.data;
  const message = parsed.error.issues.map((issue) => `${issue.path.join('.') || 'request'}: ${issue.message}`).join('; ');
  throw new FenError('invalid_request', message);
}

async function addSecret(trx: DbTransaction, context: PlatformContext, app: Pick<AppRow, 'id' | 'merchant_id'>, kind: SecretKind): Promise<{ id: string; secret: string }> {
  const secret = generateSecret();
  const id = newId('appSecret');
  await insertSecret(trx, {
    id,
    app_id: app.id,
    merchant_id: app.merchant_id,
    kind,
    secret_sealed: context.secretBox.seal(secret, appSecretSealContext(app.id, kind)),
    created_at: context.clock.now(),
    retires_at: null,
  });
  return { id, secret };
}

async function loadApp(executor: DbExecutor, id: string, options: { lock?: 'update' } = {}): Promise<AppRow> {
  const row = isId('app', id) ? await findApp(executor, id, options) : undefined;
  if (!row) throw new FenError('app_not_found', `no app ${id}`);
  return row;
}

export type CreateAppInput = z.input<typeof createAppBodySchema>;

export async function createApp(context: PlatformContext, actor: Actor, merchantId: string, input: CreateAppInput): Promise<CreatedApp> {
  const body = parseInput(createAppBodySchema, input);
  return context.db.transaction().execute(async (trx) => {
    // A share lock keeps a concurrent freeze or close from slipping in between this check and the insert.
    const status = isId('merchant', merchantId) ? await merchantStatusOf(trx, merchantId, { lock: 'share' }) : undefined;
    if (status === undefined) throw new FenError('merchant_not_found', `no merchant ${merchantId}`);
    if (status !== 'active') throw new FenError('merchant_not_active', `merchant ${merchantId} is ${status}; apps can be added only to an active merchant`);
    const now = context.clock.now();
    const row = await insertApp(trx, {
      id: newId('app'),
      merchant_id: merchantId,
      name: body.name,
      status: 'active',
      notify_url: body.notify_url ?? null,
      ip_allowlist: body.ip_allowlist ?? [],
      enabled_methods: body.enabled_methods ?? [],
      created_at: now,
      updated_at: now,
    });
    const api = await addSecret(trx, context, row, 'api');
    const webhook = await addSecret(trx, context, row, 'webhook');
    const view = toAppView(row, await selectLiveSecrets(trx, [row.id], now));
    await appendAudit(trx, context.clock, { actor, action: 'app.created', targetType: 'app', targetId: row.id, merchantId, after: view });
    return { ...view, app_secret: api.secret, webhook_secret: webhook.secret };
  });
}

export async function getApp(context: PlatformContext, id: string): Promise<AppView> {
  const row = await loadApp(context.db, id);
  return toAppView(row, await selectLiveSecrets(context.db, [row.id], context.clock.now()));
}

export async function listApps(
  context: PlatformContext,
  query: { merchantId?: string | undefined; cursor?: string | undefined; limit: number },
): Promise<{ data: AppView[]; nextCursor: string | null }> {
  if (query.cursor !== undefined && !isId('app', query.cursor)) {
    throw new FenError('invalid_cursor', 'cursor must be the value of next_cursor from a previous page');
  }
  const page = await selectApps(context.db, { merchantId: query.merchantId, beforeId: query.cursor, limit: query.limit });
  const secrets = await selectLiveSecrets(context.db, page.rows.map((row) => row.id), context.clock.now());
  const last = page.rows.at(-1);
  return { data: page.rows.map((row) => toAppView(row, secrets)), nextCursor: page.hasMore && last ? last.id : null };
}

export type UpdateAppInput = z.input<typeof updateAppBodySchema>;

export async function updateApp(context: PlatformContext, actor: Actor, id: string, input: UpdateAppInput): Promise<AppView> {
  const body = parseInput(updateAppBodySchema, input);
  return context.db.transaction().execute(async (trx) => {
    const current = await loadApp(trx, id, { lock: 'update' });
    const now = context.clock.now();
    const updated = await updateAppRow(trx, id, {
      ...(body.name === undefined ? {} : { name: body.name }),
      ...(body.notify_url === undefined ? {} : { notify_url: body.notify_url }),
      ...(body.ip_allowlist === undefined ? {} : { ip_allowlist: body.ip_allowlist }),
      ...(body.enabled_methods === undefined ? {} : { enabled_methods: body.enabled_methods }),
      ...(body.status === undefined ? {} : { status: body.status }),
      updated_at: now,
    });
    const secrets = await selectLiveSecrets(trx, [id], now);
    const after = toAppView(updated, secrets);
    await appendAudit(trx, context.clock, {
      actor,
      action: 'app.updated',
      targetType: 'app',
      targetId: id,
      merchantId: current.merchant_id,
      before: toAppView(current, secrets),
      after,
    });
    return after;
  });
}

export type RotateSecretInput = z.input<typeof rotateSecretBodySchema>;

/**
 * Makes a new secret of one kind. The ones before it keep working until now +
 * grace, so the app's operators can roll the new one out without an outage.
 * The app row is locked so two rotations of one app run one after the other.
 */
export async function rotateAppSecret(context: PlatformContext, actor: Actor, appId: string, input: RotateSecretInput): Promise<RotatedSecret> {
  const body = parseInput(rotateSecretBodySchema, input);
  return context.db.transaction().execute(async (trx) => {
    const app = await loadApp(trx, appId, { lock: 'update' });
    const now = context.clock.now();
    const before = await selectLiveSecrets(trx, [appId], now);
    await retireLiveSecrets(trx, appId, body.kind, new Date(now.getTime() + body.grace_seconds * 1000), now);
    const created = await addSecret(trx, context, app, body.kind);
    const after = await selectLiveSecrets(trx, [appId], now);
    const view = (rows: typeof after) => toAppView(app, rows).secrets;
    await appendAudit(trx, context.clock, {
      actor,
      action: 'app.secret_rotated',
      targetType: 'app',
      targetId: appId,
      merchantId: app.merchant_id,
      before: { secrets: view(before) },
      after: { secrets: view(after), kind: body.kind, grace_seconds: body.grace_seconds, new_secret_id: created.id },
    });
    return { app_id: appId, kind: body.kind, secret_id: created.id, secret: created.secret, secrets: view(after) };
  });
}

export interface LiveSecret {
  id: string;
  secret: string;
  createdAt: Date;
  /** Null for the current secret; a time for one in its grace period. */
  retiresAt: Date | null;
}

/** The app's secrets of one kind that work now, newest (current) first, opened. */
export async function getAppSecrets(context: PlatformContext, appId: string, kind: SecretKind): Promise<LiveSecret[]> {
  const rows = await selectLiveSecrets(context.db, [appId], context.clock.now(), kind);
  return rows.map((row) => ({
    id: row.id,
    secret: context.secretBox.open(row.secret_sealed, appSecretSealContext(appId, kind)),
    createdAt: row.created_at,
    retiresAt: row.retires_at,
  }));
}

/** The current webhook secret, for the notification worker to sign with. */
export async function resolveWebhookSecret(context: PlatformContext, appId: string): Promise<string> {
  const [current] = await getAppSecrets(context, appId, 'webhook');
  if (!current) throw new FenError('app_not_found', `app ${appId} has no live webhook secret`);
  return current.secret;
}

/**
 * Every live webhook secret, current first. During a rotation the notifier can
 * sign with all of them (one v1 each), so receivers that still hold the old one
 * keep accepting deliveries.
 */
export async function resolveWebhookSecrets(context: PlatformContext, appId: string): Promise<string[]> {
  return (await getAppSecrets(context, appId, 'webhook')).map((secret) => secret.secret);
}
