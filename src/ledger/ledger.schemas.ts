import { z } from 'zod';
import { isoTimestamp } from '../platform/http/index.js';
import { limits } from '../platform/limits.js';

/**
 * Request and response shapes of the operator ledger routes. Amounts are JSON
 * integers in minor units; posting ids (bigserial) travel as strings.
 */
const identifier = z.string().trim().min(1).max(64);
const currencyCode = z.string().regex(/^[A-Z]{3}$/, 'a three-letter upper-case ISO 4217 code');
const pageLimit = z.coerce.number().int().min(1).max(limits.pageSizeMax).default(limits.pageSizeDefault);
const pageCursor = z.string().max(64).optional();

export const accountListQuerySchema = z.object({
  merchant_id: identifier.optional(),
  code: z.string().trim().min(1).max(limits.stringFieldLengthMax).optional(),
  currency: currencyCode.optional(),
  limit: pageLimit,
  cursor: pageCursor,
});

export const accountParamsSchema = z.object({ id: identifier });

export const accountSchema = z.object({
  id: z.string(),
  code: z.string(),
  currency: z.string(),
  type: z.enum(['asset', 'liability', 'equity', 'revenue', 'expense']),
  merchant_id: z.string().nullable(),
  slot_count: z.number().int(),
  no_overdraft: z.boolean(),
  balance: z.number().int().describe('Signed minor units, debits positive: the sum of the account\'s postings.'),
  normal_balance: z.number().int().describe('The balance on the account\'s normal side: what an asset holds or a liability owes.'),
  created_at: isoTimestamp,
});

export const entryListQuerySchema = z.object({
  reference_type: z.string().trim().min(1).max(limits.stringFieldLengthMax).optional(),
  reference_id: z.string().trim().min(1).max(limits.stringFieldLengthMax).optional(),
  merchant_id: identifier.optional(),
  limit: pageLimit,
  cursor: pageCursor,
});

export const postingSchema = z.object({
  id: z.string(),
  account_id: z.string(),
  account_code: z.string(),
  slot: z.number().int(),
  currency: z.string(),
  amount: z.number().int().describe('Signed minor units: debits positive, credits negative.'),
});

export const entrySchema = z.object({
  id: z.string(),
  dedupe_key: z.string(),
  kind: z.string(),
  reference_type: z.string().nullable(),
  reference_id: z.string().nullable(),
  merchant_id: z.string().nullable(),
  description: z.string().nullable(),
  effective_at: isoTimestamp,
  created_at: isoTimestamp,
  postings: z.array(postingSchema),
});
