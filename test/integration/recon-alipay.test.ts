import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkLedger, getBalanceByCode } from '../../src/ledger/index.js';
import type { PaymentView, RefundView } from '../../src/payments/index.js';
import { batchReport, findBatchFor, listDifferences, reconcileAccountDay, type BatchReport } from '../../src/reconciliation/index.js';
import { startPaymentsHarness, type PaymentsHarness } from '../helpers/payments-harness.js';

/**
 * A day of payments and refunds on the Alipay simulator, through Fen's
 * merchant API, with each of the simulator's bill faults switched on once;
 * then the day's reconciliation: exactly the expected differences, the safe
 * ones fixed automatically, the books balanced, and a re-run that changes
 * nothing. The clock is a ManualClock; nothing waits.
 */
const beijing = (text: string) => new Date(`${text}+08:00`);
const day = '2026-01-14';
const dayBefore = '2026-01-13';

let harness: PaymentsHarness;
const orders: Record<string, PaymentView> = {};

async function pay(name: string, amount: number, button: 'pay' | 'cancel' = 'pay'): Promise<PaymentView> {
  const created = await harness.client.request<PaymentView>('POST', '/v1/payments', { out_trade_no: `recon-${name}`, amount, currency: 'CNY', subject: `对账 ${name}`, method: 'alipay_qr' });
  await harness.payerPresses(created, button);
  await harness.deliverAll();
  orders[name] = created;
  return created;
}

async function status(name: string): Promise<string> {
  return (await harness.client.request<PaymentView>('GET', `/v1/payments/${orders[name]!.id}`)).status;
}

async function entryCount(): Promise<number> {
  const rows = await sql<{ n: string }>`SELECT count(*)::text AS n FROM journal_entries`.execute(harness.context.db);
  return Number(rows.rows[0]!.n);
}

async function differencesOf(report: BatchReport) {
  return listDifferences(harness.context.db, { batchId: report.batch_id, limit: 100 });
}

beforeAll(async () => {
  harness = await startPaymentsHarness();
  const { clock } = harness.context;
  clock.set(beijing('2026-01-13T23:59:40'));
  // Paid ten seconds before midnight; the channel books it on the next day.
  const nextDay = await pay('next-day', 3000);
  await harness.simulator.setFault({ outTradeNo: nextDay.id, fault: { kind: 'bill_next_day' } });
  clock.set(beijing('2026-01-14T09:00:00'));
  await pay('plain', 1234);
  await pay('duplicated', 5000);
  await pay('wrong-amount', 2000);
  await pay('wrong-fee', 5000);
  await pay('refunded', 20000);
  await pay('closed', 888, 'cancel');
  // The notification of this one never arrives: Fen still thinks it is being paid.
  const created = await harness.client.request<PaymentView>('POST', '/v1/payments', { out_trade_no: 'recon-missed', amount: 4321, currency: 'CNY', subject: 'missed', method: 'alipay_qr' });
  orders.missed = created;
  await harness.simulator.setFault({ outTradeNo: created.id, fault: { kind: 'notification_drop' } });
  await harness.payerPresses(created, 'pay');
  await harness.deliverAll();
  clock.set(beijing('2026-01-14T10:00:00'));
  const refund = await harness.client.request<RefundView>('POST', `/v1/payments/${orders.refunded!.id}/refunds`, { amount: 5000, out_refund_no: 'recon-refund-1' });
  expect(refund.status).toBe('succeeded');
  clock.set(beijing('2026-01-15T10:00:00'));
});

/** The faults of the day's bill; an extra line goes into every bill built while it is on, so they are set after the day before was reconciled. */
async function setDayFaults(): Promise<void> {
  await harness.simulator.setFault({ outTradeNo: orders.plain!.id, fault: { kind: 'bill_missing_line' } });
  await harness.simulator.setFault({ outTradeNo: orders.duplicated!.id, fault: { kind: 'bill_extra_line', totalAmount: '50.00' } });
  await harness.simulator.setFault({ fault: { kind: 'bill_extra_line', totalAmount: '9.99' } });
  await harness.simulator.setFault({ outTradeNo: orders['wrong-amount']!.id, fault: { kind: 'bill_wrong_amount', totalAmount: '99.99' } });
  await harness.simulator.setFault({ outTradeNo: orders.closed!.id, fault: { kind: 'bill_wrong_status' } });
  await harness.simulator.setFault({ outTradeNo: orders['wrong-fee']!.id, fault: { kind: 'bill_wrong_fee', serviceFee: '1.00' } });
}

afterAll(async () => harness?.close());

describe('reconciling a day of Alipay business with every bill fault', () => {
  let first: BatchReport;

  it('holds the record paid before midnight that the channel books the next day', async () => {
    expect(await status('missed')).toBe('paying');
    const before = await reconcileAccountDay(harness.context, harness.account.id, dayBefore);
    expect(before).toMatchObject({ lines_channel: 0, lines_local: 1, matched: 0, held: 1, status: 'holding', open_differences: 0 });
  });

  it('finds exactly the expected differences and fixes the safe ones', async () => {
    await setDayFaults();
    first = await reconcileAccountDay(harness.context, harness.account.id, day);
    expect(first.differences).toEqual({ missing_local: 2, missing_channel: 1, amount_mismatch: 1, status_mismatch: 2, fee_mismatch: 1 });
    expect(first).toMatchObject({ lines_channel: 10, held: 0, internal_differences: 0, status: 'differences', open_differences: 4 });
    expect(first.fund_flow).toMatchObject({ drift: 0n, differences: 0 });
    const differences = await differencesOf(first);
    const summary = differences.map((item) => `${item.kind}:${(item.payment_id ?? item.out_trade_no ?? '').replace(/^sim_extra_\d+$/, 'sim_extra_N')}:${item.status}:${item.resolution ?? ''}`).sort();
    expect(summary).toEqual(
      [
        `amount_mismatch:${orders['wrong-amount']!.id}:open:`,
        `fee_mismatch:${orders['wrong-fee']!.id}:open:`,
        `missing_channel:${orders.plain!.id}:open:`,
        `missing_local:${orders.duplicated!.id}:resolved:exception_refund`,
        'missing_local:sim_extra_N:resolved:suspense',
        `status_mismatch:${orders.closed!.id}:open:`,
        `status_mismatch:${orders.missed!.id}:resolved:notification_applied`,
      ].sort(),
    );
    expect(await status('missed')).toBe('succeeded');
    expect(await status('closed')).toBe('closed');
    const exceptions = await harness.context.db.selectFrom('payment_exceptions').selectAll().where('payment_id', '=', orders.duplicated!.id).execute();
    expect(exceptions).toMatchObject([{ kind: 'duplicate_payment', amount: 5000n }]);
    expect((await getBalanceByCode(harness.context.db, 'suspense', 'CNY'))?.balance).toBe(-(5000n + 999n));
    expect((await checkLedger(harness.context.db)).problems).toEqual([]);
  });

  it('settles the held record of the day before, which the day’s bill listed', async () => {
    const batch = await findBatchFor(harness.context.db, harness.account.id, dayBefore);
    const before = await batchReport(harness.context.db, batch!);
    expect(before).toMatchObject({ held: 0, status: 'balanced', open_differences: 0 });
  });

  it('changes nothing when run again', async () => {
    const entries = await entryCount();
    const differences = (await differencesOf(first)).map((item) => [item.id, item.status]);
    const again = await reconcileAccountDay(harness.context, harness.account.id, day);
    // The applied notification made one more of the day's payments succeed; nothing else may move.
    expect({ ...again, lines_local: first.lines_local + 1 }).toEqual({ ...first, lines_local: again.lines_local });
    expect(await entryCount()).toBe(entries);
    expect((await differencesOf(again)).map((item) => [item.id, item.status])).toEqual(differences);
    expect((await checkLedger(harness.context.db)).ok).toBe(true);
  });
});
