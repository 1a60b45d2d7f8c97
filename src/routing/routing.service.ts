import { sql } from 'kysely';
import { z } from 'zod';
import { appendAudit } from '../audit/index.js';
import { createConnector, isImplementedChannel, type ChannelConnector, type ImplementedChannel } from '../channels/index.js';
import type { Actor } from '../platform/actor.js';
import type { PlatformContext } from '../platform/context.js';
import type { ChannelAccountsTable } from '../platform/db/index.js';
import { FenError } from '../platform/errors.js';
import { newId } from '../platform/ids.js';
import { limits } from '../platform/limits.js';
import { channelSettingsSchemas, connectorConfig, methodsOf } from './channel-settings.js';

/**
 * Channel accounts (credentials for one channel, shared or a merchant's own) and
 * routes (app × method → ordered accounts). A channel account whose calls keep
 * failing is taken out of rotation for a while (a circuit breaker) and new
 * payments go to the next account; a payment already sent somewhere is never
 * sent to a second channel.
 */
export interface ChannelAccountRow {
  id: string;
  channel: ChannelAccountsTable['channel'];
  name: string;
  mode: 'shared' | 'own';
  merchant_id: string | null;
  status: 'active' | 'disabled';
  methods: string[];
  settings: Record<string, unknown>;
  secrets_sealed: string;
  consecutive_failures: number;
  circuit_open_until: Date | null;
  created_at: Date;
  updated_at: Date;
}

export interface CreateChannelAccountInput {
  channel: string;
  name: string;
  mode: 'shared' | 'own';
  merchantId: string | null;
  methods: string[];
  settings: unknown;
  secrets: unknown;
}

function secretsContext(id: string): string {
  return `channel_account:${id}`;
}

function parseChannelInput(input: CreateChannelAccountInput): { channel: ImplementedChannel; settings: unknown; secrets: unknown } {
  if (!isImplementedChannel(input.channel)) throw new FenError('invalid_request', `channel ${input.channel} is not supported`);
  const schemas = channelSettingsSchemas[input.channel];
  const settings = schemas.settings.safeParse(input.settings);
  if (!settings.success) throw new FenError('invalid_request', `settings: ${z.prettifyError(settings.error)}`);
  const secrets = schemas.secrets.safeParse(input.secrets);
  if (!secrets.success) throw new FenError('invalid_request', `secrets: ${z.prettifyError(secrets.error)}`);
  const offered = methodsOf(input.channel);
  const foreign = input.methods.filter((method) => !offered.includes(method));
  if (foreign.length > 0) throw new FenError('invalid_request', `channel ${input.channel} does not offer ${foreign.join(', ')}`);
  if ((input.mode === 'own') !== (input.merchantId !== null)) throw new FenError('invalid_request', 'an own account names its merchant; a shared account names none');
  return { channel: input.channel, settings: settings.data, secrets: secrets.data };
}

export async function createChannelAccount(context: PlatformContext, actor: Actor, input: CreateChannelAccountInput): Promise<ChannelAccountRow> {
  const parsed = parseChannelInput(input);
  const id = newId('channelAccount');
  const now = context.clock.now();
  return context.db.transaction().execute(async (trx) => {
    // An own account names a merchant that must exist: without this check the
    // foreign key refused the insert and the operator got a 500. Found by
    // test/fuzz/operator-api.test.ts (POST /admin/v1/channel-accounts, mode own,
    // a well-formed merchant id that does not exist).
    if (input.merchantId !== null && !(await trx.selectFrom('merchants').select('id').where('id', '=', input.merchantId).executeTakeFirst())) {
      throw new FenError('merchant_not_found', `no merchant ${input.merchantId}`);
    }
    const row = await trx
      .insertInto('channel_accounts')
      .values({
        id,
        channel: parsed.channel,
        name: input.name,
        mode: input.mode,
        merchant_id: input.merchantId,
        status: 'active',
        methods: input.methods,
        settings: JSON.stringify(parsed.settings),
        secrets_sealed: context.secretBox.seal(JSON.stringify(parsed.secrets), secretsContext(id)),
        created_at: now,
        updated_at: now,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    await appendAudit(trx, context.clock, {
      actor,
      action: 'channel_account.created',
      targetType: 'channel_account',
      targetId: id,
      merchantId: input.merchantId,
      after: { channel: parsed.channel, name: input.name, mode: input.mode, methods: input.methods, settings: parsed.settings },
    });
    return row as ChannelAccountRow;
  });
}

export async function getChannelAccount(context: PlatformContext, id: string): Promise<ChannelAccountRow> {
  const row = await context.db.selectFrom('channel_accounts').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw new FenError('not_found', `no channel account ${id}`);
  return row as ChannelAccountRow;
}

export async function setChannelAccountStatus(context: PlatformContext, actor: Actor, id: string, status: 'active' | 'disabled'): Promise<ChannelAccountRow> {
  return context.db.transaction().execute(async (trx) => {
    const before = await trx.selectFrom('channel_accounts').select(['status']).where('id', '=', id).forUpdate().executeTakeFirst();
    if (!before) throw new FenError('not_found', `no channel account ${id}`);
    const row = await trx
      .updateTable('channel_accounts')
      .set({ status, updated_at: context.clock.now(), consecutive_failures: 0, circuit_open_until: null })
      .where('id', '=', id)
      .returningAll()
      .executeTakeFirstOrThrow();
    await appendAudit(trx, context.clock, { actor, action: `channel_account.${status === 'active' ? 'enabled' : 'disabled'}`, targetType: 'channel_account', targetId: id, before, after: { status } });
    return row as ChannelAccountRow;
  });
}

/** Replaces the ordered accounts for one app × method. */
export async function setPaymentRoute(
  context: PlatformContext,
  actor: Actor,
  route: { appId: string; merchantId: string; method: string; channelAccountIds: string[] },
): Promise<void> {
  await context.db.transaction().execute(async (trx) => {
    await trx.deleteFrom('payment_routes').where('app_id', '=', route.appId).where('method', '=', route.method).execute();
    if (route.channelAccountIds.length > 0) {
      await trx
        .insertInto('payment_routes')
        .values(route.channelAccountIds.map((accountId, priority) => ({ app_id: route.appId, merchant_id: route.merchantId, method: route.method, channel_account_id: accountId, priority })))
        .execute();
    }
    await appendAudit(trx, context.clock, { actor, action: 'payment_route.set', targetType: 'app', targetId: route.appId, merchantId: route.merchantId, after: { method: route.method, channel_account_ids: route.channelAccountIds } });
  });
}

/**
 * The account a new payment goes to: the app's route for the method in
 * priority order, else the platform's shared accounts offering it. Accounts
 * whose circuit is open are passed over while another is usable.
 */
export async function chooseChannelAccount(context: PlatformContext, options: { appId: string; merchantId: string; method: string }): Promise<ChannelAccountRow | undefined> {
  const now = context.clock.now();
  // One round trip: the app's route when it has one (tier 0), else the shared accounts (tier 1).
  const candidates = await sql<ChannelAccountRow & { priority: number }>`
    WITH routed AS (
      SELECT c.*, r.priority, 0 AS tier, NULL::timestamptz AS sort_time FROM payment_routes r JOIN channel_accounts c ON c.id = r.channel_account_id
      WHERE r.app_id = ${options.appId} AND r.method = ${options.method} AND c.status = 'active'
        AND ${options.method} = ANY (c.methods) AND (c.mode = 'shared' OR c.merchant_id = ${options.merchantId}))
    SELECT * FROM routed
    UNION ALL
    SELECT c.*, 0 AS priority, 1 AS tier, c.created_at AS sort_time FROM channel_accounts c
    WHERE c.status = 'active' AND c.mode = 'shared' AND ${options.method} = ANY (c.methods) AND NOT EXISTS (SELECT 1 FROM routed)
    ORDER BY tier, priority, sort_time, id`.execute(context.db);
  const rows = candidates.rows;
  const closed = rows.find((row) => row.circuit_open_until === null || row.circuit_open_until <= now);
  return closed ?? rows.sort((left, right) => (left.circuit_open_until?.getTime() ?? 0) - (right.circuit_open_until?.getTime() ?? 0))[0];
}

/**
 * Counts a call's outcome for the circuit breaker: an unknown answer is a
 * failure, anything definite a success. A success on an account that had no
 * failures when it was chosen writes nothing: that is nearly every call, and
 * it saves a statement on the payment's path.
 */
export async function recordChannelCall(context: PlatformContext, account: Pick<ChannelAccountRow, 'id' | 'consecutive_failures'>, outcome: 'ok' | 'failed'): Promise<void> {
  if (outcome === 'ok') {
    if (account.consecutive_failures === 0) return;
    await context.db.updateTable('channel_accounts').set({ consecutive_failures: 0, circuit_open_until: null }).where('id', '=', account.id).where('consecutive_failures', '>', 0).execute();
    return;
  }
  const openUntil = new Date(context.clock.now().getTime() + limits.circuitOpenSeconds * 1000);
  await sql`
    UPDATE channel_accounts SET consecutive_failures = consecutive_failures + 1,
      circuit_open_until = CASE WHEN consecutive_failures + 1 >= ${limits.circuitFailuresToOpen} THEN ${openUntil}::timestamptz ELSE circuit_open_until END
    WHERE id = ${account.id}`.execute(context.db);
}

const connectorCache = new Map<string, { version: number; connector: ChannelConnector }>();

/** A connector for the account, rebuilt when the account changes; keys are opened only here. */
export function connectorFor(context: PlatformContext, account: ChannelAccountRow): ChannelConnector {
  const cacheKey = `${context.databaseUrl}|${account.id}`;
  const cached = connectorCache.get(cacheKey);
  if (cached && cached.version === account.updated_at.getTime()) return cached.connector;
  if (!isImplementedChannel(account.channel)) throw new FenError('service_unavailable', `channel ${account.channel} has no connector yet`);
  const secrets: unknown = JSON.parse(context.secretBox.open(account.secrets_sealed, secretsContext(account.id)));
  const config = connectorConfig(account.channel, { channelAccountId: account.id, settings: account.settings, secrets, publicUrl: context.config.publicUrl });
  const connector = createConnector(account.channel, config, { logger: context.logger, clock: context.clock });
  connectorCache.set(cacheKey, { version: account.updated_at.getTime(), connector });
  return connector;
}
