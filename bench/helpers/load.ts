import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { FenClient, verifyWebhook } from '../../sdk/index.js';
import { httpRequest, sdkFetch } from './http.js';

/**
 * The load generator for the payments benchmarks. One payment is the whole
 * lifecycle, as a merchant and a payer make it:
 *
 *   1. create   the merchant's signed POST /v1/payments (the SDK) with method
 *               alipay_qr; Fen calls the channel (the simulator, in its own
 *               process) before it answers, so the answer carries the QR code;
 *   2. pay      the payer opens the QR code's link (the scan: GET, 302) and
 *               presses Pay on the simulator's payer page (POST, 303);
 *   3. settle   the simulator's signed notification reaches Fen, which verifies
 *               it, books the capture and records the event; a worker delivers
 *               the signed `payment.succeeded` webhook to the receiver here,
 *               which verifies it with the SDK.
 *
 * A payment counts once its verified webhook has arrived. Every request and
 * every wait has a deadline; every loop is bounded in time and in count.
 */
const webhookWaitMs = 30_000;
const failurePauseMs = 100;
const errorsKeptMax = 5;

export interface StepTimes {
  createMs: number;
  payMs: number;
  settleMs: number;
  totalMs: number;
}

export interface LoadTarget {
  apiUrls: string[];
  appId: string;
  appSecret: string;
}

interface Waiter {
  resolve(arrivedMs: number): void;
  timer: NodeJS.Timeout;
}

/** The merchant's webhook endpoint: verifies every delivery and wakes the payment waiting for it. */
export class WebhookReceiver {
  url = '';
  secret = '';
  received = 0;
  verified = 0;
  rejected = 0;
  /** Deliveries of an event already seen (webhooks are at least once). */
  duplicates = 0;
  /** Verified payment.succeeded webhooks nobody was waiting for any more (after a timeout). */
  late = 0;
  private readonly waiters = new Map<string, Waiter>();
  private readonly seenEvents = new Set<string>();
  private server: Server | undefined;

  async start(): Promise<void> {
    this.server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        const arrivedMs = performance.now();
        this.received += 1;
        const body = Buffer.concat(chunks).toString('utf8');
        let ok: boolean;
        try {
          ok = verifyWebhook({ payload: body, signatureHeader: String(request.headers['fen-signature'] ?? ''), secret: this.secret });
        } catch {
          ok = false;
        }
        if (!ok) {
          this.rejected += 1;
          response.writeHead(400, { 'content-type': 'text/plain' }).end('bad signature');
          return;
        }
        this.verified += 1;
        response.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
        const event = JSON.parse(body) as { id: string; type: string; data: { id?: string } };
        if (this.seenEvents.has(event.id)) {
          this.duplicates += 1;
          return;
        }
        this.seenEvents.add(event.id);
        if (event.type !== 'payment.succeeded' || !event.data.id) return;
        const waiter = this.waiters.get(event.data.id);
        if (!waiter) {
          this.late += 1;
          return;
        }
        this.waiters.delete(event.data.id);
        clearTimeout(waiter.timer);
        waiter.resolve(arrivedMs);
      });
    });
    this.server.keepAliveTimeout = 30_000;
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    const address = this.server.address();
    if (typeof address !== 'object' || !address) throw new Error('the receiver has no address');
    this.url = `http://127.0.0.1:${address.port}/webhooks`;
  }

  /** Resolves with the arrival time of the payment's verified payment.succeeded webhook; rejects after the deadline. */
  waitFor(paymentId: string): Promise<number> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(paymentId);
        reject(new Error(`no payment.succeeded webhook for ${paymentId} within ${webhookWaitMs} ms`));
      }, webhookWaitMs);
      this.waiters.set(paymentId, { resolve, timer });
    });
  }

  cancel(paymentId: string): void {
    const waiter = this.waiters.get(paymentId);
    if (waiter) clearTimeout(waiter.timer);
    this.waiters.delete(paymentId);
  }

  async close(): Promise<void> {
    for (const waiter of this.waiters.values()) clearTimeout(waiter.timer);
    this.waiters.clear();
    await new Promise<void>((resolve) => {
      this.server?.closeAllConnections();
      this.server?.close(() => resolve());
    });
  }
}

interface CreatedPayment {
  id: string;
  status: string;
  qr_code: string | null;
}

export class PaymentDriver {
  private readonly clients: FenClient[];
  private readonly runId = randomBytes(4).toString('hex');
  private sequence = 0;
  errors = 0;
  readonly errorSamples: string[] = [];

  constructor(
    target: LoadTarget,
    private readonly receiver: WebhookReceiver,
  ) {
    this.clients = target.apiUrls.map((baseUrl) => new FenClient({ baseUrl, appId: target.appId, appSecret: target.appSecret, fetch: sdkFetch }));
  }

  setApiCount(count: number): void {
    if (count < 1 || count > this.clients.length) throw new Error(`${count} APIs asked for, ${this.clients.length} known`);
    this.active = count;
  }

  private active = Infinity;

  private note(error: unknown): void {
    this.errors += 1;
    if (this.errorSamples.length < errorsKeptMax) this.errorSamples.push(error instanceof Error ? error.message.slice(0, 300) : String(error));
  }

  /** The create step alone: the signed POST /v1/payments through the SDK, round-robin over the APIs. */
  async create(): Promise<CreatedPayment> {
    this.sequence += 1;
    const client = this.clients[this.sequence % Math.min(this.active, this.clients.length)]!;
    const payment = await client.request<CreatedPayment>('POST', '/v1/payments', {
      out_trade_no: `bench-${this.runId}-${this.sequence}`,
      amount: 100 + (this.sequence % 9_900),
      currency: 'CNY',
      subject: 'Bench order 压测订单',
      method: 'alipay_qr',
    });
    if (payment.status !== 'paying' || !payment.qr_code) throw new Error(`payment ${payment.id} is ${payment.status} without a QR code`);
    return payment;
  }

  /** The payer: opens the QR code's link (the scan), then presses Pay on the simulator's page. */
  async pay(payment: CreatedPayment): Promise<void> {
    const qr = new URL(payment.qr_code!);
    const scanned = await httpRequest(qr, { method: 'GET' });
    await scanned.text();
    if (scanned.status !== 302) throw new Error(`opening the QR code answered ${scanned.status}`);
    const token = qr.pathname.split('/').pop() ?? '';
    const pressed = await httpRequest(new URL(`/alipay/cashier/${token}/pay`, qr.origin), { method: 'POST' });
    await pressed.text();
    if (pressed.status !== 303) throw new Error(`pressing Pay answered ${pressed.status}`);
  }

  /**
   * One whole payment; undefined (and counted as an error) when any step
   * failed. `onCreated` hears the create latency as soon as the create answers.
   */
  async runPayment(startedMs = performance.now(), onCreated?: (createMs: number) => void): Promise<(StepTimes & { createdMs: number; doneMs: number }) | undefined> {
    let paymentId: string | undefined;
    try {
      const payment = await this.create();
      paymentId = payment.id;
      const createdMs = performance.now();
      onCreated?.(createdMs - startedMs);
      const webhook = this.receiver.waitFor(payment.id);
      // A failure to pay must not leave the webhook wait unhandled.
      webhook.catch(() => undefined);
      await this.pay(payment);
      const paidMs = performance.now();
      const doneMs = await webhook;
      return { createMs: createdMs - startedMs, payMs: paidMs - createdMs, settleMs: doneMs - paidMs, totalMs: doneMs - startedMs, createdMs, doneMs };
    } catch (error) {
      if (paymentId) this.receiver.cancel(paymentId);
      this.note(error);
      return undefined;
    }
  }
}

export interface LatencySummary {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export function summarise(values: number[]): LatencySummary {
  if (values.length === 0) return { count: 0, p50: NaN, p90: NaN, p99: NaN, max: NaN };
  const sorted = [...values].sort((left, right) => left - right);
  // Nearest rank: the smallest value with at least p of the samples at or below it.
  const rank = (p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
  const round = (value: number) => Math.round(value * 10) / 10;
  return { count: sorted.length, p50: round(rank(0.5)), p90: round(rank(0.9)), p99: round(rank(0.99)), max: round(sorted.at(-1)!) };
}

export interface ClosedLoopResult {
  paymentsPerS: number;
  completed: number;
  errors: number;
  windowS: number;
  concurrency: number;
  steps: { create: LatencySummary; pay: LatencySummary; settle: LatencySummary; total: LatencySummary };
}

/**
 * Saturation: `concurrency` payers, each starting its next payment as soon as
 * the last one's webhook arrived. Counts the payments whose webhook arrived
 * inside the window after the warm-up; then stops starting new ones and lets
 * those in flight finish (each bounded by its deadlines).
 */
export async function closedLoop(driver: PaymentDriver, options: { concurrency: number; warmupMs: number; windowMs: number; onWindow?: (edge: 'start' | 'end') => void }): Promise<ClosedLoopResult> {
  const startMs = performance.now();
  const windowStartMs = startMs + options.warmupMs;
  const windowEndMs = windowStartMs + options.windowMs;
  const errorsBefore = driver.errors;
  const times: StepTimes[] = [];
  // At most one payment per millisecond per payer could ever fit: a bound on the loop that no real run reaches.
  const paymentsPerPayerMax = Math.ceil(options.warmupMs + options.windowMs) + 1;
  let windowEdges: NodeJS.Timeout[] = [];
  if (options.onWindow) {
    const onWindow = options.onWindow;
    windowEdges = [setTimeout(() => onWindow('start'), options.warmupMs), setTimeout(() => onWindow('end'), options.warmupMs + options.windowMs)];
  }
  const payer = async () => {
    for (let made = 0; made < paymentsPerPayerMax && performance.now() < windowEndMs; made += 1) {
      const result = await driver.runPayment();
      if (!result) {
        await sleep(failurePauseMs);
        continue;
      }
      if (result.doneMs >= windowStartMs && result.doneMs <= windowEndMs) times.push(result);
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, payer));
  for (const timer of windowEdges) clearTimeout(timer);
  return {
    paymentsPerS: times.length / (options.windowMs / 1000),
    completed: times.length,
    errors: driver.errors - errorsBefore,
    windowS: options.windowMs / 1000,
    concurrency: options.concurrency,
    steps: {
      create: summarise(times.map((time) => time.createMs)),
      pay: summarise(times.map((time) => time.payMs)),
      settle: summarise(times.map((time) => time.settleMs)),
      total: summarise(times.map((time) => time.totalMs)),
    },
  };
}

export interface OpenLoopResult {
  ratePerS: number;
  scheduled: number;
  /** Creates answered 201 among the arrivals scheduled inside the window. */
  created: number;
  /** Arrivals in the window whose payment finished (webhook received). */
  completed: number;
  errors: number;
  /** Arrivals not sent because too many were already in flight (each counts as an error). */
  shed: number;
  /** POST /v1/payments latency, from each request's scheduled send time. */
  create: LatencySummary;
  total: LatencySummary;
  /** How late the generator itself sent requests (its own event loop): part of the latency above. */
  sendLag: LatencySummary;
}

/**
 * A fixed arrival rate: arrival i is due at start + i / rate whether or not
 * earlier ones were answered, and its create latency is measured from that
 * due time, so a stall anywhere (Fen, the database, the generator) shows as
 * latency instead of as fewer requests. Each arrival runs the whole payment.
 */
export async function openLoop(driver: PaymentDriver, options: { ratePerS: number; warmupMs: number; windowMs: number; inFlightMax: number }): Promise<OpenLoopResult> {
  const intervalMs = 1000 / options.ratePerS;
  const arrivals = Math.floor(((options.warmupMs + options.windowMs) / 1000) * options.ratePerS);
  const startMs = performance.now();
  const windowStartMs = startMs + options.warmupMs;
  const errorsBefore = driver.errors;
  const createLatencies: number[] = [];
  const totalLatencies: number[] = [];
  const sendLags: number[] = [];
  const running = new Set<Promise<void>>();
  let scheduled = 0;
  let shed = 0;
  let failedInWindow = 0;
  for (let index = 0; index < arrivals; index += 1) {
    const dueMs = startMs + index * intervalMs;
    const waitMs = dueMs - performance.now();
    if (waitMs > 1) await sleep(Math.floor(waitMs));
    const inWindow = dueMs >= windowStartMs;
    if (inWindow) scheduled += 1;
    if (running.size >= options.inFlightMax) {
      shed += 1;
      if (inWindow) failedInWindow += 1;
      continue;
    }
    if (inWindow) sendLags.push(performance.now() - dueMs);
    const work = (async () => {
      let created = false;
      const result = await driver.runPayment(dueMs, (createMs) => {
        created = true;
        if (inWindow) createLatencies.push(createMs);
      });
      if (!inWindow) return;
      // A create that failed has no latency: it counts as infinitely slow.
      if (!created) failedInWindow += 1;
      if (result) totalLatencies.push(result.totalMs);
    })();
    running.add(work);
    void work.finally(() => running.delete(work));
  }
  await Promise.all(running);
  return {
    ratePerS: options.ratePerS,
    scheduled,
    created: createLatencies.length,
    completed: totalLatencies.length,
    errors: driver.errors - errorsBefore + shed,
    shed,
    create: summarise([...createLatencies, ...Array.from({ length: failedInWindow }, () => Infinity)]),
    total: summarise(totalLatencies),
    sendLag: summarise(sendLags),
  };
}
