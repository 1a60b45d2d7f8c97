import pg from 'pg';
import { Kysely, PostgresDialect, type Transaction } from 'kysely';
import type { Database } from './schema.js';

/**
 * One pool per process. int8 columns come back as bigint (money, counts); the
 * parser is set on this pool only, so libraries sharing `pg` (graphile-worker)
 * keep their own behaviour.
 */
const int8Oid = 20;
const int8ArrayOid = 1016;

const parseBigIntArray = (text: string): bigint[] =>
  text === '{}' ? [] : text.slice(1, -1).split(',').map((item) => BigInt(item));

function typeParser(oid: number, format?: 'text' | 'binary'): (value: string) => unknown {
  if (oid === int8Oid) return (value: string) => BigInt(value);
  if (oid === int8ArrayOid) return parseBigIntArray;
  return pg.types.getTypeParser(oid, format ?? 'text') as (value: string) => unknown;
}

export type Db = Kysely<Database>;
export type DbTransaction = Transaction<Database>;
/** Either the pool or an open transaction: repositories accept both. */
export type DbExecutor = Kysely<Database> | Transaction<Database>;

export interface DatabaseHandle {
  db: Db;
  pool: pg.Pool;
  url: string;
  close(): Promise<void>;
}

export function createPool(url: string, poolSize: number): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max: poolSize,
    types: { getTypeParser: typeParser as typeof pg.types.getTypeParser },
    connectionTimeoutMillis: 10_000,
    idleTimeoutMillis: 30_000,
    application_name: 'fen',
  });
  // An idle client that loses its connection (server restart) must not crash the process.
  pool.on('error', () => {});
  // A client that loses its connection while checked out must not crash the process either.
  pool.on('connect', (client) => client.on('error', () => {}));
  return pool;
}

/**
 * A pool with pg's default type parsing, for libraries that bring their own
 * expectations (the job queue, the simulators). Like every pool here it
 * survives a lost connection instead of crashing the process.
 */
export function createPlainPool(url: string, poolSize: number, applicationName: string): pg.Pool {
  const pool = new pg.Pool({ connectionString: url, max: poolSize, application_name: applicationName, connectionTimeoutMillis: 10_000 });
  pool.on('error', () => {});
  pool.on('connect', (client) => client.on('error', () => {}));
  return pool;
}

export function connectDatabase(url: string, poolSize: number): DatabaseHandle {
  const pool = createPool(url, poolSize);
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return {
    db,
    pool,
    url,
    close: async () => {
      await db.destroy();
    },
  };
}

/** Creates a database on the server at `serverUrl` when missing; returns the URL of that database. */
export async function ensureDatabaseExists(serverUrl: string, name: string): Promise<string> {
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`invalid database name: ${name}`);
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (found.rowCount === 0) await client.query(`CREATE DATABASE ${name}`);
  } finally {
    await client.end();
  }
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
}
