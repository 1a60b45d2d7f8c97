import { appendFileSync } from 'node:fs';
import path from 'node:path';
import { freePort, spawnFen, waitForOk, type FenProcess } from '../../helpers/process.js';

/**
 * Fen deployed as separate processes, the way `fen api`, `fen worker` and
 * `fen sim` run in production, each a real child process that the test can
 * kill with SIGKILL (no shutdown code runs) and start again on the same ports.
 * Every child's output is appended to a log file in the test's folder, so a
 * failure can be read after the processes are gone.
 */
export type FenRole = 'api' | 'worker' | 'sim' | 'start';

export const testMasterKeyHex = '07'.repeat(32);

export interface FenDeployment {
  apiUrl: string;
  simulatorUrl: string;
  environment: Record<string, string | undefined>;
  logFile: string;
  start(role: FenRole): Promise<void>;
  /** SIGKILL, then wait for the process to be gone. */
  kill(role: FenRole): Promise<void>;
  isRunning(role: FenRole): boolean;
  /** Fails the test when a role died on its own (nobody killed it). */
  unexpectedExits(): string[];
  /** SIGTERM to every role still running. */
  stopAll(): Promise<void>;
}

const startDeadlineMs = 60_000;

/** Without a databaseUrl the processes use the embedded PostgreSQL under their data directory, as a newcomer's `fen start` does. */
export async function deployFen(options: { databaseUrl: string | undefined; directory: string; extraEnvironment?: Record<string, string> }): Promise<FenDeployment> {
  const apiPort = await freePort();
  const simulatorPort = await freePort();
  const logFile = path.join(options.directory, 'fen-processes.log');
  const environment: Record<string, string | undefined> = {
    DATABASE_URL: options.databaseUrl,
    FEN_DATA_DIR: path.join(options.directory, 'fen-data'),
    HOST: '127.0.0.1',
    // Every role gets the same PORT: the worker writes payment views (with the cashier URL) into event bodies too.
    PORT: String(apiPort),
    FEN_SIMULATOR_PORT: String(simulatorPort),
    FEN_MASTER_KEY: testMasterKeyHex,
    FEN_DEMO: 'false',
    LOG_LEVEL: 'warn',
    ...options.extraEnvironment,
  };
  const running = new Map<FenRole, FenProcess>();
  const killed = new Set<FenProcess>();
  const exits: string[] = [];
  const urls = { api: `http://127.0.0.1:${apiPort}`, sim: `http://127.0.0.1:${simulatorPort}` };

  const watch = (role: FenRole, fen: FenProcess) => {
    fen.child.on('exit', (code, signal) => {
      appendFileSync(logFile, `\n===== fen ${role} (pid ${fen.child.pid}) exited code=${code} signal=${signal}\n${fen.output()}\n`);
      if (!killed.has(fen)) exits.push(`fen ${role} exited by itself (code ${code}, signal ${signal}); output:\n${fen.output().slice(-4000)}`);
      if (running.get(role) === fen) running.delete(role);
    });
  };

  const deployment: FenDeployment = {
    apiUrl: urls.api,
    simulatorUrl: urls.sim,
    environment,
    logFile,
    start: async (role) => {
      if (running.has(role)) throw new Error(`fen ${role} is already running`);
      const fen = spawnFen([role], environment);
      running.set(role, fen);
      watch(role, fen);
      if (role === 'api' || role === 'start') await waitForOk(`${urls.api}/healthz`, startDeadlineMs, fen);
      if (role === 'sim' || role === 'start') await waitForOk(`${urls.sim}/healthz`, startDeadlineMs, fen);
      // The worker has no HTTP port; it is up once it has opened the database, which the tests observe through the work it does.
    },
    kill: async (role) => {
      const fen = running.get(role);
      if (!fen) return;
      killed.add(fen);
      running.delete(role);
      await fen.stop('SIGKILL');
    },
    isRunning: (role) => running.has(role),
    unexpectedExits: () => [...exits],
    stopAll: async () => {
      for (const [role, fen] of [...running.entries()].reverse()) {
        killed.add(fen);
        running.delete(role);
        await fen.stop('SIGTERM');
      }
    },
  };
  return deployment;
}
