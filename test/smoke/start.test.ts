import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FenClient } from '../../sdk/index.js';
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

  it('serves /healthz within 60 s with demo credentials that sign, stops cleanly, and starts again on the same data', async () => {
    const appIds: string[] = [];
    for (let round = 0; round < 2; round += 1) {
      const port = await freePort();
      const fen = spawnFen(['start'], { ...environment(port), FEN_SIMULATOR_PORT: String(await freePort()) });
      try {
        await waitForOk(`http://127.0.0.1:${port}/healthz`, 60_000, fen);
        const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
        expect(ready.status).toBe(200);
        const demo = JSON.parse(readFileSync(path.join(dataDirectory, 'demo.json'), 'utf8')) as { api_base: string; app_id: string; app_secret: string };
        expect(demo.api_base).toBe(`http://127.0.0.1:${port}`);
        const client = new FenClient({ baseUrl: demo.api_base, appId: demo.app_id, appSecret: demo.app_secret });
        expect(await client.request<{ id: string }>('GET', '/v1/app')).toMatchObject({ id: demo.app_id });
        appIds.push(demo.app_id);
      } finally {
        expect(await fen.stop()).toBe(0);
      }
    }
    expect(appIds[1]).toBe(appIds[0]);
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
