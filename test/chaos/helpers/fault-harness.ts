import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import { FenClient } from '../../../sdk/index.js';
import type { CreatedApp } from '../../../src/apps/index.js';
import { checkLedger } from '../../../src/ledger/index.js';
import { buildApp } from '../../../src/main/app.js';
import { connectAlipaySimulator } from '../../../src/main/sandbox.js';
import { deliverDueEvents } from '../../../src/notify/index.js';
import { sweepPayments } from '../../../src/payments/index.js';
import type { PlatformContext } from '../../../src/platform/context.js';
import { connectDatabase, type DatabaseHandle } from '../../../src/platform/db/index.js';
import { createLogger } from '../../../src/platform/logging.js';
import type { ChannelAccountRow } from '../../../src/routing/index.js';
import { createAlipaySimulator, type AlipaySimulator } from '../../../src/simulators/index.js';
import { createTestContext, type TestContext } from '../../helpers/context.js';
import { createActiveApp, testOperatorActor } from '../../helpers/merchant-api.js';
import { startWebhookReceiver, type WebhookReceiver } from '../../helpers/webhook-receiver.js';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.js';

/**
 * The payments stage of test/helpers/payments-harness.ts, with Fen's own
 * database pool set apart: it goes through a TCP proxy the test can cut, and
 * has the size the test asks for. The test's checks, the simulator and the
 * fixtures use a direct pool of their own, so they see the database as it is
 * whatever happens to Fen's connections. Time is the ManualClock's.
 */
export interface FaultHarness {
  /** The test's direct context (assertions, fixtures). */
  context: TestContext;
  /** Fen's context: its pool goes through the proxy. */
  fen: PlatformContext;
  fenPool: DatabaseHandle;
  proxy: TcpProxy;
  app: FastifyInstance;
  fenUrl: string;
  simulator: AlipaySimulator;
  account: ChannelAccountRow;
  merchantApp: CreatedApp;
  client: FenClient;
  receiver: WebhookReceiver;
  payerPresses(payment: { qr_code: string | null; pay_url: string | null }, button: 'pay' | 'cancel'): Promise<void>;
  /** One pass of the simulator's notifier, then one of Fen's webhook deliveries. */
  deliverAll(): Promise<void>;
  sweep(): Promise<void>;
  capturesOf(paymentId: string): Promise<number>;
  ledgerProblems(): Promise<unknown[]>;
  /** Waits until one of Fen's connections is waiting for a lock (the request is inside its transaction). */
  waitForFenBackendWaitingOnLock(): Promise<number>;
  close(): Promise<void>;
}

async function pressOnPayerPage(pageUrl: string, button: 'pay' | 'cancel'): Promise<void> {
  const page = await fetch(pageUrl, { redirect: 'follow' });
  const html = await page.text();
  const action = new RegExp(`action="([^"]+/${button})"`).exec(html)?.[1];
  if (!action) throw new Error(`no ${button} button on ${page.url}:\n${html.slice(0, 500)}`);
  const pressed = await fetch(new URL(action, page.url), { method: 'POST', redirect: 'manual' });
  if (pressed.status >= 400) throw new Error(`pressing ${button} answered ${pressed.status}`);
}

const applicationName = 'fen-under-fault';

export async function startFaultHarness(options: { poolSize?: number } = {}): Promise<FaultHarness> {
  const context = await createTestContext();
  const server = new URL(context.databaseUrl);
  const proxy = await startTcpProxy({ host: server.hostname, port: Number(server.port || 5432) });
  const fenUrl = new URL(proxy.urlFor(context.databaseUrl));
  // Named, so the test can find Fen's own backends in pg_stat_activity.
  fenUrl.searchParams.set('application_name', applicationName);
  const fenPool = connectDatabase(fenUrl.toString(), options.poolSize ?? 10);
  const fen: PlatformContext = { db: fenPool.db, databaseUrl: fenUrl.toString(), clock: context.clock, secretBox: context.secretBox, logger: context.logger, config: context.config };
  const app = await buildApp(fen, { logRequests: false });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  context.config.publicUrl = url;
  const simulator = await createAlipaySimulator({ databaseUrl: context.databaseUrl, clock: context.clock, timeScale: 0.001, logger: createLogger('silent') });
  await simulator.listen({ host: '127.0.0.1', port: 0, deliveryLoop: false });
  const account = await connectAlipaySimulator(context, testOperatorActor, simulator, { name: 'Alipay simulator', timeoutMs: 2000 });
  const receiver = await startWebhookReceiver();
  const merchantApp = await createActiveApp(context, { input: { notify_url: receiver.url, enabled_methods: ['alipay_qr'] } });
  const client = new FenClient({ baseUrl: url, appId: merchantApp.id, appSecret: merchantApp.app_secret, now: () => context.clock.now() });
  return {
    context,
    fen,
    fenPool,
    proxy,
    app,
    fenUrl: url,
    simulator,
    account,
    merchantApp,
    client,
    receiver,
    payerPresses: async (payment, button) => {
      const pageUrl = payment.qr_code ?? payment.pay_url;
      if (!pageUrl) throw new Error('the payment has no QR code or pay URL');
      await pressOnPayerPage(pageUrl, button);
    },
    deliverAll: async () => {
      await simulator.deliverDueNotifications();
      await deliverDueEvents(fen);
    },
    sweep: () => sweepPayments(fen),
    capturesOf: async (paymentId) =>
      Number((await sql<{ count: string }>`SELECT count(*)::text AS count FROM journal_entries WHERE reference_id = ${paymentId} AND kind = 'payment_captured'`.execute(context.db)).rows[0]?.count),
    ledgerProblems: async () => (await checkLedger(context.db)).problems,
    waitForFenBackendWaitingOnLock: async () => {
      // Waiting for a real condition in the database, bounded: not a sleep that makes time pass.
      const deadline = Date.now() + 15_000;
      while (Date.now() < deadline) {
        const waiting = await context.database.superuserQuery(
          `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1 AND wait_event_type = 'Lock'`,
          [applicationName],
        );
        const pid = (waiting.rows[0] as { pid?: number } | undefined)?.pid;
        if (pid !== undefined) return pid;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      throw new Error('no Fen backend started waiting on the lock within 15 s');
    },
    close: async () => {
      await receiver.close();
      await simulator.close();
      await app.close();
      await fenPool.close();
      await proxy.close();
      await context.close();
    },
  };
}
