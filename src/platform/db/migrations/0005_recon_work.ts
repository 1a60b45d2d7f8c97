import { sql, type Kysely } from 'kysely';

/**
 * Scratch space for reconciliation runs. While a bill is parsed, its lines
 * are copied into PostgreSQL (COPY FROM STDIN) on a connection of their own,
 * beside the run's main connection, which meanwhile loads Fen's side of the
 * day: the two proceed on two cores at once. A temporary table belongs to one
 * connection, so the lines go into an UNLOGGED table of this schema instead,
 * one per batch (`recon_work.lines_<batch id>`), made by the run and dropped
 * by it as soon as the lines have been paired. Nothing here is data: the
 * tables are not WAL-logged, a crash empties them, and a run of the same
 * batch replaces whatever an interrupted one left behind. Keeping them out of
 * `public` keeps them out of everything that lists Fen's tables.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`CREATE SCHEMA recon_work`.execute(db);
}
