import { getApp } from '../apps/index.js';
import { getMerchant } from '../merchants/index.js';
import { findPayment, type PaymentRow } from '../payments/index.js';
import type { PlatformContext } from '../platform/context.js';
import { isId } from '../platform/ids.js';
import type { Currency } from '../platform/money.js';
import { chooseChannelAccount } from '../routing/index.js';
import type { CashierState, CashierView, PayerStep } from './cashier.page.js';
import type { CashierStatus } from './cashier.schemas.js';
import { cashierMethods, type CashierMethod, type Language } from './i18n.js';

/**
 * What the cashier knows about a payment, read through the owning modules'
 * public surfaces, and the pure mapping from those facts to the page's view
 * model. Nothing here writes.
 */

export type CashierPayment = Pick<
  PaymentRow,
  'id' | 'app_id' | 'merchant_id' | 'status' | 'amount' | 'currency' | 'subject' | 'method' | 'channel_account_id' | 'qr_code' | 'pay_url' | 'payer_action' | 'return_url' | 'failure_code' | 'expires_at' | 'paid_at'
>;

export interface CashierFacts {
  payment: CashierPayment;
  merchantName: string;
  /** The methods the payer may choose, when the payment still waits for a choice. */
  availableMethods: CashierMethod[];
}

/** The payment behind a cashier URL, or undefined for anything that is not a known payment id. */
export async function findCashierPayment(context: PlatformContext, id: string): Promise<PaymentRow | undefined> {
  if (!isId('payment', id)) return undefined;
  return findPayment(context.db, id);
}

/** A `cashier` payment still waits for the payer to pick a method until one is claimed. */
export function awaitsMethodChoice(payment: Pick<CashierPayment, 'method' | 'status' | 'channel_account_id'>): boolean {
  return payment.method === 'cashier' && payment.status === 'created' && payment.channel_account_id === null;
}

export function isExpired(payment: Pick<CashierPayment, 'expires_at'>, now: Date): boolean {
  return payment.expires_at.getTime() <= now.getTime();
}

/**
 * The methods worth a button: enabled for the app, offered by the cashier (not
 * `cashier` itself, nor methods that need the payer's in-app identity), with a
 * channel account that would take the payment, and only while the app and its
 * merchant may take payments at all.
 */
export async function availableMethodsFor(context: PlatformContext, payment: Pick<CashierPayment, 'app_id' | 'merchant_id'>): Promise<CashierMethod[]> {
  const app = await getApp(context, payment.app_id);
  const merchant = await getMerchant(context, payment.merchant_id);
  if (app.status !== 'active' || merchant.status !== 'active') return [];
  const enabled = cashierMethods.filter((method) => app.enabled_methods.includes(method));
  const routable = await Promise.all(enabled.map(async (method) => (await chooseChannelAccount(context, { appId: app.id, merchantId: merchant.id, method })) !== undefined));
  return enabled.filter((_method, index) => routable[index]);
}

export async function loadCashierFacts(context: PlatformContext, payment: PaymentRow): Promise<CashierFacts> {
  const merchant = await getMerchant(context, payment.merchant_id);
  const choosing = awaitsMethodChoice(payment) && !isExpired(payment, context.clock.now());
  return {
    payment,
    merchantName: merchant.short_name || merchant.name,
    availableMethods: choosing ? await availableMethodsFor(context, payment) : [],
  };
}

/** The outcome the payer sees; a payment closed by its expiry reads as expired. */
export function cashierStateOf(payment: Pick<CashierPayment, 'status' | 'failure_code' | 'expires_at'>, now: Date): CashierState {
  switch (payment.status) {
    case 'succeeded':
      return 'paid';
    case 'failed':
      return 'failed';
    case 'closed':
      return payment.failure_code === 'expired' ? 'expired' : 'closed';
    case 'created':
    case 'paying':
      return isExpired(payment, now) ? 'expired' : 'open';
  }
}

/** A channel form the payments module kept (UnionPay gateway payments), or undefined. */
function storedForm(payerAction: unknown): { actionUrl: string; fields: Record<string, string> } | undefined {
  if (typeof payerAction !== 'object' || payerAction === null) return undefined;
  const action = payerAction as { kind?: unknown; actionUrl?: unknown; fields?: unknown };
  if (action.kind !== 'form' || typeof action.actionUrl !== 'string' || typeof action.fields !== 'object' || action.fields === null) return undefined;
  return { actionUrl: action.actionUrl, fields: action.fields as Record<string, string> };
}

/** What the payer does next, from what the channel gave back. */
export function payerStepOf(facts: CashierFacts): PayerStep {
  const payment = facts.payment;
  if (payment.qr_code) return { kind: 'qr_code', method: payment.method, qrCode: payment.qr_code };
  if (payment.pay_url) return { kind: 'redirect', method: payment.method, payUrl: payment.pay_url };
  const form = storedForm(payment.payer_action);
  if (form) return { kind: 'form', method: payment.method, actionUrl: form.actionUrl, fields: Object.entries(form.fields).map(([name, value]) => ({ name, value: String(value) })) };
  if (awaitsMethodChoice(payment)) return { kind: 'choose', methods: facts.availableMethods };
  return { kind: 'waiting' };
}

export function cashierViewOf(facts: CashierFacts, options: { now: Date; language: Language; nonce: string }): CashierView {
  const payment = facts.payment;
  return {
    language: options.language,
    nonce: options.nonce,
    paymentId: payment.id,
    merchantName: facts.merchantName,
    subject: payment.subject,
    amount: payment.amount,
    currency: payment.currency as Currency,
    state: cashierStateOf(payment, options.now),
    remainingSeconds: Math.max(0, Math.ceil((payment.expires_at.getTime() - options.now.getTime()) / 1000)),
    returnUrl: payment.return_url,
    step: payerStepOf(facts),
  };
}

export function cashierStatusOf(payment: Pick<CashierPayment, 'status' | 'paid_at' | 'expires_at'>): CashierStatus {
  return { status: payment.status, paid_at: payment.paid_at?.toISOString() ?? null, expires_at: payment.expires_at.toISOString() };
}
