import { FenApiError, type FenClient } from '../../../sdk/index.js';
import { accountCodes, getBalanceByCode } from '../../../src/ledger/index.js';
import { paymentView, type PaymentView, type RefundView } from '../../../src/payments/index.js';
import { runQueuedJobs } from '../../helpers/jobs.js';
import { signedClient } from '../../helpers/merchant-api.js';
import type { PaymentsHarness } from '../../helpers/payments-harness.js';
import type { ExpectedAnswer, ModelBalances, NotificationFault } from './reference-model.js';

/**
 * Drives real Fen (and the Alipay simulator, over HTTP) through the model's
 * steps, the way the merchant, the payer and the clock would, and reads back
 * what Fen then shows: each payment as the merchant API shows it, its
 * exceptions, and the ledger balances through getBalanceByCode. Background work runs only
 * when a step says so (no worker runs), and time moves only by the test clock.
 */
export interface Snapshot {
  payments: Array<{ id: string; status: string; fee_amount: number; refunded_amount: number; refund_state: string }>;
  exceptions: Array<{ payment_id: string; kind: string; amount: string; status: string }>;
  balances: Record<keyof ModelBalances, string>;
}

export class FenDriver {
  readonly client: FenClient;
  private readonly views = new Map<string, PaymentView>();
  private baseline: ModelBalances = { merchantPending: 0n, feeIncome: 0n, suspense: 0n, channelClearing: 0n };

  constructor(private readonly harness: PaymentsHarness) {
    // The SDK, signing every request, through app.inject: the merchant's view without a TCP round trip per read.
    this.client = signedClient(harness.app, harness.context, { appId: harness.merchantApp.id, appSecret: harness.merchantApp.app_secret });
  }

  private async balance(code: string): Promise<bigint> {
    return (await getBalanceByCode(this.harness.context.db, code, 'CNY'))?.normalBalance ?? 0n;
  }

  async balances(): Promise<ModelBalances> {
    return {
      merchantPending: await this.balance(accountCodes.merchantPending(this.harness.merchantApp.merchant_id)),
      feeIncome: await this.balance(accountCodes.platformFeeIncome()),
      suspense: await this.balance(accountCodes.suspense()),
      channelClearing: await this.balance(accountCodes.channelClearing(this.harness.account.id)),
    };
  }

  /** Balances are compared as movements since the run began: earlier runs share the books. */
  async startRun(): Promise<void> {
    this.baseline = await this.balances();
  }

  async create(outTradeNo: string, amount: number, expiresInSeconds: number): Promise<PaymentView> {
    const payment = await this.client.request<PaymentView>('POST', '/v1/payments', { out_trade_no: outTradeNo, amount, currency: 'CNY', subject: 'Model test', method: 'alipay_qr', expires_in: expiresInSeconds });
    this.views.set(payment.id, payment);
    return payment;
  }

  /** The payer scans and presses Pay, with the channel told first to lose or repeat the notification; false when the page offers no Pay. */
  async pay(paymentId: string, fault: NotificationFault, copies: number): Promise<boolean> {
    const view = this.views.get(paymentId);
    if (!view) throw new Error(`no view of ${paymentId}`);
    if (fault === 'drop') await this.harness.simulator.setFault({ outTradeNo: paymentId, fault: { kind: 'notification_drop' } });
    if (fault === 'duplicate') await this.harness.simulator.setFault({ outTradeNo: paymentId, fault: { kind: 'notification_duplicate', copies } });
    let paid = true;
    try {
      await this.harness.payerPresses(view, 'pay');
    } catch (error) {
      if (!/no pay button/i.test((error as Error).message)) throw error;
      paid = false;
    }
    await this.harness.deliverAll();
    return paid;
  }

  private async answer(call: () => Promise<{ status: number; data: PaymentView | RefundView }>): Promise<ExpectedAnswer> {
    try {
      const response = await call();
      return response.data.object === 'payment' ? { status: response.status, paymentStatus: response.data.status as ExpectedAnswer['paymentStatus'] } : { status: response.status };
    } catch (error) {
      if (error instanceof FenApiError) return { status: error.status, code: error.code };
      throw error;
    }
  }

  async close(paymentId: string): Promise<ExpectedAnswer> {
    return this.answer(() => this.client.requestWithResponse<PaymentView>('POST', `/v1/payments/${paymentId}/close`));
  }

  async refund(paymentId: string, amount: bigint, outRefundNo: string): Promise<ExpectedAnswer & { refundStatus?: string }> {
    try {
      const response = await this.client.requestWithResponse<RefundView>('POST', `/v1/payments/${paymentId}/refunds`, { amount: Number(amount), out_refund_no: outRefundNo });
      return { status: response.status, refundStatus: response.data.status };
    } catch (error) {
      if (error instanceof FenApiError) return { status: error.status, code: error.code };
      throw error;
    }
  }

  async expire(advanceSeconds: number): Promise<void> {
    this.harness.context.clock.advanceSeconds(advanceSeconds);
    await runQueuedJobs(this.harness.context, { tasks: ['payments.expire'] });
  }

  async sweep(advanceSeconds: number): Promise<void> {
    this.harness.context.clock.advanceSeconds(advanceSeconds);
    await this.harness.sweep();
  }

  async runJobs(): Promise<void> {
    await runQueuedJobs(this.harness.context);
  }

  async snapshot(paymentIds: readonly string[]): Promise<Snapshot> {
    // The rows through paymentView, the very function GET /v1/payments/{id} answers with: one query instead of one request per payment.
    const found = paymentIds.length === 0 ? [] : await this.harness.context.db.selectFrom('payments').selectAll().where('id', 'in', [...paymentIds]).execute();
    const byId = new Map(found.map((row) => [row.id, paymentView(row, this.harness.context.config.publicUrl)]));
    const payments = paymentIds.map((id) => {
      const view = byId.get(id);
      return view ? { id, status: view.status, fee_amount: view.fee_amount, refunded_amount: view.refunded_amount, refund_state: view.refund_state } : { id, status: 'missing', fee_amount: 0, refunded_amount: 0, refund_state: 'none' };
    });
    const rows =
      paymentIds.length === 0
        ? []
        : await this.harness.context.db.selectFrom('payment_exceptions').select(['payment_id', 'kind', 'amount', 'status']).where('payment_id', 'in', [...paymentIds]).orderBy('created_at').orderBy('id').execute();
    const now = await this.balances();
    const moved = (key: keyof ModelBalances) => String(now[key] - this.baseline[key]);
    return {
      payments,
      exceptions: rows.map((row) => ({ payment_id: row.payment_id, kind: row.kind, amount: String(row.amount), status: row.status })),
      balances: { merchantPending: moved('merchantPending'), feeIncome: moved('feeIncome'), suspense: moved('suspense'), channelClearing: moved('channelClearing') },
    };
  }
}
