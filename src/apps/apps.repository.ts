import { sql, type Insertable, type Selectable, type Updateable } from 'kysely';
import type { AppSecretsTable, AppsTable, DbExecutor } from '../platform/db/index.js';
import type { AppView, SecretKind } from './apps.schemas.js';

export type AppRow = Selectable<AppsTable>;
export type AppSecretRow = Selectable<AppSecretsTable>;

export async function insertApp(executor: DbExecutor, row: Insertable<AppsTable>): Promise<AppRow> {
  return executor.insertInto('apps').values(row).returningAll().executeTakeFirstOrThrow();
}

export async function findApp(executor: DbExecutor, id: string, options: { lock?: 'update' } = {}): Promise<AppRow | undefined> {
  let statement = executor.selectFrom('apps').selectAll().where('id', '=', id);
  if (options.lock === 'update') statement = statement.forUpdate();
  return statement.executeTakeFirst();
}

export interface AppForAuthentication extends AppRow {
  merchant_status: string | null;
  /** The sealed API secrets still live at the given time, newest first. */
  api_secrets_sealed: string[];
}

/**
 * Everything the merchant-API authenticator needs, in one round trip: the app,
 * its merchant's status and its live API secrets. It runs before every signed
 * request, so it joins the merchants table here rather than asking the
 * merchants module in a second query.
 */
export async function findAppForAuthentication(executor: DbExecutor, id: string, now: Date): Promise<AppForAuthentication | undefined> {
  return executor
    .selectFrom('apps')
    .leftJoin('merchants', 'merchants.id', 'apps.merchant_id')
    .selectAll('apps')
    .select('merchants.status as merchant_status')
    .select(
      sql<string[]>`coalesce((SELECT array_agg(s.secret_sealed ORDER BY s.created_at DESC, s.id DESC) FROM app_secrets s
        WHERE s.app_id = apps.id AND s.kind = 'api' AND (s.retires_at IS NULL OR s.retires_at > ${now})), '{}')`.as('api_secrets_sealed'),
    )
    .where('apps.id', '=', id)
    .executeTakeFirst();
}

export async function updateAppRow(executor: DbExecutor, id: string, changes: Updateable<AppsTable>): Promise<AppRow> {
  return executor.updateTable('apps').set(changes).where('id', '=', id).returningAll().executeTakeFirstOrThrow();
}

/** Newest first, by id (ids are time-sortable). */
export async function selectApps(
  executor: DbExecutor,
  query: { merchantId?: string | undefined; beforeId?: string | undefined; limit: number },
): Promise<{ rows: AppRow[]; hasMore: boolean }> {
  let statement = executor.selectFrom('apps').selectAll().orderBy('id', 'desc').limit(query.limit + 1);
  if (query.merchantId) statement = statement.where('merchant_id', '=', query.merchantId);
  if (query.beforeId) statement = statement.where('id', '<', query.beforeId);
  const rows = await statement.execute();
  return { rows: rows.slice(0, query.limit), hasMore: rows.length > query.limit };
}

export async function insertSecret(executor: DbExecutor, row: Insertable<AppSecretsTable>): Promise<void> {
  await executor.insertInto('app_secrets').values(row).execute();
}

/** Secrets that still work at `now`: the current one and any still in their grace period, newest first. */
export async function selectLiveSecrets(
  executor: DbExecutor,
  appIds: readonly string[],
  now: Date,
  kind?: SecretKind,
): Promise<AppSecretRow[]> {
  if (appIds.length === 0) return [];
  let statement = executor
    .selectFrom('app_secrets')
    .selectAll()
    .where('app_id', 'in', appIds)
    .where((where) => where.or([where('retires_at', 'is', null), where('retires_at', '>', now)]))
    .orderBy('created_at', 'desc')
    .orderBy('id', 'desc');
  if (kind) statement = statement.where('kind', '=', kind);
  return statement.execute();
}

/**
 * Gives every live secret of one kind a retirement time. A secret already in
 * grace from an earlier rotation keeps its earlier time: a second rotation never
 * extends the life of an old secret.
 */
export async function retireLiveSecrets(executor: DbExecutor, appId: string, kind: SecretKind, retiresAt: Date, now: Date): Promise<void> {
  await executor
    .updateTable('app_secrets')
    .set({ retires_at: sql<Date>`least(coalesce(retires_at, ${retiresAt}::timestamptz), ${retiresAt}::timestamptz)` })
    .where('app_id', '=', appId)
    .where('kind', '=', kind)
    .where((where) => where.or([where('retires_at', 'is', null), where('retires_at', '>', now)]))
    .execute();
}

export function toAppView(row: AppRow, secrets: readonly AppSecretRow[]): AppView {
  return {
    id: row.id,
    merchant_id: row.merchant_id,
    name: row.name,
    status: row.status,
    notify_url: row.notify_url,
    ip_allowlist: row.ip_allowlist,
    enabled_methods: row.enabled_methods,
    secrets: secrets
      .filter((secret) => secret.app_id === row.id)
      .map((secret) => ({
        id: secret.id,
        kind: secret.kind,
        created_at: secret.created_at.toISOString(),
        retires_at: secret.retires_at ? secret.retires_at.toISOString() : null,
      })),
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
  };
}
