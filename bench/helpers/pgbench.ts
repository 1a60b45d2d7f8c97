import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import pg from 'pg';
import { isLocalPostgres } from './cpu.js';
import { processCpuSeconds } from './fen-stack.js';

/**
 * PostgreSQL's own figure for the server the benchmark runs on: pgbench's
 * built-in TPC-B-like script (`pgbench -i -s 10`, then 8 clients), in the
 * section's database, so Fen's figure can be read against what this server
 * does with the simplest write transactions there are.
 */
const run = promisify(execFile);

export interface PgbenchResult {
  tps: number;
  clients: number;
  threads: number;
  scale: number;
  durationS: number;
  transactions: number;
  latencyAverageMs: number | null;
  initS: number;
  version: string;
  /** CPU of pgbench's PostgreSQL backends per transaction, when the server runs on this machine. */
  serverCpuMsPerTransaction: number | null;
  /** CPU of the pgbench client per transaction. */
  clientCpuMsPerTransaction: number | null;
}

const candidates = ['/usr/bin/pgbench', '/usr/local/bin/pgbench', '/usr/lib/postgresql/17/bin/pgbench', '/usr/lib/postgresql/16/bin/pgbench', '/usr/lib/postgresql/15/bin/pgbench'];

export function findPgbench(): string | undefined {
  const fromEnvironment = process.env.PGBENCH;
  if (fromEnvironment && existsSync(fromEnvironment)) return fromEnvironment;
  return candidates.find((candidate) => existsSync(candidate));
}

/** libpq's settings from a postgres:// URL, passed by environment so the password is on no command line. */
function libpqEnvironment(databaseUrl: string): Record<string, string> {
  const url = new URL(databaseUrl);
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) if (value !== undefined && !key.startsWith('PG')) env[key] = value;
  return {
    ...env,
    PGHOST: url.hostname,
    PGPORT: url.port || '5432',
    PGUSER: decodeURIComponent(url.username),
    PGPASSWORD: decodeURIComponent(url.password),
    PGDATABASE: decodeURIComponent(url.pathname.replace(/^\//, '')),
    PGAPPNAME: 'fen-bench-pgbench',
    ...(url.searchParams.get('sslmode') ? { PGSSLMODE: url.searchParams.get('sslmode')! } : {}),
  };
}

export async function runPgbench(
  binary: string,
  databaseUrl: string,
  options: { scale: number; clients: number; threads: number; durationS: number; log(message: string): void },
): Promise<PgbenchResult> {
  const env = libpqEnvironment(databaseUrl);
  const version = (await run(binary, ['--version'], { env })).stdout.trim();
  options.log(`pgbench -i -s ${options.scale} (${version})`);
  const initStartedMs = performance.now();
  await run(binary, ['-i', '-s', String(options.scale), '-q'], { env, timeout: 300_000, maxBuffer: 16 * 1024 * 1024 });
  const initS = (performance.now() - initStartedMs) / 1000;
  options.log(`pgbench -c ${options.clients} -j ${options.threads} -T ${options.durationS} (TPC-B-like)`);
  const running = run(binary, ['-c', String(options.clients), '-j', String(options.threads), '-T', String(options.durationS)], {
    env,
    timeout: (options.durationS + 120) * 1000,
    maxBuffer: 16 * 1024 * 1024,
  });
  const cpu = watchBackendCpu(databaseUrl, running.child.pid);
  const { stdout } = await running;
  const cpuSeconds = await cpu.stop();
  const tps = /tps = ([\d.]+) \((?:without initial connection time|excluding connections establishing)\)/.exec(stdout)?.[1];
  if (!tps) throw new Error(`no tps in pgbench's output:\n${stdout}`);
  const transactions = /number of transactions actually processed: (\d+)/.exec(stdout)?.[1];
  const latency = /latency average = ([\d.]+) ms/.exec(stdout)?.[1];
  return {
    tps: Number(tps),
    clients: options.clients,
    threads: options.threads,
    scale: options.scale,
    durationS: options.durationS,
    transactions: Number(transactions ?? 0),
    latencyAverageMs: latency ? Number(latency) : null,
    initS: Math.round(initS * 10) / 10,
    version,
    serverCpuMsPerTransaction: cpuSeconds.backends !== null && Number(transactions) > 0 ? Math.round(((cpuSeconds.backends * 1000) / Number(transactions)) * 100) / 100 : null,
    clientCpuMsPerTransaction: cpuSeconds.client !== null && Number(transactions) > 0 ? Math.round(((cpuSeconds.client * 1000) / Number(transactions)) * 100) / 100 : null,
  };
}

/**
 * The CPU pgbench's server backends (found by their application_name) and
 * pgbench itself use, read from /proc about once a second while it runs: the
 * last reading of each process is kept, so at most about a second at the end
 * is missed. Null when the server is not on this machine.
 */
function watchBackendCpu(databaseUrl: string, clientPid: number | undefined): { stop(): Promise<{ backends: number | null; client: number | null }> } {
  const backends = new Map<number, number>();
  let client: number | null = null;
  let stopped = false;
  const sample = async () => {
    const connection = new pg.Client({ connectionString: databaseUrl, application_name: 'fen-bench-cpu' });
    await connection.connect();
    try {
      const result = await connection.query("SELECT pid FROM pg_stat_activity WHERE application_name = 'fen-bench-pgbench'");
      for (const row of result.rows as Array<{ pid: number }>) {
        if (!isLocalPostgres(Number(row.pid))) continue;
        const seconds = processCpuSeconds(Number(row.pid));
        if (seconds !== null) backends.set(Number(row.pid), seconds);
      }
    } finally {
      await connection.end();
    }
    if (clientPid !== undefined) client = processCpuSeconds(clientPid) ?? client;
  };
  const loop = (async () => {
    // Bounded: pgbench's own deadline ends the run, and stop() ends this loop.
    while (!stopped) {
      await sample().catch(() => undefined);
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      await loop;
      return { backends: backends.size > 0 ? [...backends.values()].reduce((sum, value) => sum + value, 0) : null, client };
    },
  };
}
