import { Migrator, type MigrationResultSet } from 'kysely';
import { Logger as JobLogger, runMigrations as runJobQueueMigrations } from 'graphile-worker';
import { createPlainPool, type Db } from './connection.js';
import { migrations } from './migrations/index.js';

export interface MigrationReport {
  applied: string[];
}

/**
 * Brings the schema up to date: Fen's own migrations in order, then the job
 * queue's. Safe to run from several processes at once: Kysely takes a lock, and
 * graphile-worker does the same for its schema.
 */
export async function migrateToLatest(db: Db, databaseUrl: string): Promise<MigrationReport> {
  const migrator = new Migrator({
    db,
    provider: { getMigrations: async () => migrations },
    migrationTableName: 'fen_migrations',
    migrationLockTableName: 'fen_migrations_lock',
  });
  const result: MigrationResultSet = await migrator.migrateToLatest();
  if (result.error) {
    const failed = result.results?.find((item) => item.status === 'Error');
    const cause = result.error instanceof Error ? result.error.message : String(result.error);
    throw new Error(`migration ${failed?.migrationName ?? '(unknown)'} failed: ${cause}`);
  }
  const pool = createPlainPool(databaseUrl, 2, 'fen-migrate');
  try {
    await runJobQueueMigrations({ pgPool: pool, logger: silentJobLogger() });
  } finally {
    await pool.end();
  }
  return { applied: (result.results ?? []).filter((item) => item.status === 'Success').map((item) => item.migrationName) };
}

export function silentJobLogger(): JobLogger {
  return new JobLogger(() => () => {});
}
