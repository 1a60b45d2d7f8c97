import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { checkNotificationAmount } from '../../src/channels/connector.js';
import {
  certIdOf,
  checkSignerCertificate,
  signatureOf,
  signatureValid,
  signingDigestHex,
  signingString,
  trustFrom,
  UnionpayConnector,
  verifyUnionpayMessage,
  type UnionpayAccountConfig,
} from '../../src/channels/unionpay/index.js';
import { namesSigner } from '../../src/channels/unionpay/signature.js';
import { ManualClock } from '../../src/platform/clock.js';
import { money } from '../../src/platform/money.js';
import { silentLogger } from '../fixtures/unionpay/harness.js';

/**
 * UnionPay's signMethod=01 against things made outside this code: a signing
 * string, digest and signature worked out by hand with sha256sum and the
 * openssl command (test/fixtures/unionpay/certificates/make.sh), and a chain
 * of certificates (root → middle → UnionPay's signing certificate, plus an
 * expired one, one with another name, and a forger's CA) made by openssl too.
 */

const folder = path.join(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/unionpay/certificates');
const pemOf = (name: string) => readFileSync(path.join(folder, `${name}.pem`), 'utf8');
const unionpayName = '中国银联股份有限公司';
const trust = trustFrom(pemOf('root'), pemOf('middle'), unionpayName);
/** make.sh made the certificates on 2026-11-26 (valid for a century); the expired one ran out on 2026-11-27. */
const validAt = new Date('2027-01-01T00:00:00Z');
const genuineBody = readFileSync(path.join(folder, 'notification-payment.form'), 'utf8').trim();
const genuineForm = Object.fromEntries(new URLSearchParams(genuineBody));

describe('the signing string and signature (signMethod 01)', () => {
  // A consumption request's fields; `signature` is never part of what is signed.
  const fields = {
    version: '5.1.0',
    encoding: 'UTF-8',
    signMethod: '01',
    txnType: '01',
    bizType: '000201',
    accessType: '0',
    merId: '777290058110048',
    certId: '69629715588',
    orderId: 'pay01jh6b7p5q3m2k9x8w4v0t1r2s',
    txnTime: '20250115100000',
    txnAmt: '1234',
    currencyCode: '156',
    riskRateInfo: '{commodityName=测试商品}',
    accNo: '6216********0018',
    signature: 'not part of it',
  };
  // Written out by hand: sorted by UTF-16 code unit, so accNo ("N" is 0x4E) comes before accessType ("e" is 0x65).
  const expectedString =
    'accNo=6216********0018&accessType=0&bizType=000201&certId=69629715588&currencyCode=156&encoding=UTF-8&merId=777290058110048' +
    '&orderId=pay01jh6b7p5q3m2k9x8w4v0t1r2s&riskRateInfo={commodityName=测试商品}&signMethod=01&txnAmt=1234&txnTime=20250115100000&txnType=01&version=5.1.0';
  // printf '%s' "$expectedString" | sha256sum
  const expectedDigest = 'ee1591514c2f5ed5f7a75acb60bdb93cac067fa037b1c8f29ae5ad10a3f64e8b';
  // printf '%s' "$expectedDigest" | openssl dgst -sha256 -sign vector-key.pem | base64 -w0 (PKCS#1 v1.5 is deterministic)
  const expectedSignature =
    'JqlfE396nYV2LJKDRop22JPb9ETAfwSRzraUiGU3JSgHaV/pNAwci4VHD4DHTa7d9NzBWAXma0JehvO/bg4CYucnYrC66dK1IkY5pj+ZEZQU53WwUEiTVLey/JtviD1R7y89WTmcD4f582dkDSfeOg2hEWPVtAWAmzZUzbVwUJ9twInVeyERGnsPxNEWUaE4bpmFwI6xYHsDf4lbhm0hN8RqNzU7rCwmG/lhJ4kwR5DE9Lvqq1nGEeeJxqDM7SN5xwah/nugFBEzqi7cVYGgUJsuMtg8neTnPJKcICUNtZINvbL+MoydEAab+77PAh/5JK8eunp3gfN+Ohm0lhPlLg==';
  const vectorKey = createPrivateKey(pemOf('vector-key'));

  it('sorts every field but signature and joins k=v with &, values as they are', () => {
    expect(signingString(fields)).toBe(expectedString);
    // Empty values stay in, as UnionPay's SDKs keep them.
    expect(signingString({ b: '1', a: '' })).toBe('a=&b=1');
  });

  it('signs the lower-case hex SHA-256 of that string with SHA256withRSA, in base64', () => {
    expect(signingDigestHex(fields)).toBe(expectedDigest);
    expect(signatureOf(fields, vectorKey)).toBe(expectedSignature);
  });

  it('verifies the vector with the public key, and nothing that differs from it', () => {
    const publicKey = createPublicKey(vectorKey);
    expect(signatureValid({ ...fields, signature: expectedSignature }, publicKey)).toBe(true);
    expect(signatureValid({ ...fields, txnAmt: '1235', signature: expectedSignature }, publicKey)).toBe(false);
    expect(signatureValid({ ...fields, extra: '', signature: expectedSignature }, publicKey)).toBe(false);
    expect(signatureValid({ ...fields, signature: `A${expectedSignature.slice(1)}` }, publicKey)).toBe(false);
    expect(signatureValid({ ...fields, signature: '%%% not base64' }, publicKey)).toBe(false);
    expect(signatureValid({ ...fields, signature: '' }, publicKey)).toBe(false);
  });

  it('names a certificate by its serial number in decimal (certId)', () => {
    // openssl x509 -serial gives 3F91CF2503374EC1259D92DA7A48C48EC21C2966; in decimal (python int(…, 16)):
    expect(certIdOf(new X509Certificate(pemOf('other-signer')))).toBe('362918071453599138473189796177232588090336094566');
  });
});

describe('UnionPay’s signing certificate (signPubKeyCert)', () => {
  it('is accepted when it chains to the configured middle and root, is valid, and names UnionPay', () => {
    const check = checkSignerCertificate(pemOf('signer'), trust, validAt);
    expect(check.ok).toBe(true);
    // UnionPay sends the PEM with CRLF line ends.
    expect(checkSignerCertificate(pemOf('signer').replace(/\n/g, '\r\n'), trust, validAt).ok).toBe(true);
  });

  it('is refused when it comes from another CA, even one with the same names', () => {
    expect(checkSignerCertificate(pemOf('other-signer'), trust, validAt)).toEqual({ ok: false, problem: 'signPubKeyCert was not issued by the configured middle certificate' });
  });

  it('is refused when Fen is configured with a root the middle certificate does not chain to', () => {
    const wrongRoot = trustFrom(pemOf('other-root'), pemOf('middle'), unionpayName);
    expect(checkSignerCertificate(pemOf('signer'), wrongRoot, validAt)).toEqual({ ok: false, problem: 'the configured middle certificate does not chain to the configured root' });
  });

  it('is refused outside its validity, by the injected clock', () => {
    expect(checkSignerCertificate(pemOf('signer-expired'), trust, new Date('2026-11-26T12:00:00Z')).ok).toBe(true);
    expect(checkSignerCertificate(pemOf('signer-expired'), trust, validAt)).toEqual({ ok: false, problem: `the signPubKeyCert is not valid at ${validAt.toISOString()}` });
    const beforeMade = new Date('2020-01-01T00:00:00Z');
    expect(checkSignerCertificate(pemOf('signer'), trust, beforeMade)).toMatchObject({ ok: false, problem: expect.stringContaining('not valid at') });
  });

  it('is refused when its CN names someone else, unless that name is configured', () => {
    expect(checkSignerCertificate(pemOf('signer-wrong-name'), trust, validAt)).toEqual({ ok: false, problem: `signPubKeyCert does not name ${unionpayName}` });
    const otherName = trustFrom(pemOf('root'), pemOf('middle'), '某某支付有限公司');
    expect(checkSignerCertificate(pemOf('signer-wrong-name'), otherName, validAt).ok).toBe(true);
  });

  it('reads the name as UnionPay’s SDKs do: the whole CN, or its third @ part', () => {
    expect(namesSigner(unionpayName, unionpayName)).toBe(true);
    expect(namesSigner(`041@Z12@${unionpayName}@00000001`, unionpayName)).toBe(true);
    expect(namesSigner(`041@${unionpayName}@Z12@00000001`, unionpayName)).toBe(false);
    expect(namesSigner(`${unionpayName} Ltd`, unionpayName)).toBe(false);
    expect(namesSigner(undefined, unionpayName)).toBe(false);
  });

  it('is refused when it is a CA certificate or not a certificate at all', () => {
    expect(checkSignerCertificate(pemOf('middle'), trust, validAt)).toMatchObject({ ok: false, problem: expect.stringContaining('CA certificate') });
    expect(checkSignerCertificate('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----', trust, validAt)).toMatchObject({ ok: false });
    expect(checkSignerCertificate(undefined, trust, validAt)).toEqual({ ok: false, problem: 'no signPubKeyCert' });
  });

  it('refuses to be configured with certificates that are not CAs', () => {
    expect(() => trustFrom(pemOf('root'), pemOf('signer'), unionpayName)).toThrow(/CA certificates/);
  });
});

describe('a back notification signed by hand with openssl', () => {
  it('verifies with the chain at the injected time', () => {
    expect(verifyUnionpayMessage(genuineForm, trust, validAt)).toEqual({ ok: true });
    expect(genuineForm.signPubKeyCert).toBe(pemOf('signer').trim());
  });

  it('stops verifying when any single field changes, or when signed by a forger’s certificate', () => {
    for (const name of Object.keys(genuineForm).filter((field) => field !== 'signature' && field !== 'signPubKeyCert')) {
      const changed = { ...genuineForm, [name]: `${genuineForm[name]}0` };
      // signMethod is refused before the signature is checked; every other field breaks the signature.
      const problem = name === 'signMethod' ? 'signMethod 010 is not certificate signing (01)' : 'the signature does not verify with signPubKeyCert';
      expect(verifyUnionpayMessage(changed, trust, validAt), name).toEqual({ ok: false, problem });
    }
    const forged: Record<string, string> = { ...genuineForm, signPubKeyCert: pemOf('other-signer').trim() };
    forged.signature = signatureOf(forged, createPrivateKey(pemOf('other-signer-key')));
    expect(verifyUnionpayMessage(forged, trust, validAt)).toEqual({ ok: false, problem: 'signPubKeyCert was not issued by the configured middle certificate' });
    expect(verifyUnionpayMessage({ ...genuineForm, signMethod: '11' }, trust, validAt)).toMatchObject({ ok: false, problem: expect.stringContaining('signMethod') });
  });
});

describe('the connector on the hand-signed notification', () => {
  function connectorFor(overrides: Partial<UnionpayAccountConfig> = {}): UnionpayConnector {
    return new UnionpayConnector(
      {
        channelAccountId: 'cha_vector',
        merId: '777290058110048',
        // Any certificate with its key will do as the merchant's for verifying notifications.
        signCertPem: pemOf('other-signer'),
        signPrivateKeyPem: pemOf('other-signer-key'),
        rootCertPem: pemOf('root'),
        middleCertPem: pemOf('middle'),
        frontTransUrl: 'https://gateway.test.95516.com/gateway/api/frontTransReq.do',
        backTransUrl: 'https://gateway.test.95516.com/gateway/api/backTransReq.do',
        singleQueryUrl: 'https://gateway.test.95516.com/gateway/api/queryTrans.do',
        notifyUrl: 'https://fen.example/channels/unionpay/notify/cha_vector',
        frontUrl: 'https://fen.example/pay/return',
        timeoutMs: 5_000,
        ...overrides,
      },
      { logger: silentLogger, clock: new ManualClock(validAt) },
    );
  }

  it('verifies it and reads a payment of 12.34 CNY paid at the trace time', async () => {
    const verification = await connectorFor().verifyNotification({ headers: {}, rawBody: genuineBody });
    if (!verification.verified || verification.event.kind !== 'payment') throw new Error(`expected a verified payment: ${JSON.stringify(verification)}`);
    expect(verification.event).toMatchObject({
      notificationId: '250115100020123456789',
      reportedStatus: 'succeeded',
      facts: { outTradeNo: 'pay_01jh6b7p5q3m2k9x8w4v0t1r2s', channelTradeNo: '250115100020123456789', amount: money(1234n, 'CNY'), channelStatus: '00' },
    });
    // traceTime 0115100020 in the year of txnTime 20250115100000, Beijing time.
    expect(verification.event.facts.paidAt).toEqual(new Date('2025-01-15T02:00:20Z'));
    expect(checkNotificationAmount(verification.event, money(1234n, 'CNY'))).toMatchObject({ status: 'succeeded' });
    expect(checkNotificationAmount(verification.event, money(1235n, 'CNY'))).toMatchObject({ status: 'amount_mismatch' });
  });

  it('refuses it for another merchant, and refuses a changed copy', async () => {
    expect(await connectorFor({ merId: '777290058110049' }).verifyNotification({ headers: {}, rawBody: genuineBody })).toMatchObject({ verified: false, reason: 'foreign_account' });
    const changed = genuineBody.replace('txnAmt=1234', 'txnAmt=1');
    expect(await connectorFor().verifyNotification({ headers: {}, rawBody: changed })).toMatchObject({ verified: false, reason: 'invalid_signature' });
  });

  it('derives certId from the signing certificate and refuses a key or certId that does not belong to it', () => {
    expect(connectorFor().certId).toBe('362918071453599138473189796177232588090336094566');
    expect(() => connectorFor({ signPrivateKeyPem: pemOf('vector-key') })).toThrow(/does not belong/);
    expect(() => connectorFor({ certId: '1' })).toThrow(/is not the signing certificate/);
    expect(connectorFor({ certId: '362918071453599138473189796177232588090336094566' }).certId).toBe('362918071453599138473189796177232588090336094566');
  });
});
