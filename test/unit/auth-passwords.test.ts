import { afterEach, describe, expect, it } from 'vitest';
import {
  hashPassword,
  minimumHashParameters,
  passwordNeedsRehash,
  PasswordPolicyError,
  passwordProblem,
  productionHashParameters,
  setPasswordHashParameters,
  verifyPassword,
} from '../../src/auth/passwords.js';

describe('password hashing', () => {
  afterEach(() => setPasswordHashParameters(productionHashParameters));

  it('hashes at production cost by default, with the parameters and a fresh salt in the hash', async () => {
    const first = await hashPassword('twelve chars!');
    const second = await hashPassword('twelve chars!');
    expect(first).toMatch(/^scrypt\$15\$8\$3\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
    expect(first).not.toBe(second);
    expect(await verifyPassword('twelve chars!', first)).toBe(true);
    expect(await verifyPassword('twelve chars?', first)).toBe(false);
    expect(passwordNeedsRehash(first)).toBe(false);
  });

  it('verifies hashes made at another cost, and says when one is weaker than today’s', async () => {
    setPasswordHashParameters(minimumHashParameters);
    const cheap = await hashPassword('a cheap test password');
    setPasswordHashParameters(productionHashParameters);
    expect(cheap.startsWith('scrypt$10$8$1$')).toBe(true);
    expect(await verifyPassword('a cheap test password', cheap)).toBe(true);
    expect(passwordNeedsRehash(cheap)).toBe(true);
  });

  it('treats malformed or absurd stored hashes as a mismatch, never as an error', async () => {
    setPasswordHashParameters(minimumHashParameters);
    const valid = await hashPassword('a cheap test password');
    const [, , blockSize, parallelization, salt, key] = valid.split('$');
    for (const broken of ['', 'plain', 'bcrypt$10$abc', `scrypt$30$${blockSize}$${parallelization}$${salt}$${key}`, `scrypt$10$8$1$${salt}$short`, `scrypt$x$8$1$${salt}$${key}`]) {
      expect(await verifyPassword('a cheap test password', broken)).toBe(false);
      expect(passwordNeedsRehash(broken)).toBe(true);
    }
  });

  it('enforces the length policy', async () => {
    expect(passwordProblem('short')).toMatch(/at least 12/);
    expect(passwordProblem('x'.repeat(257))).toMatch(/at most 256/);
    expect(passwordProblem('exactly12chr')).toBeUndefined();
    await expect(hashPassword('eleven char')).rejects.toBeInstanceOf(PasswordPolicyError);
  });
});
