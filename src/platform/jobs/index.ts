import type pg from 'pg';
import { sql, type RawBuilder } from 'kysely';
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

/**
 * The add_job call as an expression, for a statement that writes a row and
 * queues its job in one round trip (`FROM inserted, LATERAL (SELECT …)`), so
 * the job exists exactly when the row does.
 */
export function addJobExpression(spec: JobSpec): RawBuilder<unknown> {
  const payload = JSON.stringify(normalise(spec.payload ?? {}));
  return sql`graphile_worker.add_job(
      identifier => ${spec.task},
      payload => ${payload}::json,
      run_at => ${spec.runAt ?? null}::timestamptz,
      max_attempts => ${spec.maxAttempts ?? 25}::int,
      job_key => ${spec.jobKey ?? null}::text,
      queue_name => ${spec.queueName ?? null}::text
    )`;
}

export async function enqueueJob(executor: DbExecutor, spec: JobSpec): Promise<void> {
  await sql`SELECT ${addJobExpression(spec)}`.execute(executor);
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
  /** Resolves when the worker has been stopped. */
  promise: Promise<void>;
}

/** How long the worker waits before it replaces a runner that stopped on an error, doubling while the database is away. */
const runnerRestartDelayFirstMs = 1000;
const runnerRestartDelayMaxMs = 30_000;

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
  const start = () =>
    run({
      pgPool: pool,
      concurrency: options.concurrency,
      noHandleSignals: true,
      pollInterval: options.pollIntervalMs ?? 1000,
      taskList: toTaskList(options.handlers),
      parsedCronItems: parseCronItems(cronItems),
      logger: jobLogger(options.logger),
      // Unbatched, graphile-worker writes a job's outcome in a promise nobody awaits: when PostgreSQL restarted while
      // a job ran, the refused connection became an unhandled rejection that ended the process — `fen start` and its
      // API with it (found by test/chaos/postgres-restart.test.ts). Batched (even with no delay), the failure is
      // reported as a pool:fatalError event instead, and the worker below replaces the runner.
      preset: { worker: { completeJobBatchDelay: 0, failJobBatchDelay: 0 } },
    });
  // A runner that gave up on a lost database — it stopped, or it reported a fatal error and hangs in its shutdown
  // while the database is away — is killed without waiting for it and replaced, with a growing delay while the
  // database stays away. The job whose outcome was lost stays locked until graphile-worker's reset (4 hours) and
  // then runs again: every task is safe to run twice, and the minute sweep covers what it was doing meanwhile.
  let runner: Runner = await start();
  let stopping = false;
  let restartTimer: NodeJS.Timeout | undefined;
  let stopped: () => void = () => undefined;
  const promise = new Promise<void>((resolve) => (stopped = resolve));
  const watch = (current: Runner) => {
    let replaced = false;
    const replace = (error?: unknown) => {
      if (replaced || stopping) return;
      replaced = true;
      options.logger.error({ err: error }, 'job runner gave up; starting a new one');
      current.kill().catch(() => undefined);
      scheduleRestart(0);
    };
    current.promise.then(() => replace(), replace);
    current.events.on('pool:fatalError', ({ error }) => replace(error));
  };
  const scheduleRestart = (attempt: number) => {
    const delayMs = Math.min(runnerRestartDelayMaxMs, runnerRestartDelayFirstMs * 2 ** attempt);
    restartTimer = setTimeout(() => {
      restartTimer = undefined;
      if (stopping) return;
      start().then(
        (next) => {
          // Stopped while the new runner was starting: it must not outlive the worker.
          if (stopping) return void next.stop().catch(() => undefined);
          runner = next;
          watch(next);
          options.logger.info({ attempt: attempt + 1 }, 'job runner started again');
        },
        (error: unknown) => {
          options.logger.warn({ err: error, attempt: attempt + 1 }, 'job runner could not start yet');
          scheduleRestart(attempt + 1);
        },
      );
    }, delayMs);
  };
  watch(runner);
  return {
    promise,
    stop: async () => {
      stopping = true;
      if (restartTimer) clearTimeout(restartTimer);
      // A runner that already stopped on an error has nothing left to stop.
      await runner.stop().catch(() => undefined);
      await pool.end();
      stopped();
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
