import { z } from 'zod';
import { limits } from '../platform/limits.js';
import { shortText } from '../platform/http/index.js';
import { isAllowlistEntry } from './ip-allowlist.js';

/**
 * The payment methods an app may enable. A fixed list rather than free text, so
 * a typo (`alipay-qr`) is refused when saved instead of silently never matching
 * a route later. New methods are added here when their connector lands.
 */
export const paymentMethods = ['alipay_qr', 'alipay_page', 'wechat_native', 'wechat_h5', 'unionpay_web', 'cashier'] as const;
export type PaymentMethod = (typeof paymentMethods)[number];

export const appStatuses = ['active', 'disabled'] as const;
export const secretKinds = ['api', 'webhook'] as const;
export type SecretKind = (typeof secretKinds)[number];

const urlLengthMax = 2000;

export const notifyUrlSchema = z.url({ protocol: /^https?$/, error: 'must be an http or https URL' }).max(urlLengthMax);

const ipAllowlistSchema = z
  .array(z.string().trim().refine(isAllowlistEntry, 'must be an IPv4 or IPv6 address or CIDR block, such as 203.0.113.7 or 2001:db8::/32'))
  .max(limits.ipAllowlistEntriesMax)
  .transform((entries) => [...new Set(entries)]);

const enabledMethodsSchema = z
  .array(z.enum(paymentMethods))
  .max(paymentMethods.length * 2)
  .transform((methods) => [...new Set(methods)]);

export const createAppBodySchema = z.strictObject({
  name: shortText,
  notify_url: notifyUrlSchema.nullable().optional(),
  ip_allowlist: ipAllowlistSchema.optional(),
  enabled_methods: enabledMethodsSchema.optional(),
});
export type CreateAppBody = z.output<typeof createAppBodySchema>;

export const updateAppBodySchema = z
  .strictObject({
    name: shortText.optional(),
    notify_url: notifyUrlSchema.nullable().optional(),
    ip_allowlist: ipAllowlistSchema.optional(),
    enabled_methods: enabledMethodsSchema.optional(),
    status: z.enum(appStatuses).optional(),
  })
  .refine((body) => Object.values(body).some((value) => value !== undefined), 'give at least one field to change');
export type UpdateAppBody = z.output<typeof updateAppBodySchema>;

export const rotateSecretBodySchema = z.strictObject({
  kind: z.enum(secretKinds),
  grace_seconds: z.number().int().min(0).max(limits.appSecretGraceSecondsMax).default(limits.appSecretGraceSecondsDefault),
});
export type RotateSecretBody = z.output<typeof rotateSecretBodySchema>;

export const appIdParamsSchema = z.strictObject({ id: z.string().min(1).max(64) });
export const merchantIdParamsSchema = z.strictObject({ id: z.string().min(1).max(64) });

export const listAppsQuerySchema = z.strictObject({
  merchant_id: z.string().min(1).max(64).optional(),
  limit: z.coerce.number().int().min(1).max(limits.pageSizeMax).default(limits.pageSizeDefault),
  cursor: z.string().max(64).optional(),
});

/** A live secret as the console sees it: when it was made and when it stops working, never its value. */
export const secretInfoSchema = z.object({
  id: z.string(),
  kind: z.enum(secretKinds),
  created_at: z.string(),
  retires_at: z.string().nullable(),
});

export const appViewSchema = z.object({
  id: z.string(),
  merchant_id: z.string(),
  name: z.string(),
  status: z.enum(appStatuses),
  notify_url: z.string().nullable(),
  ip_allowlist: z.array(z.string()),
  enabled_methods: z.array(z.string()),
  secrets: z.array(secretInfoSchema),
  created_at: z.string(),
  updated_at: z.string(),
});
export type AppView = z.output<typeof appViewSchema>;

/** The only response that carries the secrets in clear: they are shown once, at creation. */
export const createdAppSchema = appViewSchema.extend({ app_secret: z.string(), webhook_secret: z.string() });
export type CreatedApp = z.output<typeof createdAppSchema>;

export const rotatedSecretSchema = z.object({
  app_id: z.string(),
  kind: z.enum(secretKinds),
  secret_id: z.string(),
  /** Shown once. */
  secret: z.string(),
  secrets: z.array(secretInfoSchema),
});
export type RotatedSecret = z.output<typeof rotatedSecretSchema>;

export const whoamiSchema = z.object({
  id: z.string(),
  merchant_id: z.string(),
  name: z.string(),
  enabled_methods: z.array(z.string()),
  notify_url: z.string().nullable(),
});
