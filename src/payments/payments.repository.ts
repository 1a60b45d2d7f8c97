import type { Selectable } from 'kysely';
import type { DbExecutor, PaymentsTable, RefundsTable } from '../platform/db/index.js';
import { minorToJsonNumber, type Currency } from '../platform/money.js';
import { refundState } from './payment-state.js';

export type PaymentRow = Selectable<PaymentsTable>;
export type RefundRow = Selectable<RefundsTable>;

export async function findPayment(executor: DbExecutor, id: string, options: { forUpdate?: boolean } = {}): Promise<PaymentRow | undefined> {
  let query = executor.selectFrom('payments').selectAll().where('id', '=', id);
  if (options.forUpdate) query = query.forUpdate();
  return query.executeTakeFirst();
}

export async function findRefund(executor: DbExecutor, id: string): Promise<RefundRow | undefined> {
  return executor.selectFrom('refunds').selectAll().where('id', '=', id).executeTakeFirst();
}

export function currencyOf(row: { currency: string }): Currency {
  return row.currency as Currency;
}

/** The payment as the merchant API shows it; amounts are JSON integers in minor units. */
export function paymentView(row: PaymentRow, publicUrl: string) {
  return {
    id: row.id,
    object: 'payment' as const,
    status: row.status,
    amount: minorToJsonNumber(row.amount),
    currency: row.currency,
    out_trade_no: row.out_trade_no,
    subject: row.subject,
    method: row.method,
    channel: row.channel,
    channel_trade_no: row.channel_trade_no,
    qr_code: row.qr_code,
    pay_url: row.pay_url,
    cashier_url: `${publicUrl}/pay/${row.id}`,
    fee_amount: minorToJsonNumber(row.fee_amount),
    refunded_amount: minorToJsonNumber(row.refunded_amount),
    refund_state: refundState({ amount: row.amount, refunded: row.refunded_amount }),
    metadata: (row.metadata ?? null) as Record<string, unknown> | null,
    failure: row.failure_code ? { code: row.failure_code, message: row.failure_message ?? '' } : null,
    expires_at: row.expires_at.toISOString(),
    paid_at: row.paid_at?.toISOString() ?? null,
    closed_at: row.closed_at?.toISOString() ?? null,
    created_at: row.created_at.toISOString(),
  };
}

export type PaymentView = ReturnType<typeof paymentView>;

export function refundView(row: RefundRow) {
  return {
    id: row.id,
    object: 'refund' as const,
    payment_id: row.payment_id,
    status: row.status,
    amount: minorToJsonNumber(row.amount),
    currency: row.currency,
    out_refund_no: row.out_refund_no,
    reason: row.reason,
    channel_refund_no: row.channel_refund_no,
    failure: row.failure_code ? { code: row.failure_code, message: row.failure_message ?? '' } : null,
    created_at: row.created_at.toISOString(),
    succeeded_at: row.succeeded_at?.toISOString() ?? null,
  };
}

export type RefundView = ReturnType<typeof refundView>;
