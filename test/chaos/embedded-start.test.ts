import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FenClient } from '../../sdk/index.js';
import { startWebhookReceiver, type WebhookReceiver } from '../helpers/webhook-receiver.js';
import { deployFen, type FenDeployment } from './helpers/fen.js';
import { startLoad } from './helpers/load.js';
import { chaosSeed, seededRandom } from './helpers/random.js';
import { recoverAndVerify } from './helpers/verify.js';
import { openTestPlatform, timedFetch, type ChaosWorld } from './helpers/world.js';

/**
 * The newcomer's deployment: `fen start` with no DATABASE_URL, so Fen runs the
 * embedded PostgreSQL itself, with the simulators and the demo data in the same
 * process. Killed with SIGKILL, Fen leaves its PostgreSQL running (nothing
 * stops it); the next `fen start` must find that server through postmaster.pid,
 * use it, serve /healthz again and find every acknowledged payment intact —
 * under load, three times — and the usual checks must hold at the end.
 */
const killRounds = 3;
const seed = chaosSeed();

function postmasterPid(dataDirectory: string): number | undefined {
  const pidFile = path.join(dataDirectory, 'postgres', 'pg', 'postmaster.pid');
  if (!existsSync(pidFile)) return undefined;
  const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
  return Number.isInteger(pid) ? pid : undefined;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitFor(what: string, condition: () => boolean, deadlineMs: number): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${deadlineMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('fen start on the embedded PostgreSQL, killed with SIGKILL', () => {
  const directory = mkdtempSync(path.join(os.tmpdir(), 'fen-chaos-embedded-'));
  // The embedded server runs as the postgres user when the tests run as root: it must be able to enter the folder.
  chmodSync(directory, 0o755);
  let deployment: FenDeployment;
  let world: ChaosWorld | undefined;
  let receiver: WebhookReceiver | undefined;
  let passed = false;

  beforeAll(async () => {
    deployment = await deployFen({ databaseUrl: undefined, directory, extraEnvironment: { FEN_DEMO: 'true' } });
    await deployment.start('start');
  });

  afterAll(async () => {
    await deployment?.stopAll();
    await world?.platform.close();
    await receiver?.close();
    // A server that Fen reused is never stopped by Fen (another process may share it): the test stops the one it caused.
    const pid = deployment ? postmasterPid(deployment.environment.FEN_DATA_DIR ?? '') : undefined;
    if (pid !== undefined && isAlive(pid)) {
      process.kill(pid, 'SIGINT');
      await waitFor(`PostgreSQL (pid ${pid}) to stop`, () => !isAlive(pid), 30_000);
    }
    if (passed) rmSync(directory, { recursive: true, force: true });
    else console.log(`[chaos] kept ${directory} for a post-mortem`);
  });

  it(`finds its running PostgreSQL again and keeps every acknowledged payment through ${killRounds} kills (seed ${seed})`, async () => {
    const dataDirectory = deployment.environment.FEN_DATA_DIR ?? '';
    const demoFile = path.join(dataDirectory, 'demo.json');
    await waitFor('demo.json to be written', () => existsSync(demoFile), 60_000);
    const demo = JSON.parse(readFileSync(demoFile, 'utf8')) as { app_id: string; app_secret: string };
    const serverPid = postmasterPid(dataDirectory);
    expect(serverPid).toBeDefined();

    receiver = await startWebhookReceiver();
    // The test process reaches the same database the way a second `fen` command would: through postmaster.pid.
    const platform = await openTestPlatform(deployment);
    const client = new FenClient({ baseUrl: deployment.apiUrl, appId: demo.app_id, appSecret: demo.app_secret, fetch: timedFetch });
    world = { platform, merchantApp: { id: demo.app_id, app_secret: demo.app_secret }, receiver, client };

    const random = seededRandom(seed).fork('embedded-start');
    console.log(`[chaos] embedded-start seed=${seed} (replay with CHAOS_SEED=${seed}); files in ${directory}`);
    const startedMs = Date.now();
    const load = startLoad({ client, random: random.fork('load'), label: `emb-${seed}`, concurrency: 4, ackFile: path.join(directory, 'acks.jsonl'), notifyUrl: receiver.url });
    const schedule = random.fork('kills');
    for (let round = 1; round <= killRounds; round += 1) {
      await new Promise((resolve) => setTimeout(resolve, schedule.between(1500, 4000)));
      await deployment.kill('start');
      // Nothing stopped the server: it is still running, with its data directory locked.
      expect(serverPid !== undefined && isAlive(serverPid)).toBe(true);
      await deployment.start('start');
      // The new process used that server rather than starting another one.
      expect(postmasterPid(dataDirectory)).toBe(serverPid);
      const acknowledged = [...load.log.payments.values()];
      const stored = await platform.context.db.selectFrom('payments').select('id').where('app_id', '=', demo.app_id).execute();
      const storedIds = new Set(stored.map((row) => row.id));
      expect(acknowledged.filter((payment) => !storedIds.has(payment.id))).toEqual([]);
      console.log(`[chaos] round ${round}: killed fen start; restarted on PostgreSQL pid ${serverPid}; ${acknowledged.length} acknowledged payments all present`);
    }
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const log = await load.stop();
    const report = await recoverAndVerify({ deployment, world, log });
    console.log(`[chaos] embedded-start done in ${Math.round((Date.now() - startedMs) / 1000)} s: ${JSON.stringify(report.summary)}`);
    expect(report.problems).toEqual([]);
    expect(log.payments.size).toBeGreaterThan(8);
    passed = true;
  });
});
