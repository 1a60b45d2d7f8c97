import { sql } from 'kysely';
import { jobHandlers } from '../../src/main/jobs.js';
import type { PlatformContext } from '../../src/platform/context.js';

/**
 * Runs the queued background jobs that are due by the test's clock, with the
 * worker's real handlers, oldest first, until none is due. graphile-worker
 * compares run_at with the database's own clock, which a test cannot move; so
 * this reads the queue itself (its private tables, a test-only shortcut) and
 * completes each job through graphile-worker's own function.
 */
export async function runQueuedJobs(context: PlatformContext, options: { tasks?: string[]; roundsMax?: number } = {}): Promise<string[]> {
  const handlers = jobHandlers(context);
  const ran: string[] = [];
  const roundsMax = options.roundsMax ?? 500;
  for (let round = 0; round < roundsMax; round += 1) {
    const due = await sql<{ id: string; task: string; payload: unknown }>`
      SELECT j.id::text AS id, t.identifier AS task, j.payload
      FROM graphile_worker._private_jobs j JOIN graphile_worker._private_tasks t ON t.id = j.task_id
      WHERE j.run_at <= ${context.clock.now()} AND j.locked_at IS NULL AND j.attempts < j.max_attempts
        AND (${options.tasks ?? null}::text[] IS NULL OR t.identifier = ANY (${options.tasks ?? null}::text[]))
      ORDER BY j.run_at, j.id LIMIT 1`.execute(context.db);
    const job = due.rows[0];
    if (!job) return ran;
    const handler = handlers[job.task];
    if (!handler) throw new Error(`no handler for queued task ${job.task}`);
    await sql`SELECT graphile_worker.complete_jobs(ARRAY[${job.id}::bigint])`.execute(context.db);
    await handler(job.payload, { id: job.id, attempts: 1 });
    ran.push(job.task);
  }
  throw new Error(`jobs still due after ${roundsMax} rounds: a job keeps re-queueing itself`);
}

export async function queuedTasks(context: PlatformContext): Promise<Array<{ task: string; runAt: Date; key: string | null }>> {
  const rows = await sql<{ task: string; run_at: Date; key: string | null }>`
    SELECT t.identifier AS task, j.run_at, j.key FROM graphile_worker._private_jobs j JOIN graphile_worker._private_tasks t ON t.id = j.task_id ORDER BY j.run_at`.execute(context.db);
  return rows.rows.map((row) => ({ task: row.task, runAt: row.run_at, key: row.key }));
}
