import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

/**
 * Fen deployed for a benchmark the way it runs in production: `fen sim` (the
 * channel simulators, their own process), any number of `fen api` and
 * `fen worker` processes, all on one database and on 127.0.0.1, with demo
 * data off. Each role is a real child process; its output is kept (the last
 * part) to explain a failure. The API can run under `--cpu-prof`.
 */
export const repositoryRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

const startDeadlineMs = 60_000;
const stopDeadlineMs = 20_000;
const outputKeptChars = 20_000;

export type Role = 'api' | 'worker' | 'sim';

export interface StackSettings {
  databaseUrl: string;
  /** FEN_DATA_DIR of every process (nothing is kept there with DATABASE_URL set, but it must exist). */
  dataDirectory: string;
  dbPoolSize: number;
  workerConcurrency: number;
  /** Where `--cpu-prof` writes profiles, for roles started with profile: true. */
  profileDirectory: string;
}

export interface FenProcess {
  role: Role;
  pid: number;
  /** API: its base URL; sim: the Alipay simulator's base URL; worker: empty. */
  url: string;
  /** Set when it runs under --cpu-prof: where its profiles appear once it has exited. */
  profileDirectory?: string;
  exited(): boolean;
  output(): string;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

async function waitForOk(url: string, fen: FenProcess): Promise<void> {
  const deadline = Date.now() + startDeadlineMs;
  while (Date.now() < deadline) {
    if (fen.exited()) throw new Error(`fen ${fen.role} exited while starting:\n${fen.output()}`);
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
      await response.body?.cancel();
      if (response.ok) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 150));
  }
  throw new Error(`fen ${fen.role}: ${url} did not answer within ${startDeadlineMs} ms:\n${fen.output()}`);
}

/** graphile-worker holds one LISTEN connection per worker process: counting them tells how many workers are running. */
export async function listeningWorkers(databaseUrl: string): Promise<number> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const result = await client.query(
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'fen-worker' AND query LIKE 'LISTEN "jobs:insert"%'`,
    );
    return Number(result.rows[0]?.n ?? 0);
  } finally {
    await client.end();
  }
}

/**
 * Children must not outlive the bench: an interrupted run (Ctrl-C) or one that
 * exits on an error kills whatever is still running.
 */
const children = new Set<ChildProcess>();
let exitHooksInstalled = false;

function installExitHooks(): void {
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  const killAll = () => {
    for (const child of children) child.kill('SIGKILL');
  };
  process.on('exit', killAll);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      killAll();
      // Nobody else handles the signal: end the process as the default handler would have.
      if (process.listenerCount(signal) === 1) process.exit(130);
    });
  }
}

const portAttemptsMax = 5;

/**
 * A port found free may be taken before the role listens on it: the bench's
 * own client connections draw ephemeral ports from the same range, and the
 * simulator listens on the ports after its first too. Such a start is tried
 * again on other ports; any other failure is not.
 */
async function startOnFreePort(start: () => Promise<FenProcess>): Promise<FenProcess> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await start();
    } catch (error) {
      if (attempt >= portAttemptsMax || !String((error as Error).message).includes('EADDRINUSE')) throw error;
    }
  }
}

export class FenStack {
  /** One master key for every process, so secrets sealed by the bench open in the API. */
  readonly masterKeyHex = randomBytes(32).toString('hex');
  readonly processes: FenProcess[] = [];
  simulatorUrl = '';
  private simulatorPort = 0;

  constructor(readonly settings: StackSettings) {}

  environment(port: number): Record<string, string> {
    const env: Record<string, string> = {};
    for (const [key, value] of Object.entries(process.env)) if (value !== undefined && !key.startsWith('FEN_') && key !== 'DATABASE_URL') env[key] = value;
    return {
      ...env,
      DATABASE_URL: this.settings.databaseUrl,
      FEN_DATA_DIR: this.settings.dataDirectory,
      HOST: '127.0.0.1',
      PORT: String(port),
      FEN_SIMULATOR_PORT: String(this.simulatorPort),
      FEN_MASTER_KEY: this.masterKeyHex,
      FEN_DEMO: 'false',
      LOG_LEVEL: 'warn',
      FEN_DB_POOL_SIZE: String(this.settings.dbPoolSize),
      FEN_WORKER_CONCURRENCY: String(this.settings.workerConcurrency),
    };
  }

  /**
   * A profiled role writes its profiles into a folder of its own: one file per
   * thread (tsx runs its loader in a second thread), named by Node.
   */
  private spawnRole(role: Role, port: number, options: { profile?: boolean; url: string }): FenProcess {
    const profileDirectory = options.profile ? path.join(this.settings.profileDirectory, `${role}-${port}-${Date.now()}`) : undefined;
    const nodeArguments = profileDirectory ? ['--cpu-prof', `--cpu-prof-dir=${profileDirectory}`] : [];
    const child: ChildProcess = spawn(process.execPath, [...nodeArguments, path.join(repositoryRoot, 'bin/fen.mjs'), role], {
      cwd: repositoryRoot,
      env: this.environment(port),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    installExitHooks();
    children.add(child);
    child.on('exit', () => children.delete(child));
    let output = '';
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-outputKeptChars);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    const exit = new Promise<void>((resolve) => child.on('exit', () => resolve()));
    const fen: FenProcess = {
      role,
      pid: child.pid ?? 0,
      url: options.url,
      ...(profileDirectory ? { profileDirectory } : {}),
      exited: () => child.exitCode !== null || child.signalCode !== null,
      output: () => output,
      stop: async () => {
        if (fen.exited()) return;
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), stopDeadlineMs);
        await exit;
        clearTimeout(timer);
        const index = this.processes.indexOf(fen);
        if (index >= 0) this.processes.splice(index, 1);
      },
    };
    this.processes.push(fen);
    return fen;
  }

  async startSimulator(): Promise<FenProcess> {
    return startOnFreePort(async () => {
      this.simulatorPort = await freePort();
      this.simulatorUrl = `http://127.0.0.1:${this.simulatorPort}`;
      // Its own PORT is never listened on by `fen sim`; a free one keeps the default simulator port out of the way.
      const fen = this.spawnRole('sim', await freePort(), { url: this.simulatorUrl });
      await this.waitOrForget(fen, `${this.simulatorUrl}/healthz`);
      return fen;
    });
  }

  async startApi(options: { profile?: boolean; port?: number } = {}): Promise<FenProcess> {
    const start = async (port: number) => {
      const url = `http://127.0.0.1:${port}`;
      const fen = this.spawnRole('api', port, { profile: options.profile ?? false, url });
      await this.waitOrForget(fen, `${url}/healthz`);
      return fen;
    };
    return options.port === undefined ? startOnFreePort(async () => start(await freePort())) : start(options.port);
  }

  /** Waits for a role to answer; one that died starting is dropped from the stack, so a retry does not count it as dead. */
  private async waitOrForget(fen: FenProcess, url: string): Promise<void> {
    try {
      await waitForOk(url, fen);
    } catch (error) {
      if (fen.exited()) this.processes.splice(this.processes.indexOf(fen), 1);
      throw error;
    }
  }

  /** Starts `count` workers side by side; resolves once each holds its LISTEN connection. */
  async startWorkers(count: number): Promise<FenProcess[]> {
    const before = await listeningWorkers(this.settings.databaseUrl);
    const started: FenProcess[] = [];
    for (let index = 0; index < count; index += 1) started.push(this.spawnRole('worker', await freePort(), { url: '' }));
    const deadline = Date.now() + startDeadlineMs;
    while ((await listeningWorkers(this.settings.databaseUrl)) < before + count) {
      const dead = started.find((fen) => fen.exited());
      if (dead) throw new Error(`fen worker exited while starting:\n${dead.output()}`);
      if (Date.now() > deadline) throw new Error(`fen worker did not start listening within ${startDeadlineMs} ms:\n${started.map((fen) => fen.output()).join('\n')}`);
      await new Promise((resolve) => setTimeout(resolve, 150));
    }
    return started;
  }

  apis(): FenProcess[] {
    return this.processes.filter((fen) => fen.role === 'api');
  }

  workers(): FenProcess[] {
    return this.processes.filter((fen) => fen.role === 'worker');
  }

  /** A role that died by itself during a measurement makes the figure meaningless: say so. */
  assertAlive(): void {
    const dead = this.processes.find((fen) => fen.exited());
    if (dead) throw new Error(`fen ${dead.role} (pid ${dead.pid}) exited during the benchmark:\n${dead.output()}`);
  }

  async stopAll(): Promise<void> {
    // The API and the workers first, the simulator (which they call) last.
    for (const fen of [...this.processes].reverse().sort((left, right) => Number(left.role === 'sim') - Number(right.role === 'sim'))) await fen.stop();
  }
}

/** CPU seconds (user + system) a process has used so far, from /proc; null where /proc is not available. */
export function processCpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces) start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return ticks / 100;
  } catch {
    return null;
  }
}

/** The main thread's profile of a role that ran under --cpu-prof: the largest file in its folder. */
export function mainThreadProfile(fen: FenProcess): string | undefined {
  const directory = fen.profileDirectory;
  if (!directory || !existsSync(directory)) return undefined;
  return readdirSync(directory)
    .filter((name) => name.endsWith('.cpuprofile'))
    .map((name) => path.join(directory, name))
    .sort((left, right) => statSync(right).size - statSync(left).size)[0];
}
