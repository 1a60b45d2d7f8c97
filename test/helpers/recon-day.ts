import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PaymentMethod } from '../../src/apps/index.js';
import { checkLedger, getBalanceByCode } from '../../src/ledger/index.js';
import type { PaymentView, RefundView } from '../../src/payments/index.js';
import { addDays, batchReport, beijingDateOf, findBatchFor, listDifferences, reconcileAccountDay, type BatchReport } from '../../src/reconciliation/index.js';
import type { ChannelAccountRow } from '../../src/routing/index.js';
import { startPaymentsHarness, type HarnessChannel, type PaymentsHarness } from './payments-harness.js';

/**
 * Issue 5's test of a channel, the same for every channel: a day of payments
 * and refunds on the channel's simulator, through Fen's merchant API, with
 * each of the simulator's bill faults switched on once; then the day's
 * reconciliation: exactly the expected differences, the safe ones fixed
 * automatically, the books balanced, the day before settled, and a re-run
 * that changes nothing. The clock is a ManualClock; nothing waits.
 *
 * Nothing here names a simulator's fault field or order number: each
 * `recon-<channel>.test.ts` describes its channel (`ReconDayChannel`) and
 * hands it to `describeReconDay`, as the contract tests do with their pairs.
 */

/** A fault as the day's scenario names it, amounts in fen; `simulatorFault` writes it as the channel's simulator takes it. */
export type ReconDayFault =
  | { kind: 'bill_missing_line' }
  | { kind: 'bill_extra_line'; amount: bigint }
  | { kind: 'bill_wrong_amount'; amount: bigint }
  | { kind: 'bill_wrong_status' }
  | { kind: 'bill_wrong_fee'; fee: bigint }
  | { kind: 'bill_next_day' }
  | { kind: 'notification_drop' };

/**
 * What differs between the channels' simulators for the day: the field a
 * switch names its order by and how that order number is made from Fen's
 * payment id, and the names and format of a bill fault's amounts (Alipay's
 * yuan strings, WeChat Pay's numbers of fen, UnionPay's txnAmt strings).
 */
export interface ReconDayChannel {
  channel: HarnessChannel;
  /** The channel's name in the test titles. */
  title: string;
  /** The method every payment of the day is made with. */
  method: PaymentMethod;
  /** The switch's field for the order, and the order number of a Fen payment. */
  order: { field: string; of(paymentId: string): string };
  /** The fields of a bill fault's amount and fee, and how an amount of fen is written in them. */
  amounts: { amountField: string; feeField: string; write(fen: bigint): string | number };
  /** The order number the simulator gives the line it invents for an order nobody placed. */
  inventedOrder: RegExp;
}

/** The channel's own switch for a fault of the scenario. */
function simulatorFault(channel: ReconDayChannel, fault: ReconDayFault): Record<string, unknown> {
  const { amountField, feeField, write } = channel.amounts;
  if (fault.kind === 'bill_extra_line' || fault.kind === 'bill_wrong_amount') return { kind: fault.kind, [amountField]: write(fault.amount) };
  if (fault.kind === 'bill_wrong_fee') return { kind: fault.kind, [feeField]: write(fault.fee) };
  return fault;
}

/**
 * Switches a fault on for the order of one Fen payment or, without one, for
 * every order. The simulators' switch types differ, so the switch is handed
 * over untyped: each simulator parses it with its own schema, and a field a
 * channel description names wrong is refused there, loudly.
 */
async function setChannelFault(harness: PaymentsHarness, channel: ReconDayChannel, paymentId: string | undefined, fault: ReconDayFault): Promise<void> {
  const simulator = harness.simulators[channel.channel] as unknown as { setFault(setting: Record<string, unknown>): Promise<unknown> };
  const target = paymentId === undefined ? {} : { [channel.order.field]: channel.order.of(paymentId) };
  await simulator.setFault({ ...target, fault: simulatorFault(channel, fault) });
}

/** The amounts of the day, in fen; a bill fault's amount differs from the order's on purpose. */
const amounts = {
  nextDay: 3000,
  plain: 1234,
  duplicated: 5000,
  wrongAmount: 2000,
  wrongFee: 5000,
  refunded: 20000,
  refund: 5000,
  closed: 888,
  missed: 4321,
  duplicateLine: 5000n,
  unknownLine: 999n,
  reportedAmount: 9999n,
  reportedFee: 100n,
} as const;

/** A payment of the day through Fen's merchant API, named `recon-<name>` by the merchant. */
export function createPayment(harness: PaymentsHarness, method: PaymentMethod, name: string, amount: number): Promise<PaymentView> {
  return harness.client.request<PaymentView>('POST', '/v1/payments', { out_trade_no: `recon-${name}`, amount, currency: 'CNY', subject: `对账 ${name}`, method });
}

/** The payer presses Pay, and the channel's notification and Fen's webhook go out. */
export async function payerPays(harness: PaymentsHarness, payment: PaymentView): Promise<void> {
  await harness.payerPresses(payment, 'pay');
  await harness.deliverAll();
}

/** The first day after the harness's start: the days of a scenario never lie before it (see describeReconDay). */
export function firstDayAfterStart(harness: PaymentsHarness): string {
  return addDays(beijingDateOf(harness.context.clock.now()), 1);
}

/** A Beijing wall-clock time on a YYYY-MM-DD day. */
export const beijing = (date: string, time: string) => new Date(`${date}T${time}+08:00`);

/**
 * The day's scenario for one channel, as a describe block with its own
 * harness: the day before (one payment twenty seconds before midnight, which
 * the channel books on the day), then the day — a plain payment the bill
 * leaves out, a payment the bill lists twice under two trade numbers, an
 * unknown order's line, a wrong amount, a wrong fee, an order closed unpaid
 * that the bill lists as paid, a payment whose notification was lost, and a
 * partial refund — reconciled on the morning after.
 */
export function describeReconDay(channel: ReconDayChannel): void {
  let harness: PaymentsHarness;
  let account: ChannelAccountRow;
  const orders: Record<string, PaymentView> = {};
  let dayBefore: string;
  let day: string;

  const setFault = (name: string | undefined, fault: ReconDayFault) => setChannelFault(harness, channel, name === undefined ? undefined : orders[name]!.id, fault);

  async function create(name: string, amount: number): Promise<PaymentView> {
    const created = await createPayment(harness, channel.method, name, amount);
    orders[name] = created;
    return created;
  }

  async function pay(name: string, amount: number): Promise<PaymentView> {
    const created = await create(name, amount);
    await payerPays(harness, created);
    return created;
  }

  async function status(name: string): Promise<string> {
    return (await harness.client.request<PaymentView>('GET', `/v1/payments/${orders[name]!.id}`)).status;
  }

  /**
   * An order the payer cancels and the merchant then closes through Fen: on
   * some channels Cancel closes the order, on others it stays open (WeChat
   * Pay) or fails without a word to Fen (UnionPay), so the close makes every
   * channel end the same way.
   */
  async function closeUnpaid(name: string, amount: number): Promise<void> {
    const created = await create(name, amount);
    await harness.payerPresses(created, 'cancel');
    await harness.deliverAll();
    if ((await status(name)) !== 'closed') await harness.client.request<PaymentView>('POST', `/v1/payments/${created.id}/close`);
    expect(await status(name)).toBe('closed');
  }

  async function entryCount(): Promise<number> {
    const rows = await sql<{ n: string }>`SELECT count(*)::text AS n FROM journal_entries`.execute(harness.context.db);
    return Number(rows.rows[0]!.n);
  }

  const differencesOf = (report: BatchReport) => listDifferences(harness.context.db, { batchId: report.batch_id, limit: 100 });

  beforeAll(async () => {
    harness = await startPaymentsHarness({ channels: [channel.channel] });
    account = harness.accounts[channel.channel]!;
    const { clock } = harness.context;
    // The days come after the harness's start, never before it: the UnionPay simulator's certificates
    // are valid from the day before it started, so a clock moved further back makes every request fail.
    dayBefore = firstDayAfterStart(harness);
    day = addDays(dayBefore, 1);
    clock.set(beijing(dayBefore, '23:59:40'));
    // Paid twenty seconds before midnight; the channel books it on the next day.
    await pay('next-day', amounts.nextDay);
    await setFault('next-day', { kind: 'bill_next_day' });
    clock.set(beijing(day, '09:00:00'));
    await pay('plain', amounts.plain);
    await pay('duplicated', amounts.duplicated);
    await pay('wrong-amount', amounts.wrongAmount);
    await pay('wrong-fee', amounts.wrongFee);
    await pay('refunded', amounts.refunded);
    await closeUnpaid('closed', amounts.closed);
    // The notification of this one never arrives: Fen still thinks it is being paid.
    const missed = await create('missed', amounts.missed);
    await setFault('missed', { kind: 'notification_drop' });
    await payerPays(harness, missed);
    clock.set(beijing(day, '10:00:00'));
    const refund = await harness.client.request<RefundView>('POST', `/v1/payments/${orders.refunded!.id}/refunds`, { amount: amounts.refund, out_refund_no: 'recon-refund-1' });
    // Some channels refund at once, others later with a notification: one delivery pass settles both.
    await harness.deliverAll();
    expect((await harness.client.request<RefundView>('GET', `/v1/refunds/${refund.id}`)).status).toBe('succeeded');
    clock.set(beijing(addDays(day, 1), '10:00:00'));
  });

  /** The faults of the day's bill; an extra line goes into every bill built while it is on, so they are set after the day before was reconciled. */
  async function setDayFaults(): Promise<void> {
    await setFault('plain', { kind: 'bill_missing_line' });
    await setFault('duplicated', { kind: 'bill_extra_line', amount: amounts.duplicateLine });
    await setFault(undefined, { kind: 'bill_extra_line', amount: amounts.unknownLine });
    await setFault('wrong-amount', { kind: 'bill_wrong_amount', amount: amounts.reportedAmount });
    await setFault('closed', { kind: 'bill_wrong_status' });
    await setFault('wrong-fee', { kind: 'bill_wrong_fee', fee: amounts.reportedFee });
  }

  afterAll(async () => harness?.close());

  describe(`reconciling a day of ${channel.title} business with every bill fault`, () => {
    let first: BatchReport;

    it('holds the record paid before midnight that the channel books the next day', async () => {
      expect(await status('missed')).toBe('paying');
      const before = await reconcileAccountDay(harness.context, account.id, dayBefore);
      expect(before).toMatchObject({ lines_channel: 0, lines_local: 1, matched: 0, held: 1, status: 'holding', open_differences: 0 });
    });

    it('finds exactly the expected differences and fixes the safe ones', async () => {
      await setDayFaults();
      first = await reconcileAccountDay(harness.context, account.id, day);
      expect(first.differences).toEqual({ missing_local: 2, missing_channel: 1, amount_mismatch: 1, status_mismatch: 2, fee_mismatch: 1 });
      expect(first).toMatchObject({ lines_channel: 10, held: 0, internal_differences: 0, status: 'differences', open_differences: 4 });
      expect(first.fund_flow).toMatchObject({ drift: 0n, differences: 0 });
      const differences = await differencesOf(first);
      const summary = differences.map((item) => `${item.kind}:${(item.payment_id ?? item.out_trade_no ?? '').replace(channel.inventedOrder, 'invented')}:${item.status}:${item.resolution ?? ''}`).sort();
      expect(summary).toEqual(
        [
          `amount_mismatch:${orders['wrong-amount']!.id}:open:`,
          `fee_mismatch:${orders['wrong-fee']!.id}:open:`,
          `missing_channel:${orders.plain!.id}:open:`,
          `missing_local:${orders.duplicated!.id}:resolved:exception_refund`,
          'missing_local:invented:resolved:suspense',
          `status_mismatch:${orders.closed!.id}:open:`,
          `status_mismatch:${orders.missed!.id}:resolved:notification_applied`,
        ].sort(),
      );
      expect(await status('missed')).toBe('succeeded');
      expect(await status('closed')).toBe('closed');
      const exceptions = await harness.context.db.selectFrom('payment_exceptions').selectAll().where('payment_id', '=', orders.duplicated!.id).execute();
      expect(exceptions).toMatchObject([{ kind: 'duplicate_payment', amount: amounts.duplicateLine }]);
      expect((await getBalanceByCode(harness.context.db, 'suspense', 'CNY'))?.balance).toBe(-(amounts.duplicateLine + amounts.unknownLine));
      expect((await checkLedger(harness.context.db)).problems).toEqual([]);
    });

    it('settles the held record of the day before, which the day’s bill listed', async () => {
      const batch = await findBatchFor(harness.context.db, account.id, dayBefore);
      const before = await batchReport(harness.context.db, batch!);
      expect(before).toMatchObject({ held: 0, status: 'balanced', open_differences: 0 });
    });

    it('changes nothing when run again', async () => {
      const entries = await entryCount();
      const differences = (await differencesOf(first)).map((item) => [item.id, item.status]);
      const again = await reconcileAccountDay(harness.context, account.id, day);
      // The applied notification made one more of the day's payments succeed; nothing else may move.
      expect({ ...again, lines_local: first.lines_local + 1 }).toEqual({ ...first, lines_local: again.lines_local });
      expect(await entryCount()).toBe(entries);
      expect((await differencesOf(again)).map((item) => [item.id, item.status])).toEqual(differences);
      expect((await checkLedger(harness.context.db)).ok).toBe(true);
    });
  });
}
