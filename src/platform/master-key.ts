import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { FenConfig } from './config.js';
import { createSecretBox, generateMasterKey, parseMasterKey, type SecretBox } from './secret-box.js';

/**
 * The master key comes from FEN_MASTER_KEY, or from `master.key` in the data
 * directory, written (mode 0600) on first start so a laptop install needs no
 * set-up. Production sets FEN_MASTER_KEY from its secret store.
 */
export function loadSecretBox(config: Pick<FenConfig, 'masterKey' | 'previousMasterKeys' | 'dataDirectory'>): SecretBox {
  const previous = config.previousMasterKeys.map(parseMasterKey);
  if (config.masterKey) return createSecretBox({ current: parseMasterKey(config.masterKey), previous });
  const keyFile = path.join(config.dataDirectory, 'master.key');
  if (!existsSync(keyFile)) {
    mkdirSync(config.dataDirectory, { recursive: true });
    writeFileSync(keyFile, `${generateMasterKey()}\n`, { mode: 0o600, flag: 'wx' });
  }
  return createSecretBox({ current: parseMasterKey(readFileSync(keyFile, 'utf8')), previous });
}
