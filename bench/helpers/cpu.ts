import { readFileSync } from 'node:fs';
import os from 'node:os';
import pg from 'pg';
import { processCpuSeconds, type FenStack } from './fen-stack.js';

/**
 * CPU accounting for a measurement window: the seconds of CPU each part used
 * (Fen's API, worker and simulator processes, this database's PostgreSQL
 * backends, the load generator itself) and how busy the whole machine was,
 * from /proc. On a 2-core machine shared with other work this says both where
 * the time goes and how much of the machine the benchmark really had.
 */
export interface CpuSnapshot {
  atMs: number;
  roles: Map<number, { role: string; seconds: number }>;
  backends: Map<number, number>;
  /** Transactions of this database so far (pg_stat_database; PostgreSQL publishes them about once a second). */
  transactions: number;
  bench: NodeJS.CpuUsage;
  machine: { busy: number; total: number } | null;
}

export interface CpuUse {
  wallS: number;
  /** CPU seconds per part during the window. */
  seconds: Record<string, number>;
  /** Database transactions (each autocommitted statement is one) during the window. */
  transactions: number;
  /** Cores the whole machine kept busy on average (everything running on it, not only the benchmark). */
  machineBusyCores: number | null;
  cores: number;
  loadAverage1m: number;
}

/** Cores the whole machine kept busy between two readings of machineTicks(). */
export function busyCoresBetween(before: { busy: number; total: number } | null, after: { busy: number; total: number } | null): number | null {
  if (!before || !after || after.total <= before.total) return null;
  return Math.round(((after.busy - before.busy) / (after.total - before.total)) * os.cpus().length * 100) / 100;
}

export function machineTicks(): { busy: number; total: number } | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
    const values = line.trim().split(/\s+/).slice(1).map(Number);
    const total = values.reduce((sum, value) => sum + value, 0);
    // idle and iowait are not busy.
    return { busy: total - (values[3] ?? 0) - (values[4] ?? 0), total };
  } catch {
    return null;
  }
}

export function isLocalPostgres(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'postgres';
  } catch {
    return false;
  }
}

/** The backends on this database now, and the transactions it has committed or rolled back so far. */
async function databaseState(databaseUrl: string): Promise<{ pids: number[]; transactions: number }> {
  const client = new pg.Client({ connectionString: databaseUrl, application_name: 'fen-bench-cpu' });
  await client.connect();
  try {
    const backends = await client.query('SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()');
    const counts = await client.query('SELECT xact_commit + xact_rollback AS n FROM pg_stat_database WHERE datname = current_database()');
    return { pids: backends.rows.map((row: { pid: number }) => Number(row.pid)), transactions: Number(counts.rows[0]?.n ?? 0) };
  } finally {
    await client.end();
  }
}

export async function takeCpuSnapshot(stack: FenStack): Promise<CpuSnapshot> {
  const roles = new Map<number, { role: string; seconds: number }>();
  for (const fen of stack.processes) {
    const seconds = processCpuSeconds(fen.pid);
    if (seconds !== null) roles.set(fen.pid, { role: fen.role, seconds });
  }
  const backends = new Map<number, number>();
  const database = await databaseState(stack.settings.databaseUrl);
  for (const pid of database.pids) {
    // A server on another machine reports its own pids: count only PostgreSQL processes found here.
    if (!isLocalPostgres(pid)) continue;
    const seconds = processCpuSeconds(pid);
    if (seconds !== null) backends.set(pid, seconds);
  }
  return { atMs: performance.now(), roles, backends, transactions: database.transactions, bench: process.cpuUsage(), machine: machineTicks() };
}

export function cpuBetween(before: CpuSnapshot, after: CpuSnapshot): CpuUse {
  const seconds: Record<string, number> = {};
  const add = (part: string, value: number) => {
    seconds[part] = (seconds[part] ?? 0) + value;
  };
  for (const [pid, now] of after.roles) add(now.role, now.seconds - (before.roles.get(pid)?.seconds ?? 0));
  // A backend that connected during the window counts in full; one that left during it is missed (pools keep theirs open under load).
  let postgres = 0;
  for (const [pid, now] of after.backends) postgres += now - (before.backends.get(pid) ?? 0);
  const bench = process.cpuUsage(before.bench);
  const machine = busyCoresBetween(before.machine, after.machine);
  const round = (value: number) => Math.round(value * 100) / 100;
  return {
    wallS: round((after.atMs - before.atMs) / 1000),
    seconds: Object.fromEntries(Object.entries({ ...seconds, postgres: after.backends.size > 0 ? postgres : NaN, bench: (bench.user + bench.system) / 1e6 }).map(([key, value]) => [key, round(value)])),
    transactions: after.transactions - before.transactions,
    machineBusyCores: machine,
    cores: os.cpus().length,
    loadAverage1m: round(os.loadavg()[0] ?? 0),
  };
}
