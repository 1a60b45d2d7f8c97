import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FenRole } from './helpers/fen.js';
import { startLoad } from './helpers/load.js';
import { chaosSeed, seededRandom } from './helpers/random.js';
import { startChaosStack, type ChaosStack } from './helpers/stack.js';
import { recoverAndVerify } from './helpers/verify.js';

/**
 * Fen run as `fen api` + `fen worker` (+ `fen sim`, left alone here) under a
 * steady load of payments and refunds; at twenty random moments the API, the
 * worker or both are killed with SIGKILL — no shutdown code runs, requests and
 * jobs die half-way — and started again. Afterwards every acknowledged payment
 * and refund must exist, each payment be booked at most once, nothing be left
 * open past its expiry and the sweep, every event reach the merchant with one
 * payload per id, and `fen ledger check` pass.
 */
const killRounds = 20;
const seed = chaosSeed();

describe('kill -9 of fen api and fen worker under load', () => {
  let stack: ChaosStack;
  let passed = false;

  beforeAll(async () => {
    stack = await startChaosStack('kill');
  });

  afterAll(async () => stack?.close({ passed }));

  it(`loses nothing acknowledged and books every payment once through ${killRounds} kills (seed ${seed})`, async () => {
    const { deployment, world, postgres } = stack;
    const random = seededRandom(seed).fork('fen-kill');
    console.log(`[chaos] fen-kill seed=${seed} (replay with CHAOS_SEED=${seed}); files in ${postgres.directory}`);
    const startedMs = Date.now();
    const load = startLoad({ client: world.client, random: random.fork('load'), label: `kill-${seed}`, concurrency: 6, ackFile: path.join(postgres.directory, 'acks.jsonl') });
    const schedule = random.fork('kills');
    for (let round = 1; round <= killRounds; round += 1) {
      await new Promise((resolve) => setTimeout(resolve, schedule.between(500, 3000)));
      const victims = schedule.pick<FenRole[]>([['api'], ['worker'], ['api', 'worker']]);
      await Promise.all(victims.map((role) => deployment.kill(role)));
      const downMs = schedule.between(0, 500);
      await new Promise((resolve) => setTimeout(resolve, downMs));
      await Promise.all(victims.map((role) => deployment.start(role)));
      console.log(`[chaos] round ${round}: killed ${victims.join(' + ')}, down ${downMs} ms; ${load.log.payments.size} payments and ${load.log.refunds.size} refunds acknowledged so far`);
    }
    const log = await load.stop();
    const report = await recoverAndVerify({ deployment, world, log });
    console.log(`[chaos] fen-kill done in ${Math.round((Date.now() - startedMs) / 1000)} s: ${JSON.stringify(report.summary)}`);
    expect(report.problems).toEqual([]);
    // The load really ran: enough orders went all the way through for the checks to mean something.
    expect(log.payments.size).toBeGreaterThan(20);
    expect(report.summary.succeeded).toBeGreaterThan(10);
    passed = true;
  });
});
