import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import fc from 'fast-check';
import { newNonce, signedHeaders } from '../../../sdk/index.js';
import { csrfHeaderName, sessionCookieName } from '../../../src/auth/index.js';
import { unixSeconds } from '../../../src/platform/clock.js';
import type { TestContext } from '../../helpers/context.js';
import { changedTables, fastFuzzFingerprint, fuzzFingerprint, type Fingerprint } from './fingerprint.js';
import type { Operation } from './openapi.js';
import type { AppAuthMode, OperatorAuthMode, RequestPlan } from './plans.js';

/**
 * Sends fuzzed requests through app.inject and holds Fen to its contract:
 * - no 5xx and no crash, whatever was sent;
 * - a request the schema certainly refuses ends in a 4xx;
 * - every 4xx of the API carries `{error: {code, message}}`;
 * - a rejected request changes nothing in the database.
 * The last check needs a fingerprint before and after. Requests that must be
 * refused (and reads, which must never write) are sent in batches with one
 * fingerprint around each batch; requests that may be accepted get a
 * fingerprint each, so an accepted one never hides a rejected one's change.
 */

const idPattern = /\b(pay|ref|evt|mch|app|usr|cha|acc|jnl|exc|alr|aud)_[0-9a-z]{26}\b/g;
const poolSizeMax = 300;
const slowRequestMs = 500;

/** Ids that exist, by prefix, found in setup and in the answers of accepted requests. */
export class IdPools {
  private readonly byPrefix = new Map<string, string[]>();
  private readonly guarded = new Set<string>();

  add(id: string): void {
    const prefix = id.slice(0, 3);
    const list = this.byPrefix.get(prefix) ?? [];
    if (list.includes(id)) return;
    list.push(id);
    if (list.length > poolSizeMax) list.shift();
    this.byPrefix.set(prefix, list);
  }

  /** An id that requests may read but never change: the fuzzer's own app, operators and channel account. */
  guard(id: string): void {
    this.add(id);
    this.guarded.add(id);
  }

  ids(prefix: string, options: { forWrite: boolean }): string[] {
    const list = this.byPrefix.get(prefix) ?? [];
    return options.forWrite ? list.filter((id) => !this.guarded.has(id)) : list;
  }

  harvest(text: string): void {
    for (const match of text.matchAll(idPattern)) this.add(match[0]);
  }
}

export interface Credentials {
  signing: { appId: string; secret: string };
  admin: Record<string, string>;
  readOnly: Record<string, string>;
  /**
   * Sessions to spend on routes that end the session they are called with
   * (sign out), so the admin and read-only sessions the rest of the run
   * depends on survive. When they run out, such requests go with no session.
   */
  disposable?: Array<Record<string, string>>;
}

/** Routes whose success ends the caller's session. */
const sessionEnding = new Set(['POST /admin/v1/auth/logout']);

export interface Failure {
  request: string;
  problem: string;
}

export interface RunStats {
  requests: number;
  byStatus: Record<string, number>;
  byOperation: Record<string, number>;
  msByOperation: Record<string, number>;
  accepted: Record<string, number>;
  batchFingerprints: number;
  singleFingerprints: number;
  fingerprintMs: number;
  durationMs: number;
  /** This process's CPU time (user + system) while sending and checking, which unlike wall time does not depend on what else the machine runs. */
  cpuMs: number;
}

export interface GroupRules {
  /** True when the response is a refusal (a 4xx; for a channel, also its "fail" acknowledgement). */
  isRefusal(plan: RequestPlan, response: LightMyRequestResponse): boolean;
  /** A problem with a response's shape, or undefined. */
  shapeProblem(plan: RequestPlan, response: LightMyRequestResponse): string | undefined;
}

/** The API's error body on every 4xx; pages answer with HTML or, from the framework, the same JSON. */
export const apiRules: GroupRules = {
  isRefusal: (_plan, response) => response.statusCode >= 400 && response.statusCode < 500,
  shapeProblem: (plan, response) => {
    if (response.statusCode < 400 || response.statusCode >= 500) return undefined;
    const contentType = String(response.headers['content-type'] ?? '');
    if (plan.operation.errorFormat === 'html' && contentType.startsWith('text/html')) return undefined;
    return errorBodyProblem(response.body);
  },
};

export function errorBodyProblem(body: string): string | undefined {
  try {
    const parsed = JSON.parse(body) as { error?: { code?: unknown; message?: unknown } };
    if (typeof parsed.error?.code === 'string' && typeof parsed.error.message === 'string' && parsed.error.code.length > 0) return undefined;
  } catch {
    // Falls through to the report below.
  }
  return `4xx without {error:{code,message}}: ${body.slice(0, 200)}`;
}

function truncate(text: string, length: number): string {
  return text.length > length ? `${text.slice(0, length)}… (${text.length} chars)` : text;
}

export class FuzzRunner {
  readonly stats: RunStats = { requests: 0, byStatus: {}, byOperation: {}, msByOperation: {}, accepted: {}, batchFingerprints: 0, singleFingerprints: 0, fingerprintMs: 0, durationMs: 0, cpuMs: 0 };
  readonly failures: Failure[] = [];
  /** Requests that took long: reported, never failed on (a timing assertion would be flaky), but they say where a run's time goes. */
  readonly slow: string[] = [];
  /** The nonce of the last request Fen authenticated and answered with a success: replaying it must be refused. */
  private lastNonce: string | undefined;
  private sentNonce: string | undefined;
  private lastIdempotencyKey: string | undefined;
  private rotation = 0;
  private tables: string[] | undefined;

  constructor(
    private readonly app: FastifyInstance,
    private readonly context: TestContext,
    private readonly pools: IdPools,
    private readonly credentials: Credentials,
    private readonly rules: GroupRules,
  ) {}

  private resolvePath(plan: RequestPlan): string {
    let path = plan.operation.path;
    for (const [name, value] of Object.entries(plan.path)) {
      let segment: string;
      if (value.kind === 'literal') segment = value.encoded;
      else {
        const ids = this.pools.ids(value.prefix, { forWrite: plan.operation.method !== 'GET' });
        segment = ids.length > 0 ? (ids[value.pick % ids.length] as string) : `${value.prefix}_${'0'.repeat(26)}`;
      }
      path = path.replace(`{${name}}`, segment);
    }
    return plan.query.length > 0 ? `${path}?${plan.query.join('&')}` : path;
  }

  private appHeaders(mode: AppAuthMode, method: string, url: string, bodyText: string): Record<string, string> {
    const { appId, secret } = this.credentials.signing;
    const now = unixSeconds(this.context.clock.now());
    this.rotation += 1;
    let nonce = newNonce();
    let timestamp: number | string = now;
    let signedBody = bodyText;
    let signingSecret = secret;
    let claimedApp = appId;
    if (mode === 'replayed_nonce') nonce = this.lastNonce ?? nonce;
    if (mode === 'short_nonce') nonce = ['abc', 'a b c d e f g h i j', 'ñ'.repeat(20), 'x'.repeat(65)][this.rotation % 4] as string;
    if (mode === 'stale_timestamp') timestamp = now - 301;
    if (mode === 'future_timestamp') timestamp = now + 301;
    if (mode === 'garbage_timestamp') timestamp = ['abc', '-5', '1e10', '99999999999999', ''][this.rotation % 5] as string;
    if (mode === 'signature_over_other_body') signedBody = `${bodyText} `;
    if (mode === 'bad_signature') signingSecret = `${secret}x`;
    if (mode === 'unknown_app') claimedApp = ['app_01jzzzzzzzzzzzzzzzzzzzzzzz', 'app_', 'mch_01jzzzzzzzzzzzzzzzzzzzzzzz', '%00'][this.rotation % 4] as string;
    const headers = signedHeaders({ appId: claimedApp, secret: signingSecret, method, pathWithQuery: url, timestamp, nonce, body: signedBody });
    if (mode === 'missing_header') delete headers[['Fen-App-Id', 'Fen-Timestamp', 'Fen-Nonce', 'Fen-Signature'][this.rotation % 4] as string];
    this.sentNonce = nonce;
    if (method === 'POST' && mode !== 'no_idempotency_key') {
      let key = newNonce();
      if (mode === 'bad_idempotency_key') key = ['k'.repeat(256), 'cl\u00e9', ' \t '][this.rotation % 3] as string;
      if (mode === 'reused_idempotency_key') key = this.lastIdempotencyKey ?? key;
      else this.lastIdempotencyKey = key;
      headers['Idempotency-Key'] = key;
    }
    return headers;
  }

  private operatorHeaders(mode: OperatorAuthMode, operation: Operation): Record<string, string> {
    // Only a request that passes authentication can end its session; the others may carry the admin's cookie.
    const ends = sessionEnding.has(operation.key) && (mode === 'valid' || mode === 'read_only_role');
    const admin = ends ? (this.credentials.disposable?.pop() ?? {}) : this.credentials.admin;
    const cookie = admin.cookie ?? '';
    const csrf = admin[csrfHeaderName] ?? '';
    switch (mode) {
      case 'valid':
        return admin;
      case 'read_only_role':
        return ends ? admin : this.credentials.readOnly;
      case 'no_session':
        return { [csrfHeaderName]: csrf };
      case 'garbage_session':
        return { cookie: `${sessionCookieName}=${'g'.repeat(43)}`, [csrfHeaderName]: csrf };
      case 'no_csrf':
        return { cookie };
      case 'wrong_csrf':
        return { cookie, [csrfHeaderName]: `${csrf.slice(0, -1)}${csrf.endsWith('A') ? 'B' : 'A'}` };
    }
  }

  describe(plan: RequestPlan, url: string): string {
    const payload = plan.body.payload === undefined ? '' : ` body=${truncate(Buffer.isBuffer(plan.body.payload) ? `<bytes ${plan.body.payload.toString('hex').slice(0, 80)}>` : plan.body.payload, 160)}`;
    const contentType = plan.body.contentType ? ` content-type=${plan.body.contentType}` : '';
    const auth = plan.auth.kind === 'none' ? '' : ` auth=${plan.auth.kind}:${plan.auth.mode}`;
    return `${plan.operation.method} ${truncate(url, 200)}${contentType}${auth}${payload} [${plan.expectation}: ${plan.description}]`;
  }

  /** Sends one planned request; returns the response, or undefined when the request itself blew up. */
  async send(plan: RequestPlan): Promise<{ url: string; response: LightMyRequestResponse | undefined }> {
    const url = this.resolvePath(plan);
    const headers: Record<string, string> = {};
    if (plan.body.contentType !== undefined) headers['content-type'] = plan.body.contentType;
    Object.assign(headers, plan.body.headers ?? {});
    const bodyText = plan.body.payload === undefined ? '' : Buffer.isBuffer(plan.body.payload) ? plan.body.payload.toString('utf8') : plan.body.payload;
    if (plan.auth.kind === 'app') Object.assign(headers, this.appHeaders(plan.auth.mode, plan.operation.method, url, bodyText));
    if (plan.auth.kind === 'operator') Object.assign(headers, this.operatorHeaders(plan.auth.mode, plan.operation));
    const options: InjectOptions = { method: plan.operation.method as InjectOptions['method'], url, headers, remoteAddress: plan.remoteAddress };
    if (plan.body.payload !== undefined) options.payload = plan.body.payload;
    this.stats.requests += 1;
    this.stats.byOperation[plan.operation.key] = (this.stats.byOperation[plan.operation.key] ?? 0) + 1;
    try {
      const started = performance.now();
      const response = await this.app.inject(options);
      const elapsed = performance.now() - started;
      this.stats.msByOperation[plan.operation.key] = (this.stats.msByOperation[plan.operation.key] ?? 0) + elapsed;
      if (plan.auth.kind === 'app' && plan.auth.mode === 'valid' && response.statusCode < 300) this.lastNonce = this.sentNonce;
      if (elapsed > slowRequestMs) this.slow.push(`${Math.round(elapsed)} ms: ${this.describe(plan, url)} → ${response.statusCode}`);
      const statusClass = `${Math.floor(response.statusCode / 100)}xx`;
      this.stats.byStatus[statusClass] = (this.stats.byStatus[statusClass] ?? 0) + 1;
      return { url, response };
    } catch (error) {
      this.failures.push({ request: this.describe(plan, url), problem: `the request crashed: ${(error as Error).stack ?? String(error)}` });
      return { url, response: undefined };
    }
  }

  /** Checks one response against the contract; returns whether Fen refused it. */
  check(plan: RequestPlan, url: string, response: LightMyRequestResponse): boolean {
    const fail = (problem: string) => this.failures.push({ request: this.describe(plan, url), problem: `${problem} → ${response.statusCode} ${truncate(response.body, 300)}` });
    const refused = this.rules.isRefusal(plan, response);
    if (response.statusCode >= 500) fail('a 5xx');
    else if (plan.expectation === 'reject' && !refused) fail('accepted a request the schema refuses');
    const shape = this.rules.shapeProblem(plan, response);
    if (shape) fail(shape);
    if (!refused && response.statusCode < 400) {
      this.pools.harvest(response.body);
      this.stats.accepted[plan.operation.key] = (this.stats.accepted[plan.operation.key] ?? 0) + 1;
    }
    return refused;
  }

  /**
   * Runs one batch: the requests that must be refused, and the reads, between
   * two fingerprints; then each request that may be accepted between its own.
   */
  async runBatch(plans: RequestPlan[]): Promise<void> {
    const started = performance.now();
    const cpuBefore = process.cpuUsage();
    if (this.lastNonce === undefined) await this.useANonce();
    const grouped = plans.filter((plan) => plan.expectation === 'reject' || plan.mustNotChange === true || plan.operation.method === 'GET');
    const single = plans.filter((plan) => !grouped.includes(plan));
    const before = await this.fingerprint('batch');
    const sent: string[] = [];
    for (const plan of grouped) {
      const { url, response } = await this.send(plan);
      if (!response) continue;
      const refused = this.check(plan, url, response);
      // The answers go with the report: a request Fen did not refuse is the first suspect for a change.
      sent.push(`${refused ? 'refused' : 'NOT REFUSED'} ${response.statusCode} ${truncate(response.body, 40)} ← ${this.describe(plan, url)}`);
    }
    const afterBatch = await this.fingerprint('batch');
    const changed = changedTables(before, afterBatch);
    if (changed.length > 0) {
      const suspects = sent.filter((line) => line.startsWith('NOT REFUSED'));
      this.failures.push({ request: `one of:\n    ${(suspects.length > 0 ? suspects : sent).join('\n    ')}`, problem: `a batch of refused requests and reads changed ${changed.join(', ')}` });
    }
    let baseline = single.length > 0 ? await this.fingerprint('single') : afterBatch;
    for (const plan of single) {
      const { url, response } = await this.send(plan);
      if (!response) continue;
      const refused = this.check(plan, url, response);
      const after = await this.fingerprint('single');
      const touched = changedTables(baseline, after);
      if (refused && touched.length > 0) this.failures.push({ request: this.describe(plan, url), problem: `refused with ${response.statusCode} but changed ${touched.join(', ')}: ${truncate(response.body, 200)}` });
      baseline = after;
    }
    this.stats.durationMs += performance.now() - started;
    const cpu = process.cpuUsage(cpuBefore);
    this.stats.cpuMs += (cpu.user + cpu.system) / 1000;
  }

  /** One signed read before the first batch, so a replayed nonce is a nonce Fen has really seen, from the first request on. */
  private async useANonce(): Promise<void> {
    const { appId, secret } = this.credentials.signing;
    const nonce = newNonce();
    const headers = signedHeaders({ appId, secret, method: 'GET', pathWithQuery: '/v1/app', timestamp: unixSeconds(this.context.clock.now()), nonce, body: '' });
    const response = await this.app.inject({ method: 'GET', url: '/v1/app', headers });
    if (response.statusCode !== 200) throw new Error(`the fuzzer's own app cannot sign in: ${response.statusCode} ${response.body}`);
    this.lastNonce = nonce;
  }

  private async fingerprint(kind: 'batch' | 'single'): Promise<Fingerprint> {
    const started = performance.now();
    let fingerprint: Fingerprint;
    if (kind === 'batch') {
      this.stats.batchFingerprints += 1;
      fingerprint = await fuzzFingerprint(this.context.db);
      this.tables ??= Object.keys(fingerprint).sort();
    } else {
      this.stats.singleFingerprints += 1;
      fingerprint = await fastFuzzFingerprint(this.context.db, this.tables ?? Object.keys(await fuzzFingerprint(this.context.db)).sort());
    }
    this.stats.fingerprintMs += performance.now() - started;
    return fingerprint;
  }
}

/** The run's seed: FUZZ_SEED replays a run; otherwise a fresh one, printed so a failure can be replayed. */
export function fuzzSeed(): number {
  const given = process.env.FUZZ_SEED;
  if (given !== undefined && given !== '') {
    const seed = Number(given);
    if (!Number.isSafeInteger(seed)) throw new Error(`FUZZ_SEED must be an integer, not ${given}`);
    return seed;
  }
  return Date.now() % 2 ** 31;
}

/** Draws a batch of plans deterministically from the run's seed and the batch's number. */
export function drawBatch(arbitrary: fc.Arbitrary<RequestPlan>, seed: number, batch: number, size: number): RequestPlan[] {
  return fc.sample(arbitrary, { seed: (seed + Math.imul(batch + 1, 0x9e3779b1)) | 0, numRuns: size });
}

export function summary(name: string, seed: number, stats: RunStats): string {
  const perOperation = Object.entries(stats.byOperation)
    .sort(([left], [right]) => left.localeCompare(right))
    .map(([key, count]) => `    ${key.padEnd(52)} ${String(count).padStart(5)} sent, ${String(stats.accepted[key] ?? 0).padStart(4)} accepted, ${((stats.msByOperation[key] ?? 0) / 1000).toFixed(1).padStart(5)} s`)
    .join('\n');
  const statuses = Object.entries(stats.byStatus).sort().map(([status, count]) => `${status}: ${count}`).join(', ');
  return `${name}: ${stats.requests} requests in ${(stats.durationMs / 1000).toFixed(1)} s, ${(stats.cpuMs / 1000).toFixed(1)} s of CPU (seed ${seed}; replay with FUZZ_SEED=${seed})\n  ${statuses}; fingerprints: ${stats.batchFingerprints} around batches, ${stats.singleFingerprints} around single requests, ${(stats.fingerprintMs / 1000).toFixed(1)} s in all\n${perOperation}`;
}

export function operationCoverage(operations: Operation[], stats: RunStats): string[] {
  return operations.filter((operation) => (stats.byOperation[operation.key] ?? 0) === 0).map((operation) => operation.key);
}
