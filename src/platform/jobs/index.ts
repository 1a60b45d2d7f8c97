import type pg from 'pg';
import { sql } from 'kysely';
import { Logger as JobLogger, parseCronItems, run, runOnce, type CronItem, type Runner, type Task, type TaskList } from 'graphile-worker';
import { normalise } from '../canonical-json.js';
import { createPlainPool, type DbExecutor } from '../db/index.js';
import type { Logger } from '../logging.js';

/**
 * Background work is a job queue in the same PostgreSQL (graphile-worker), so a
 * job is added in the same transaction as the state change that needs it: both
 * commit, or neither does.
 */
export interface JobSpec {
  task: string;
  payload: unknown;
  /** When to run; defaults to now (the database's clock). */
  runAt?: Date;
  /** Replaces a pending job with the same key instead of adding a second one. */
  jobKey?: string;
  maxAttempts?: number;
  /** Jobs in one queue run one at a time, in order. */
  queueName?: string;
}

export async function enqueueJob(executor: DbExecutor, spec: JobSpec): Promise<void> {
  const payload = JSON.stringify(normalise(spec.payload ?? {}));
  await sql`SELECT graphile_worker.add_job(
      identifier => ${spec.task},
      payload => ${payload}::json,
      run_at => ${spec.runAt ?? null}::timestamptz,
      max_attempts => ${spec.maxAttempts ?? 25}::int,
      job_key => ${spec.jobKey ?? null}::text,
      queue_name => ${spec.queueName ?? null}::text
    )`.execute(executor);
}

export type JobHandler = (payload: unknown, job: { id: string; attempts: number }) => Promise<void>;

export interface CronSpec {
  task: string;
  /** Five-field crontab pattern in UTC. */
  pattern: string;
  identifier?: string;
}

function toTaskList(handlers: Record<string, JobHandler>): TaskList {
  const list: TaskList = {};
  for (const [name, handler] of Object.entries(handlers)) {
    const task: Task = async (payload, helpers) => handler(payload, { id: String(helpers.job.id), attempts: helpers.job.attempts });
    list[name] = task;
  }
  return list;
}

function jobLogger(logger: Logger): JobLogger {
  return new JobLogger((scope) => (level, message, meta) => {
    const fields = { job_scope: scope, ...(meta ?? {}) };
    if (level === 'error') logger.error(fields, message);
    else if (level === 'warning') logger.warn(fields, message);
    else logger.debug(fields, message);
  });
}

/** graphile-worker gets a pool of its own, with pg's default type parsing. */
function workerPool(databaseUrl: string, size: number): pg.Pool {
  return createPlainPool(databaseUrl, size, 'fen-worker');
}

export interface WorkerHandle {
  stop(): Promise<void>;
  /** Resolves when the runner stops by itself (a fatal error). */
  promise: Promise<void>;
}

export async function startWorker(options: {
  databaseUrl: string;
  concurrency: number;
  handlers: Record<string, JobHandler>;
  cron: CronSpec[];
  logger: Logger;
  pollIntervalMs?: number;
}): Promise<WorkerHandle> {
  const pool = workerPool(options.databaseUrl, options.concurrency + 2);
  const cronItems: CronItem[] = options.cron.map((item) => ({
    task: item.task,
    match: item.pattern,
    identifier: item.identifier ?? item.task,
    options: { backfillPeriod: 0 },
  }));
  const runner: Runner = await run({
    pgPool: pool,
    concurrency: options.concurrency,
    noHandleSignals: true,
    pollInterval: options.pollIntervalMs ?? 1000,
    taskList: toTaskList(options.handlers),
    parsedCronItems: parseCronItems(cronItems),
    logger: jobLogger(options.logger),
  });
  return {
    promise: runner.promise,
    stop: async () => {
      await runner.stop();
      await pool.end();
    },
  };
}

/** Runs every job that is due now, then returns: for tests and one-shot CLI commands. */
export async function runDueJobs(options: { databaseUrl: string; handlers: Record<string, JobHandler>; logger: Logger }): Promise<void> {
  const pool = workerPool(options.databaseUrl, 2);
  try {
    await runOnce({ pgPool: pool, taskList: toTaskList(options.handlers), logger: jobLogger(options.logger) });
  } finally {
    await pool.end();
  }
}
