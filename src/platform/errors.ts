/**
 * Expected failures carry a stable code that clients can rely on. The catalogue
 * below is the single place where a code gets its HTTP status, so a route never
 * has to guess and two routes never disagree.
 */
export const errorCatalogue = {
  invalid_request: 400,
  invalid_amount: 400,
  invalid_currency: 400,
  invalid_cursor: 400,
  payload_too_large: 413,
  uri_too_long: 414,
  unsupported_media_type: 415,
  not_found: 404,
  route_not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  invalid_state: 409,
  idempotency_key_reused: 409,
  idempotency_request_in_progress: 409,
  idempotency_key_invalid: 400,
  // Merchant API authentication.
  missing_authentication: 401,
  unknown_app: 401,
  invalid_signature: 401,
  timestamp_out_of_window: 401,
  nonce_invalid: 401,
  nonce_reused: 401,
  app_disabled: 403,
  merchant_disabled: 403,
  ip_not_allowed: 403,
  method_not_enabled: 403,
  // Operator authentication.
  not_authenticated: 401,
  invalid_credentials: 401,
  invalid_totp: 401,
  account_locked: 423,
  forbidden: 403,
  csrf_token_invalid: 403,
  rate_limited: 429,
  // Domain.
  merchant_not_found: 404,
  merchant_not_active: 409,
  app_not_found: 404,
  duplicate: 409,
  insufficient_funds: 409,
  limit_exceeded: 422,
  out_trade_no_exists: 409,
  out_refund_no_exists: 409,
  refund_exceeds_payment: 422,
  payment_not_refundable: 409,
  payment_not_closable: 409,
  no_channel_account: 422,
  channel_unavailable: 503,
  currency_not_supported: 422,
  service_unavailable: 503,
  internal_error: 500,
} as const;

export type ErrorCode = keyof typeof errorCatalogue;

/** Thrown at the HTTP edge (or by a service for an expected failure) and mapped to a response. */
export class FenError extends Error {
  override name = 'FenError';
  readonly code: ErrorCode;
  readonly statusCode: number;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>) {
    super(message);
    this.code = code;
    this.statusCode = errorCatalogue[code];
    this.details = details;
  }
}

export type Result<T, Code extends string> = { ok: true; value: T } | { ok: false; code: Code; message: string };

export function ok<T>(value: T): { ok: true; value: T } {
  return { ok: true, value };
}

export function fail<Code extends string>(code: Code, message: string): { ok: false; code: Code; message: string } {
  return { ok: false, code, message };
}
