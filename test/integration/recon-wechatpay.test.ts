import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkLedger } from '../../src/ledger/index.js';
import type { BillLine } from '../../src/channels/index.js';
import type { RefundView } from '../../src/payments/index.js';
import { addDays, reconcileAccountDay } from '../../src/reconciliation/index.js';
import { connectorFor } from '../../src/routing/index.js';
import { startPaymentsHarness, type PaymentsHarness } from '../helpers/payments-harness.js';
import { beijing, createPayment, describeReconDay, firstDayAfterStart, payerPays } from '../helpers/recon-day.js';

/**
 * Issue 5's day of business on the WeChat Pay simulator (test/helpers/recon-day.ts).
 * WeChat Pay's switches name the order by out_trade_no, which is Fen's
 * payment id, and write amounts as numbers of fen, as WeChat Pay's API does.
 */
describeReconDay({
  channel: 'wechatpay',
  title: 'WeChat Pay',
  method: 'wechat_native',
  order: { field: 'outTradeNo', of: (paymentId) => paymentId },
  amounts: { amountField: 'amountFen', feeField: 'feeFen', write: (fen) => Number(fen) },
  inventedOrder: /^sim_extra_\d+$/,
});

/**
 * WeChat Pay's ALL bill also lists refunds that paid nothing back: closed ones
 * (退款状态 CLOSED) and abnormal ones (ABNORMAL: the card could not take the
 * money, which waits at WeChat Pay until the merchant settles it by hand, so
 * the refund is not over). Fen books a refund only once it has succeeded, so
 * neither may count in the channel's net for the day.
 */
describe('reconciling a day of WeChat Pay refunds that did not go through', () => {
  let harness: PaymentsHarness;
  let day: string;

  async function refundEndingAs(status: 'CLOSED' | 'ABNORMAL', amount: number, refunded: number): Promise<RefundView> {
    const payment = await createPayment(harness, 'wechat_native', `refund-${status}`, amount);
    await payerPays(harness, payment);
    await harness.simulators.wechatpay!.setFault({ outTradeNo: payment.id, fault: { kind: 'refund_outcome', status } });
    const refund = await harness.client.request<RefundView>('POST', `/v1/payments/${payment.id}/refunds`, { amount: refunded, out_refund_no: `recon-refund-${status}` });
    await harness.deliverAll();
    return harness.client.request<RefundView>('GET', `/v1/refunds/${refund.id}`);
  }

  beforeAll(async () => {
    harness = await startPaymentsHarness({ channels: ['wechatpay'] });
    const { clock } = harness.context;
    day = firstDayAfterStart(harness);
    clock.set(beijing(day, '09:00:00'));
    expect((await refundEndingAs('CLOSED', 2000, 500)).status).toBe('failed');
    // ABNORMAL is not a final state: Fen keeps the refund open, as the connector reads it.
    expect((await refundEndingAs('ABNORMAL', 3000, 1000)).status).toBe('processing');
    clock.set(beijing(addDays(day, 1), '10:00:00'));
  });

  afterAll(async () => harness?.close());

  /** The two payments less their fees (0.6%), and nothing for the refunds. */
  const net = 2000n + 3000n - 12n - 18n;

  it('reads both refunds from the bill with their own status, and counts neither in the day’s net', async () => {
    const result = await connectorFor(harness.context, harness.accounts.wechatpay!).downloadBill!({ billDate: day });
    if (result.status !== 'ready') throw new Error(`no bill: ${JSON.stringify(result)}`);
    const lines: BillLine[] = [];
    const reading = result.bill.lines();
    let step = await reading.next();
    for (; !step.done; step = await reading.next()) lines.push(...step.value);
    await result.bill.discard();
    const refunds = lines.filter((line) => line.kind === 'refund').sort((left, right) => Number(left.amount.amount - right.amount.amount));
    expect(refunds.map((line) => [line.amount.amount, line.status])).toEqual([
      [500n, 'failed'],
      [1000n, 'pending'],
    ]);
    expect(step.value).toMatchObject({ lineCount: 4, refunds: { count: 0 }, netAmount: { amount: net } });
  });

  // A bill line naming a Fen refund that had not succeeded once stopped the run: the matching's
  // look-up inserted a NULL expected fee (refundFeeExpected in src/reconciliation/matching.ts).
  it('reconciles them with no difference and no fund-flow drift', async () => {
    const report = await reconcileAccountDay(harness.context, harness.accounts.wechatpay!.id, day);
    expect(report).toMatchObject({ lines_channel: 4, lines_local: 2, matched: 4, internal_differences: 0, open_differences: 0, status: 'balanced' });
    expect(report.differences).toEqual({ missing_local: 0, missing_channel: 0, amount_mismatch: 0, status_mismatch: 0, fee_mismatch: 0 });
    expect(report.fund_flow).toEqual({ channel_net: net, ledger_net: net, drift: 0n, differences: 0 });
    expect((await checkLedger(harness.context.db)).problems).toEqual([]);
  });
});
