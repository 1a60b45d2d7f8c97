import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { connectDatabase, migrateToLatest, startEmbeddedPostgres, type EmbeddedDatabase } from '../src/platform/db/index.js';
import { ledgerSection } from './ledger.js';
import { reconSection } from './recon.js';
import { paymentsSection } from './payments.js';
import { scaleSection } from './scale.js';

/**
 * `npm run bench`: runs every benchmark section against one PostgreSQL server
 * (DATABASE_URL, or an embedded one in a temporary folder), each on a fresh
 * migrated database of its own that is dropped afterwards, prints a table and
 * writes bench/results/latest.json. Benchmarks are never run as tests.
 *
 * A new benchmark is a module exporting a BenchSection, added to `sections`.
 */
export type ResultValue = number | string | boolean | null;

export interface BenchContext {
  /** A fresh, migrated database for this section. */
  databaseUrl: string;
  /**
   * Each variant is measured for measureMs in all, in `rounds` slices taken
   * in turn with the variants it is compared with, so background load that
   * comes and goes weighs on all of them alike. Each slice warms up first.
   */
  timing: { warmupMs: number; measureMs: number; rounds: number };
  log(message: string): void;
}

export interface SectionReport {
  /** Flat keys for latest.json, units last (`_per_s`, `_ms`). */
  results: Record<string, ResultValue>;
  /** Table rows: what, Fen, baseline, ratio, target. */
  rows: string[][];
}

export interface BenchSection {
  name: string;
  run(context: BenchContext): Promise<SectionReport>;
}

const sections: BenchSection[] = [ledgerSection, paymentsSection, scaleSection, reconSection];

/** Keys later benchmarks will fill; present as null so the file's shape is stable. */
const pendingKeys = ['payments_per_s', 'pgbench_tps', 'payments_vs_pgbench', 'create_p50_ms', 'create_p99_ms', 'recon_vs_parse', 'recon_peak_rss_mb', 'scale_2x2_vs_1x1'];

const measureSecondsDefault = 10;
const measureSecondsMax = 60;
const warmupMs = 500;
const rounds = 5;

function log(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

/** FEN_BENCH_SECTIONS=payments,recon runs only those sections (for working on one figure); the default is all. */
function selectedSections(): BenchSection[] {
  const wanted = process.env.FEN_BENCH_SECTIONS?.split(',').map((name) => name.trim()).filter(Boolean);
  if (!wanted?.length) return sections;
  const unknown = wanted.filter((name) => !sections.some((section) => section.name === name));
  if (unknown.length) throw new Error(`FEN_BENCH_SECTIONS names no section ${unknown.join(', ')}; there are ${sections.map((section) => section.name).join(', ')}`);
  return sections.filter((section) => wanted.includes(section.name));
}

function measureMs(): number {
  const seconds = Number(process.env.FEN_BENCH_SECONDS ?? measureSecondsDefault);
  if (!Number.isFinite(seconds) || seconds <= 0 || seconds > measureSecondsMax) throw new Error(`FEN_BENCH_SECONDS must be between 0 and ${measureSecondsMax}`);
  return seconds * 1000;
}

async function adminQuery(serverUrl: string, text: string): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    return await client.query(text);
  } finally {
    await client.end();
  }
}

interface Server {
  url: string;
  kind: 'DATABASE_URL' | 'embedded';
  stop(): Promise<void>;
}

async function startServer(): Promise<Server> {
  const given = process.env.DATABASE_URL;
  if (given) return { url: given, kind: 'DATABASE_URL', stop: async () => {} };
  const directory = mkdtempSync(path.join(os.tmpdir(), 'fen-bench-'));
  // The embedded server runs as the postgres user when we are root; it must reach this folder.
  chmodSync(directory, 0o755);
  log(`starting an embedded PostgreSQL in ${directory}`);
  let embedded: EmbeddedDatabase;
  try {
    embedded = await startEmbeddedPostgres({ dataDirectory: directory });
  } catch (error) {
    rmSync(directory, { recursive: true, force: true });
    throw error;
  }
  return {
    url: embedded.url,
    kind: 'embedded',
    stop: async () => {
      await embedded.stop();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}

async function withFreshDatabase<T>(serverUrl: string, work: (databaseUrl: string) => Promise<T>): Promise<T> {
  const name = `fen_bench_${randomBytes(5).toString('hex')}`;
  await adminQuery(serverUrl, `CREATE DATABASE ${name}`);
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  try {
    const handle = connectDatabase(url.toString(), 2);
    try {
      await migrateToLatest(handle.db, url.toString());
    } finally {
      await handle.close();
    }
    return await work(url.toString());
  } finally {
    await adminQuery(serverUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  }
}

function gitCommit(): string | null {
  try {
    return execFileSync('git', ['rev-parse', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

function printTable(rows: string[][]): void {
  const header = ['benchmark', 'Fen', 'plain SQL', 'ratio', 'target'];
  const all = [header, ...rows];
  const widths = header.map((_, column) => Math.max(...all.map((row) => (row[column] ?? '').length)));
  const line = (row: string[]) => row.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join('  ').trimEnd();
  process.stdout.write(`${line(header)}\n${widths.map((width) => '-'.repeat(width)).join('  ')}\n${rows.map(line).join('\n')}\n`);
}

async function main(): Promise<void> {
  const server = await startServer();
  const results: Record<string, ResultValue> = Object.fromEntries(pendingKeys.map((key) => [key, null]));
  const rows: string[][] = [];
  try {
    const version = await adminQuery(server.url, 'SHOW server_version');
    results.postgres_version = String(version.rows[0]?.server_version ?? 'unknown');
    for (const section of selectedSections()) {
      log(`section ${section.name}`);
      const report = await withFreshDatabase(server.url, (databaseUrl) =>
        section.run({ databaseUrl, timing: { warmupMs, measureMs: measureMs(), rounds }, log }),
      );
      Object.assign(results, report.results);
      rows.push(...report.rows);
    }
  } finally {
    await server.stop();
  }
  Object.assign(results, { cores: os.cpus().length, commit: gitCommit(), database: server.kind, generated_at: new Date().toISOString() });
  const resultsDirectory = path.join(path.dirname(fileURLToPath(import.meta.url)), 'results');
  mkdirSync(resultsDirectory, { recursive: true });
  const sorted = Object.fromEntries(Object.entries(results).sort(([left], [right]) => left.localeCompare(right)));
  writeFileSync(path.join(resultsDirectory, 'latest.json'), `${JSON.stringify(sorted, null, 2)}\n`);
  printTable(rows);
  process.stdout.write(`\nPostgreSQL ${String(results.postgres_version)} (${server.kind}), ${String(results.cores)} cores; written to bench/results/latest.json\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
