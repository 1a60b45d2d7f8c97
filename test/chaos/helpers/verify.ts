import path from 'node:path';
import { sql, type RawBuilder } from 'kysely';
import { FenClient } from '../../../sdk/index.js';
import { buildApp } from '../../../src/main/app.js';
import { sweepPayments } from '../../../src/payments/index.js';
import { ManualClock } from '../../../src/platform/clock.js';
import type { Db } from '../../../src/platform/db/index.js';
import { limits } from '../../../src/platform/limits.js';
import { injectFetch } from '../../helpers/merchant-api.js';
import { runFen } from '../../helpers/process.js';
import type { FenDeployment } from './fen.js';
import type { LoadLog } from './load.js';
import type { ChaosWorld } from './world.js';
import { openTestPlatform } from './world.js';

/**
 * After the crashes: recovery, then every promise Fen makes about money.
 *
 * Recovery is what the worker's minute sweep does, run from the test process
 * with a clock moved past every order's expiry plus the stale-order query
 * delay — waiting for those in real time would take half an hour. The Fen
 * processes keep running meanwhile (any number of workers may share the
 * database), and the simulator answers the queries and closes.
 *
 * Requests whose Idempotency-Key a crash left in progress are sent again, byte
 * for byte, once their lease has run out — exactly what a merchant's retry does —
 * and must then get a real answer.
 */
export interface ChaosReport {
  problems: string[];
  summary: Record<string, number>;
}

const recoveryPassesMax = 30;

async function count(db: Db, query: RawBuilder<unknown>): Promise<number> {
  const result = await query.execute(db);
  return Number((result.rows[0] as { count: string | number | bigint } | undefined)?.count ?? 0);
}

export async function recoverAndVerify(options: { deployment: FenDeployment; world: ChaosWorld; log: LoadLog }): Promise<ChaosReport> {
  const { deployment, world, log } = options;
  const problems: string[] = [];
  const db = world.platform.context.db;

  // A clock past every expiry and the stale-order delay, and past every lease (idempotency keys, webhook attempts).
  const clock = new ManualClock(new Date());
  const moveClockPastEverything = async () => {
    const latest = await sql<{ latest: Date | null }>`SELECT max(expires_at) AS latest FROM payments`.execute(db);
    const base = Math.max(clock.now().getTime(), latest.rows[0]?.latest?.getTime() ?? 0);
    clock.set(new Date(base + (limits.paymentStaleSeconds + limits.idempotencyLeaseSeconds + 120) * 1000));
  };
  await moveClockPastEverything();
  const recovery = await openTestPlatform(deployment, { clock, logFile: path.join(path.dirname(deployment.logFile), 'recovery.log') });
  const app = await buildApp(recovery.context, { logRequests: false });
  try {
    // 1. Every request a crash left holding its key is retried, as the merchant would.
    const stuckKeys = await recovery.context.db.selectFrom('idempotency_keys').select(['key', 'path']).where('app_id', '=', world.merchantApp.id).where('state', '=', 'in_progress').execute();
    const retryClient = new FenClient({ baseUrl: 'http://fen.test', appId: world.merchantApp.id, appSecret: world.merchantApp.app_secret, fetch: injectFetch(app), now: () => clock.now() });
    for (const stuck of stuckKeys) {
      const request = log.requests.get(stuck.key);
      if (!request) {
        problems.push(`idempotency key ${stuck.key} (${stuck.path}) is in progress but the load never sent it`);
        continue;
      }
      try {
        await retryClient.request('POST', request.path, request.body, { idempotencyKey: request.idempotencyKey });
      } catch (error) {
        const status = (error as { status?: number }).status ?? 0;
        if (status >= 500 || status === 0) problems.push(`retrying ${request.path} with key ${stuck.key} after its lease failed: ${(error as Error).message}`);
      }
    }

    // A retried create that the crash had cut off before it committed made its payment only now: let that one expire too.
    await moveClockPastEverything();

    // 2. The sweep, pass after pass, until nothing is open (each pass handles a bounded batch).
    let passes = 0;
    for (; passes < recoveryPassesMax; passes += 1) {
      const open = await count(db, sql`SELECT (SELECT count(*) FROM payments WHERE status IN ('created', 'paying'))
        + (SELECT count(*) FROM refunds WHERE status = 'processing')
        + (SELECT count(*) FROM events WHERE delivery_status = 'pending')
        + (SELECT count(*) FROM payment_exceptions WHERE status IN ('open', 'refunding') AND kind <> 'amount_mismatch') AS count`);
      if (open === 0) break;
      await sweepPayments(recovery.context);
    }

    // 3. Every acknowledged payment and refund exists, as acknowledged.
    const payments = await db.selectFrom('payments').selectAll().where('app_id', '=', world.merchantApp.id).execute();
    const paymentsById = new Map(payments.map((payment) => [payment.id, payment]));
    for (const acked of log.payments.values()) {
      const found = paymentsById.get(acked.id);
      if (!found) problems.push(`acknowledged payment ${acked.id} (${acked.outTradeNo}) does not exist`);
      else if (found.out_trade_no !== acked.outTradeNo || found.amount !== BigInt(acked.amount)) problems.push(`payment ${acked.id} differs from its acknowledgement`);
    }
    const refunds = await db.selectFrom('refunds').selectAll().where('app_id', '=', world.merchantApp.id).execute();
    const refundsById = new Map(refunds.map((refund) => [refund.id, refund]));
    for (const acked of log.refunds.values()) {
      const found = refundsById.get(acked.id);
      if (!found) problems.push(`acknowledged refund ${acked.id} (${acked.outRefundNo}) does not exist`);
      else if (found.payment_id !== acked.paymentId || found.amount !== BigInt(acked.amount)) problems.push(`refund ${acked.id} differs from its acknowledgement`);
    }
    const outTradeNos = new Map<string, number>();
    for (const payment of payments) outTradeNos.set(payment.out_trade_no, (outTradeNos.get(payment.out_trade_no) ?? 0) + 1);
    for (const [outTradeNo, copies] of outTradeNos) if (copies > 1) problems.push(`out_trade_no ${outTradeNo} has ${copies} payments`);

    // 4. Nothing left open, nothing half-applied.
    for (const payment of payments) {
      if (payment.status === 'created' || payment.status === 'paying') {
        const trade = await sql<{ status: string; opened: boolean }>`SELECT status, opened_at IS NOT NULL AS opened FROM sim_alipay.trades WHERE out_trade_no = ${payment.id}`.execute(db);
        problems.push(`payment ${payment.id} is still ${payment.status} after its expiry and the sweep (qr_code ${payment.qr_code ? 'set' : 'null'}, ${payment.query_attempts} queries, channel trade ${JSON.stringify(trade.rows[0] ?? null)})`);
      }
      if (payment.refunding_amount !== 0n) problems.push(`payment ${payment.id} still reserves ${payment.refunding_amount} for refunds in flight`);
      const refunded = refunds.filter((refund) => refund.payment_id === payment.id && refund.source === 'merchant' && refund.status === 'succeeded').reduce((sum, refund) => sum + refund.amount, 0n);
      if (refunded !== payment.refunded_amount) problems.push(`payment ${payment.id}: refunded_amount ${payment.refunded_amount}, but its succeeded refunds sum to ${refunded}`);
    }
    for (const refund of refunds) if (refund.status === 'processing') problems.push(`refund ${refund.id} is still processing after the sweep`);
    const stillHeld = await db.selectFrom('idempotency_keys').select('key').where('state', '=', 'in_progress').execute();
    for (const key of stillHeld) problems.push(`idempotency key ${key.key} is still in progress after a retry`);

    // 5. One set of postings per payment, and only for the payments that succeeded.
    const captures = await sql<{ reference_id: string; count: string }>`
      SELECT reference_id, count(*)::text AS count FROM journal_entries WHERE kind = 'payment_captured' GROUP BY reference_id`.execute(db);
    const capturesByPayment = new Map(captures.rows.map((row) => [row.reference_id, Number(row.count)]));
    for (const [paymentId, entries] of capturesByPayment) if (entries > 1) problems.push(`payment ${paymentId} has ${entries} payment_captured entries`);
    for (const payment of payments) {
      const entries = capturesByPayment.get(payment.id) ?? 0;
      if (payment.status === 'succeeded' && entries !== 1) problems.push(`succeeded payment ${payment.id} has ${entries} payment_captured entries`);
      if (payment.status !== 'succeeded' && entries !== 0) problems.push(`${payment.status} payment ${payment.id} has ${entries} payment_captured entries`);
    }

    // 6. The channel and Fen agree on what was paid and refunded.
    const trades = await sql<{ out_trade_no: string; paid: boolean; refunded_fen: string }>`
      SELECT out_trade_no, paid_at IS NOT NULL AS paid, refunded_fen::text AS refunded_fen FROM sim_alipay.trades`.execute(db);
    const exceptions = await db.selectFrom('payment_exceptions').select(['payment_id', 'amount', 'status']).execute();
    for (const trade of trades.rows) {
      const payment = paymentsById.get(trade.out_trade_no);
      if (!payment) continue;
      const exceptionRefunded = exceptions.filter((item) => item.payment_id === payment.id && item.status === 'refunded').reduce((sum, item) => sum + item.amount, 0n);
      const hasException = exceptions.some((item) => item.payment_id === payment.id);
      if (trade.paid && payment.status !== 'succeeded' && !hasException) problems.push(`payment ${payment.id} was paid at the channel but is ${payment.status} in Fen, with no exception recorded`);
      if (!trade.paid && payment.status === 'succeeded') problems.push(`payment ${payment.id} succeeded in Fen but was never paid at the channel`);
      if (BigInt(trade.refunded_fen) !== payment.refunded_amount + exceptionRefunded) problems.push(`payment ${payment.id}: the channel refunded ${trade.refunded_fen}, Fen ${payment.refunded_amount} (+${exceptionRefunded} exception refunds)`);
    }

    // 7. Every event reached the receiver at least once, and an event id never carries two payloads.
    const events = await db.selectFrom('events').select(['id', 'type', 'object_id', 'body', 'delivery_status']).where('app_id', '=', world.merchantApp.id).execute();
    const received = new Map<string, Set<string>>();
    for (const item of world.receiver.received) received.set(item.eventId, (received.get(item.eventId) ?? new Set()).add(item.body));
    for (const event of events) {
      const bodies = received.get(event.id);
      if (!bodies) problems.push(`event ${event.id} (${event.type} of ${event.object_id}) never reached the receiver; it is ${event.delivery_status}`);
      else if (bodies.size > 1 || !bodies.has(event.body)) problems.push(`event ${event.id} reached the receiver with ${bodies.size} different payloads`);
    }
    for (const eventId of received.keys()) if (!events.some((event) => event.id === eventId)) problems.push(`the receiver got event ${eventId}, which Fen has no record of`);
    const eventKeys = new Set(events.map((event) => `${event.type}|${event.object_id}`));
    const expectedEvent = (type: string, objectId: string) => {
      if (!eventKeys.has(`${type}|${objectId}`)) problems.push(`no ${type} event for ${objectId}`);
    };
    for (const payment of payments) {
      if (payment.status === 'succeeded') expectedEvent('payment.succeeded', payment.id);
      if (payment.status === 'closed') expectedEvent('payment.closed', payment.id);
      if (payment.status === 'failed') expectedEvent('payment.failed', payment.id);
    }
    for (const refund of refunds) if (refund.source === 'merchant' && refund.status !== 'processing') expectedEvent(`refund.${refund.status}`, refund.id);

    // 8. The books, checked by the command an operator runs.
    const ledger = await runFen(['ledger', 'check'], deployment.environment);
    if (ledger.code !== 0) problems.push(`fen ledger check exited ${ledger.code}:\n${ledger.output.slice(-3000)}`);

    // 9. No process died by itself, and the load saw no answer a crash does not explain.
    problems.push(...deployment.unexpectedExits());
    problems.push(...log.unexpected.map((item) => `load: ${item}`));

    return {
      problems,
      summary: {
        payments: payments.length,
        acknowledged_payments: log.payments.size,
        succeeded: payments.filter((payment) => payment.status === 'succeeded').length,
        closed: payments.filter((payment) => payment.status === 'closed').length,
        refunds: refunds.length,
        acknowledged_refunds: log.refunds.size,
        events: events.length,
        webhooks_received: world.receiver.received.length,
        keys_retried_after_crash: stuckKeys.length,
        recovery_passes: passes,
        ...log.counts,
      },
    };
  } finally {
    await app.close();
    await recovery.close();
  }
}
