import { sql } from 'kysely';
import type { Db } from '../../src/platform/db/index.js';

/**
 * A fingerprint of every business table: row counts and an md5 of the rows.
 * Two equal fingerprints mean a request changed nothing. Tables that record
 * access rather than business state (sessions, nonces, idempotency claims) are
 * left out.
 */
const accessTables = new Set(['sessions', 'api_nonces', 'idempotency_keys', 'totp_used_steps', 'fen_migrations', 'fen_migrations_lock']);

export async function fingerprintDatabase(db: Db): Promise<Record<string, string>> {
  const tables = await sql<{ table_name: string }>`
    SELECT table_name FROM information_schema.tables
    WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY table_name`.execute(db);
  const fingerprint: Record<string, string> = {};
  for (const { table_name: table } of tables.rows) {
    if (accessTables.has(table)) continue;
    const result = await sql<{ digest: string | null; rows: bigint }>`
      SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) AS digest, count(*) AS rows FROM ${sql.table(table)} t`.execute(db);
    const row = result.rows[0];
    fingerprint[table] = `${row?.rows ?? 0n}:${row?.digest ?? ''}`;
  }
  return fingerprint;
}
