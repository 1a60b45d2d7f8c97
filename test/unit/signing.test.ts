import { createHash, createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  FenWebhookError,
  canonicalRequestString,
  hexDigestsEqual,
  parseWebhookSignatureHeader,
  signRequest,
  signWebhook,
  verifyWebhook,
} from '../../sdk/index.js';
import { isAddressAllowed, isAllowlistEntry } from '../../src/apps/ip-allowlist.js';

/**
 * The signing rules are a contract with every merchant's client, so these tests
 * spell the expected strings out by hand rather than reusing the builders.
 */
const secret = 'test-secret-0123456789';

describe('request signing', () => {
  const request = { method: 'post', pathWithQuery: '/v1/payments?expand=refunds', timestamp: 1768442400, nonce: 'nonce_0123456789abcdef', body: '{"amount":100}' };

  it('builds METHOD\\nPATH_WITH_QUERY\\nTIMESTAMP\\nNONCE\\nSHA256_HEX(body)', () => {
    const bodyHash = createHash('sha256').update('{"amount":100}').digest('hex');
    expect(canonicalRequestString(request)).toBe(`POST\n/v1/payments?expand=refunds\n1768442400\nnonce_0123456789abcdef\n${bodyHash}`);
  });

  it('hashes an empty body as the SHA-256 of the empty string', () => {
    expect(canonicalRequestString({ ...request, method: 'GET', body: '' }).split('\n')[4]).toBe(
      'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    );
  });

  it('signs with lowercase hex HMAC-SHA256', () => {
    const expected = createHmac('sha256', secret).update(canonicalRequestString(request)).digest('hex');
    expect(signRequest(secret, request)).toBe(expected);
    expect(signRequest(secret, request)).toMatch(/^[0-9a-f]{64}$/);
  });

  it('changes the signature when any signed part changes', () => {
    const base = signRequest(secret, request);
    expect(signRequest(secret, { ...request, pathWithQuery: '/v1/payments' })).not.toBe(base);
    expect(signRequest(secret, { ...request, timestamp: 1768442401 })).not.toBe(base);
    expect(signRequest(secret, { ...request, nonce: 'nonce_0123456789abcdeF' })).not.toBe(base);
    expect(signRequest(secret, { ...request, body: '{"amount":101}' })).not.toBe(base);
    expect(signRequest('other-secret', request)).not.toBe(base);
  });

  it('compares digests only when they are hex of the same length', () => {
    const digest = signRequest(secret, request);
    expect(hexDigestsEqual(digest, digest)).toBe(true);
    expect(hexDigestsEqual(digest, digest.slice(0, 62))).toBe(false);
    expect(hexDigestsEqual(digest, `${digest.slice(0, 63)}g`)).toBe(false);
    expect(hexDigestsEqual(digest, '')).toBe(false);
  });
});

describe('webhook signatures', () => {
  const payload = '{"id":"evt_1","type":"payment.succeeded"}';
  const timestamp = 1768442400;
  const now = new Date(timestamp * 1000);

  it('signs as t=<unix>,v1=<hex HMAC-SHA256(secret, "t.body")>', () => {
    const expected = createHmac('sha256', secret).update(`${timestamp}.${payload}`).digest('hex');
    expect(signWebhook({ payload, secret, timestamp })).toBe(`t=${timestamp},v1=${expected}`);
  });

  it('verifies its own signature', () => {
    expect(verifyWebhook({ payload, signatureHeader: signWebhook({ payload, secret, timestamp }), secret, now })).toBe(true);
  });

  it('accepts a header with several v1 values when one matches (secret rotation)', () => {
    const header = signWebhook({ payload, secret: ['new-secret', secret], timestamp });
    expect(parseWebhookSignatureHeader(header).signatures).toHaveLength(2);
    expect(verifyWebhook({ payload, signatureHeader: header, secret, now })).toBe(true);
    expect(verifyWebhook({ payload, signatureHeader: header, secret: 'new-secret', now })).toBe(true);
  });

  it('rejects a changed body, a wrong secret and a forged timestamp', () => {
    const header = signWebhook({ payload, secret, timestamp });
    const failure = (options: Parameters<typeof verifyWebhook>[0]) => {
      try {
        verifyWebhook(options);
        return 'accepted';
      } catch (error) {
        return (error as FenWebhookError).code;
      }
    };
    expect(failure({ payload: `${payload} `, signatureHeader: header, secret, now })).toBe('signature_mismatch');
    expect(failure({ payload, signatureHeader: header, secret: 'wrong', now })).toBe('signature_mismatch');
    expect(failure({ payload, signatureHeader: header.replace(`t=${timestamp}`, `t=${timestamp + 1}`), secret, now })).toBe('signature_mismatch');
  });

  it('rejects a signature older or newer than the tolerance', () => {
    const header = signWebhook({ payload, secret, timestamp });
    expect(verifyWebhook({ payload, signatureHeader: header, secret, now: new Date((timestamp + 300) * 1000) })).toBe(true);
    expect(() => verifyWebhook({ payload, signatureHeader: header, secret, now: new Date((timestamp + 301) * 1000) })).toThrow(FenWebhookError);
    expect(() => verifyWebhook({ payload, signatureHeader: header, secret, now: new Date((timestamp - 301) * 1000) })).toThrow(/more than 300s/);
    expect(verifyWebhook({ payload, signatureHeader: header, secret, toleranceSeconds: 3600, now: new Date((timestamp + 3000) * 1000) })).toBe(true);
  });

  it('rejects malformed headers with a reason', () => {
    for (const header of ['', 'v1=abc', `t=${timestamp}`, 't=soon,v1=abc', 'garbage']) {
      expect(() => verifyWebhook({ payload, signatureHeader: header, secret, now })).toThrow(expect.objectContaining({ code: 'malformed_header' }));
    }
  });
});

describe('IP allow-lists', () => {
  it('accepts addresses and CIDR blocks of both families and nothing else', () => {
    for (const entry of ['203.0.113.7', '10.0.0.0/8', '0.0.0.0/0', '2001:db8::1', '2001:db8::/32', '::1/128']) expect(isAllowlistEntry(entry)).toBe(true);
    for (const entry of ['10.0.0.0/33', '2001:db8::/129', '10.0.0/8', 'example.com', '10.0.0.1/8/1', 'fe80::1%eth0', '10.0.0.0/', '']) {
      expect(isAllowlistEntry(entry)).toBe(false);
    }
  });

  it('matches CIDR-aware for IPv4, IPv6 and IPv4-mapped IPv6 clients', () => {
    const allowlist = ['10.0.0.0/8', '198.51.100.7', '2001:db8::/32'];
    expect(isAddressAllowed(allowlist, '10.200.3.4')).toBe(true);
    expect(isAddressAllowed(allowlist, '::ffff:10.200.3.4')).toBe(true);
    expect(isAddressAllowed(allowlist, '198.51.100.7')).toBe(true);
    expect(isAddressAllowed(allowlist, '198.51.100.8')).toBe(false);
    expect(isAddressAllowed(allowlist, '2001:db8:ffff::1')).toBe(true);
    expect(isAddressAllowed(allowlist, '2001:db9::1')).toBe(false);
    expect(isAddressAllowed(allowlist, 'not-an-address')).toBe(false);
  });

  it('allows everyone when the list is empty', () => {
    expect(isAddressAllowed([], '192.0.2.1')).toBe(true);
  });
});
