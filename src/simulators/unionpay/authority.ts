import { X509Certificate } from 'node:crypto';
import type pg from 'pg';
import { issueCertificate, issueRoot, keyPairFromPem, newRsaKeyPair, privateKeyPem, subjectOf, type DistinguishedName } from './certificates.js';
import { simulatorSchema } from './store.js';

/**
 * The simulator's own certificate authority, standing in for UnionPay's: a
 * root, a middle certificate issued by it, and the signing certificate
 * ("UnionPay's", issued by the middle one) whose key signs every answer and
 * notification and which travels in them as signPubKeyCert. Fen is configured
 * with the root and middle certificates, exactly as with real UnionPay's. The
 * authority is made at first start and kept in the schema, so Fen's
 * configuration stays valid across restarts; the middle certificate also
 * issues test signing certificates for merchants.
 */

export const defaultSignerName = '中国银联股份有限公司';
const dayMs = 24 * 60 * 60 * 1000;
const rootLifetimeDays = 20 * 365;
const middleLifetimeDays = 10 * 365;
const signerLifetimeDays = 5 * 365;
const merchantLifetimeDays = 5 * 365;

export interface UnionpayAuthority {
  rootCertPem: string;
  rootPrivateKeyPem: string;
  middleCertPem: string;
  middlePrivateKeyPem: string;
  /** The certificate that signs answers and notifications (signPubKeyCert). */
  signerCertPem: string;
  signerPrivateKeyPem: string;
}

const rootName: DistinguishedName = { country: 'CN', organization: 'Fen simulator', commonName: 'Fen simulator UnionPay test root CA' };
const middleName: DistinguishedName = { country: 'CN', organization: 'Fen simulator', commonName: 'Fen simulator UnionPay test middle CA' };

/** A signing certificate's name in UnionPay's shape: the official SDKs read the organisation as the third `@` part of the CN. */
function signerSubject(signerName: string): DistinguishedName {
  return { country: 'CN', organization: signerName, organizationalUnit: 'UnionPay online payment', commonName: `041@Z12@${signerName}@00000001` };
}

function window(now: Date, lifetimeDays: number): { notBefore: Date; notAfter: Date } {
  // Back-dated a day, so a clock a little behind the simulator's still finds it valid.
  return { notBefore: new Date(now.getTime() - dayMs), notAfter: new Date(now.getTime() + lifetimeDays * dayMs) };
}

export function createAuthority(now: Date, signerName: string = defaultSignerName): UnionpayAuthority {
  const rootKeys = newRsaKeyPair();
  const middleKeys = newRsaKeyPair();
  const signerKeys = newRsaKeyPair();
  const rootWindow = window(now, rootLifetimeDays);
  const rootCertPem = issueRoot(rootName, rootKeys, rootWindow.notBefore, rootWindow.notAfter);
  const middleCertPem = issueCertificate({
    subject: middleName,
    subjectPublicKey: middleKeys.publicKey,
    issuer: { name: rootName, keys: rootKeys },
    ...window(now, middleLifetimeDays),
    authority: true,
  });
  const signerCertPem = issueCertificate({
    subject: signerSubject(signerName),
    subjectPublicKey: signerKeys.publicKey,
    issuer: { name: middleName, keys: middleKeys },
    ...window(now, signerLifetimeDays),
    authority: false,
  });
  return {
    rootCertPem,
    rootPrivateKeyPem: privateKeyPem(rootKeys.privateKey),
    middleCertPem,
    middlePrivateKeyPem: privateKeyPem(middleKeys.privateKey),
    signerCertPem,
    signerPrivateKeyPem: privateKeyPem(signerKeys.privateKey),
  };
}

/** A merchant's signing certificate and key, issued by the middle CA, as UnionPay issues test merchants a PFX. */
export function issueMerchantCertificate(authority: UnionpayAuthority, merId: string, now: Date): { certificatePem: string; privateKeyPem: string } {
  const keys = newRsaKeyPair();
  const certificatePem = issueCertificate({
    subject: { country: 'CN', organization: 'Fen simulator merchant', organizationalUnit: 'UnionPay online payment', commonName: `041@Z12@${merId}@00000001` },
    subjectPublicKey: keys.publicKey,
    issuer: { name: subjectOf(authority.middleCertPem), keys: keyPairFromPem(authority.middlePrivateKeyPem) },
    ...window(now, merchantLifetimeDays),
    authority: false,
  });
  return { certificatePem, privateKeyPem: privateKeyPem(keys.privateKey) };
}

function isAuthority(value: unknown): value is UnionpayAuthority {
  if (typeof value !== 'object' || value === null) return false;
  const record = value as Record<string, unknown>;
  const names = ['rootCertPem', 'rootPrivateKeyPem', 'middleCertPem', 'middlePrivateKeyPem', 'signerCertPem', 'signerPrivateKeyPem'];
  return names.every((field) => typeof record[field] === 'string');
}

/**
 * The stored authority, made now if there is none (one JSON value, inserted
 * once, so two processes starting together agree on it). A given authority
 * replaces the stored one.
 */
export async function loadAuthority(pool: pg.Pool, now: Date, options: { given?: UnionpayAuthority; signerName?: string } = {}): Promise<UnionpayAuthority> {
  if (options.given) {
    await pool.query(
      `INSERT INTO ${simulatorSchema}.settings (name, value) VALUES ('authority', $1) ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value`,
      [JSON.stringify(options.given)],
    );
    return options.given;
  }
  const existing = await pool.query<{ value: string }>(`SELECT value FROM ${simulatorSchema}.settings WHERE name = 'authority'`);
  if (!existing.rows[0]) {
    const made = createAuthority(now, options.signerName);
    await pool.query(`INSERT INTO ${simulatorSchema}.settings (name, value) VALUES ('authority', $1) ON CONFLICT (name) DO NOTHING`, [JSON.stringify(made)]);
  }
  const stored = await pool.query<{ value: string }>(`SELECT value FROM ${simulatorSchema}.settings WHERE name = 'authority'`);
  const parsed: unknown = JSON.parse(stored.rows[0]?.value ?? 'null');
  if (!isAuthority(parsed)) throw new Error('the UnionPay simulator’s stored certificate authority is unreadable');
  return parsed;
}

/** The organisation the signing certificate names (the third `@` part of its CN), as a connector reads it. */
export function signerNameOf(authority: UnionpayAuthority): string {
  const commonName = subjectOf(authority.signerCertPem).commonName;
  return commonName.split('@')[2] ?? commonName;
}

/** The decimal serial of a certificate: UnionPay's certId. */
export function certIdOfPem(certificatePem: string): string {
  return BigInt(`0x${new X509Certificate(certificatePem).serialNumber}`).toString(10);
}
