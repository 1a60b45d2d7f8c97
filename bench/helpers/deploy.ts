import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FenStack } from './fen-stack.js';
import { closeIdleConnections } from './http.js';
import { closedLoop, PaymentDriver, WebhookReceiver } from './load.js';
import { setUpWorld, type BenchWorld } from './world.js';

/**
 * A payments deployment for a benchmark section: `fen sim`, `apis` × `fen api`
 * and `workers` × `fen worker` on the section's database, the world set up, a
 * webhook receiver and a driver, and one payment made end to end to prove the
 * whole path works before anything is measured.
 */
export const deploymentSettings = {
  /** FEN_DB_POOL_SIZE of each process (Fen's default is 10). */
  dbPoolSize: 10,
  /** FEN_WORKER_CONCURRENCY of each worker (Fen's default is 4). */
  workerConcurrency: 8,
} as const;

const warmUpPayers = 32;
const warmUpMs = 6_000;

export interface PaymentsDeployment {
  stack: FenStack;
  receiver: WebhookReceiver;
  world: BenchWorld;
  driver: PaymentDriver;
  directory: string;
  profileDirectory: string;
  close(): Promise<void>;
}

export async function deployPayments(options: { databaseUrl: string; apis: number; workers: number; profileApi?: boolean; log(message: string): void }): Promise<PaymentsDeployment> {
  const directory = mkdtempSync(path.join(os.tmpdir(), 'fen-bench-payments-'));
  const profileDirectory = path.join(directory, 'profiles');
  mkdirSync(profileDirectory);
  const stack = new FenStack({ databaseUrl: options.databaseUrl, dataDirectory: path.join(directory, 'data'), ...deploymentSettings, profileDirectory });
  const receiver = new WebhookReceiver();
  let world: BenchWorld | undefined;
  const close = async () => {
    await stack.stopAll();
    await receiver.close();
    await world?.platform.close();
    closeIdleConnections();
    // FEN_BENCH_KEEP_FILES=1 keeps the profiles (open them in Chrome DevTools) and the data folder.
    if (process.env.FEN_BENCH_KEEP_FILES) options.log(`kept ${directory}`);
    else rmSync(directory, { recursive: true, force: true });
  };
  try {
    await receiver.start();
    const startedMs = performance.now();
    await stack.startSimulator();
    // The APIs and the workers start side by side: the schema is already migrated, so nothing orders them.
    await Promise.all([...Array.from({ length: options.apis }, () => stack.startApi({ profile: options.profileApi ?? false })), stack.startWorkers(options.workers)]);
    options.log(`fen sim + ${options.apis} × fen api + ${options.workers} × fen worker up in ${Math.round(performance.now() - startedMs)} ms`);
    world = await setUpWorld(stack, receiver.url);
    receiver.secret = world.merchantApp.webhook_secret;
    const driver = new PaymentDriver({ apiUrls: stack.apis().map((api) => api.url), appId: world.merchantApp.id, appSecret: world.merchantApp.app_secret }, receiver);
    // Every API once, end to end, before anything is measured: a broken path fails here with its reason.
    for (let index = 0; index < options.apis; index += 1) {
      const result = await driver.runPayment();
      if (!result) throw new Error(`the first payment did not go through: ${driver.errorSamples.join('; ')}`);
    }
    // Fresh processes are slow at first (tsx, the JIT, cold pools and caches): a few seconds of load, unmeasured.
    const warm = await closedLoop(driver, { concurrency: warmUpPayers, warmupMs: 0, windowMs: warmUpMs });
    options.log(`warm-up: ${warm.completed} payments in ${warmUpMs / 1000} s, not counted`);
    return { stack, receiver, world, driver, directory, profileDirectory, close };
  } catch (error) {
    const outputs = stack.processes.map((fen) => `--- fen ${fen.role} (pid ${fen.pid}):\n${fen.output().slice(-3000)}`).join('\n');
    await close();
    throw new Error(`${error instanceof Error ? error.message : String(error)}\n${outputs}`, { cause: error });
  }
}
