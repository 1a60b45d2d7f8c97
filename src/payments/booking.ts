import { accountSpecs, ensureAccount, postEntry, type AccountSpec, type PostingInput } from '../ledger/index.js';
import { assert } from '../platform/assert.js';
import type { PlatformContext } from '../platform/context.js';
import type { DbTransaction } from '../platform/db/index.js';
import type { Currency } from '../platform/money.js';

/**
 * The books for payments (DESIGN.md §3). Funds through a shared account:
 * the channel owes the platform the amount, the merchant is owed the amount less
 * the fee, the platform earns the fee. Through a merchant's own account the
 * money never passes the platform: only the fee the merchant owes is booked.
 * Every entry has a dedupe key, so a payment is never booked twice.
 */
const feeReceivable = (merchantId: string, currency: Currency): AccountSpec => ({
  code: `merchant_fee_receivable:${merchantId}`,
  currency,
  type: 'asset',
  merchantId,
  slotCount: 1,
  noOverdraft: false,
});

/**
 * Account ids are resolved outside the booking transaction and cached: accounts
 * are never deleted or changed, and resolving them outside means a rolled-back
 * transaction can never leave an id in the cache that does not exist.
 */
const accountIds = new Map<string, string>();

async function accountId(context: PlatformContext, spec: AccountSpec): Promise<string> {
  const key = `${context.databaseUrl}|${spec.code}|${spec.currency}`;
  const cached = accountIds.get(key);
  if (cached) return cached;
  const account = await ensureAccount(context.db, context.clock, spec);
  accountIds.set(key, account.id);
  return account.id;
}

export interface BookingAccounts {
  channelClearing: string;
  merchantPending: string;
  feeIncome: string;
  feeReceivable: string;
  suspense: string;
}

export async function resolveBookingAccounts(
  context: PlatformContext,
  options: { merchantId: string; channelAccountId: string; currency: Currency },
): Promise<BookingAccounts> {
  const { merchantId, channelAccountId, currency } = options;
  return {
    channelClearing: await accountId(context, accountSpecs.channelClearing(channelAccountId, currency)),
    merchantPending: await accountId(context, accountSpecs.merchantPending(merchantId, currency)),
    feeIncome: await accountId(context, accountSpecs.platformFeeIncome(currency)),
    feeReceivable: await accountId(context, feeReceivable(merchantId, currency)),
    suspense: await accountId(context, accountSpecs.suspense(currency)),
  };
}

interface EntrySpec {
  dedupeKey: string;
  kind: string;
  referenceType: string;
  referenceId: string;
  merchantId: string;
  currency: Currency;
  /** Signed amounts per account, debits positive; zero amounts are dropped. */
  movements: Array<[string, bigint]>;
}

async function post(trx: DbTransaction, context: PlatformContext, entry: EntrySpec): Promise<void> {
  const postings: PostingInput[] = entry.movements
    .filter(([, amount]) => amount !== 0n)
    .map(([account, amount]) => ({ accountId: account, amount, currency: entry.currency }));
  if (postings.length === 0) return;
  const result = await postEntry(trx, context.clock, {
    dedupeKey: entry.dedupeKey,
    kind: entry.kind,
    referenceType: entry.referenceType,
    referenceId: entry.referenceId,
    merchantId: entry.merchantId,
    postings,
  });
  assert(result.ok, `ledger refused ${entry.kind} for ${entry.referenceId}: ${result.ok ? '' : `${result.code} ${result.message}`}`);
}

export interface CaptureBooking {
  paymentId: string;
  merchantId: string;
  currency: Currency;
  amount: bigint;
  fee: bigint;
  mode: 'shared' | 'own';
}

export async function bookCapture(trx: DbTransaction, context: PlatformContext, accounts: BookingAccounts, capture: CaptureBooking): Promise<void> {
  const movements: Array<[string, bigint]> =
    capture.mode === 'shared'
      ? [
          [accounts.channelClearing, capture.amount],
          [accounts.merchantPending, -(capture.amount - capture.fee)],
          [accounts.feeIncome, -capture.fee],
        ]
      : [
          [accounts.feeReceivable, capture.fee],
          [accounts.feeIncome, -capture.fee],
        ];
  await post(trx, context, { dedupeKey: `payment:${capture.paymentId}:capture`, kind: 'payment_captured', referenceType: 'payment', referenceId: capture.paymentId, merchantId: capture.merchantId, currency: capture.currency, movements });
}

export interface RefundBooking {
  refundId: string;
  merchantId: string;
  currency: Currency;
  amount: bigint;
  feeRefund: bigint;
  mode: 'shared' | 'own';
}

export async function bookRefund(trx: DbTransaction, context: PlatformContext, accounts: BookingAccounts, refund: RefundBooking): Promise<void> {
  const movements: Array<[string, bigint]> =
    refund.mode === 'shared'
      ? [
          [accounts.channelClearing, -refund.amount],
          [accounts.merchantPending, refund.amount - refund.feeRefund],
          [accounts.feeIncome, refund.feeRefund],
        ]
      : [
          [accounts.feeReceivable, -refund.feeRefund],
          [accounts.feeIncome, refund.feeRefund],
        ];
  await post(trx, context, { dedupeKey: `refund:${refund.refundId}`, kind: 'refund_succeeded', referenceType: 'refund', referenceId: refund.refundId, merchantId: refund.merchantId, currency: refund.currency, movements });
}

/** Money that arrived for an order that cannot take it waits in suspense until it is refunded or placed. */
export async function bookSuspense(
  trx: DbTransaction,
  context: PlatformContext,
  accounts: BookingAccounts,
  exception: { exceptionId: string; merchantId: string; currency: Currency; amount: bigint; mode: 'shared' | 'own' },
): Promise<void> {
  if (exception.mode === 'own') return;
  await post(trx, context, {
    dedupeKey: `exception:${exception.exceptionId}:suspense`,
    kind: 'payment_exception_suspense',
    referenceType: 'payment_exception',
    referenceId: exception.exceptionId,
    merchantId: exception.merchantId,
    currency: exception.currency,
    movements: [
      [accounts.channelClearing, exception.amount],
      [accounts.suspense, -exception.amount],
    ],
  });
}

export async function bookSuspenseRefund(
  trx: DbTransaction,
  context: PlatformContext,
  accounts: BookingAccounts,
  refund: { refundId: string; merchantId: string; currency: Currency; amount: bigint; mode: 'shared' | 'own' },
): Promise<void> {
  if (refund.mode === 'own') return;
  await post(trx, context, {
    dedupeKey: `refund:${refund.refundId}`,
    kind: 'exception_refunded',
    referenceType: 'refund',
    referenceId: refund.refundId,
    merchantId: refund.merchantId,
    currency: refund.currency,
    movements: [
      [accounts.suspense, refund.amount],
      [accounts.channelClearing, -refund.amount],
    ],
  });
}
