import type { FastifyInstance } from 'fastify';
import { FenClient } from '../../sdk/index.js';
import type { CreatedApp, PaymentMethod } from '../../src/apps/index.js';
import { buildApp } from '../../src/main/app.js';
import { connectAlipaySimulator, connectUnionpaySimulator, connectWechatpaySimulator } from '../../src/main/sandbox.js';
import { deliverDueEvents } from '../../src/notify/index.js';
import { sweepPayments, type PaymentView } from '../../src/payments/index.js';
import { createLogger } from '../../src/platform/logging.js';
import type { ChannelAccountRow } from '../../src/routing/index.js';
import {
  createAlipaySimulator,
  createUnionpaySimulator,
  createWechatpaySimulator,
  type AlipaySimulator,
  type UnionpaySimulator,
  type WechatpaySimulator,
} from '../../src/simulators/index.js';
import { createTestContext, type TestContext } from './context.js';
import { createActiveApp, testOperatorActor } from './merchant-api.js';
import { openPayerPageByForm, openPayerPageByLink, pressPayerButton } from './payer-pages.js';
import { startWebhookReceiver, type WebhookReceiver } from './webhook-receiver.js';

/**
 * Fen and channel simulators on 127.0.0.1 (Alipay by default; WeChat Pay and
 * UnionPay on request), a merchant app whose webhooks go to a local receiver,
 * and the SDK client the merchant would use. Background work is driven by the
 * test (no worker runs): channel notifications, webhook deliveries and the
 * minute sweep are passes the test calls after moving the clock.
 */
export type HarnessChannel = 'alipay' | 'wechatpay' | 'unionpay';

export interface HarnessSimulators {
  alipay?: AlipaySimulator;
  wechatpay?: WechatpaySimulator;
  unionpay?: UnionpaySimulator;
}

export interface PaymentsHarnessOptions {
  /** The app's enabled methods; by default the started channels' methods (those an app may enable) and `cashier`. */
  methods?: PaymentMethod[];
  /** The channels whose simulators start, each with a shared channel account pointed at it. Default: Alipay only. */
  channels?: HarnessChannel[];
}

export interface PaymentsHarness {
  context: TestContext;
  app: FastifyInstance;
  fenUrl: string;
  /** The Alipay simulator; reading it when Alipay was not started throws. */
  simulator: AlipaySimulator;
  /** The Alipay channel account; reading it when Alipay was not started throws. */
  account: ChannelAccountRow;
  /** Every started simulator, by channel. */
  simulators: HarnessSimulators;
  /** Every started channel's account, by channel. */
  accounts: Partial<Record<HarnessChannel, ChannelAccountRow>>;
  merchantApp: CreatedApp;
  client: FenClient;
  receiver: WebhookReceiver;
  /**
   * Opens the payer's page the way a phone does after scanning (or the browser
   * does after posting a channel's form, for a payment with an `id` and a
   * stored form) and presses Pay (or Cancel).
   */
  payerPresses(payment: Pick<PaymentView, 'qr_code' | 'pay_url'> & { id?: string }, button: 'pay' | 'cancel'): Promise<void>;
  /**
   * One pass of every started simulator's notifier (WeChat Pay's processing
   * refunds are completed first, as its refund notifications follow them),
   * then one of Fen's webhook deliveries.
   */
  deliverAll(): Promise<void>;
  sweep(): Promise<void>;
  close(): Promise<void>;
}

/** The methods each channel's sandbox account offers that an app may enable (WeChat JSAPI needs the payer's openid, so no cashier offers it). */
const defaultMethodsOf: Record<HarnessChannel, PaymentMethod[]> = {
  alipay: ['alipay_qr', 'alipay_page'],
  wechatpay: ['wechat_native', 'wechat_h5'],
  unionpay: ['unionpay_web'],
};

/** Notifications and refunds go out only in the test's passes, with the channels' schedules shrunk to milliseconds. */
const simulatorTimeScale = 0.001;

/** The channel accounts' client timeout: generous for a loaded machine, short enough for a timeout fault to cost little. */
const channelTimeoutMs = 2000;

function required<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`${what} was not started: pass channels: ['alipay', …] to startPaymentsHarness`);
  return value;
}

export async function startPaymentsHarness(options: PaymentsHarnessOptions = {}): Promise<PaymentsHarness> {
  const channels = [...new Set<HarnessChannel>(options.channels ?? ['alipay'])];
  const context = await createTestContext();
  const app = await buildApp(context, { logRequests: false });
  const fenUrl = await app.listen({ host: '127.0.0.1', port: 0 });
  context.config.publicUrl = fenUrl;
  const simulatorOptions = { databaseUrl: context.databaseUrl, clock: context.clock, timeScale: simulatorTimeScale, logger: createLogger('silent') };
  const listenOptions = { host: '127.0.0.1', port: 0, deliveryLoop: false };
  const simulators: HarnessSimulators = {};
  const accounts: PaymentsHarness['accounts'] = {};
  if (channels.includes('alipay')) {
    const simulator = await createAlipaySimulator(simulatorOptions);
    simulators.alipay = simulator;
    await simulator.listen(listenOptions);
    accounts.alipay = await connectAlipaySimulator(context, testOperatorActor, simulator, { name: 'Alipay simulator', timeoutMs: channelTimeoutMs });
  }
  if (channels.includes('wechatpay')) {
    const simulator = await createWechatpaySimulator(simulatorOptions);
    simulators.wechatpay = simulator;
    await simulator.listen(listenOptions);
    accounts.wechatpay = await connectWechatpaySimulator(context, testOperatorActor, simulator, { name: 'WeChat Pay simulator', timeoutMs: channelTimeoutMs });
  }
  if (channels.includes('unionpay')) {
    const simulator = await createUnionpaySimulator(simulatorOptions);
    simulators.unionpay = simulator;
    await simulator.listen(listenOptions);
    accounts.unionpay = await connectUnionpaySimulator(context, testOperatorActor, simulator, { name: 'UnionPay simulator', timeoutMs: channelTimeoutMs });
  }
  const receiver = await startWebhookReceiver();
  const enabledMethods = options.methods ?? [...channels.flatMap((channel) => defaultMethodsOf[channel]), 'cashier'];
  const merchantApp = await createActiveApp(context, { input: { notify_url: receiver.url, enabled_methods: enabledMethods } });
  const client = new FenClient({ baseUrl: fenUrl, appId: merchantApp.id, appSecret: merchantApp.app_secret, now: () => context.clock.now() });

  const storedForm = async (paymentId: string) => {
    const row = await context.db.selectFrom('payments').select('payer_action').where('id', '=', paymentId).executeTakeFirst();
    const action = row?.payer_action as { kind?: string; actionUrl?: string; fields?: Record<string, string> } | null | undefined;
    return action?.kind === 'form' && action.actionUrl && action.fields ? { actionUrl: action.actionUrl, fields: action.fields } : undefined;
  };

  return {
    context,
    app,
    fenUrl,
    get simulator() {
      return required(simulators.alipay, 'the Alipay simulator');
    },
    get account() {
      return required(accounts.alipay, 'the Alipay channel account');
    },
    simulators,
    accounts,
    merchantApp,
    client,
    receiver,
    payerPresses: async (payment, button) => {
      const url = payment.qr_code ?? payment.pay_url;
      const form = url || !payment.id ? undefined : await storedForm(payment.id);
      if (!url && !form) throw new Error('the payment has no QR code, pay URL or payment form');
      const page = url ? await openPayerPageByLink(url) : await openPayerPageByForm(form!.actionUrl, form!.fields);
      await pressPayerButton(page, button);
    },
    deliverAll: async () => {
      await simulators.alipay?.deliverDueNotifications();
      if (simulators.wechatpay) {
        await simulators.wechatpay.completeRefunds();
        await simulators.wechatpay.deliverDueNotifications();
      }
      await simulators.unionpay?.deliverDueNotifications();
      await deliverDueEvents(context);
    },
    sweep: () => sweepPayments(context),
    close: async () => {
      await receiver.close();
      for (const simulator of [simulators.alipay, simulators.wechatpay, simulators.unionpay]) await simulator?.close();
      await app.close();
      await context.close();
    },
  };
}
