import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { assert } from './assert.js';

/**
 * Secrets at rest (channel keys, app secrets, bank account numbers) are sealed
 * with AES-256-GCM. A sealed value names the key that sealed it, so the master
 * key can be rotated: new values use the current key, old ones still open with
 * a previous key until `fen secrets rotate` re-seals them.
 *
 * Format: `fsb1.<key id>.<iv base64url>.<ciphertext+tag base64url>`.
 * The optional context (for example `app_secret:app_…`) is bound as additional
 * authenticated data, so a sealed value copied onto another row does not open.
 */
const formatVersion = 'fsb1';
const ivBytes = 12;
const tagBytes = 16;
export const masterKeyBytes = 32;

export interface SecretBox {
  seal(plaintext: string, context?: string): string;
  open(sealed: string, context?: string): string;
  /** True when the value was sealed under a key other than the current one. */
  needsReseal(sealed: string): boolean;
  readonly currentKeyId: string;
}

export function keyIdOf(key: Buffer): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 8);
}

/** Accepts a key as 64 hex characters or as base64 of 32 bytes. */
export function parseMasterKey(text: string): Buffer {
  const trimmed = text.trim();
  const key = /^[0-9a-fA-F]{64}$/.test(trimmed) ? Buffer.from(trimmed, 'hex') : Buffer.from(trimmed, 'base64');
  if (key.length !== masterKeyBytes) {
    throw new Error(`a master key must be 32 bytes, as 64 hex characters or base64 (got ${key.length} bytes)`);
  }
  return key;
}

export function generateMasterKey(): string {
  return randomBytes(masterKeyBytes).toString('base64');
}

export function createSecretBox(options: { current: Buffer; previous?: Buffer[] }): SecretBox {
  const keys = new Map<string, Buffer>();
  for (const key of [options.current, ...(options.previous ?? [])]) keys.set(keyIdOf(key), key);
  const currentKeyId = keyIdOf(options.current);

  function seal(plaintext: string, context = ''): string {
    const iv = randomBytes(ivBytes);
    const cipher = createCipheriv('aes-256-gcm', options.current, iv);
    cipher.setAAD(Buffer.from(context, 'utf8'));
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]);
    return [formatVersion, currentKeyId, iv.toString('base64url'), body.toString('base64url')].join('.');
  }

  function open(sealed: string, context = ''): string {
    const parts = sealed.split('.');
    assert(parts.length === 4 && parts[0] === formatVersion, 'not a sealed secret');
    const [, keyId = '', ivText = '', bodyText = ''] = parts;
    const key = keys.get(keyId);
    assert(key, `no master key with id ${keyId} is configured (set FEN_MASTER_KEYS_PREVIOUS)`);
    const body = Buffer.from(bodyText, 'base64url');
    assert(body.length >= tagBytes, 'sealed secret is truncated');
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(ivText, 'base64url'));
    decipher.setAAD(Buffer.from(context, 'utf8'));
    decipher.setAuthTag(body.subarray(body.length - tagBytes));
    return Buffer.concat([decipher.update(body.subarray(0, body.length - tagBytes)), decipher.final()]).toString('utf8');
  }

  function needsReseal(sealed: string): boolean {
    return sealed.split('.')[1] !== currentKeyId;
  }

  return { seal, open, needsReseal, currentKeyId };
}

/** Shows only the last four characters: `****6789`. */
export function maskTail(value: string, visible = 4): string {
  const tail = value.slice(-visible);
  return `${'*'.repeat(Math.max(4, value.length - visible))}${tail}`;
}
