import { ManualClock } from '../../src/platform/clock.js';
import { loadConfig } from '../../src/platform/config.js';
import type { PlatformContext } from '../../src/platform/context.js';
import { createLogger } from '../../src/platform/logging.js';
import { createSecretBox } from '../../src/platform/secret-box.js';
import { createTestDatabase, type TestDatabase } from './database.js';

/** A platform context on a fresh database, with a clock that moves only when told to. */
export interface TestContext extends PlatformContext {
  clock: ManualClock;
  database: TestDatabase;
  close(): Promise<void>;
}

export const testMasterKey = Buffer.alloc(32, 7);

export async function createTestContext(options: { now?: string; poolSize?: number } = {}): Promise<TestContext> {
  const database = await createTestDatabase({ poolSize: options.poolSize ?? 10 });
  const clock = new ManualClock(options.now ?? new Date().toISOString());
  const config = { ...loadConfig({ FEN_DATA_DIR: '/tmp/fen-test-unused', LOG_LEVEL: 'silent' }), databaseUrl: database.url };
  return {
    db: database.db,
    databaseUrl: database.url,
    clock,
    secretBox: createSecretBox({ current: testMasterKey }),
    logger: createLogger('silent'),
    config,
    database,
    close: () => database.close(),
  };
}
