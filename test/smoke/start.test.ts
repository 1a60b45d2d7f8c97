import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, runFen, spawnFen, waitForOk } from '../helpers/process.js';

/**
 * The newcomer's path: `fen start` with nothing configured starts the embedded
 * PostgreSQL and serves /healthz; a second start reuses the same data.
 */
describe('fen start on the embedded PostgreSQL', () => {
  const dataDirectory = mkdtempSync(path.join(os.tmpdir(), 'fen-start-'));
  chmodSync(dataDirectory, 0o755);
  afterAll(() => rmSync(dataDirectory, { recursive: true, force: true }));

  const environment = (port: number) => ({ DATABASE_URL: undefined, FEN_DATA_DIR: dataDirectory, PORT: String(port), LOG_LEVEL: 'warn' });

  it('serves /healthz within 60 s, stops cleanly, and starts again on the same data', async () => {
    for (let round = 0; round < 2; round += 1) {
      const port = await freePort();
      const fen = spawnFen(['start'], environment(port));
      try {
        await waitForOk(`http://127.0.0.1:${port}/healthz`, 60_000, fen);
        const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
        expect(ready.status).toBe(200);
      } finally {
        expect(await fen.stop()).toBe(0);
      }
    }
  });

  it('lists every setting in `fen start --help`', async () => {
    const { code, output } = await runFen(['start', '--help'], {});
    expect(code).toBe(0);
    for (const name of ['DATABASE_URL', 'FEN_DATA_DIR', 'PORT', 'HOST', 'FEN_MASTER_KEY', 'LOG_LEVEL']) expect(output).toContain(name);
  });

  it('refuses a bad setting with a message naming it', async () => {
    const { code, output } = await runFen(['migrate'], { PORT: 'eighty', FEN_DATA_DIR: dataDirectory });
    expect(code).toBe(2);
    expect(output).toContain('PORT');
  });
});
