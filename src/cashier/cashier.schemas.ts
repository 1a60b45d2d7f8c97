import { z } from 'zod';
import { paymentStatuses } from '../payments/index.js';
import { cashierMethods, languages } from './i18n.js';

/**
 * What the cashier accepts and answers. Bad input on the HTML routes becomes an
 * HTML page (404 or 400), not the API's JSON error, so these schemas are parsed
 * in the handlers rather than by Fastify's validation.
 */

/** The id as it arrives; whether it is a payment id is decided by isId, and a bad one is a 404. */
export const cashierParamsSchema = z.object({ id: z.string() });

/** An unknown `lang` is ignored rather than refused: the page falls back to the browser's language. */
export const cashierQuerySchema = z.object({ lang: z.enum(languages).optional().catch(undefined) });

/** The payer's choice on a `cashier` payment, posted by the page's HTML form. */
export const chooseMethodBodySchema = z.object({
  method: z.enum(cashierMethods),
  lang: z.enum(languages).optional().catch(undefined),
});

/** What the page's script polls: enough to show the outcome, nothing about the merchant or the channel. */
export const cashierStatusSchema = z.object({
  status: z.enum(paymentStatuses),
  paid_at: z.string().nullable(),
  expires_at: z.string(),
});

export type CashierStatus = z.output<typeof cashierStatusSchema>;
