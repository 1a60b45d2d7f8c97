import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLoad } from './helpers/load.js';
import { chaosSeed, seededRandom } from './helpers/random.js';
import { startChaosStack, type ChaosStack } from './helpers/stack.js';
import { recoverAndVerify } from './helpers/verify.js';

/**
 * The channel dies instead: `fen sim` (the Alipay simulator, its own process,
 * its state in its own schema) is killed with SIGKILL at random moments under
 * load and started again. Meanwhile Fen's calls to it fail (an unknown answer:
 * the payment stays paying, the refund processing, and both are asked about
 * later), payers cannot reach the payer page, and notifications wait in the
 * simulator's queue. Afterwards Fen and the channel must agree on every order
 * and every refund, with the same checks as after the kills of Fen itself.
 */
const killRounds = 5;
const seed = chaosSeed();

describe('kill -9 of the channel simulator under load', () => {
  let stack: ChaosStack;
  let passed = false;

  beforeAll(async () => {
    stack = await startChaosStack('sim');
  });

  afterAll(async () => stack?.close({ passed }));

  it(`agrees with the channel on every payment and refund after ${killRounds} simulator kills (seed ${seed})`, async () => {
    const { deployment, world, postgres } = stack;
    const random = seededRandom(seed).fork('simulator-kill');
    console.log(`[chaos] simulator-kill seed=${seed} (replay with CHAOS_SEED=${seed}); files in ${postgres.directory}`);
    const startedMs = Date.now();
    const load = startLoad({ client: world.client, random: random.fork('load'), label: `sim-${seed}`, concurrency: 6, ackFile: path.join(postgres.directory, 'acks.jsonl') });
    const schedule = random.fork('kills');
    for (let round = 1; round <= killRounds; round += 1) {
      await new Promise((resolve) => setTimeout(resolve, schedule.between(1000, 3000)));
      await deployment.kill('sim');
      const downMs = schedule.between(0, 2000);
      await new Promise((resolve) => setTimeout(resolve, downMs));
      await deployment.start('sim');
      console.log(`[chaos] round ${round}: killed fen sim, down ${downMs} ms (plus its start); ${load.log.payments.size} payments and ${load.log.refunds.size} refunds acknowledged so far`);
    }
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const log = await load.stop();
    const report = await recoverAndVerify({ deployment, world, log });
    console.log(`[chaos] simulator-kill done in ${Math.round((Date.now() - startedMs) / 1000)} s: ${JSON.stringify(report.summary)}`);
    expect(report.problems).toEqual([]);
    expect(log.payments.size).toBeGreaterThan(20);
    passed = true;
  });
});
