import { sql } from 'kysely';
import type { Db } from '../../../src/platform/db/index.js';
import { fingerprintDatabase } from '../../helpers/snapshot.js';

/**
 * The database fingerprint the fuzzer compares around rejected requests: the
 * shared fingerprintDatabase, less two kinds of row that a refused request is
 * meant to leave behind (DESIGN.md §3.5 and §6):
 * - the audit record of a failed sign-in (`operator.sign_in_failed`), which the
 *   lock-out and the audit trail depend on, with the audit chain's head that
 *   moves with it;
 * - the security alert raised for a channel notification that failed verification.
 * Everything else a refused request touches counts as a change.
 */
const securityRecords: Record<string, string> = {
  audit_log: "action = 'operator.sign_in_failed'",
  alerts: "kind = 'forged_notification'",
};

/** Derived from audit_log alone (its last sequence number and hash). */
const derivedTables = ['audit_head'];

export type Fingerprint = Record<string, string>;

async function tableDigest(db: Db, table: string): Promise<string> {
  const predicate = securityRecords[table];
  const result = await sql<{ digest: string | null; rows: bigint }>`
    SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) AS digest, count(*) AS rows
    FROM ${sql.table(table)} t WHERE ${predicate ? sql`NOT (${sql.raw(predicate)})` : sql`true`}`.execute(db);
  const row = result.rows[0];
  return `${row?.rows ?? 0n}:${row?.digest ?? ''}`;
}

/** Around batches: the shared fingerprintDatabase, with the security records taken out. */
export async function fuzzFingerprint(db: Db): Promise<Fingerprint> {
  const fingerprint = await fingerprintDatabase(db);
  for (const table of derivedTables) delete fingerprint[table];
  for (const table of Object.keys(securityRecords)) if (table in fingerprint) fingerprint[table] = await tableDigest(db, table);
  return fingerprint;
}

/**
 * Around single requests, where one is taken for every request that may be
 * accepted: the same tables (the ones fingerprintDatabase reads) and the same
 * security records left out, but one statement for all of them and an
 * order-free digest (a row count and a sum of 64-bit row hashes) instead of
 * sorting every table, because at hundreds per run the full fingerprint would
 * be most of the fuzzer's time. Its values compare only with each other.
 */
export async function fastFuzzFingerprint(db: Db, tables: readonly string[]): Promise<Fingerprint> {
  const parts = tables.map((table) => {
    const predicate = securityRecords[table];
    return sql`SELECT ${table}::text AS table_name, count(*)::text AS rows, coalesce(sum(hashtextextended(t::text, 0)::numeric), 0)::text AS digest
      FROM ${sql.table(table)} t WHERE ${predicate ? sql`NOT (${sql.raw(predicate)})` : sql`true`}`;
  });
  const result = await sql<{ table_name: string; rows: string; digest: string }>`${sql.join(parts, sql` UNION ALL `)}`.execute(db);
  return Object.fromEntries(result.rows.map((row) => [row.table_name, `${row.rows}:${row.digest}`]));
}

/** The tables whose fingerprints differ, for a report that says where to look. */
export function changedTables(before: Fingerprint, after: Fingerprint): string[] {
  const tables = new Set([...Object.keys(before), ...Object.keys(after)]);
  return [...tables].filter((table) => before[table] !== after[table]).sort();
}
