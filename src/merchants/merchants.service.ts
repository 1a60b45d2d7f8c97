import type { z } from 'zod';
import { appendAudit } from '../audit/index.js';
import type { Actor } from '../platform/actor.js';
import type { PlatformContext } from '../platform/context.js';
import type { DbExecutor, MerchantStatus } from '../platform/db/index.js';
import { FenError } from '../platform/errors.js';
import { isId, newId } from '../platform/ids.js';
import {
  findMerchant,
  insertMerchant,
  listMerchants as selectMerchants,
  toMerchantView,
  updateMerchantStatus,
  type MerchantListQuery,
} from './merchants.repository.js';
import { createMerchantBodySchema, type CreateMerchantBody, type MerchantView } from './merchants.schemas.js';

/**
 * Merchants: onboarding, review and the status lifecycle
 * `pending_review → active | rejected`, `active ⇄ frozen`, `… → closed`.
 * Every change is one transaction with its audit record.
 */

/** The sealing context binds a sealed account number to its merchant, so it cannot be copied onto another row. */
export function bankAccountSealContext(merchantId: string): string {
  return `merchant_bank_account:${merchantId}`;
}

/**
 * Services are also called from the CLI and demo data, not only from routes, so
 * they validate their input with the same schema the route uses.
 */
export function parseInput<Schema extends z.ZodType>(schema: Schema, input: unknown): z.output<Schema> {
  const parsed = schema.safeParse(input);
  if (parsed.success) return parsed.data;
  const message = parsed.error.issues.map((issue) => `${issue.path.join('.') || 'request'}: ${issue.message}`).join('; ');
  throw new FenError('invalid_request', message);
}

function isUniqueViolation(error: unknown, constraint: string): boolean {
  const candidate = error as { code?: unknown; constraint?: unknown } | null;
  return candidate?.code === '23505' && candidate.constraint === constraint;
}

export type CreateMerchantInput = z.input<typeof createMerchantBodySchema>;

export async function createMerchant(context: PlatformContext, actor: Actor, input: CreateMerchantInput): Promise<MerchantView> {
  const body: CreateMerchantBody = parseInput(createMerchantBodySchema, input);
  const id = newId('merchant');
  const now = context.clock.now();
  const accountNumber = body.settlement_account.account_number;
  try {
    return await context.db.transaction().execute(async (trx) => {
      const row = await insertMerchant(trx, {
        id,
        name: body.name,
        short_name: body.short_name ?? null,
        status: 'pending_review',
        status_reason: null,
        business_licence_no: body.business_licence_no,
        legal_representative: body.legal_representative,
        contact_name: body.contact.name,
        contact_phone: body.contact.phone,
        contact_email: body.contact.email,
        settlement_bank_name: body.settlement_account.bank_name,
        settlement_account_name: body.settlement_account.account_name,
        settlement_account_number_sealed: context.secretBox.seal(accountNumber, bankAccountSealContext(id)),
        settlement_account_number_last4: accountNumber.slice(-4),
        fee_rate_basis_points: body.fee_plan ? BigInt(body.fee_plan.rate_basis_points) : undefined,
        fee_minimum_minor: body.fee_plan ? BigInt(body.fee_plan.minimum_minor) : undefined,
        fee_maximum_minor: body.fee_plan && body.fee_plan.maximum_minor !== null ? BigInt(body.fee_plan.maximum_minor) : null,
        settlement_cycle: body.settlement_cycle,
        risk_level: body.risk_level,
        reviewed_by: null,
        reviewed_at: null,
        created_at: now,
        updated_at: now,
      });
      const view = toMerchantView(row);
      await appendAudit(trx, context.clock, { actor, action: 'merchant.created', targetType: 'merchant', targetId: id, merchantId: id, after: view });
      return view;
    });
  } catch (error) {
    if (isUniqueViolation(error, 'merchants_licence_live')) {
      throw new FenError('duplicate', `a merchant with business licence ${body.business_licence_no} is already registered and not closed or rejected`);
    }
    throw error;
  }
}

export async function getMerchant(context: PlatformContext, id: string): Promise<MerchantView> {
  const row = isId('merchant', id) ? await findMerchant(context.db, id) : undefined;
  if (!row) throw new FenError('merchant_not_found', `no merchant ${id}`);
  return toMerchantView(row);
}

export async function listMerchants(
  context: PlatformContext,
  query: Omit<MerchantListQuery, 'beforeId'> & { cursor?: string | undefined },
): Promise<{ data: MerchantView[]; nextCursor: string | null }> {
  if (query.cursor !== undefined && !isId('merchant', query.cursor)) {
    throw new FenError('invalid_cursor', 'cursor must be the value of next_cursor from a previous page');
  }
  const page = await selectMerchants(context.db, { status: query.status, prefix: query.prefix, beforeId: query.cursor, limit: query.limit });
  const last = page.rows.at(-1);
  return { data: page.rows.map(toMerchantView), nextCursor: page.hasMore && last ? last.id : null };
}

/** The lifecycle: which statuses each change starts from, where it leads, and how it is audited. */
const transitions = {
  approve: { from: ['pending_review'], to: 'active', action: 'merchant.approved' },
  reject: { from: ['pending_review'], to: 'rejected', action: 'merchant.rejected' },
  freeze: { from: ['active'], to: 'frozen', action: 'merchant.frozen' },
  unfreeze: { from: ['frozen'], to: 'active', action: 'merchant.unfrozen' },
  close: { from: ['active', 'frozen', 'pending_review'], to: 'closed', action: 'merchant.closed' },
} as const satisfies Record<string, { from: readonly MerchantStatus[]; to: MerchantStatus; action: string }>;

export type MerchantTransition = keyof typeof transitions;

async function transitionMerchant(
  context: PlatformContext,
  actor: Actor,
  id: string,
  transition: MerchantTransition,
  reason: string | null,
): Promise<MerchantView> {
  const rule = transitions[transition];
  return context.db.transaction().execute(async (trx) => {
    const current = isId('merchant', id) ? await findMerchant(trx, id) : undefined;
    if (!current) throw new FenError('merchant_not_found', `no merchant ${id}`);
    if (!(rule.from as readonly MerchantStatus[]).includes(current.status)) {
      throw new FenError('invalid_state', `cannot ${transition} merchant ${id}: it is ${current.status}, and ${transition} needs ${rule.from.join(' or ')}`);
    }
    const isReview = transition === 'approve' || transition === 'reject';
    const updated = await updateMerchantStatus(trx, {
      id,
      expectedStatus: current.status,
      status: rule.to,
      reason,
      now: context.clock.now(),
      ...(isReview ? { reviewedBy: actor.id } : {}),
    });
    if (!updated) throw new FenError('invalid_state', `merchant ${id} changed while this request ran; read it again and retry`);
    const after = toMerchantView(updated);
    await appendAudit(trx, context.clock, {
      actor,
      action: rule.action,
      targetType: 'merchant',
      targetId: id,
      merchantId: id,
      before: toMerchantView(current),
      after,
    });
    return after;
  });
}

export async function reviewMerchant(
  context: PlatformContext,
  actor: Actor,
  id: string,
  review: { decision: 'approve' | 'reject'; reason?: string | null | undefined },
): Promise<MerchantView> {
  const reason = review.reason?.trim() || null;
  if (review.decision === 'reject' && reason === null) throw new FenError('invalid_request', 'a reason is required to reject a merchant');
  return transitionMerchant(context, actor, id, review.decision, reason);
}

export async function freezeMerchant(context: PlatformContext, actor: Actor, id: string, reason: string): Promise<MerchantView> {
  return transitionMerchant(context, actor, id, 'freeze', requireReason(reason, 'freeze'));
}

export async function unfreezeMerchant(context: PlatformContext, actor: Actor, id: string, reason?: string | null): Promise<MerchantView> {
  return transitionMerchant(context, actor, id, 'unfreeze', reason?.trim() || null);
}

export async function closeMerchant(context: PlatformContext, actor: Actor, id: string, reason: string): Promise<MerchantView> {
  return transitionMerchant(context, actor, id, 'close', requireReason(reason, 'close'));
}

function requireReason(reason: string | null | undefined, transition: MerchantTransition): string {
  const trimmed = reason?.trim();
  if (!trimmed) throw new FenError('invalid_request', `a reason is required to ${transition} a merchant`);
  return trimmed;
}

/**
 * For other modules (apps, payments): the merchant's status, read in the
 * caller's transaction. With `lock: 'share'` the row is held against a
 * concurrent freeze or close until that transaction ends.
 */
export async function merchantStatusOf(executor: DbExecutor, id: string, options: { lock?: 'share' } = {}): Promise<MerchantStatus | undefined> {
  let statement = executor.selectFrom('merchants').select('status').where('id', '=', id);
  if (options.lock === 'share') statement = statement.forShare();
  return (await statement.executeTakeFirst())?.status;
}

/** Opens the settlement account number, for the settlement module's payouts only. */
export async function revealSettlementAccountNumber(context: PlatformContext, id: string): Promise<string> {
  const row = await findMerchant(context.db, id);
  if (!row) throw new FenError('merchant_not_found', `no merchant ${id}`);
  return context.secretBox.open(row.settlement_account_number_sealed, bankAccountSealContext(id));
}
