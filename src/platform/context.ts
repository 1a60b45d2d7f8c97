import type { Clock } from './clock.js';
import type { FenConfig } from './config.js';
import type { Db } from './db/index.js';
import type { Logger } from './logging.js';
import type { SecretBox } from './secret-box.js';

/** What every service needs from the platform; built once per process by a composition root. */
export interface PlatformContext {
  db: Db;
  databaseUrl: string;
  clock: Clock;
  secretBox: SecretBox;
  logger: Logger;
  config: FenConfig;
}
