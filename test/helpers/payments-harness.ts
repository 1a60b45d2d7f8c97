import type { FastifyInstance } from 'fastify';
import { FenClient } from '../../sdk/index.js';
import type { CreatedApp, PaymentMethod } from '../../src/apps/index.js';
import { buildApp } from '../../src/main/app.js';
import { connectAlipaySimulator } from '../../src/main/sandbox.js';
import { deliverDueEvents } from '../../src/notify/index.js';
import { sweepPayments, type PaymentView } from '../../src/payments/index.js';
import { createLogger } from '../../src/platform/logging.js';
import type { ChannelAccountRow } from '../../src/routing/index.js';
import { createAlipaySimulator, type AlipaySimulator } from '../../src/simulators/index.js';
import { createTestContext, type TestContext } from './context.js';
import { createActiveApp, testOperatorActor } from './merchant-api.js';
import { startWebhookReceiver, type WebhookReceiver } from './webhook-receiver.js';

/**
 * Fen and the Alipay simulator on 127.0.0.1, a merchant app whose webhooks go
 * to a local receiver, and the SDK client the merchant would use. Background
 * work is driven by the test (no worker runs): channel notifications, webhook
 * deliveries and the minute sweep are passes the test calls after moving the clock.
 */
export interface PaymentsHarness {
  context: TestContext;
  app: FastifyInstance;
  fenUrl: string;
  simulator: AlipaySimulator;
  account: ChannelAccountRow;
  merchantApp: CreatedApp;
  client: FenClient;
  receiver: WebhookReceiver;
  /** Opens the payer's page the way a phone does after scanning, and presses Pay (or Cancel). */
  payerPresses(payment: Pick<PaymentView, 'qr_code' | 'pay_url'>, button: 'pay' | 'cancel'): Promise<void>;
  /** One pass of the simulator's notifier, then one of Fen's webhook deliveries. */
  deliverAll(): Promise<void>;
  sweep(): Promise<void>;
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

export async function startPaymentsHarness(options: { methods?: PaymentMethod[] } = {}): Promise<PaymentsHarness> {
  const context = await createTestContext();
  const app = await buildApp(context, { logRequests: false });
  const fenUrl = await app.listen({ host: '127.0.0.1', port: 0 });
  context.config.publicUrl = fenUrl;
  const simulator = await createAlipaySimulator({ databaseUrl: context.databaseUrl, clock: context.clock, timeScale: 0.001, logger: createLogger('silent') });
  await simulator.listen({ host: '127.0.0.1', port: 0, deliveryLoop: false });
  const account = await connectAlipaySimulator(context, testOperatorActor, simulator, { name: 'Alipay simulator', timeoutMs: 2000 });
  const receiver = await startWebhookReceiver();
  const merchantApp = await createActiveApp(context, { input: { notify_url: receiver.url, enabled_methods: options.methods ?? ['alipay_qr', 'alipay_page', 'cashier'] } });
  const client = new FenClient({ baseUrl: fenUrl, appId: merchantApp.id, appSecret: merchantApp.app_secret, now: () => context.clock.now() });
  return {
    context,
    app,
    fenUrl,
    simulator,
    account,
    merchantApp,
    client,
    receiver,
    payerPresses: async (payment, button) => {
      const url = payment.qr_code ?? payment.pay_url;
      if (!url) throw new Error('the payment has no QR code or pay URL');
      await pressOnPayerPage(url, button);
    },
    deliverAll: async () => {
      await simulator.deliverDueNotifications();
      await deliverDueEvents(context);
    },
    sweep: () => sweepPayments(context),
    close: async () => {
      await receiver.close();
      await simulator.close();
      await app.close();
      await context.close();
    },
  };
}
