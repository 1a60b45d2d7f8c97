import { z } from 'zod';
import { amountMinorSchema } from '../platform/http/index.js';
import { limits } from '../platform/limits.js';
import { currencyCodes } from '../platform/money.js';

/** The merchant API's payment contract: what any client can rely on. */
const merchantReference = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9_\-.:]+$/, 'use letters, digits and _ - . : only');

const httpUrl = z
  .url()
  .max(1024)
  .refine((value) => /^https?:\/\//.test(value), 'must be an http or https URL');

export const createPaymentBodySchema = z
  .object({
    out_trade_no: merchantReference,
    amount: amountMinorSchema,
    currency: z.enum(currencyCodes as [string, ...string[]]).default('CNY'),
    subject: z.string().trim().min(1).max(128),
    method: z.string().min(1).max(32),
    notify_url: httpUrl.optional(),
    return_url: httpUrl.optional(),
    expires_in: z.number().int().min(limits.paymentExpirySecondsMin).max(limits.paymentExpirySecondsMax).default(limits.paymentExpirySecondsDefault),
    client_ip: z.union([z.ipv4(), z.ipv6()]).optional(),
    metadata: z
      .record(z.string().max(64), z.union([z.string().max(500), z.number(), z.boolean(), z.null()]))
      .refine((value) => JSON.stringify(value).length <= limits.metadataBytesMax, `metadata must be at most ${limits.metadataBytesMax} bytes`)
      .optional(),
  })
  .strict();

export const paymentViewSchema = z.object({
  id: z.string(),
  object: z.literal('payment'),
  status: z.enum(['created', 'paying', 'succeeded', 'failed', 'closed']),
  amount: z.number().int(),
  currency: z.string(),
  out_trade_no: z.string(),
  subject: z.string(),
  method: z.string(),
  channel: z.string().nullable(),
  channel_trade_no: z.string().nullable(),
  qr_code: z.string().nullable(),
  pay_url: z.string().nullable(),
  cashier_url: z.string(),
  fee_amount: z.number().int(),
  refunded_amount: z.number().int(),
  refund_state: z.enum(['none', 'partial', 'full']),
  metadata: z.record(z.string(), z.unknown()).nullable(),
  failure: z.object({ code: z.string(), message: z.string() }).nullable(),
  expires_at: z.string(),
  paid_at: z.string().nullable(),
  closed_at: z.string().nullable(),
  created_at: z.string(),
});

export const paymentIdParamsSchema = z.object({ id: z.string().regex(/^pay_[0-9a-z]{26}$/, 'must be a payment id (pay_…)') });
export const refundIdParamsSchema = z.object({ id: z.string().regex(/^ref_[0-9a-z]{26}$/, 'must be a refund id (ref_…)') });
export const eventIdParamsSchema = z.object({ id: z.string().regex(/^evt_[0-9a-z]{26}$/, 'must be an event id (evt_…)') });

export const findPaymentQuerySchema = z.object({ out_trade_no: merchantReference });

export const createRefundBodySchema = z
  .object({
    amount: amountMinorSchema,
    out_refund_no: merchantReference,
    reason: z.string().trim().min(1).max(256).optional(),
  })
  .strict();

export const refundViewSchema = z.object({
  id: z.string(),
  object: z.literal('refund'),
  payment_id: z.string(),
  status: z.enum(['processing', 'succeeded', 'failed']),
  amount: z.number().int(),
  currency: z.string(),
  out_refund_no: z.string(),
  reason: z.string().nullable(),
  channel_refund_no: z.string().nullable(),
  failure: z.object({ code: z.string(), message: z.string() }).nullable(),
  created_at: z.string(),
  succeeded_at: z.string().nullable(),
});

export const eventViewSchema = z.object({
  id: z.string(),
  type: z.string(),
  object_id: z.string(),
  delivery_status: z.enum(['pending', 'delivered', 'failed', 'no_endpoint']),
  attempts: z.number().int(),
  next_attempt_at: z.string().nullable(),
  delivered_at: z.string().nullable(),
  created_at: z.string(),
  body: z.string(),
  deliveries: z
    .array(z.object({ attempt: z.number().int(), attempted_at: z.string(), status_code: z.number().int().nullable(), latency_ms: z.number().int(), error: z.string().nullable(), manual: z.boolean() }))
    .optional(),
});

export const listEventsQuerySchema = z.object({
  limit: z.coerce.number().int().min(1).max(limits.pageSizeMax).default(limits.pageSizeDefault),
  cursor: z.string().regex(/^evt_[0-9a-z]{26}$/, 'must be next_cursor from a previous page').optional(),
  object_id: z.string().max(64).optional(),
});
