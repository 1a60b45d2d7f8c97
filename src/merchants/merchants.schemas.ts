import { z } from 'zod';
import { limits } from '../platform/limits.js';
import { shortText } from '../platform/http/index.js';

/**
 * Request and response shapes of the operator's merchant API. Request bodies are
 * strict objects: a misspelt field is refused rather than silently ignored,
 * which matters when the field is a fee rate or a bank account.
 */
export const merchantStatuses = ['pending_review', 'active', 'rejected', 'frozen', 'closed'] as const;
export const settlementCycles = ['T0', 'T1', 'D1', 'manual'] as const;
export const riskLevels = ['low', 'normal', 'high'] as const;

/**
 * A unified social credit code (统一社会信用代码, GB 32100-2015: 18 characters
 * from digits and upper-case letters without I, O, S, V, Z) or an old-style
 * 15-digit business registration number.
 */
export const unifiedSocialCreditCodePattern = /^[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}$/;
export const oldBusinessLicencePattern = /^\d{15}$/;

export function isBusinessLicenceNumber(value: string): boolean {
  return unifiedSocialCreditCodePattern.test(value) || oldBusinessLicencePattern.test(value);
}

const businessLicenceNumber = z
  .string()
  .trim()
  .transform((value) => value.toUpperCase())
  .refine(isBusinessLicenceNumber, 'must be an 18-character unified social credit code or a 15-digit business licence number');

const phoneNumber = z
  .string()
  .trim()
  .regex(/^\+?[0-9][0-9 -]{5,22}[0-9]$/, 'must be a phone number: digits, optionally a leading + and spaces or dashes');

const bankAccountNumber = z.string().trim().regex(/^\d{8,34}$/, 'must be 8 to 34 digits');

/** Fee amounts arrive as JSON integers in minor units and become bigint for the database. */
const minorAmount = z.number().int().min(0).max(Number(limits.amountPerPaymentMaxMinor));

export const feePlanInputSchema = z
  .strictObject({
    rate_basis_points: z.number().int().min(0).max(10_000),
    minimum_minor: minorAmount.default(0),
    maximum_minor: minorAmount.nullable().default(null),
  })
  .refine((plan) => plan.maximum_minor === null || plan.maximum_minor >= plan.minimum_minor, {
    message: 'maximum_minor must not be below minimum_minor',
    path: ['maximum_minor'],
  });

export const createMerchantBodySchema = z.strictObject({
  name: shortText,
  short_name: shortText.optional(),
  business_licence_no: businessLicenceNumber,
  legal_representative: shortText,
  contact: z.strictObject({
    name: shortText,
    phone: phoneNumber,
    email: z.email().max(limits.stringFieldLengthMax),
  }),
  settlement_account: z.strictObject({
    bank_name: shortText,
    account_name: shortText,
    account_number: bankAccountNumber,
  }),
  fee_plan: feePlanInputSchema.optional(),
  settlement_cycle: z.enum(settlementCycles).optional(),
  risk_level: z.enum(riskLevels).optional(),
});
export type CreateMerchantBody = z.output<typeof createMerchantBodySchema>;

const reasonText = z.string().trim().min(1).max(limits.textFieldLengthMax);

export const reviewBodySchema = z
  .strictObject({ decision: z.enum(['approve', 'reject']), reason: reasonText.optional() })
  .refine((body) => body.decision === 'approve' || body.reason !== undefined, {
    message: 'a reason is required to reject a merchant',
    path: ['reason'],
  });

export const requiredReasonBodySchema = z.strictObject({ reason: reasonText });
/** Unfreezing needs no reason, so the body may be left out entirely. */
export const optionalReasonBodySchema = z.strictObject({ reason: reasonText.optional() }).nullish();

export const merchantIdParamsSchema = z.strictObject({ id: z.string().min(1).max(64) });

export const listMerchantsQuerySchema = z.strictObject({
  status: z.enum(merchantStatuses).optional(),
  q: z.string().trim().min(1).max(limits.stringFieldLengthMax).optional(),
  limit: z.coerce.number().int().min(1).max(limits.pageSizeMax).default(limits.pageSizeDefault),
  cursor: z.string().max(64).optional(),
});

/** What every response shows of a merchant: the bank account only as `****1234`. */
export const merchantViewSchema = z.object({
  id: z.string(),
  name: z.string(),
  short_name: z.string().nullable(),
  status: z.enum(merchantStatuses),
  status_reason: z.string().nullable(),
  business_licence_no: z.string(),
  legal_representative: z.string(),
  contact: z.object({ name: z.string(), phone: z.string(), email: z.string() }),
  settlement_account: z.object({ bank_name: z.string(), account_name: z.string(), account_number: z.string() }),
  fee_plan: z.object({ rate_basis_points: z.number().int(), minimum_minor: z.number().int(), maximum_minor: z.number().int().nullable() }),
  settlement_cycle: z.enum(settlementCycles),
  risk_level: z.enum(riskLevels),
  reviewed_by: z.string().nullable(),
  reviewed_at: z.string().nullable(),
  created_at: z.string(),
  updated_at: z.string(),
});
export type MerchantView = z.output<typeof merchantViewSchema>;
