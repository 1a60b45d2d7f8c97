import { systemClock, type Clock } from '../platform/clock.js';
import type { FenConfig } from '../platform/config.js';
import type { PlatformContext } from '../platform/context.js';
import { connectDatabase, ensureDatabaseExists, migrateToLatest, startEmbeddedPostgres, type EmbeddedDatabase } from '../platform/db/index.js';
import { createLogger, type Logger } from '../platform/logging.js';
import { loadSecretBox } from '../platform/master-key.js';
import path from 'node:path';

/**
 * Opens everything a role needs: the database (the configured one, or an
 * embedded PostgreSQL under the data directory), the schema brought up to date,
 * the secret box and the logger. Every composition root starts here.
 */
export interface Platform {
  context: PlatformContext;
  embedded: EmbeddedDatabase | undefined;
  close(): Promise<void>;
}

const embeddedDatabaseName = 'fen';

async function resolveDatabaseUrl(config: FenConfig, logger: Logger): Promise<{ url: string; embedded: EmbeddedDatabase | undefined }> {
  if (config.databaseUrl) return { url: config.databaseUrl, embedded: undefined };
  const startedMs = Date.now();
  const embedded = await startEmbeddedPostgres({ dataDirectory: path.join(config.dataDirectory, 'postgres') });
  const url = await ensureDatabaseExists(embedded.url, embeddedDatabaseName);
  logger.info({ duration_ms: Date.now() - startedMs, data_directory: config.dataDirectory }, 'embedded PostgreSQL ready');
  return { url, embedded };
}

export async function openPlatform(
  config: FenConfig,
  options: { clock?: Clock; logger?: Logger; migrate?: boolean; poolSize?: number } = {},
): Promise<Platform> {
  const logger = options.logger ?? createLogger(config.logLevel);
  const { url, embedded } = await resolveDatabaseUrl(config, logger);
  const handle = connectDatabase(url, options.poolSize ?? config.databasePoolSize);
  try {
    if (options.migrate !== false) {
      const report = await migrateToLatest(handle.db, url);
      if (report.applied.length > 0) logger.info({ applied: report.applied }, 'migrations applied');
    }
  } catch (error) {
    await handle.close();
    await embedded?.stop();
    throw error;
  }
  const context: PlatformContext = {
    db: handle.db,
    databaseUrl: url,
    clock: options.clock ?? systemClock,
    secretBox: loadSecretBox(config),
    logger,
    config,
  };
  return {
    context,
    embedded,
    close: async () => {
      await handle.close();
      await embedded?.stop();
    },
  };
}
