import { createHash, createSign, createVerify, X509Certificate, type KeyObject } from 'node:crypto';

/**
 * UnionPay ACP 5.1.0 signatures with certificates (signMethod=01), written
 * with node:crypto because UnionPay publishes no SDK for Node:
 *
 *  - the signing string is every field except `signature`, sorted by name
 *    (UTF-16 order, which is what the official Java SDK's TreeMap uses),
 *    joined as `name=value` with `&`, values exactly as sent (not URL-encoded,
 *    empty values included);
 *  - the SHA-256 of its UTF-8 bytes is written as lower-case hex, and that hex
 *    *text* is what SHA256withRSA signs; the signature travels as base64;
 *  - a merchant names its certificate by `certId`, the certificate's serial
 *    number in decimal;
 *  - UnionPay signs its answers and notifications with a certificate it sends
 *    along (`signPubKeyCert`, PEM, itself part of the signing string), which the
 *    merchant trusts only if it chains to UnionPay's middle and root
 *    certificates, is valid now, and names UnionPay in its CN.
 */

export const signMethodCertificate = '01';
export const defaultUnionpaySignerName = '中国银联股份有限公司';

export function signingString(fields: Record<string, string>): string {
  return Object.keys(fields)
    .filter((name) => name !== 'signature')
    .sort()
    .map((name) => `${name}=${fields[name]}`)
    .join('&');
}

/** The lower-case hex SHA-256 of the signing string: the text that is actually signed. */
export function signingDigestHex(fields: Record<string, string>): string {
  return createHash('sha256').update(signingString(fields), 'utf8').digest('hex');
}

export function signatureOf(fields: Record<string, string>, privateKey: KeyObject): string {
  return createSign('RSA-SHA256').update(signingDigestHex(fields), 'utf8').sign(privateKey, 'base64');
}

/** True only when the public key verifies the signature over the fields; a malformed signature is simply not valid. */
export function signatureValid(fields: Record<string, string>, publicKey: KeyObject): boolean {
  const signature = fields.signature;
  if (!signature) return false;
  try {
    return createVerify('RSA-SHA256').update(signingDigestHex(fields), 'utf8').verify(publicKey, signature, 'base64');
  } catch {
    return false;
  }
}

/** A certificate's certId: its serial number in decimal, as UnionPay writes it. */
export function certIdOf(certificate: X509Certificate): string {
  return BigInt(`0x${certificate.serialNumber}`).toString(10);
}

// ---------------------------------------------------------------------------
// Trusting UnionPay's signing certificate

/** What a UnionPay signing certificate must chain to, and the name it must carry. */
export interface UnionpayTrust {
  root: X509Certificate;
  middle: X509Certificate;
  /** The organisation in the CN: UnionPay's own name, or a simulator's. */
  signerName: string;
}

export type CertificateCheck = { ok: true; certificate: X509Certificate } | { ok: false; problem: string };

function validAt(certificate: X509Certificate, at: Date): boolean {
  const from = Date.parse(certificate.validFrom);
  const to = Date.parse(certificate.validTo);
  return Number.isFinite(from) && Number.isFinite(to) && from <= at.getTime() && at.getTime() <= to;
}

function issuedBy(certificate: X509Certificate, issuer: X509Certificate): boolean {
  // checkIssued compares the names, the key identifiers and the issuer's key usage; verify checks the signature.
  return issuer.ca && certificate.checkIssued(issuer) && certificate.verify(issuer.publicKey);
}

/** The last CN of a subject as node prints it (one `KEY=value` per line). */
export function commonNameOf(certificate: X509Certificate): string | undefined {
  const names = certificate.subject
    .split('\n')
    .filter((line) => line.startsWith('CN='))
    .map((line) => line.slice('CN='.length));
  return names.at(-1);
}

/**
 * UnionPay's production CNs read `<code>@<code>@<id>:SIGN@中国银联股份有限公司@<n>`
 * and the official SDKs compare the third `@` part; a plain CN equal to the
 * name is accepted too, for CAs (a test CA) that write it that way.
 */
export function namesSigner(commonName: string | undefined, signerName: string): boolean {
  if (commonName === undefined) return false;
  return commonName === signerName || commonName.split('@')[2] === signerName;
}

/** Checks a `signPubKeyCert` against the configured chain at the given time. */
export function checkSignerCertificate(pem: string | undefined, trust: UnionpayTrust, at: Date): CertificateCheck {
  if (!pem) return { ok: false, problem: 'no signPubKeyCert' };
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(pem);
  } catch {
    return { ok: false, problem: 'signPubKeyCert is not a certificate' };
  }
  if (certificate.ca) return { ok: false, problem: 'signPubKeyCert is a CA certificate, not a signing certificate' };
  if (!issuedBy(certificate, trust.middle)) return { ok: false, problem: 'signPubKeyCert was not issued by the configured middle certificate' };
  if (!issuedBy(trust.middle, trust.root) || !issuedBy(trust.root, trust.root)) {
    return { ok: false, problem: 'the configured middle certificate does not chain to the configured root' };
  }
  for (const [role, link] of [['signPubKeyCert', certificate], ['middle certificate', trust.middle], ['root certificate', trust.root]] as const) {
    if (!validAt(link, at)) return { ok: false, problem: `the ${role} is not valid at ${at.toISOString()}` };
  }
  if (!namesSigner(commonNameOf(certificate), trust.signerName)) {
    return { ok: false, problem: `signPubKeyCert does not name ${trust.signerName}` };
  }
  return { ok: true, certificate };
}

export type MessageCheck = { ok: true } | { ok: false; problem: string };

/** A UnionPay answer or notification: the certificate it carries first, then the signature with its key. */
export function verifyUnionpayMessage(fields: Record<string, string>, trust: UnionpayTrust, at: Date): MessageCheck {
  if (fields.signMethod !== signMethodCertificate) return { ok: false, problem: `signMethod ${fields.signMethod ?? '(none)'} is not certificate signing (01)` };
  if (!fields.signature) return { ok: false, problem: 'no signature' };
  const certificate = checkSignerCertificate(fields.signPubKeyCert, trust, at);
  if (!certificate.ok) return certificate;
  if (!signatureValid(fields, certificate.certificate.publicKey)) return { ok: false, problem: 'the signature does not verify with signPubKeyCert' };
  return { ok: true };
}

/** The configured chain, parsed once; throws on a configuration that is not two CA certificates. */
export function trustFrom(rootCertPem: string, middleCertPem: string, signerName: string): UnionpayTrust {
  const root = new X509Certificate(rootCertPem);
  const middle = new X509Certificate(middleCertPem);
  if (!root.ca || !middle.ca) throw new Error('the UnionPay root and middle certificates must both be CA certificates');
  return { root, middle, signerName };
}
