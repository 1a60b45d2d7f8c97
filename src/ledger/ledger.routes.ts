import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { z } from 'zod';
import type { PlatformContext } from '../platform/context.js';
import { FenError } from '../platform/errors.js';
import { commonErrorResponses, pageSchema } from '../platform/http/index.js';
import { isId } from '../platform/ids.js';
import { minorToJsonNumber } from '../platform/money.js';
import { getAccountBalance, listAccounts, listEntries, type AccountBalance, type EntryView } from './ledger.repository.js';
import { accountListQuerySchema, accountParamsSchema, accountSchema, entryListQuerySchema, entrySchema } from './ledger.schemas.js';

/**
 * Operator routes: read-only views of the books. Nothing here moves money;
 * that happens only inside the modules that own a state change.
 */
const routeConfig = { auth: 'operator', permission: 'ledger.read' } as const;

function accountJson(account: AccountBalance): z.infer<typeof accountSchema> {
  return {
    id: account.id,
    code: account.code,
    currency: account.currency,
    type: account.type,
    merchant_id: account.merchantId,
    slot_count: account.slotCount,
    no_overdraft: account.noOverdraft,
    balance: minorToJsonNumber(account.balance),
    normal_balance: minorToJsonNumber(account.normalBalance),
    created_at: account.createdAt.toISOString(),
  };
}

function entryJson(entry: EntryView): z.infer<typeof entrySchema> {
  return {
    id: entry.id,
    dedupe_key: entry.dedupeKey,
    kind: entry.kind,
    reference_type: entry.referenceType,
    reference_id: entry.referenceId,
    merchant_id: entry.merchantId,
    description: entry.description,
    effective_at: entry.effectiveAt.toISOString(),
    created_at: entry.createdAt.toISOString(),
    postings: entry.postings.map((posting) => ({
      id: posting.id.toString(),
      account_id: posting.accountId,
      account_code: posting.accountCode,
      slot: posting.slot,
      currency: posting.currency,
      amount: minorToJsonNumber(posting.amount),
    })),
  };
}

/** A cursor is the last id of the previous page; anything else is a client mistake, not a 500. */
function checkedCursor(cursor: string | undefined, kind: 'ledgerAccount' | 'journalEntry'): string | undefined {
  if (cursor !== undefined && !isId(kind, cursor)) throw new FenError('invalid_cursor', 'cursor must be the value of next_cursor from a previous page');
  return cursor;
}

export function registerLedgerRoutes(app: FastifyInstance, context: PlatformContext): void {
  const typed = app.withTypeProvider<ZodTypeProvider>();
  typed.get(
    '/admin/v1/ledger/accounts',
    {
      schema: { tags: ['operator'], summary: 'List ledger accounts with their balances', querystring: accountListQuerySchema, response: { 200: pageSchema(accountSchema), ...commonErrorResponses } },
      config: routeConfig,
    },
    async (request) => {
      const { merchant_id, code, currency, limit, cursor } = request.query;
      const page = await listAccounts(context.db, { merchantId: merchant_id, code, currency, limit, cursor: checkedCursor(cursor, 'ledgerAccount') });
      return { data: page.items.map(accountJson), next_cursor: page.nextCursor };
    },
  );
  typed.get(
    '/admin/v1/ledger/accounts/:id',
    {
      schema: { tags: ['operator'], summary: 'One ledger account and its balance', params: accountParamsSchema, response: { 200: accountSchema, ...commonErrorResponses } },
      config: routeConfig,
    },
    async (request) => {
      const account = await getAccountBalance(context.db, request.params.id);
      if (!account) throw new FenError('not_found', `no ledger account ${request.params.id}`);
      return accountJson(account);
    },
  );
  typed.get(
    '/admin/v1/ledger/entries',
    {
      schema: { tags: ['operator'], summary: 'List journal entries with their postings', querystring: entryListQuerySchema, response: { 200: pageSchema(entrySchema), ...commonErrorResponses } },
      config: routeConfig,
    },
    async (request) => {
      const { reference_type, reference_id, merchant_id, limit, cursor } = request.query;
      const page = await listEntries(context.db, {
        referenceType: reference_type,
        referenceId: reference_id,
        merchantId: merchant_id,
        limit,
        cursor: checkedCursor(cursor, 'journalEntry'),
      });
      return { data: page.items.map(entryJson), next_cursor: page.nextCursor };
    },
  );
}
