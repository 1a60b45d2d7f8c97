import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enqueueJob, startWorker, type WorkerHandle } from '../../src/platform/jobs/index.js';
import { startTcpProxy, type TcpProxy } from '../chaos/helpers/tcp-proxy.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';

/**
 * The job worker when PostgreSQL goes away while a job runs, so the job's
 * outcome cannot be written when it finishes. graphile-worker then gives its
 * runner up; the process must not die of it (a `fen start` runs its API in the
 * same process), and the worker must start a new runner that takes the next
 * job once the database is back. The database is taken away by a proxy in
 * front of it, at the moment the job runs.
 */
async function waitUntil(what: string, condition: () => boolean, deadlineMs = 30_000): Promise<void> {
  // Waiting for the worker's own timers in real time, bounded: not a sleep that makes time pass.
  const deadline = Date.now() + deadlineMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${deadlineMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('the job worker when the database goes away mid-job', () => {
  let database: TestDatabase;
  let proxy: TcpProxy;
  let worker: WorkerHandle | undefined;
  const logLines: string[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void logLines.push(line) });
  const logged = (text: string) => logLines.some((line) => line.includes(text));

  beforeAll(async () => {
    database = await createTestDatabase();
    const server = new URL(database.url);
    proxy = await startTcpProxy({ host: server.hostname, port: Number(server.port || 5432) });
  });

  afterAll(async () => {
    await worker?.stop();
    await proxy.close();
    await database.close();
  });

  it('survives, starts a new runner once PostgreSQL is back, and runs the next job', async () => {
    let openGate: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (openGate = resolve));
    let gateEntered = false;
    const pings: unknown[] = [];
    worker = await startWorker({
      databaseUrl: proxy.urlFor(database.url),
      concurrency: 1,
      handlers: {
        'faults.gate': async () => {
          gateEntered = true;
          await gate;
        },
        'faults.ping': async (payload) => {
          pings.push(payload);
        },
      },
      cron: [],
      logger,
      pollIntervalMs: 100,
    });
    await enqueueJob(database.db, { task: 'faults.gate', payload: {} });
    await waitUntil('the gated job to start', () => gateEntered);

    // The database disappears while the job runs; the job finishes; its outcome cannot be written.
    await proxy.refuse();
    openGate();
    await waitUntil('the runner to give the job up', () => logged('Failed to complete jobs'));
    await proxy.accept();
    await waitUntil('the worker to replace its runner', () => logged('job runner gave up'));

    await enqueueJob(database.db, { task: 'faults.ping', payload: { after: 'outage' } });
    await waitUntil('the next job to run on a new runner', () => pings.length > 0);
    expect(pings).toEqual([{ after: 'outage' }]);
    expect(logged('job runner started again')).toBe(true);
  });
});
