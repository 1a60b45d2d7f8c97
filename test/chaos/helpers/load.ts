import { appendFileSync } from 'node:fs';
import { FenApiError, type FenClient } from '../../../sdk/index.js';
import type { PaymentView, RefundView } from '../../../src/payments/index.js';
import type { Random } from './random.js';

/**
 * A steady load of payments and refunds, as merchants and payers make it: the
 * merchant side through the SDK (signed, with an Idempotency-Key it reuses on
 * every retry, as the docs tell merchants to), the payer side over HTTP on the
 * simulator's payer page (open the QR code's link, press Pay). Every request
 * that fails for a reason a crash explains (no connection, a 5xx, a key still
 * held by a request that died) is retried for a bounded time; every
 * acknowledged (2xx) create is logged, in memory for the checks and as JSON
 * lines in a file for a person reading a failure.
 */
export interface AckedPayment {
  id: string;
  outTradeNo: string;
  amount: number;
}

export interface AckedRefund {
  id: string;
  paymentId: string;
  outRefundNo: string;
  amount: number;
}

/** A signed POST as it was sent, kept so a request whose key was left in progress by a crash can be sent again. */
export interface SentRequest {
  idempotencyKey: string;
  path: string;
  body: Record<string, unknown>;
}

export interface LoadLog {
  payments: Map<string, AckedPayment>;
  refunds: Map<string, AckedRefund>;
  requests: Map<string, SentRequest>;
  counts: { orders: number; paid: number; retries: number; networkErrors: number; serverErrors: number; inProgress: number };
  /** Answers no crash explains: a 4xx the load never provokes, a 5xx without the error body, a request that hung. */
  unexpected: string[];
}

export interface RunningLoad {
  log: LoadLog;
  /** Stops starting new orders and waits for the ones in flight (each bounded in time). */
  stop(): Promise<LoadLog>;
}

/** How long one operation keeps retrying before the order is given up (the load moves on; nothing was acknowledged). */
const operationDeadlineMs = 25_000;
const retryPauseMs = 300;
const orderPauseMs = 1000;
const paymentPollMs = 250;
const paymentPollDeadlineMs = 8_000;

const pause = (durationMs: number) => new Promise((resolve) => setTimeout(resolve, durationMs));

type Outcome<T> = { ok: true; data: T } | { ok: false; code: string };

function isNetworkError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  // undici reports a refused or cut connection as a TypeError "fetch failed"; a timeout as TimeoutError.
  return (error.name === 'TypeError' && error.message === 'fetch failed') || error.name === 'AbortError' || error.name === 'TimeoutError';
}

export function startLoad(options: {
  client: FenClient;
  random: Random;
  label: string;
  concurrency: number;
  ackFile: string;
  /** Sent with every payment, for an app without a notify URL of its own (the demo app). */
  notifyUrl?: string;
  /** Share of paid payments refunded (in part); a second refund follows for some. */
  refundShare?: number;
  /**
   * 5xx error codes the fault explains (a lost database: internal_error, service_unavailable), retried like a
   * lost connection. Any other 5xx is a finding: a killed process answers nothing, it never answers 500.
   */
  acceptableServerErrors?: readonly string[];
}): RunningLoad {
  const acceptableServerCodes = new Set(options.acceptableServerErrors ?? []);
  const { client, label } = options;
  const log: LoadLog = {
    payments: new Map(),
    refunds: new Map(),
    requests: new Map(),
    counts: { orders: 0, paid: 0, retries: 0, networkErrors: 0, serverErrors: 0, inProgress: 0 },
    unexpected: [],
  };
  let stopping = false;
  let orderNumber = 0;

  const acknowledge = (kind: 'payment' | 'refund', record: AckedPayment | AckedRefund) => {
    appendFileSync(options.ackFile, `${JSON.stringify({ at: new Date().toISOString(), kind, ...record })}\n`);
  };

  /** Sends one request until it gets an answer that is not explained by a crash, or the deadline passes. */
  async function send<T>(what: string, run: () => Promise<T>, finalCodes: readonly string[] = []): Promise<Outcome<T>> {
    const deadline = Date.now() + operationDeadlineMs;
    for (let attempt = 0; ; attempt += 1) {
      if (attempt > 0) log.counts.retries += 1;
      try {
        return { ok: true, data: await run() };
      } catch (error) {
        if (error instanceof FenApiError) {
          if (finalCodes.includes(error.code)) return { ok: false, code: error.code };
          if (error.status >= 500) {
            log.counts.serverErrors += 1;
            if (!acceptableServerCodes.has(error.code)) log.unexpected.push(`${what}: ${error.status} ${error.code} ${error.message}`);
          } else if (error.code === 'idempotency_request_in_progress') {
            log.counts.inProgress += 1;
          } else {
            log.unexpected.push(`${what}: ${error.status} ${error.code} ${error.message}`);
            return { ok: false, code: error.code };
          }
        } else if (isNetworkError(error)) {
          log.counts.networkErrors += 1;
          if ((error as Error).name === 'TimeoutError') log.unexpected.push(`${what}: no answer within the request timeout (a hang)`);
        } else {
          throw error;
        }
      }
      if (Date.now() >= deadline) return { ok: false, code: 'gave_up' };
      await pause(retryPauseMs);
    }
  }

  async function post<T>(what: string, path: string, body: Record<string, unknown>, idempotencyKey: string, finalCodes: readonly string[] = []): Promise<Outcome<T>> {
    log.requests.set(idempotencyKey, { idempotencyKey, path, body });
    return send(what, () => client.request<T>('POST', path, body, { idempotencyKey }), finalCodes);
  }

  /** The payer opens the QR code's link (the scan) and presses Pay on the simulator's page. */
  async function payerPays(qrCode: string): Promise<boolean> {
    const deadline = Date.now() + operationDeadlineMs;
    while (Date.now() < deadline) {
      try {
        const page = await fetch(qrCode, { redirect: 'follow', signal: AbortSignal.timeout(10_000) });
        const html = await page.text();
        const action = /action="([^"]+\/pay)"/.exec(html)?.[1];
        if (page.ok && action) {
          const pressed = await fetch(new URL(action, page.url), { method: 'POST', redirect: 'manual', signal: AbortSignal.timeout(10_000) });
          if (pressed.status < 400) return true;
        } else if (page.ok) {
          // The page shows no Pay button: the trade is already paid or closed.
          return false;
        }
      } catch (error) {
        if (!isNetworkError(error)) throw error;
        log.counts.networkErrors += 1;
      }
      await pause(retryPauseMs);
    }
    return false;
  }

  async function waitUntilSucceeded(paymentId: string): Promise<PaymentView | undefined> {
    const deadline = Date.now() + paymentPollDeadlineMs;
    while (Date.now() < deadline && !stopping) {
      const read = await send('read payment', () => client.request<PaymentView>('GET', `/v1/payments/${paymentId}`));
      if (read.ok && read.data.status === 'succeeded') return read.data;
      if (read.ok && read.data.status !== 'paying') return undefined;
      await pause(paymentPollMs);
    }
    return undefined;
  }

  async function refund(payment: PaymentView, sequence: number, amount: number): Promise<boolean> {
    const outRefundNo = `${payment.out_trade_no}-r${sequence}`;
    const created = await post<RefundView>('create refund', `/v1/payments/${payment.id}/refunds`, { amount, out_refund_no: outRefundNo }, `refund:${outRefundNo}`);
    if (!created.ok) return false;
    const record: AckedRefund = { id: created.data.id, paymentId: payment.id, outRefundNo, amount: created.data.amount };
    log.refunds.set(record.id, record);
    acknowledge('refund', record);
    return true;
  }

  /** One order from create to refunds; true when the payer's payment went through. */
  async function order(): Promise<boolean> {
    orderNumber += 1;
    log.counts.orders += 1;
    const outTradeNo = `${label}-${orderNumber}`;
    // Each order draws from its own stream, so order n has the same amounts and choices in a replay whatever the interleaving.
    const random = options.random.fork(outTradeNo);
    const amount = random.between(100, 50_000);
    const body = { out_trade_no: outTradeNo, amount, currency: 'CNY', subject: 'Chaos oolong', method: 'alipay_qr', ...(options.notifyUrl ? { notify_url: options.notifyUrl } : {}) };
    // out_trade_no_exists: an earlier attempt created the payment, then Fen died before answering and the key's lease ran out.
    const created = await post<PaymentView>('create payment', '/v1/payments', body, `pay:${outTradeNo}`, ['out_trade_no_exists']);
    let payment: PaymentView;
    if (created.ok) {
      payment = created.data;
      const record: AckedPayment = { id: payment.id, outTradeNo, amount };
      log.payments.set(record.id, record);
      acknowledge('payment', record);
    } else if (created.code === 'out_trade_no_exists') {
      const found = await send('find payment', () => client.request<PaymentView>('GET', `/v1/payments?out_trade_no=${outTradeNo}`));
      if (!found.ok) return false;
      payment = found.data;
    } else {
      return false;
    }
    if (payment.status !== 'paying' || !payment.qr_code) return false;
    const choice = random.next();
    // Most payers pay; some never do, and those orders must end closed at their expiry.
    if (choice >= 0.85) return false;
    if (!(await payerPays(payment.qr_code))) return false;
    const paid = await waitUntilSucceeded(payment.id);
    if (!paid) return false;
    log.counts.paid += 1;
    if (!random.chance(options.refundShare ?? 0.6)) return true;
    const first = random.between(1, Math.max(1, Math.floor(amount / 2)));
    if (!(await refund(paid, 1, first))) return true;
    if (random.chance(0.4)) await refund(paid, 2, random.between(1, amount - first));
    return true;
  }

  const shoppers = Array.from({ length: options.concurrency }, async () => {
    while (!stopping) {
      // An order that went nowhere (no QR code while the channel is down) comes back at once; a shopper waits a moment before the next one.
      if (!(await order())) await pause(orderPauseMs);
    }
  });

  return {
    log,
    stop: async () => {
      stopping = true;
      await Promise.all(shoppers);
      return log;
    },
  };
}
