import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensureDatabaseExists, startEmbeddedPostgres, type EmbeddedDatabase } from '../../../src/platform/db/index.js';
import { freePort } from '../../helpers/process.js';

/**
 * Each chaos test runs its own PostgreSQL: an embedded server in a temporary
 * folder on a port chosen once, so the test can stop and start it on the same
 * address while Fen keeps running, without disturbing any other server on the
 * machine (DATABASE_URL is deliberately not used here).
 */
export interface ChaosPostgres {
  /** The database Fen runs on. */
  url: string;
  port: number;
  directory: string;
  /** Stops the server (fast shutdown: every session is cut), waits, and starts it again on the same port. */
  restart(pauseMs: number): Promise<void>;
  /** Stops the server; the folder (server files, process logs, the load's acknowledgements) is kept when asked, for a person to read. */
  close(options?: { keepFiles?: boolean }): Promise<void>;
}

export async function startChaosPostgres(label: string): Promise<ChaosPostgres> {
  const directory = mkdtempSync(path.join(os.tmpdir(), `fen-chaos-${label}-`));
  // The server runs as the postgres user when the tests run as root: it must be able to enter the folder.
  chmodSync(directory, 0o755);
  const port = await freePort();
  let server: EmbeddedDatabase | undefined = await startEmbeddedPostgres({ dataDirectory: directory, port });
  const url = await ensureDatabaseExists(server.url, 'fen_chaos');
  return {
    url,
    port,
    directory,
    restart: async (pauseMs) => {
      await server?.stop();
      server = undefined;
      await new Promise((resolve) => setTimeout(resolve, pauseMs));
      server = await startEmbeddedPostgres({ dataDirectory: directory, port });
    },
    close: async (closeOptions = {}) => {
      await server?.stop();
      server = undefined;
      if (closeOptions.keepFiles) console.log(`[chaos] kept ${directory} for a post-mortem`);
      else rmSync(directory, { recursive: true, force: true });
    },
  };
}
