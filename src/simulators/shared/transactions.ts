import pg from 'pg';

/**
 * Database plumbing that every simulator needs in the same way: one schema of
 * its own, created at start, and transactions around each change of state.
 */

/** The simulators' schemas. A closed list, because the names are written into SQL text, never passed as parameters. */
export type SimulatorSchema = 'sim_alipay' | 'sim_wechatpay' | 'sim_unionpay';

/** A pool or a checked-out client: functions that take one run either alone or inside the caller's transaction. */
export type Executor = pg.Pool | pg.PoolClient;

export async function withTransaction<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    // The original error is what matters; a failed ROLLBACK on a broken connection would only hide it.
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}

/**
 * Runs a simulator's CREATE … IF NOT EXISTS statements under an advisory lock
 * named after its schema. Several simulator processes may start at once, and
 * concurrent IF NOT EXISTS statements on the same names can still collide in
 * PostgreSQL's catalogue; the lock makes them take turns.
 */
export async function ensureSchemaOnce(pool: pg.Pool, schema: SimulatorSchema, statements: string): Promise<void> {
  await withTransaction(pool, async (client) => {
    await client.query(`SELECT pg_advisory_xact_lock(hashtext('${schema}'))`);
    await client.query(statements);
  });
}

export interface SimulatorPool {
  pool: pg.Pool;
  /** Set when the simulator opened the pool itself, so it knows to end it on close. */
  ownPool: pg.Pool | undefined;
}

/**
 * The caller's pool, or one of the simulator's own on `databaseUrl`. An own
 * pool ignores connection errors: a PostgreSQL restart ends every connection
 * with an 'error' event, which, unhandled, crashed `fen sim`; the pool drops
 * the dead client and connects afresh on the next query (found by
 * test/chaos/postgres-restart.test.ts).
 */
export function openSimulatorPool(options: { pool?: pg.Pool; databaseUrl?: string }, applicationName?: string): SimulatorPool {
  if (options.pool) return { pool: options.pool, ownPool: undefined };
  const ownPool = new pg.Pool({ connectionString: options.databaseUrl, max: 5, ...(applicationName ? { application_name: applicationName } : {}) });
  ownPool.on('error', () => {});
  ownPool.on('connect', (client) => client.on('error', () => {}));
  return { pool: ownPool, ownPool };
}
