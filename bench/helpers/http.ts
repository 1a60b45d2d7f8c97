import http from 'node:http';

/**
 * A small HTTP/1.1 client on node:http with keep-alive, for the load
 * generator: on a 2-core machine the load generator shares the CPU with the
 * system it measures, and the global fetch (undici) costs noticeably more CPU
 * per request. Every request has a deadline, and every URL must be on
 * 127.0.0.1 (benchmarks send nothing anywhere else).
 */
export interface HttpAnswer {
  status: number;
  headers: { get(name: string): string | null };
  text(): Promise<string>;
}

export interface HttpRequest {
  method: string;
  headers?: Record<string, string>;
  body?: string;
  timeoutMs?: number;
}

const defaultTimeoutMs = 30_000;

const agent = new http.Agent({ keepAlive: true, maxSockets: 1024, maxFreeSockets: 1024 });

export function assertLoopback(url: URL): void {
  if (url.hostname !== '127.0.0.1' || url.protocol !== 'http:') throw new Error(`benchmarks only talk to http://127.0.0.1, not ${url.origin}`);
}

export function httpRequest(target: string | URL, options: HttpRequest): Promise<HttpAnswer> {
  const url = typeof target === 'string' ? new URL(target) : target;
  assertLoopback(url);
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { ...(options.headers ?? {}) };
    if (options.body !== undefined) headers['content-length'] = Buffer.byteLength(options.body);
    const request = http.request(
      { agent, host: url.hostname, port: url.port, path: `${url.pathname}${url.search}`, method: options.method, headers, timeout: options.timeoutMs ?? defaultTimeoutMs },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('error', reject);
        response.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8');
          resolve({
            status: response.statusCode ?? 0,
            headers: {
              get: (name) => {
                const value = response.headers[name.toLowerCase()];
                return value === undefined ? null : Array.isArray(value) ? value.join(', ') : value;
              },
            },
            text: async () => body,
          });
        });
      },
    );
    request.on('timeout', () => request.destroy(new Error(`${options.method} ${url.pathname} timed out after ${options.timeoutMs ?? defaultTimeoutMs} ms`)));
    request.on('error', reject);
    request.end(options.body);
  });
}

/** The FenClient's fetch, on this client. */
export function sdkFetch(url: string, init: { method: string; headers: Record<string, string>; body?: string }): Promise<HttpAnswer> {
  return httpRequest(url, { method: init.method, headers: init.headers, ...(init.body === undefined ? {} : { body: init.body }) });
}

/** Closes idle keep-alive sockets (between phases, and at the end so the process can exit). */
export function closeIdleConnections(): void {
  agent.destroy();
}
