export { connectDatabase, createPlainPool, createPool, ensureDatabaseExists } from './connection.js';
export type { Db, DbExecutor, DbTransaction, DatabaseHandle } from './connection.js';
export { startEmbeddedPostgres, EmbeddedDatabaseError } from './embedded.js';
export type { EmbeddedDatabase } from './embedded.js';
export { migrateToLatest, silentJobLogger } from './migrate.js';
export type * from './schema.js';
