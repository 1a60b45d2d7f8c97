import { sql } from 'kysely';
import { assert } from '../platform/assert.js';
import type { Clock } from '../platform/clock.js';
import type { DbExecutor, LedgerAccountType } from '../platform/db/index.js';
import { newId } from '../platform/ids.js';
import { limits } from '../platform/limits.js';
import type { Currency } from '../platform/money.js';

/**
 * The chart of accounts (DESIGN.md §3, "Accounts (per currency)"). An account is
 * named by its code and currency; the code says what it is and whose it is.
 */
export const accountCodes = {
  /** Asset: what the channel owes the platform for payments through this channel account. */
  channelClearing: (channelAccountId: string) => `channel_clearing:${channelAccountId}`,
  /** Liability: net owed to the merchant, not yet settleable. */
  merchantPending: (merchantId: string) => `merchant_pending:${merchantId}`,
  /** Liability: settleable; payouts and refunds draw on it, so it may never go below zero. */
  merchantAvailable: (merchantId: string) => `merchant_available:${merchantId}`,
  /** Liability: held back from the merchant (risk reserve, frozen merchants). */
  merchantReserve: (merchantId: string) => `merchant_reserve:${merchantId}`,
  /** Revenue: the platform's fees. */
  platformFeeIncome: () => 'platform_fee_income',
  /** Expense: what the channels charge the platform. */
  channelFeeExpense: () => 'channel_fee_expense',
  /** Asset: money at the platform's bank. */
  platformBank: () => 'platform_bank',
  /** Liability: money that arrived and cannot be placed yet. */
  suspense: () => 'suspense',
} as const;

export interface AccountSpec {
  code: string;
  currency: Currency;
  type: LedgerAccountType;
  merchantId: string | null;
  /** Hot accounts get limits.hotAccountSlots slots; everything else one. */
  slotCount: number;
  /** Checked under the row lock before every posting: the balance never crosses zero. */
  noOverdraft: boolean;
}

export interface LedgerAccount extends AccountSpec {
  id: string;
}

const hot = limits.hotAccountSlots;
/**
 * Fewer slots than the platform's accounts: one merchant's payments are a
 * share of the platform's, and a balance read sums every slot.
 */
const merchantPendingSlots = 8;

/** Ready-made specs for every account in the chart, so callers cannot get a type or slot count wrong. */
export const accountSpecs = {
  channelClearing: (channelAccountId: string, currency: Currency): AccountSpec => ({
    code: accountCodes.channelClearing(channelAccountId),
    currency,
    type: 'asset',
    merchantId: null,
    slotCount: hot,
    noOverdraft: false,
  }),
  // Every payment of a merchant credits its pending account: for a busy merchant it is the hottest account there is.
  merchantPending: (merchantId: string, currency: Currency): AccountSpec => ({ ...merchantSpec(accountCodes.merchantPending(merchantId), merchantId, currency, false), slotCount: merchantPendingSlots }),
  merchantAvailable: (merchantId: string, currency: Currency): AccountSpec => merchantSpec(accountCodes.merchantAvailable(merchantId), merchantId, currency, true),
  merchantReserve: (merchantId: string, currency: Currency): AccountSpec => merchantSpec(accountCodes.merchantReserve(merchantId), merchantId, currency, false),
  platformFeeIncome: (currency: Currency): AccountSpec => platformSpec(accountCodes.platformFeeIncome(), currency, 'revenue'),
  channelFeeExpense: (currency: Currency): AccountSpec => platformSpec(accountCodes.channelFeeExpense(), currency, 'expense'),
  platformBank: (currency: Currency): AccountSpec => platformSpec(accountCodes.platformBank(), currency, 'asset'),
  suspense: (currency: Currency): AccountSpec => platformSpec(accountCodes.suspense(), currency, 'liability'),
} as const;

function merchantSpec(code: string, merchantId: string, currency: Currency, noOverdraft: boolean): AccountSpec {
  return { code, currency, type: 'liability', merchantId, slotCount: 1, noOverdraft };
}

function platformSpec(code: string, currency: Currency, type: LedgerAccountType): AccountSpec {
  return { code, currency, type, merchantId: null, slotCount: hot, noOverdraft: false };
}

/** Debit-normal accounts (assets, expenses) grow with debits; the others with credits. */
export function isDebitNormal(type: LedgerAccountType): boolean {
  return type === 'asset' || type === 'expense';
}

/**
 * The balance as the account's owner reads it: positive when an asset holds
 * money or when Fen owes money on a liability. Stored balances are debit-positive.
 */
export function normalBalance(type: LedgerAccountType, balance: bigint): bigint {
  return isDebitNormal(type) ? balance : -balance;
}

/** A no-overdraft account's slot is guarded on its normal side; other slots are not guarded. */
function guardFor(spec: AccountSpec): 'none' | 'debit' | 'credit' {
  if (!spec.noOverdraft) return 'none';
  return isDebitNormal(spec.type) ? 'debit' : 'credit';
}

interface AccountRow {
  id: string;
  code: string;
  currency: string;
  type: LedgerAccountType;
  merchant_id: string | null;
  slot_count: number;
  no_overdraft: boolean;
}

function toAccount(row: AccountRow): LedgerAccount {
  return {
    id: row.id,
    code: row.code,
    currency: row.currency as Currency,
    type: row.type,
    merchantId: row.merchant_id,
    slotCount: row.slot_count,
    noOverdraft: row.no_overdraft,
  };
}

/**
 * Returns the account with this code and currency, creating it and its balance
 * slots when missing. The account and its slots are inserted by one statement,
 * so no reader ever sees an account without slots, and two callers racing to
 * create the same account both get the one that won (ON CONFLICT).
 */
export async function ensureAccount(executor: DbExecutor, clock: Clock, spec: AccountSpec): Promise<LedgerAccount> {
  assert(Number.isInteger(spec.slotCount) && spec.slotCount >= 1 && spec.slotCount <= 256, `slot count out of range: ${spec.slotCount}`);
  assert(!spec.noOverdraft || spec.slotCount === 1, 'a no-overdraft account has exactly one slot');
  const found = await findAccount(executor, spec.code, spec.currency);
  if (found) return checkedAgainstSpec(found, spec);
  const inserted = await sql<AccountRow>`
    WITH inserted AS (
      INSERT INTO ledger_accounts (id, code, currency, type, merchant_id, slot_count, no_overdraft, created_at)
      VALUES (${newId('ledgerAccount')}, ${spec.code}, ${spec.currency}, ${spec.type}, ${spec.merchantId},
              ${spec.slotCount}, ${spec.noOverdraft}, ${clock.now()})
      ON CONFLICT (code, currency) DO NOTHING
      RETURNING id, code, currency, type, merchant_id, slot_count, no_overdraft
    ), slots AS (
      INSERT INTO ledger_balance_slots (account_id, slot, balance, guard)
      SELECT inserted.id, slot, 0, ${guardFor(spec)} FROM inserted, generate_series(0, inserted.slot_count - 1) AS slot
    )
    SELECT * FROM inserted`.execute(executor);
  const created = inserted.rows[0];
  if (created) return toAccount(created);
  // Another caller created it between our look-up and our insert.
  const winner = await findAccount(executor, spec.code, spec.currency);
  assert(winner, `ledger account ${spec.code} ${spec.currency} vanished after a conflicting insert`);
  return checkedAgainstSpec(winner, spec);
}

async function findAccount(executor: DbExecutor, code: string, currency: string): Promise<LedgerAccount | undefined> {
  const row = await executor
    .selectFrom('ledger_accounts')
    .select(['id', 'code', 'currency', 'type', 'merchant_id', 'slot_count', 'no_overdraft'])
    .where('code', '=', code)
    .where('currency', '=', currency)
    .executeTakeFirst();
  return row ? toAccount(row) : undefined;
}

/**
 * An account that exists with another type, owner or overdraft rule means two
 * callers disagree on the chart: a bug. The slot count may differ: raising
 * limits.hotAccountSlots later leaves existing accounts as they were created.
 */
function checkedAgainstSpec(account: LedgerAccount, spec: AccountSpec): LedgerAccount {
  assert(
    account.type === spec.type && account.merchantId === spec.merchantId && account.noOverdraft === spec.noOverdraft,
    `ledger account ${spec.code} ${spec.currency} exists with a different type, owner or overdraft rule`,
  );
  return account;
}

export interface PlatformAccounts {
  platformFeeIncome: LedgerAccount;
  channelFeeExpense: LedgerAccount;
  platformBank: LedgerAccount;
  suspense: LedgerAccount;
}

/** The platform's own accounts in one currency. */
export async function ensurePlatformAccounts(executor: DbExecutor, clock: Clock, currency: Currency): Promise<PlatformAccounts> {
  return {
    platformFeeIncome: await ensureAccount(executor, clock, accountSpecs.platformFeeIncome(currency)),
    channelFeeExpense: await ensureAccount(executor, clock, accountSpecs.channelFeeExpense(currency)),
    platformBank: await ensureAccount(executor, clock, accountSpecs.platformBank(currency)),
    suspense: await ensureAccount(executor, clock, accountSpecs.suspense(currency)),
  };
}

export interface MerchantAccounts {
  pending: LedgerAccount;
  available: LedgerAccount;
  reserve: LedgerAccount;
}

/** A merchant's three accounts in one currency. */
export async function ensureMerchantAccounts(executor: DbExecutor, clock: Clock, merchantId: string, currency: Currency): Promise<MerchantAccounts> {
  return {
    pending: await ensureAccount(executor, clock, accountSpecs.merchantPending(merchantId, currency)),
    available: await ensureAccount(executor, clock, accountSpecs.merchantAvailable(merchantId, currency)),
    reserve: await ensureAccount(executor, clock, accountSpecs.merchantReserve(merchantId, currency)),
  };
}
