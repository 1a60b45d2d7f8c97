import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import { connectDatabase, type DatabaseHandle } from '../../src/platform/db/index.js';

/**
 * A fresh, migrated database of its own for one test file (a copy of the
 * template made by global-setup). Dropped again by `close()`.
 */
export interface TestDatabase extends DatabaseHandle {
  name: string;
  serverUrl: string;
  /** Runs SQL as the server's superuser, for tests that tamper with rows on purpose. */
  superuserQuery(text: string, values?: unknown[]): Promise<pg.QueryResult>;
}

async function withAdminClient<T>(serverUrl: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

export async function createTestDatabase(options: { poolSize?: number } = {}): Promise<TestDatabase> {
  const serverUrl = inject('databaseServerUrl');
  const template = inject('templateDatabase');
  const name = `fen_test_${randomBytes(6).toString('hex')}`;
  // Copying a template fails while another session is connected to it; retry briefly.
  await withAdminClient(serverUrl, async (client) => {
    for (let attempt = 0; ; attempt += 1) {
      try {
        await client.query(`CREATE DATABASE ${name} TEMPLATE ${template}`);
        return;
      } catch (error) {
        if (attempt >= 20) throw error;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  });
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  const handle = connectDatabase(url.toString(), options.poolSize ?? 10);
  return {
    ...handle,
    name,
    serverUrl,
    superuserQuery: (text, values) => handle.pool.query(text, values),
    close: async () => {
      await handle.close();
      await withAdminClient(serverUrl, (client) => client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    },
  };
}
