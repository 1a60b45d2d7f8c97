import path from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitForOk } from '../helpers/process.js';
import { startLoad } from './helpers/load.js';
import { chaosSeed, seededRandom } from './helpers/random.js';
import { startChaosStack, type ChaosStack } from './helpers/stack.js';
import { recoverAndVerify } from './helpers/verify.js';

/**
 * The database restarts under load (three times): every connection of every
 * Fen process is cut, and for a moment none can be made. The processes are
 * not restarted — they must ride it out: a request that needed the database
 * meanwhile fails with Fen's error body (500 internal_error or 503
 * service_unavailable), never hangs and never half-applies, and once the
 * server is back the same processes serve payments again. Then the same
 * checks as after the kills.
 */
const restartRounds = 3;
const seed = chaosSeed();

describe('PostgreSQL restarted under load', () => {
  let stack: ChaosStack;
  let passed = false;

  beforeAll(async () => {
    stack = await startChaosStack('postgres');
  });

  afterAll(async () => stack?.close({ passed }));

  it(`keeps every acknowledged change and recovers without a process restart, ${restartRounds} restarts (seed ${seed})`, async () => {
    const { deployment, world, postgres } = stack;
    const random = seededRandom(seed).fork('postgres-restart');
    console.log(`[chaos] postgres-restart seed=${seed} (replay with CHAOS_SEED=${seed}); files in ${postgres.directory}`);
    const startedMs = Date.now();
    const load = startLoad({
      client: world.client,
      random: random.fork('load'),
      label: `pg-${seed}`,
      concurrency: 6,
      ackFile: path.join(postgres.directory, 'acks.jsonl'),
      acceptableServerErrors: ['internal_error', 'service_unavailable'],
    });
    const schedule = random.fork('restarts');
    let lastRestartAt = new Date();
    for (let round = 1; round <= restartRounds; round += 1) {
      await new Promise((resolve) => setTimeout(resolve, schedule.between(2000, 5000)));
      const downMs = schedule.between(200, 2000);
      await postgres.restart(downMs);
      await waitForOk(`${deployment.apiUrl}/readyz`, 30_000);
      lastRestartAt = new Date();
      console.log(`[chaos] round ${round}: PostgreSQL down ${downMs} ms; ${load.log.payments.size} payments and ${load.log.refunds.size} refunds acknowledged so far`);
    }
    // The same processes, never restarted, must carry payments all the way through again.
    const paidBefore = load.log.counts.paid;
    const deadline = Date.now() + 60_000;
    while (load.log.counts.paid < paidBefore + 3 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 250));
    const log = await load.stop();
    expect(log.counts.paid).toBeGreaterThanOrEqual(paidBefore + 3);
    // …and the worker, never restarted either, delivers the webhooks of those payments by itself.
    const undelivered = async () =>
      (await sql<{ total: number; open: number }>`SELECT count(*)::int AS total, count(*) FILTER (WHERE delivery_status <> 'delivered')::int AS open FROM events WHERE created_at > ${lastRestartAt}`.execute(world.platform.context.db)).rows[0];
    const workerDeadline = Date.now() + 60_000;
    while ((await undelivered())?.open !== 0 && Date.now() < workerDeadline) await new Promise((resolve) => setTimeout(resolve, 250));
    expect(await undelivered()).toMatchObject({ open: 0 });
    expect((await undelivered())?.total).toBeGreaterThan(0);
    const report = await recoverAndVerify({ deployment, world, log });
    console.log(`[chaos] postgres-restart done in ${Math.round((Date.now() - startedMs) / 1000)} s: ${JSON.stringify(report.summary)}`);
    expect(report.problems).toEqual([]);
    // A request cut by the restart holds its key for the key's lease (60 s), so the load is thinner here than elsewhere.
    expect(log.payments.size).toBeGreaterThan(10);
    passed = true;
  });
});
