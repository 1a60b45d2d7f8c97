import { describe, expect, it } from 'vitest';
import { FenApiError, FenClient, signRequest } from '../../sdk/index.js';

/** The client against a recording fake fetch: what it sends and how it reads answers. */
interface Sent {
  url: string;
  method: string;
  headers: Record<string, string>;
  body: string | undefined;
}

function fakeFetch(answer: { status: number; body: string; contentType?: string }) {
  const sent: Sent[] = [];
  const fetch = async (url: string, init: { method: string; headers: Record<string, string>; body?: string }) => {
    sent.push({ url, method: init.method, headers: init.headers, body: init.body });
    return {
      status: answer.status,
      headers: { get: (name: string) => (name.toLowerCase() === 'content-type' ? (answer.contentType ?? 'application/json') : null) },
      text: async () => answer.body,
    };
  };
  return { fetch, sent };
}

const now = new Date('2026-01-15T02:00:00Z');
const options = { baseUrl: 'https://fen.example.com', appId: 'app_01jc8x0000000000000000000a', appSecret: 'secret-for-tests', now: () => now };

describe('FenClient', () => {
  it('signs a POST exactly as the server checks it, with a JSON body and an automatic Idempotency-Key', async () => {
    const { fetch, sent } = fakeFetch({ status: 201, body: '{"id":"pay_1"}' });
    const client = new FenClient({ ...options, fetch });
    const result = await client.request('post', '/v1/payments?expand=x', { amount: 100, subject: '测试' });
    expect(result).toEqual({ id: 'pay_1' });
    const [request] = sent;
    expect(request?.url).toBe('https://fen.example.com/v1/payments?expand=x');
    expect(request?.method).toBe('POST');
    expect(request?.body).toBe('{"amount":100,"subject":"测试"}');
    expect(request?.headers['content-type']).toBe('application/json');
    expect(request?.headers['Idempotency-Key']).toMatch(/^[0-9a-f-]{36}$/);
    expect(request?.headers['Fen-App-Id']).toBe(options.appId);
    expect(request?.headers['Fen-Timestamp']).toBe(String(now.getTime() / 1000));
    expect(request?.headers['Fen-Nonce']).toMatch(/^[A-Za-z0-9_-]{16,64}$/);
    const expected = signRequest(options.appSecret, {
      method: 'POST',
      pathWithQuery: '/v1/payments?expand=x',
      timestamp: request?.headers['Fen-Timestamp'] ?? '',
      nonce: request?.headers['Fen-Nonce'] ?? '',
      body: request?.body ?? '',
    });
    expect(request?.headers['Fen-Signature']).toBe(expected);
  });

  it('uses the given Idempotency-Key, a fresh nonce per request, and none of either on GET', async () => {
    const { fetch, sent } = fakeFetch({ status: 200, body: '{}' });
    const client = new FenClient({ ...options, fetch });
    await client.request('POST', '/v1/payments', { amount: 1 }, { idempotencyKey: 'order-42' });
    await client.request('GET', '/v1/app');
    expect(sent[0]?.headers['Idempotency-Key']).toBe('order-42');
    expect(sent[1]?.headers['Idempotency-Key']).toBeUndefined();
    expect(sent[1]?.body).toBeUndefined();
    expect(sent[1]?.headers['content-type']).toBeUndefined();
    expect(sent[0]?.headers['Fen-Nonce']).not.toBe(sent[1]?.headers['Fen-Nonce']);
  });

  it('signs the full path when the base URL has a prefix', async () => {
    const { fetch, sent } = fakeFetch({ status: 200, body: '{}' });
    const client = new FenClient({ ...options, baseUrl: 'https://gateway.example.com/fen/', fetch });
    await client.request('GET', '/v1/app');
    expect(sent[0]?.url).toBe('https://gateway.example.com/fen/v1/app');
    const headers = sent[0]?.headers ?? {};
    expect(headers['Fen-Signature']).toBe(
      signRequest(options.appSecret, { method: 'GET', pathWithQuery: '/fen/v1/app', timestamp: headers['Fen-Timestamp'] ?? '', nonce: headers['Fen-Nonce'] ?? '', body: '' }),
    );
  });

  it('throws FenApiError with the code, message and status of an error answer', async () => {
    const { fetch } = fakeFetch({ status: 409, body: '{"error":{"code":"idempotency_key_reused","message":"used before"}}' });
    const client = new FenClient({ ...options, fetch });
    const error = await client.request('POST', '/v1/payments', {}).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(FenApiError);
    expect(error).toMatchObject({ status: 409, code: 'idempotency_key_reused', message: 'used before' });
  });

  it('throws FenApiError for a non-JSON error answer too', async () => {
    const { fetch } = fakeFetch({ status: 502, body: '<html>bad gateway</html>', contentType: 'text/html' });
    const client = new FenClient({ ...options, fetch });
    await expect(client.request('GET', '/v1/app')).rejects.toMatchObject({ status: 502, code: 'http_error' });
  });
});
