import { createHash, createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';

/**
 * Fen's merchant SDK: signs merchant-API requests and verifies Fen's webhooks.
 *
 * It imports nothing but Node built-ins, so it can be published on its own. Fen's
 * server imports the canonical string builders from here too, so the client and
 * the server can never disagree about what is signed.
 */

// ---------------------------------------------------------------------------
// Request signing
// ---------------------------------------------------------------------------

export const signatureHeaders = {
  appId: 'Fen-App-Id',
  timestamp: 'Fen-Timestamp',
  nonce: 'Fen-Nonce',
  signature: 'Fen-Signature',
  idempotencyKey: 'Idempotency-Key',
} as const;

export interface RequestToSign {
  method: string;
  /** The path exactly as sent on the wire, with its query string: `/v1/payments?limit=10`. */
  pathWithQuery: string;
  /** Unix seconds. */
  timestamp: number | string;
  nonce: string;
  /** The exact body text; empty when there is none. */
  body: string;
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** `METHOD\nPATH_WITH_QUERY\nTIMESTAMP\nNONCE\nSHA256_HEX(body)`: the text an app signs. */
export function canonicalRequestString(request: RequestToSign): string {
  return [request.method.toUpperCase(), request.pathWithQuery, String(request.timestamp), request.nonce, sha256Hex(request.body)].join('\n');
}

/** Lowercase hex HMAC-SHA256 of the canonical request string. */
export function signRequest(secret: string, request: RequestToSign): string {
  return createHmac('sha256', secret).update(canonicalRequestString(request), 'utf8').digest('hex');
}

/** A nonce of 32 URL-safe characters, well inside the 16–64 the server accepts. */
export function newNonce(): string {
  return randomBytes(24).toString('base64url');
}

/** The four authentication headers for one request. */
export function signedHeaders(options: { appId: string; secret: string } & RequestToSign): Record<string, string> {
  return {
    [signatureHeaders.appId]: options.appId,
    [signatureHeaders.timestamp]: String(options.timestamp),
    [signatureHeaders.nonce]: options.nonce,
    [signatureHeaders.signature]: signRequest(options.secret, options),
  };
}

/** Compares two hex digests in constant time; digests of different lengths never match. */
export function hexDigestsEqual(expectedHex: string, givenHex: string): boolean {
  if (!/^[0-9a-f]+$/.test(givenHex) || givenHex.length !== expectedHex.length) return false;
  return timingSafeEqual(Buffer.from(expectedHex, 'hex'), Buffer.from(givenHex, 'hex'));
}

// ---------------------------------------------------------------------------
// Webhooks
// ---------------------------------------------------------------------------

/** `<unix seconds>.<body>`: the text Fen signs for a webhook. */
export function webhookSignedPayload(timestamp: number, payload: string): string {
  return `${timestamp}.${payload}`;
}

export function webhookSignature(secret: string, timestamp: number, payload: string): string {
  return createHmac('sha256', secret).update(webhookSignedPayload(timestamp, payload), 'utf8').digest('hex');
}

/**
 * The `Fen-Signature` header of a webhook: `t=<unix>,v1=<hex>`. While a webhook
 * secret is being rotated Fen signs with every live secret (one v1 each), so a
 * receiver that still holds the old secret keeps accepting deliveries.
 */
export function signWebhook(options: { payload: string; secret: string | readonly string[]; timestamp: number }): string {
  const secrets = typeof options.secret === 'string' ? [options.secret] : options.secret;
  if (secrets.length === 0) throw new Error('signWebhook needs at least one secret');
  const signatures = secrets.map((secret) => `v1=${webhookSignature(secret, options.timestamp, options.payload)}`);
  return [`t=${options.timestamp}`, ...signatures].join(',');
}

export type WebhookVerificationFailure = 'malformed_header' | 'timestamp_out_of_tolerance' | 'signature_mismatch';

export class FenWebhookError extends Error {
  override name = 'FenWebhookError';
  readonly code: WebhookVerificationFailure;

  constructor(code: WebhookVerificationFailure, message: string) {
    super(message);
    this.code = code;
  }
}

export interface ParsedWebhookHeader {
  timestamp: number;
  signatures: string[];
}

/** Reads `t=…,v1=…[,v1=…]`; unknown schemes (a future v2) are ignored. */
export function parseWebhookSignatureHeader(header: string): ParsedWebhookHeader {
  let timestamp: number | undefined;
  const signatures: string[] = [];
  for (const part of header.split(',')) {
    const separator = part.indexOf('=');
    if (separator <= 0) throw new FenWebhookError('malformed_header', 'the Fen-Signature header must look like t=<unix>,v1=<hex>');
    const name = part.slice(0, separator).trim();
    const value = part.slice(separator + 1).trim();
    if (name === 't') {
      if (!/^\d{1,12}$/.test(value)) throw new FenWebhookError('malformed_header', 'the t= part of Fen-Signature must be unix seconds');
      timestamp = Number(value);
    } else if (name === 'v1') {
      signatures.push(value.toLowerCase());
    }
  }
  if (timestamp === undefined) throw new FenWebhookError('malformed_header', 'the Fen-Signature header has no t= part');
  if (signatures.length === 0) throw new FenWebhookError('malformed_header', 'the Fen-Signature header has no v1= signature');
  return { timestamp, signatures };
}

export interface VerifyWebhookOptions {
  /** The request body exactly as received, before any JSON parsing. */
  payload: string;
  /** The value of the `Fen-Signature` header. */
  signatureHeader: string;
  secret: string;
  /** How far the signing time may be from now, either way. */
  toleranceSeconds?: number;
  now?: Date;
}

/**
 * Checks a webhook's signature and age. Returns true when it is genuine and
 * throws a FenWebhookError (with a code saying why) when it is not, so a
 * receiver can either test the result or let the error reject the request.
 */
export function verifyWebhook(options: VerifyWebhookOptions): boolean {
  const { timestamp, signatures } = parseWebhookSignatureHeader(options.signatureHeader);
  const toleranceSeconds = options.toleranceSeconds ?? 300;
  const nowSeconds = Math.floor((options.now ?? new Date()).getTime() / 1000);
  if (Math.abs(nowSeconds - timestamp) > toleranceSeconds) {
    throw new FenWebhookError('timestamp_out_of_tolerance', `the webhook was signed at ${timestamp}, more than ${toleranceSeconds}s from now (${nowSeconds})`);
  }
  const expected = webhookSignature(options.secret, timestamp, options.payload);
  // Compare against every v1 value without stopping early, so timing says nothing about which one matched.
  let matched = false;
  for (const signature of signatures) matched = hexDigestsEqual(expected, signature) || matched;
  if (!matched) throw new FenWebhookError('signature_mismatch', 'no v1 signature in Fen-Signature matches this payload and secret');
  return true;
}

// ---------------------------------------------------------------------------
// The client
// ---------------------------------------------------------------------------

export class FenApiError extends Error {
  override name = 'FenApiError';
  readonly status: number;
  readonly code: string;
  readonly details: unknown;

  constructor(status: number, code: string, message: string, details?: unknown) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

type FetchFunction = (url: string, init: { method: string; headers: Record<string, string>; body?: string }) => Promise<{
  status: number;
  headers: { get(name: string): string | null };
  text(): Promise<string>;
}>;

export interface FenClientOptions {
  /** Where Fen listens, e.g. `https://pay.example.com`. A path prefix is kept. */
  baseUrl: string;
  appId: string;
  appSecret: string;
  /** Defaults to the global fetch. */
  fetch?: FetchFunction;
  /** The current time; only tests need to change it. */
  now?: () => Date;
}

export interface RequestOptions {
  /** Sent as `Idempotency-Key`. POST requests get a random one when not given; pass your own to retry safely. */
  idempotencyKey?: string;
}

export interface FenResponse<T> {
  status: number;
  data: T;
  headers: { get(name: string): string | null };
}

export class FenClient {
  private readonly baseUrl: URL;
  private readonly appId: string;
  private readonly appSecret: string;
  private readonly fetchFunction: FetchFunction;
  private readonly now: () => Date;

  constructor(options: FenClientOptions) {
    this.baseUrl = new URL(options.baseUrl.endsWith('/') ? options.baseUrl : `${options.baseUrl}/`);
    this.appId = options.appId;
    this.appSecret = options.appSecret;
    this.fetchFunction = options.fetch ?? (globalThis.fetch as unknown as FetchFunction);
    this.now = options.now ?? (() => new Date());
  }

  /** Sends one signed request and returns the parsed JSON body; throws FenApiError on a non-2xx answer. */
  async request<T = unknown>(method: string, path: string, body?: unknown, options: RequestOptions = {}): Promise<T> {
    return (await this.requestWithResponse<T>(method, path, body, options)).data;
  }

  /** Like request(), with the status and headers too (for `Idempotency-Replayed`). */
  async requestWithResponse<T = unknown>(method: string, path: string, body?: unknown, options: RequestOptions = {}): Promise<FenResponse<T>> {
    const upperMethod = method.toUpperCase();
    const url = new URL(path.replace(/^\//, ''), this.baseUrl);
    const bodyText = body === undefined ? '' : JSON.stringify(body);
    const headers: Record<string, string> = {
      accept: 'application/json',
      ...signedHeaders({
        appId: this.appId,
        secret: this.appSecret,
        method: upperMethod,
        pathWithQuery: `${url.pathname}${url.search}`,
        timestamp: Math.floor(this.now().getTime() / 1000),
        nonce: newNonce(),
        body: bodyText,
      }),
    };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const idempotencyKey = options.idempotencyKey ?? (upperMethod === 'POST' ? randomUUID() : undefined);
    if (idempotencyKey !== undefined) headers[signatureHeaders.idempotencyKey] = idempotencyKey;
    const response = await this.fetchFunction(url.toString(), { method: upperMethod, headers, ...(body === undefined ? {} : { body: bodyText }) });
    const text = await response.text();
    const parsed = parseJsonOrText(text);
    if (response.status < 200 || response.status > 299) throw toApiError(response.status, parsed, text);
    return { status: response.status, data: parsed as T, headers: response.headers };
  }
}

function parseJsonOrText(text: string): unknown {
  if (text.length === 0) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function toApiError(status: number, parsed: unknown, text: string): FenApiError {
  const error = (parsed as { error?: { code?: unknown; message?: unknown; details?: unknown } } | undefined)?.error;
  if (error && typeof error.code === 'string') {
    return new FenApiError(status, error.code, typeof error.message === 'string' ? error.message : error.code, error.details);
  }
  return new FenApiError(status, 'http_error', `HTTP ${status}: ${text.slice(0, 200)}`);
}
