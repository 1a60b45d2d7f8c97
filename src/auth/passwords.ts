import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

/**
 * Passwords are hashed with scrypt (node:crypto). The hash string carries its
 * own parameters and salt, so the cost can be raised later without breaking
 * the hashes already stored:
 *
 *   `scrypt$<log2 N>$<r>$<p>$<salt base64url>$<hash base64url>`
 */
export const passwordLengthMin = 12;
/** scrypt's cost hardly depends on length, but a cap keeps request bodies honest. */
export const passwordLengthMax = 256;

export interface ScryptParameters {
  logCost: number;
  blockSize: number;
  parallelization: number;
}

const hashPrefix = 'scrypt';
const saltBytes = 16;
const keyBytes = 32;

/** OWASP's scrypt recommendation for 32 MiB of memory: N = 2^15, r = 8, p = 3 (about 250 ms on one core). */
export const productionHashParameters: ScryptParameters = { logCost: 15, blockSize: 8, parallelization: 3 };
/** The lowest cost a stored hash may have; also what test suites hash with (see setPasswordHashParameters). */
export const minimumHashParameters: ScryptParameters = { logCost: 10, blockSize: 8, parallelization: 1 };

let defaultParameters: ScryptParameters = productionHashParameters;
let dummyHash: Promise<string> | undefined;

/**
 * Changes the cost of hashes made from now on. Test suites lower it, because
 * hundreds of sign-ins at production cost take minutes; nothing else should.
 * Checking a password always uses the parameters stored in its hash, so
 * hashes made at either cost keep working.
 */
export function setPasswordHashParameters(parameters: ScryptParameters): void {
  defaultParameters = parameters;
  // The stand-in hash for unknown emails must cost what a real one costs.
  dummyHash = undefined;
}

/**
 * Bounds on parameters read back from a stored hash: a corrupted or hostile
 * value must not make one sign-in allocate gigabytes or spin for minutes.
 */
const logCostMax = 20;
const blockSizeMax = 32;
const parallelizationMax = 16;


export class PasswordPolicyError extends Error {
  override name = 'PasswordPolicyError';
}

/** Returns a reason when the password is unacceptable, undefined when it is fine. */
export function passwordProblem(password: string): string | undefined {
  if (password.length < passwordLengthMin) return `a password needs at least ${passwordLengthMin} characters`;
  if (password.length > passwordLengthMax) return `a password may have at most ${passwordLengthMax} characters`;
  return undefined;
}

function derive(password: string, salt: Buffer, parameters: ScryptParameters): Promise<Buffer> {
  const cost = 2 ** parameters.logCost;
  const options: ScryptOptions = {
    N: cost,
    r: parameters.blockSize,
    p: parameters.parallelization,
    // scrypt needs about 128 * N * r bytes; leave headroom above Node's 32 MiB default.
    maxmem: 256 * cost * parameters.blockSize,
  };
  return new Promise((resolve, reject) => {
    scrypt(password.normalize('NFKC'), salt, keyBytes, options, (error, key) => (error ? reject(error) : resolve(key)));
  });
}

export async function hashPassword(password: string): Promise<string> {
  const problem = passwordProblem(password);
  if (problem) throw new PasswordPolicyError(problem);
  const salt = randomBytes(saltBytes);
  const key = await derive(password, salt, defaultParameters);
  const { logCost, blockSize, parallelization } = defaultParameters;
  return [hashPrefix, logCost, blockSize, parallelization, salt.toString('base64url'), key.toString('base64url')].join('$');
}

function parseHash(stored: string): { parameters: ScryptParameters; salt: Buffer; key: Buffer } | undefined {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== hashPrefix) return undefined;
  const [logCost, blockSize, parallelization] = parts.slice(1, 4).map((part) => (/^\d{1,2}$/.test(part) ? Number(part) : NaN));
  if (logCost === undefined || blockSize === undefined || parallelization === undefined) return undefined;
  const withinBounds =
    logCost >= minimumHashParameters.logCost && logCost <= logCostMax && blockSize >= 1 && blockSize <= blockSizeMax && parallelization >= 1 && parallelization <= parallelizationMax;
  if (!withinBounds) return undefined;
  const salt = Buffer.from(parts[4] ?? '', 'base64url');
  const key = Buffer.from(parts[5] ?? '', 'base64url');
  if (salt.length < saltBytes || key.length !== keyBytes) return undefined;
  return { parameters: { logCost, blockSize, parallelization }, salt, key };
}

/** Constant-time check of a password against a stored hash; a malformed hash never matches. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parsed = parseHash(stored);
  if (!parsed || password.length > passwordLengthMax) {
    // Do the same work as a real check, so a broken row or an absurd input is not told apart by timing.
    await derive('x'.repeat(passwordLengthMin), randomBytes(saltBytes), defaultParameters);
    return false;
  }
  const candidate = await derive(password, parsed.salt, parsed.parameters);
  return timingSafeEqual(candidate, parsed.key);
}

/**
 * A hash of a random password, checked when a sign-in names an unknown email,
 * so the answer takes as long as for a real account and does not reveal which
 * emails exist.
 */
export function dummyPasswordHash(): Promise<string> {
  dummyHash ??= hashPassword(randomBytes(24).toString('base64url'));
  return dummyHash;
}

/** True when the stored hash was made with weaker parameters than today's and should be redone at the next sign-in. */
export function passwordNeedsRehash(stored: string): boolean {
  const parsed = parseHash(stored);
  if (!parsed) return true;
  const { logCost, blockSize, parallelization } = parsed.parameters;
  return logCost < defaultParameters.logCost || blockSize < defaultParameters.blockSize || parallelization < defaultParameters.parallelization;
}
