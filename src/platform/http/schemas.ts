import { z } from 'zod';
import { limits } from '../limits.js';

/** The one error body every route returns. */
export const errorResponseSchema = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    details: z.record(z.string(), z.unknown()).optional(),
  }),
});

/** The 4xx responses any route may give, for OpenAPI. */
export const commonErrorResponses = {
  400: errorResponseSchema,
  401: errorResponseSchema,
  403: errorResponseSchema,
  404: errorResponseSchema,
  409: errorResponseSchema,
  413: errorResponseSchema,
  414: errorResponseSchema,
  415: errorResponseSchema,
  422: errorResponseSchema,
  423: errorResponseSchema,
  429: errorResponseSchema,
} as const;

export const paginationQuerySchema = z.object({
  limit: z.coerce.number().int().min(1).max(limits.pageSizeMax).default(limits.pageSizeDefault),
  cursor: z.string().max(200).optional(),
});

export function pageSchema<Item extends z.ZodType>(item: Item) {
  return z.object({ data: z.array(item), next_cursor: z.string().nullable() });
}

export const shortText = z.string().trim().min(1).max(limits.stringFieldLengthMax);
export const longText = z.string().trim().min(1).max(limits.textFieldLengthMax);
export const isoTimestamp = z.string();
/** Amounts in minor units: a JSON integer, positive, within the per-payment cap. */
export const amountMinorSchema = z
  .number()
  .int()
  .positive()
  .max(Number(limits.amountPerPaymentMaxMinor));
