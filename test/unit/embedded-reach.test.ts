import { chmodSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { firstClosedFolder } from '../../src/platform/db/embedded.js';

/**
 * Run as root, the embedded PostgreSQL runs as "postgres" and must enter every
 * folder above its data and its binaries. A checkout in a mktemp folder (0700)
 * used to fail with a bare EACCES from initdb; the folder is now named.
 */
describe('finding the folder the postgres user cannot enter', () => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'fen-reach-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('names the first closed folder above the target, and none when all are open', () => {
    const closed = path.join(root, 'closed');
    const target = path.join(closed, 'inner', 'node_modules', 'initdb');
    mkdirSync(path.dirname(target), { recursive: true });
    chmodSync(root, 0o755);
    chmodSync(closed, 0o700);
    chmodSync(path.join(closed, 'inner'), 0o755);
    chmodSync(path.dirname(target), 0o755);
    expect(firstClosedFolder(target)).toBe(closed);
    chmodSync(closed, 0o711);
    expect(firstClosedFolder(target)).toBeUndefined();
  });
});
