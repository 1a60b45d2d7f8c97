import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  checkNotificationAmount,
  type ChannelConnector,
  type CreatePaymentRequest,
  type ImplementedChannel,
  type InboundNotification,
  type NotificationAcknowledgement,
  type NotificationVerification,
  type PayerAction,
  type PaymentMethod,
  type PaymentNotificationEvent,
  type RefundNotificationEvent,
  type RefundRequest,
  type RefundResult,
} from '../../src/channels/index.js';
import type { Actor } from '../../src/platform/actor.js';
import type { ManualClock } from '../../src/platform/clock.js';
import type { PlatformContext } from '../../src/platform/context.js';
import { newId } from '../../src/platform/ids.js';
import { createLogger, type Logger } from '../../src/platform/logging.js';
import { formatMinorAsDecimal, money, type Money } from '../../src/platform/money.js';
import { connectorFor, type ChannelAccountRow } from '../../src/routing/index.js';
import { createTestContext, type TestContext } from '../helpers/context.js';
import { testOperatorActor } from '../helpers/merchant-api.js';
import { pressPayerButton, type PayerPage } from '../helpers/payer-pages.js';

/**
 * The contract every connector and its simulator must pass together
 * (DESIGN.md §5): the same tests for every channel, run over real HTTP on
 * 127.0.0.1 against a Fen database of its own. The connector is built the way
 * Fen builds it — the sandbox's connect…Simulator function creates the channel
 * account, and `connectorFor` parses its settings with the channel's schema,
 * opens its secrets and asks the registry for the connector — so a channel
 * passes only when all of those pieces agree.
 *
 * Nothing in this file names a channel's field, fault switch or page. What
 * differs between channels lives in the pair description (`ChannelPair`),
 * which each `<channel>.contract.test.ts` writes and hands to
 * `describeChannelContract`.
 *
 * Time is the test context's ManualClock, and notifications go out only when
 * a test asks the simulator for a delivery pass, so nothing waits on a timer
 * except the one client timeout the timeout fault is about.
 */

/** The simulators' retry schedules and refund durations shrink by this factor, so a test moves the clock by milliseconds. */
export const contractTimeScale = 0.001;

/** The client timeout of the second connector the timeout fault is played against; the main one keeps the default. */
const impatientTimeoutMs = 300;

/** How long a simulator holds an answer for the timeout fault: far beyond the impatient client, and cut short when it closes. */
const heldAnswerMs = 30_000;

/** How long the delayed-notification fault holds the first attempt back (real channels' delays are not time-scaled). */
const notificationDelayMs = 60_000;

/** What a simulator needs to start: its state goes into the test database, its time is the test's clock. */
export interface SimulatorStartOptions {
  pool: pg.Pool;
  clock: ManualClock;
  timeScale: number;
  logger: Logger;
}

/** The least the suite needs of any simulator; everything else goes through the pair description. */
export interface ContractSimulator {
  readonly baseUrl: string;
  close(): Promise<void>;
}

/** One payment method the channel offers: what the payer is handed for it, and what else a request for it needs. */
export interface MethodCase {
  method: PaymentMethod;
  action: PayerAction['kind'];
  /** Fields the method requires beyond the common ones (the payer's IP for WeChat H5, an openid for JSAPI). */
  request?: Pick<CreatePaymentRequest, 'payerIp' | 'payerChannelId'>;
}

/** The operations a fault can aim at; each simulator names them its own way. */
export type ContractOperation = 'query' | 'refund';

/**
 * The misbehaviours every simulator must be able to play, in the suite's
 * words; the pair description turns each into its simulator's fault switch.
 */
export type ContractFault =
  /** The operation is answered with this HTTP 5xx and nothing is done. */
  | { kind: 'http_5xx'; operation: ContractOperation; httpStatus: number }
  /** The next call of the operation is done, but its answer is held longer than the client waits; later calls are answered at once. */
  | { kind: 'timeout'; operation: ContractOperation; holdMs: number }
  /** Query answers and notifications report this amount instead of the order's. */
  | { kind: 'wrong_amount'; reported: Money }
  /** Every notification attempt goes out as this many identical copies. */
  | { kind: 'notification_duplicate'; copies: number }
  /** Notification attempts are lost on the way, until the switch is cleared. */
  | { kind: 'notification_drop' }
  /** The first notification attempt goes out this much later. */
  | { kind: 'notification_delay'; delayMs: number };

/** Whose fault it is: the payment, and for refund operations the refund (some channels key a refund's faults by its own number). */
export interface FaultTarget {
  outTradeNo: string;
  outRefundNo?: string;
}

/**
 * Everything that differs between channels, described once per channel. A
 * fourth channel passes the suite by providing one of these (see docs/channels.md).
 */
export interface ChannelPair<Simulator extends ContractSimulator> {
  channel: ImplementedChannel;
  /** Every method the connector offers, each of which the simulator supports. */
  methods: readonly MethodCase[];
  /** Creates the simulator on the given database and listens on 127.0.0.1, with its delivery loop off. */
  startSimulator(options: SimulatorStartOptions): Promise<Simulator>;
  /** The sandbox's connect…Simulator function: registers Fen with the simulator and creates the channel account. */
  connect(context: PlatformContext, actor: Actor, simulator: Simulator, options: { name: string }): Promise<ChannelAccountRow>;
  /** How the payer gets from what the connector handed out to the page with the Pay and Cancel buttons. */
  openPayerPage(simulator: Simulator, action: PayerAction): Promise<PayerPage>;
  /**
   * How an open, unpaid order is closed: `at_once` when the channel closes an
   * order the payer is looking at; `after_payer_cancels` when it cannot (UnionPay
   * has no close for a consumption still waiting for the payer: it ends when the
   * payer cancels or at its payTimeout, and a close then reports it closed).
   */
  unpaidClose: 'at_once' | 'after_payer_cancels';
  /** The simulator's notification retry delays before time scaling. */
  notificationRetryDelaysMs: readonly number[];
  /** One pass of the simulator's notifier at the clock's current time. */
  deliverNotifications(simulator: Simulator): Promise<void>;
  /** Completes refunds the channel processes asynchronously (WeChat Pay); nothing for channels that refund at once. */
  completeRefunds(simulator: Simulator): Promise<void>;
  setFault(simulator: Simulator, target: FaultTarget, fault: ContractFault): Promise<void>;
  clearFaults(simulator: Simulator, target?: FaultTarget): Promise<void>;
  /**
   * Forgeries made from a genuine notification, in the channel's own format:
   * at least one with a field changed after signing, and one signed with a
   * key that is not the channel's.
   */
  forgeNotifications(genuine: InboundNotification, options: { clock: ManualClock }): Promise<Record<string, InboundNotification>>;
}

// ---------------------------------------------------------------------------
// Fen's notify endpoint, played by a local server that verifies with the connector

interface ReceivedNotification {
  path: string;
  notification: InboundNotification;
  verification: NotificationVerification;
}

interface NotificationReceiver {
  baseUrl: string;
  received: ReceivedNotification[];
  close(): Promise<void>;
}

function lowerCased(headers: IncomingHttpHeaders): Record<string, string | string[] | undefined> {
  return Object.fromEntries(Object.entries(headers).map(([name, value]) => [name.toLowerCase(), value]));
}

function inboundOf(headers: IncomingHttpHeaders, rawBody: string): InboundNotification {
  const contentType = String(headers['content-type'] ?? '');
  const notification: InboundNotification = { headers: lowerCased(headers), rawBody };
  if (contentType.includes('application/x-www-form-urlencoded')) notification.form = Object.fromEntries(new URLSearchParams(rawBody));
  if (contentType.includes('application/json')) {
    try {
      notification.json = JSON.parse(rawBody) as unknown;
    } catch {
      // An unparsable body is the connector's to refuse; the raw text is still passed on.
    }
  }
  return notification;
}

/**
 * Stands where Fen's `/channels/<channel>/notify/<account>` endpoint stands:
 * it verifies every notification with the connector and answers with the
 * connector's own acknowledgement, so the simulator's retries stop exactly
 * when the channel's would.
 */
async function startNotificationReceiver(verify: (notification: InboundNotification) => Promise<{ verification: NotificationVerification; acknowledgement: NotificationAcknowledgement }>): Promise<NotificationReceiver> {
  const received: ReceivedNotification[] = [];
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const notification = inboundOf(request.headers, Buffer.concat(chunks).toString('utf8'));
      verify(notification).then(
        ({ verification, acknowledgement }) => {
          received.push({ path: request.url ?? '/', notification, verification });
          response.writeHead(acknowledgement.statusCode, { 'content-type': acknowledgement.contentType }).end(acknowledgement.body);
        },
        (error: unknown) => {
          response.writeHead(500, { 'content-type': 'text/plain' }).end(String(error));
        },
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

// ---------------------------------------------------------------------------
// The suite

export function describeChannelContract<Simulator extends ContractSimulator>(pair: ChannelPair<Simulator>): void {
  describe(`the channel contract: ${pair.channel} connector × ${pair.channel} simulator`, () => {
    let context: TestContext;
    let clock: ManualClock;
    let receiver: NotificationReceiver;
    let simulator: Simulator;
    let account: ChannelAccountRow;
    let connector: ChannelConnector;
    let impatient: ChannelConnector;
    let orderCounter = 0;
    const [firstMethod] = pair.methods;
    if (!firstMethod) throw new Error(`the ${pair.channel} pair names no payment method`);

    beforeAll(async () => {
      context = await createTestContext();
      clock = context.clock;
      receiver = await startNotificationReceiver(async (notification) => {
        const verification = await connector.verifyNotification(notification);
        return { verification, acknowledgement: connector.acknowledgeNotification(verification.verified ? 'accepted' : 'rejected') };
      });
      // The account's notify URL is derived from Fen's public URL, which here is the receiver.
      context.config.publicUrl = receiver.baseUrl;
      simulator = await pair.startSimulator({ pool: context.database.pool, clock, timeScale: contractTimeScale, logger: createLogger('silent') });
      account = await pair.connect(context, testOperatorActor, simulator, { name: `${pair.channel} contract` });
      connector = connectorFor(context, account);
      // The same account with a short client timeout, built by the same path: a
      // newer version of the row makes connectorFor build it afresh from these settings.
      impatient = connectorFor(context, { ...account, settings: { ...account.settings, timeout_ms: impatientTimeoutMs }, updated_at: new Date(account.updated_at.getTime() + 1) });
    });

    afterEach(async () => {
      await pair.clearFaults(simulator);
      // Every notification a simulator sends must verify with its connector, in every test.
      const refused = receiver.received.filter((item) => !item.verification.verified);
      expect(refused.map((item) => item.verification)).toEqual([]);
    });

    afterAll(async () => {
      await simulator?.close();
      await receiver?.close();
      await context?.close();
    });

    const cny = (amount: bigint) => money(amount, 'CNY');
    const notifyPath = () => `/channels/${pair.channel}/notify/${account.id}`;

    /** Fen's own numbers, made at the test's time: some channels (UnionPay) read the order's time from them. */
    function newOrder(methodCase: MethodCase = firstMethod!, amount = 1234n): CreatePaymentRequest {
      orderCounter += 1;
      return {
        method: methodCase.method,
        outTradeNo: newId('payment', clock.now().getTime()),
        amount: cny(amount),
        subject: `合约测试 Contract order ${orderCounter}`,
        expiresAt: new Date(clock.now().getTime() + 30 * 60_000),
        ...methodCase.request,
      };
    }

    const newRefundNo = () => newId('refund', clock.now().getTime());

    async function createOrder(methodCase: MethodCase = firstMethod!, amount = 1234n): Promise<{ order: CreatePaymentRequest; action: PayerAction }> {
      const order = newOrder(methodCase, amount);
      const created = await connector.createPayment(order);
      if (created.status !== 'pending') throw new Error(`creating a ${methodCase.method} payment answered ${JSON.stringify(created)}`);
      expect(created.action.kind).toBe(methodCase.action);
      return { order, action: created.action };
    }

    async function openOrder(methodCase: MethodCase = firstMethod!, amount = 1234n): Promise<{ order: CreatePaymentRequest; page: PayerPage }> {
      const { order, action } = await createOrder(methodCase, amount);
      return { order, page: await pair.openPayerPage(simulator, action) };
    }

    /** An order the payer has paid, and the channel's number for it as a query reports it. */
    async function paidOrder(amount = 1234n): Promise<{ order: CreatePaymentRequest; channelTradeNo: string }> {
      const { order, page } = await openOrder(firstMethod, amount);
      await pressPayerButton(page, 'pay');
      const queried = await connector.queryPayment({ outTradeNo: order.outTradeNo, expected: order.amount });
      if (queried.status !== 'succeeded' || !queried.facts.channelTradeNo) throw new Error(`the paid order queried as ${JSON.stringify(queried)}`);
      return { order, channelTradeNo: queried.facts.channelTradeNo };
    }

    function paymentNotifications(outTradeNo: string): { path: string; notification: InboundNotification; event: PaymentNotificationEvent }[] {
      return receiver.received.flatMap((item) =>
        item.verification.verified && item.verification.event.kind === 'payment' && item.verification.event.facts.outTradeNo === outTradeNo
          ? [{ path: item.path, notification: item.notification, event: item.verification.event }]
          : [],
      );
    }

    function refundNotifications(outRefundNo: string): RefundNotificationEvent[] {
      return receiver.received.flatMap((item) =>
        item.verification.verified && item.verification.event.kind === 'refund' && item.verification.event.facts.outRefundNo === outRefundNo ? [item.verification.event] : [],
      );
    }

    /** The payment notifications of an order that report it paid, once their amount is checked. */
    function successfulPaymentNotifications(order: CreatePaymentRequest) {
      return paymentNotifications(order.outTradeNo).filter((item) => item.event.reportedStatus === 'succeeded');
    }

    const retryDelayMs = (attempt: number) => (pair.notificationRetryDelaysMs[attempt] ?? 0) * contractTimeScale;

    it('offers exactly the methods the pair description covers, each of which the simulator supports', () => {
      expect(connector.channel).toBe(pair.channel);
      expect(connector.channelAccountId).toBe(account.id);
      expect([...connector.methods].sort()).toEqual(pair.methods.map((methodCase) => methodCase.method).sort());
    });

    for (const methodCase of pair.methods) {
      it(`takes a payment by ${methodCase.method}: created, paid on the payer page, notified with a verified signature and a checked amount, and queried as succeeded`, async () => {
        const { order, action } = await createOrder(methodCase);
        const query = { outTradeNo: order.outTradeNo, expected: order.amount };
        // Before the payer acts the channel either waits or has not seen the order yet; it never reports it ended.
        expect(['pending', 'not_found']).toContain((await connector.queryPayment(query)).status);
        // The same number again is the same order, never a second one nor a failure.
        expect(await connector.createPayment(order)).toMatchObject({ status: 'pending', action: { kind: methodCase.action } });

        const page = await pair.openPayerPage(simulator, action);
        expect(page.html).toContain(`¥${formatMinorAsDecimal(order.amount.amount, 'CNY')}`);
        expect(Object.keys(page.buttons).sort()).toEqual(['cancel', 'pay']);
        await pressPayerButton(page, 'pay');
        await pair.deliverNotifications(simulator);

        const notifications = paymentNotifications(order.outTradeNo);
        expect(notifications).toHaveLength(1);
        const [{ path, event }] = notifications as [(typeof notifications)[number]];
        expect(path).toBe(notifyPath());
        const checked = checkNotificationAmount(event, order.amount);
        expect(checked).toMatchObject({ status: 'succeeded', facts: { outTradeNo: order.outTradeNo, amount: order.amount } });
        expect(checked.status === 'succeeded' && checked.facts.paidAt).toBeInstanceOf(Date);
        // The amount check is what makes a success: the same notification against another amount is an exception.
        expect(checkNotificationAmount(event, cny(order.amount.amount + 1n))).toMatchObject({ status: 'amount_mismatch', reportedStatus: 'succeeded' });

        const queried = await connector.queryPayment(query);
        expect(queried).toMatchObject({ status: 'succeeded', facts: { outTradeNo: order.outTradeNo, amount: order.amount, channelTradeNo: event.facts.channelTradeNo } });
        expect(queried.status === 'succeeded' && queried.facts.paidAt).toBeInstanceOf(Date);

        // A paid order cannot be closed; Fen's close path relies on this refusal to go and ask instead.
        expect(await connector.closePayment({ outTradeNo: order.outTradeNo })).toMatchObject({ status: 'failed', reason: 'rejected' });

        // The connector's acknowledgement is the reply that stops the channel's retries: past its whole schedule, nothing more comes.
        clock.advanceMs(pair.notificationRetryDelaysMs.reduce((total, delayMs) => total + delayMs, 0) * contractTimeScale + 1);
        await pair.deliverNotifications(simulator);
        expect(paymentNotifications(order.outTradeNo)).toHaveLength(1);
      });
    }

    it('closes an unpaid order, after which the payer cannot pay it', async () => {
      // An order the payer never opened: closed, or unknown to the channel — either way no money moved.
      const untouched = newOrder();
      await connector.createPayment(untouched);
      expect(['succeeded', 'not_found']).toContain((await connector.closePayment({ outTradeNo: untouched.outTradeNo })).status);

      const { order, page } = await openOrder();
      if (pair.unpaidClose === 'after_payer_cancels') {
        // The channel will not close an order the payer may still pay; it says so rather than pretending.
        expect(await connector.closePayment({ outTradeNo: order.outTradeNo })).toMatchObject({ status: 'failed', reason: 'rejected' });
        await pressPayerButton(page, 'cancel');
      }
      expect(await connector.closePayment({ outTradeNo: order.outTradeNo })).toEqual({ status: 'succeeded' });
      const query = { outTradeNo: order.outTradeNo, expected: order.amount };
      const closed = await connector.queryPayment(query);
      expect(closed).toMatchObject({ status: 'failed' });
      expect(['closed', 'declined']).toContain(closed.status === 'failed' ? closed.reason : undefined);

      // The payer presses Pay on the page still open in front of them: no money moves, whether the press is refused or ignored.
      await pressPayerButton(page, 'pay').catch(() => undefined);
      expect((await connector.queryPayment(query)).status).toBe('failed');
      await pair.deliverNotifications(simulator);
      for (const { event } of paymentNotifications(order.outTradeNo)) expect(checkNotificationAmount(event, order.amount).status).toBe('failed');
    });

    it('refunds part and then the rest, answers refund queries, and refuses a fen more', async () => {
      const { order, channelTradeNo } = await paidOrder(1000n);
      const refundOf = (outRefundNo: string, amount: bigint): RefundRequest => ({ outTradeNo: order.outTradeNo, channelTradeNo, outRefundNo, refundAmount: cny(amount), paymentAmount: order.amount, reason: 'contract' });
      const [partial, rest, tooMuch] = [newRefundNo(), newRefundNo(), newRefundNo()];
      const answers = new Map<string, RefundResult>();

      // A refund is taken (succeeded) or accepted (pending, settled by a notification or a query); nothing else.
      const refundAndConfirm = async (outRefundNo: string, amount: bigint) => {
        const answer = await connector.refund(refundOf(outRefundNo, amount));
        expect(['succeeded', 'pending']).toContain(answer.status);
        if (answer.status === 'succeeded') expect(answer.facts).toMatchObject({ outRefundNo, amount: cny(amount) });
        answers.set(outRefundNo, answer);
        await pair.completeRefunds(simulator);
        expect(await connector.queryRefund({ outTradeNo: order.outTradeNo, channelTradeNo, outRefundNo, expected: cny(amount) })).toMatchObject({
          status: 'succeeded',
          facts: { outTradeNo: order.outTradeNo, outRefundNo, amount: cny(amount) },
        });
      };
      await refundAndConfirm(partial, 300n);
      // The same refund number again is the same refund: it neither fails nor moves money twice (the rest still fits below).
      expect(['succeeded', 'pending']).toContain((await connector.refund(refundOf(partial, 300n))).status);
      await pair.completeRefunds(simulator);
      await refundAndConfirm(rest, 700n);
      expect(await connector.refund(refundOf(tooMuch, 1n))).toMatchObject({ status: 'failed', reason: 'rejected' });
      expect(await connector.queryRefund({ outTradeNo: order.outTradeNo, channelTradeNo, outRefundNo: tooMuch, expected: cny(1n) })).toMatchObject({ status: 'not_found' });
      // A refund query is checked against the refund's amount like any other answer.
      expect(await connector.queryRefund({ outTradeNo: order.outTradeNo, channelTradeNo, outRefundNo: partial, expected: cny(301n) })).toMatchObject({ status: 'amount_mismatch' });

      await pair.deliverNotifications(simulator);
      for (const [outRefundNo, amount] of [[partial, 300n], [rest, 700n]] as const) {
        const checked = refundNotifications(outRefundNo).map((event) => checkNotificationAmount(event, cny(amount)).status);
        // A notification never says anything but what the query said; and a refund that was only accepted is notified.
        for (const status of checked) expect(['succeeded', 'pending']).toContain(status);
        if (answers.get(outRefundNo)?.status === 'pending') expect(checked).toContain('succeeded');
      }
      // Refunded in full, the payment is still one that succeeded; some channels report the trade closed by the refund.
      const after = await connector.queryPayment({ outTradeNo: order.outTradeNo, expected: order.amount });
      if (after.status === 'failed') expect(after.reason).toBe('refunded_in_full');
      else expect(after.status).toBe('succeeded');
    });

    describe('faults', () => {
      it('answers 5xx: unknown (never failed), and clearing the switch brings the truth back', async () => {
        const { order } = await paidOrder();
        const query = { outTradeNo: order.outTradeNo, expected: order.amount };
        await pair.setFault(simulator, { outTradeNo: order.outTradeNo }, { kind: 'http_5xx', operation: 'query', httpStatus: 503 });
        expect(await connector.queryPayment(query)).toMatchObject({ status: 'unknown', reason: 'http_status' });
        await pair.clearFaults(simulator, { outTradeNo: order.outTradeNo });
        expect(await connector.queryPayment(query)).toMatchObject({ status: 'succeeded' });
      });

      it('times out: unknown, while the refund itself happened — and the retry with the same number refunds once', async () => {
        const { order, channelTradeNo } = await paidOrder(800n);
        const refund: RefundRequest = { outTradeNo: order.outTradeNo, channelTradeNo, outRefundNo: newRefundNo(), refundAmount: cny(100n), paymentAmount: order.amount };
        await pair.setFault(simulator, { outTradeNo: order.outTradeNo, outRefundNo: refund.outRefundNo }, { kind: 'timeout', operation: 'refund', holdMs: heldAnswerMs });
        expect(await impatient.refund(refund)).toMatchObject({ status: 'unknown', reason: 'timeout' });
        expect(['succeeded', 'pending']).toContain((await connector.refund(refund)).status);
        await pair.completeRefunds(simulator);
        expect(await connector.queryRefund({ outTradeNo: order.outTradeNo, channelTradeNo, outRefundNo: refund.outRefundNo, expected: refund.refundAmount })).toMatchObject({ status: 'succeeded' });
        // Had the money moved twice, the rest would not fit.
        const rest: RefundRequest = { ...refund, outRefundNo: newRefundNo(), refundAmount: cny(700n) };
        expect(['succeeded', 'pending']).toContain((await connector.refund(rest)).status);
        expect(await connector.refund({ ...refund, outRefundNo: newRefundNo(), refundAmount: cny(1n) })).toMatchObject({ status: 'failed', reason: 'rejected' });
        await pair.completeRefunds(simulator);
      });

      it('reports a wrong amount in query answers and notifications: amount_mismatch, never success', async () => {
        const { order, page } = await openOrder();
        const reported = cny(1n);
        await pair.setFault(simulator, { outTradeNo: order.outTradeNo }, { kind: 'wrong_amount', reported });
        await pressPayerButton(page, 'pay');
        expect(await connector.queryPayment({ outTradeNo: order.outTradeNo, expected: order.amount })).toMatchObject({
          status: 'amount_mismatch',
          expected: order.amount,
          reported,
          reportedStatus: 'succeeded',
        });
        await pair.deliverNotifications(simulator);
        const [notification] = successfulPaymentNotifications(order);
        expect(notification?.event.facts.amount).toEqual(reported);
        expect(checkNotificationAmount(notification!.event, order.amount)).toMatchObject({ status: 'amount_mismatch', expected: order.amount, reported, reportedStatus: 'succeeded' });
      });

      it('duplicates a notification: identical copies, each genuine, with one notification id', async () => {
        const { order, page } = await openOrder();
        await pair.setFault(simulator, { outTradeNo: order.outTradeNo }, { kind: 'notification_duplicate', copies: 3 });
        await pressPayerButton(page, 'pay');
        await pair.deliverNotifications(simulator);
        const copies = successfulPaymentNotifications(order);
        expect(copies).toHaveLength(3);
        expect(new Set(copies.map((copy) => copy.notification.rawBody)).size).toBe(1);
        // Fen tells a retry from a new notification by this id, so every copy must carry the same one.
        expect(new Set(copies.map((copy) => copy.event.notificationId)).size).toBe(1);
        for (const copy of copies) expect(checkNotificationAmount(copy.event, order.amount)).toMatchObject({ status: 'succeeded' });
      });

      it('drops notifications: nothing arrives until the switch is cleared, a query finds the payment meanwhile, then the retry delivers', async () => {
        const { order, page } = await openOrder();
        await pair.setFault(simulator, { outTradeNo: order.outTradeNo }, { kind: 'notification_drop' });
        await pressPayerButton(page, 'pay');
        await pair.deliverNotifications(simulator);
        clock.advanceMs(retryDelayMs(0));
        await pair.deliverNotifications(simulator);
        expect(paymentNotifications(order.outTradeNo)).toEqual([]);
        expect(await connector.queryPayment({ outTradeNo: order.outTradeNo, expected: order.amount })).toMatchObject({ status: 'succeeded' });

        await pair.clearFaults(simulator, { outTradeNo: order.outTradeNo });
        clock.advanceMs(retryDelayMs(1));
        await pair.deliverNotifications(simulator);
        const delivered = successfulPaymentNotifications(order);
        expect(delivered).toHaveLength(1);
        expect(checkNotificationAmount(delivered[0]!.event, order.amount)).toMatchObject({ status: 'succeeded' });
      });

      it('delays a notification: nothing before its time, then one that still verifies', async () => {
        const { order, page } = await openOrder();
        await pair.setFault(simulator, { outTradeNo: order.outTradeNo }, { kind: 'notification_delay', delayMs: notificationDelayMs });
        await pressPayerButton(page, 'pay');
        await pair.deliverNotifications(simulator);
        clock.advanceMs(notificationDelayMs - 1);
        await pair.deliverNotifications(simulator);
        expect(paymentNotifications(order.outTradeNo)).toEqual([]);
        clock.advanceMs(1);
        await pair.deliverNotifications(simulator);
        const delivered = successfulPaymentNotifications(order);
        expect(delivered).toHaveLength(1);
        expect(checkNotificationAmount(delivered[0]!.event, order.amount)).toMatchObject({ status: 'succeeded' });
      });

      it('does not verify a forged notification: a field changed after signing, or signed with another key', async () => {
        const { order, page } = await openOrder();
        await pressPayerButton(page, 'pay');
        await pair.deliverNotifications(simulator);
        const [genuine] = successfulPaymentNotifications(order);
        expect(genuine).toBeDefined();
        const forgeries = await pair.forgeNotifications(genuine!.notification, { clock });
        expect(Object.keys(forgeries).length).toBeGreaterThanOrEqual(2);
        for (const [name, forged] of Object.entries(forgeries)) {
          const verification = await connector.verifyNotification(forged);
          expect({ name, verified: verification.verified }).toEqual({ name, verified: false });
        }
        // The genuine one still verifies, so the forgeries failed for what was forged.
        expect((await connector.verifyNotification(genuine!.notification)).verified).toBe(true);
      });
    });
  });
}
