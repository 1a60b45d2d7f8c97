import { createHash, createPrivateKey, createPublicKey, createSign, generateKeyPairSync, randomBytes, X509Certificate, type KeyObject } from 'node:crypto';

/**
 * Just enough X.509 to run a test CA without the openssl command: node:crypto
 * parses and verifies certificates but cannot make them, so this writes the
 * DER of a version 3 certificate (RFC 5280) by hand and signs it with
 * sha256WithRSAEncryption. It makes three kinds: self-signed roots,
 * intermediates (CA, may sign certificates) and end-entity signing
 * certificates (may sign data only), each with subject and authority key
 * identifiers so that node's `checkIssued` links them as OpenSSL would.
 */

export interface DistinguishedName {
  country?: string;
  organization?: string;
  organizationalUnit?: string;
  commonName: string;
}

export interface KeyPair {
  privateKey: KeyObject;
  publicKey: KeyObject;
}

export interface CertificateOrder {
  subject: DistinguishedName;
  subjectPublicKey: KeyObject;
  /** Who signs it; absent: the subject signs itself (a root). */
  issuer?: { name: DistinguishedName; keys: KeyPair };
  /** Signs it with this key although the issuer's name and key identifier are used: for forging in tests. */
  signingKeyOverride?: KeyObject;
  notBefore: Date;
  notAfter: Date;
  authority: boolean;
  serialNumber?: bigint;
}

const oids = {
  country: '2.5.4.6',
  organization: '2.5.4.10',
  organizationalUnit: '2.5.4.11',
  commonName: '2.5.4.3',
  sha256WithRsa: '1.2.840.113549.1.1.11',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  subjectKeyIdentifier: '2.5.29.14',
  authorityKeyIdentifier: '2.5.29.35',
} as const;

const tags = {
  boolean: 0x01,
  integer: 0x02,
  bitString: 0x03,
  octetString: 0x04,
  null: 0x05,
  objectIdentifier: 0x06,
  utf8String: 0x0c,
  printableString: 0x13,
  utcTime: 0x17,
  generalizedTime: 0x18,
  sequence: 0x30,
  set: 0x31,
} as const;

// ---------------------------------------------------------------------------
// DER

function lengthBytes(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  const bytes: number[] = [];
  for (let rest = length; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest % 256);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function tlv(tag: number, content: Buffer): Buffer {
  return Buffer.concat([Buffer.from([tag]), lengthBytes(content.length), content]);
}

const sequence = (...items: Buffer[]) => tlv(tags.sequence, Buffer.concat(items));

function integer(value: bigint): Buffer {
  let hex = value.toString(16);
  if (hex.length % 2 === 1) hex = `0${hex}`;
  let bytes = Buffer.from(hex, 'hex');
  // DER integers are signed: a leading 1 bit would make a serial negative.
  if ((bytes[0] ?? 0) & 0x80) bytes = Buffer.concat([Buffer.from([0]), bytes]);
  return tlv(tags.integer, bytes);
}

function objectIdentifier(oid: string): Buffer {
  const [first = 0, second = 0, ...rest] = oid.split('.').map(Number);
  const bytes = [first * 40 + second];
  for (const arc of rest) {
    const groups: number[] = [];
    for (let value = arc; ; value = Math.floor(value / 128)) {
      groups.unshift((value % 128) | (groups.length > 0 ? 0x80 : 0));
      if (value < 128) break;
    }
    bytes.push(...groups);
  }
  return tlv(tags.objectIdentifier, Buffer.from(bytes));
}

function time(date: Date): Buffer {
  const iso = date.toISOString();
  const compact = `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
  // RFC 5280: UTCTime through 2049, GeneralizedTime from 2050.
  const year = date.getUTCFullYear();
  if (year >= 1950 && year < 2050) return tlv(tags.utcTime, Buffer.from(compact.slice(2), 'ascii'));
  return tlv(tags.generalizedTime, Buffer.from(compact, 'ascii'));
}

function name(distinguished: DistinguishedName): Buffer {
  const attributes: [string, number, string | undefined][] = [
    [oids.country, tags.printableString, distinguished.country],
    [oids.organization, tags.utf8String, distinguished.organization],
    [oids.organizationalUnit, tags.utf8String, distinguished.organizationalUnit],
    [oids.commonName, tags.utf8String, distinguished.commonName],
  ];
  const relative = attributes
    .filter((attribute): attribute is [string, number, string] => attribute[2] !== undefined)
    .map(([oid, tag, value]) => tlv(tags.set, sequence(objectIdentifier(oid), tlv(tag, Buffer.from(value, 'utf8')))));
  return sequence(...relative);
}

function extension(oid: string, critical: boolean, value: Buffer): Buffer {
  return sequence(objectIdentifier(oid), ...(critical ? [tlv(tags.boolean, Buffer.from([0xff]))] : []), tlv(tags.octetString, value));
}

/** RFC 5280 §4.2.1.2 allows any unique value; the SHA-1 of the whole public key info is one. */
function keyIdentifier(publicKey: KeyObject): Buffer {
  return createHash('sha1').update(publicKey.export({ type: 'spki', format: 'der' })).digest();
}

function extensions(order: CertificateOrder, issuerPublicKey: KeyObject): Buffer {
  const basicConstraints = order.authority ? sequence(tlv(tags.boolean, Buffer.from([0xff]))) : sequence();
  // keyCertSign + cRLSign for a CA (bits 5 and 6); digitalSignature + nonRepudiation for a signer (bits 0 and 1).
  const keyUsage = order.authority ? tlv(tags.bitString, Buffer.from([0x01, 0x06])) : tlv(tags.bitString, Buffer.from([0x06, 0xc0]));
  const authorityKeyIdentifier = sequence(tlv(0x80, keyIdentifier(issuerPublicKey)));
  const list = sequence(
    extension(oids.basicConstraints, true, basicConstraints),
    extension(oids.keyUsage, true, keyUsage),
    extension(oids.subjectKeyIdentifier, false, tlv(tags.octetString, keyIdentifier(order.subjectPublicKey))),
    extension(oids.authorityKeyIdentifier, false, authorityKeyIdentifier),
  );
  return tlv(0xa3, list);
}

function randomSerial(): bigint {
  const bytes = randomBytes(10);
  bytes[0] = (bytes[0]! & 0x7f) | 0x10;
  return BigInt(`0x${bytes.toString('hex')}`);
}

function pem(der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN CERTIFICATE-----\n${lines.join('\n')}\n-----END CERTIFICATE-----\n`;
}

/** Issues (signs) one certificate and returns it as PEM. */
export function issueCertificate(order: CertificateOrder): string {
  const issuerName = order.issuer?.name ?? order.subject;
  const issuerPublicKey = order.issuer?.keys.publicKey ?? order.subjectPublicKey;
  const signingKey = order.signingKeyOverride ?? order.issuer?.keys.privateKey;
  if (!signingKey) throw new Error('a self-signed certificate needs signingKeyOverride set to the subject’s own private key');
  const algorithm = sequence(objectIdentifier(oids.sha256WithRsa), tlv(tags.null, Buffer.alloc(0)));
  const toBeSigned = sequence(
    tlv(0xa0, integer(2n)),
    integer(order.serialNumber ?? randomSerial()),
    algorithm,
    name(issuerName),
    sequence(time(order.notBefore), time(order.notAfter)),
    name(order.subject),
    Buffer.from(order.subjectPublicKey.export({ type: 'spki', format: 'der' })),
    extensions(order, issuerPublicKey),
  );
  const signature = createSign('sha256').update(toBeSigned).sign(signingKey);
  return pem(sequence(toBeSigned, algorithm, tlv(tags.bitString, Buffer.concat([Buffer.from([0]), signature]))));
}

export function newRsaKeyPair(): KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { privateKey, publicKey };
}

/** A self-signed root CA. */
export function issueRoot(subject: DistinguishedName, keys: KeyPair, notBefore: Date, notAfter: Date): string {
  return issueCertificate({ subject, subjectPublicKey: keys.publicKey, signingKeyOverride: keys.privateKey, notBefore, notAfter, authority: true });
}

export function privateKeyPem(key: KeyObject): string {
  return key.export({ type: 'pkcs8', format: 'pem' }).toString();
}

export function keyPairFromPem(privatePem: string): KeyPair {
  const privateKey = createPrivateKey(privatePem);
  return { privateKey, publicKey: createPublicKey(privateKey) };
}

/** The subject DN of a certificate, for issuing under it. */
export function subjectOf(certificatePem: string): DistinguishedName {
  const lines = new X509Certificate(certificatePem).subject.split('\n');
  const value = (key: string) => lines.find((line) => line.startsWith(`${key}=`))?.slice(key.length + 1);
  return { country: value('C'), organization: value('O'), organizationalUnit: value('OU'), commonName: value('CN') ?? '' };
}
