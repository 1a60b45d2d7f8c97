import type { ColumnType, Generated } from 'kysely';

/**
 * Kysely's view of the schema. int8 columns are bigint (the pool's type parser
 * guarantees it); timestamps are Date.
 */
type Timestamp = ColumnType<Date, Date | string, Date | string>;
type Json = ColumnType<unknown, string | null, string | null>;

export interface AuditLogTable {
  sequence: bigint;
  id: string;
  occurred_at: Timestamp;
  actor_type: 'operator' | 'merchant_user' | 'app' | 'system';
  actor_id: string | null;
  actor_roles: string[];
  ip: string | null;
  action: string;
  target_type: string;
  target_id: string | null;
  merchant_id: string | null;
  before: Json;
  after: Json;
  previous_hash: string;
  hash: string;
}

export interface AuditHeadTable {
  singleton: boolean;
  sequence: bigint;
  hash: string;
}

export type MerchantStatus = 'pending_review' | 'active' | 'rejected' | 'frozen' | 'closed';

export interface MerchantsTable {
  id: string;
  name: string;
  short_name: string | null;
  status: MerchantStatus;
  status_reason: string | null;
  business_licence_no: string;
  legal_representative: string;
  contact_name: string;
  contact_phone: string;
  contact_email: string;
  settlement_bank_name: string;
  settlement_account_name: string;
  settlement_account_number_sealed: string;
  settlement_account_number_last4: string;
  fee_rate_basis_points: ColumnType<bigint, bigint | undefined, bigint>;
  fee_minimum_minor: ColumnType<bigint, bigint | undefined, bigint>;
  fee_maximum_minor: bigint | null;
  settlement_cycle: ColumnType<'T0' | 'T1' | 'D1' | 'manual', 'T0' | 'T1' | 'D1' | 'manual' | undefined>;
  risk_level: ColumnType<'low' | 'normal' | 'high', 'low' | 'normal' | 'high' | undefined>;
  reviewed_by: string | null;
  reviewed_at: Timestamp | null;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface AppsTable {
  id: string;
  merchant_id: string;
  name: string;
  status: 'active' | 'disabled';
  notify_url: string | null;
  ip_allowlist: string[];
  enabled_methods: string[];
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface AppSecretsTable {
  id: string;
  app_id: string;
  merchant_id: string;
  kind: 'api' | 'webhook';
  secret_sealed: string;
  created_at: Timestamp;
  retires_at: Timestamp | null;
}

export interface ApiNoncesTable {
  app_id: string;
  nonce: string;
  expires_at: Timestamp;
}

export interface IdempotencyKeysTable {
  app_id: string;
  key: string;
  merchant_id: string;
  method: string;
  path: string;
  request_hash: string;
  state: 'in_progress' | 'completed';
  lease_expires_at: Timestamp;
  response_status: number | null;
  response_content_type: string | null;
  response_body: string | null;
  created_at: Timestamp;
  completed_at: Timestamp | null;
}

export interface UsersTable {
  id: string;
  kind: 'operator' | 'merchant_user';
  merchant_id: string | null;
  email: string;
  name: string;
  password_hash: string;
  totp_secret_sealed: string | null;
  roles: string[];
  status: 'active' | 'disabled';
  failed_login_count: Generated<number>;
  locked_until: Timestamp | null;
  last_login_at: Timestamp | null;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface TotpUsedStepsTable {
  user_id: string;
  time_step: bigint;
}

export interface SessionsTable {
  token_hash: string;
  user_id: string;
  csrf_token: string;
  ip: string | null;
  user_agent: string | null;
  created_at: Timestamp;
  expires_at: Timestamp;
  revoked_at: Timestamp | null;
}

export type LedgerAccountType = 'asset' | 'liability' | 'equity' | 'revenue' | 'expense';

export interface LedgerAccountsTable {
  id: string;
  code: string;
  currency: string;
  type: LedgerAccountType;
  merchant_id: string | null;
  slot_count: number;
  no_overdraft: boolean;
  created_at: Timestamp;
}

export interface LedgerBalanceSlotsTable {
  account_id: string;
  slot: number;
  balance: bigint;
  guard: 'none' | 'debit' | 'credit';
}

export interface JournalEntriesTable {
  id: string;
  dedupe_key: string;
  kind: string;
  reference_type: string | null;
  reference_id: string | null;
  merchant_id: string | null;
  description: string | null;
  posting_count: number;
  postings_hash: string;
  effective_at: Timestamp;
  created_at: Timestamp;
}

export interface LedgerPostingsTable {
  id: Generated<bigint>;
  entry_id: string;
  account_id: string;
  slot: number;
  currency: string;
  amount: bigint;
  created_at: Timestamp;
}

export interface ChannelAccountsTable {
  id: string;
  channel: 'alipay' | 'wechatpay' | 'unionpay';
  name: string;
  mode: 'shared' | 'own';
  merchant_id: string | null;
  status: 'active' | 'disabled';
  methods: string[];
  settings: ColumnType<Record<string, unknown>, string, string>;
  secrets_sealed: string;
  consecutive_failures: Generated<number>;
  circuit_open_until: Timestamp | null;
  created_at: Timestamp;
  updated_at: Timestamp;
  /** Added by 0004_reconciliation: the fee the channel is expected to charge, and when the daily reconciliation runs (Beijing HH:MM). */
  channel_fee_rate_basis_points: Generated<bigint>;
  recon_time: Generated<string>;
}

export interface PaymentRoutesTable {
  app_id: string;
  merchant_id: string;
  method: string;
  channel_account_id: string;
  priority: Generated<number>;
}

export interface MerchantFeePlansTable {
  merchant_id: string;
  method: string;
  rate_basis_points: bigint;
  minimum_minor: Generated<bigint>;
  maximum_minor: bigint | null;
}

export type PaymentStatusColumn = 'created' | 'paying' | 'succeeded' | 'failed' | 'closed';

export interface PaymentsTable {
  id: string;
  merchant_id: string;
  app_id: string;
  out_trade_no: string;
  amount: bigint;
  currency: string;
  subject: string;
  method: string;
  channel: string | null;
  channel_account_id: string | null;
  account_mode: 'shared' | 'own' | null;
  status: PaymentStatusColumn;
  channel_trade_no: string | null;
  qr_code: string | null;
  pay_url: string | null;
  payer_action: ColumnType<unknown, string | null, string | null>;
  notify_url: string | null;
  return_url: string | null;
  client_ip: string | null;
  metadata: ColumnType<unknown, string | null, string | null>;
  fee_amount: Generated<bigint>;
  fee_rate_basis_points: Generated<bigint>;
  refunded_amount: Generated<bigint>;
  refunding_amount: Generated<bigint>;
  refunded_fee_amount: Generated<bigint>;
  failure_code: string | null;
  failure_message: string | null;
  expires_at: Timestamp;
  paid_at: Timestamp | null;
  closed_at: Timestamp | null;
  query_attempts: Generated<number>;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface RefundsTable {
  id: string;
  merchant_id: string;
  app_id: string;
  payment_id: string;
  out_refund_no: string;
  amount: bigint;
  currency: string;
  fee_refund_amount: Generated<bigint>;
  reason: string | null;
  status: 'processing' | 'succeeded' | 'failed';
  channel_refund_no: string | null;
  failure_code: string | null;
  failure_message: string | null;
  query_attempts: Generated<number>;
  source: Generated<'merchant' | 'operator' | 'exception'>;
  created_at: Timestamp;
  updated_at: Timestamp;
  succeeded_at: Timestamp | null;
}

export interface PaymentExceptionsTable {
  id: string;
  merchant_id: string;
  payment_id: string;
  kind: 'paid_after_close' | 'duplicate_payment' | 'amount_mismatch';
  channel_trade_no: string;
  amount: bigint;
  currency: string;
  status: 'open' | 'refunding' | 'refunded' | 'resolved';
  refund_id: string | null;
  resolution: string | null;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface EventsTable {
  id: string;
  merchant_id: string;
  app_id: string;
  type: string;
  object_id: string;
  body: string;
  notify_url: string | null;
  delivery_status: 'pending' | 'delivered' | 'failed' | 'no_endpoint';
  attempts: number;
  next_attempt_at: Timestamp | null;
  delivered_at: Timestamp | null;
  created_at: Timestamp;
}

export interface EventDeliveriesTable {
  event_id: string;
  attempt: number;
  merchant_id: string;
  url: string;
  attempted_at: Timestamp;
  status_code: number | null;
  latency_ms: number;
  error: string | null;
  manual: boolean;
}

export interface AlertsTable {
  id: string;
  kind: string;
  severity: 'info' | 'warning' | 'critical';
  merchant_id: string | null;
  subject_id: string | null;
  message: string;
  details: ColumnType<unknown, string | null, string | null>;
  status: Generated<'open' | 'acknowledged' | 'closed'>;
  created_at: Timestamp;
}

export interface Database {
  audit_log: AuditLogTable;
  audit_head: AuditHeadTable;
  merchants: MerchantsTable;
  apps: AppsTable;
  app_secrets: AppSecretsTable;
  api_nonces: ApiNoncesTable;
  idempotency_keys: IdempotencyKeysTable;
  users: UsersTable;
  totp_used_steps: TotpUsedStepsTable;
  sessions: SessionsTable;
  ledger_accounts: LedgerAccountsTable;
  ledger_balance_slots: LedgerBalanceSlotsTable;
  journal_entries: JournalEntriesTable;
  ledger_postings: LedgerPostingsTable;
  channel_accounts: ChannelAccountsTable;
  payment_routes: PaymentRoutesTable;
  merchant_fee_plans: MerchantFeePlansTable;
  payments: PaymentsTable;
  refunds: RefundsTable;
  payment_exceptions: PaymentExceptionsTable;
  events: EventsTable;
  event_deliveries: EventDeliveriesTable;
  alerts: AlertsTable;
  recon_batches: ReconBatchesTable;
  recon_differences: ReconDifferencesTable;
  recon_pool: ReconPoolTable;
}

export type ReconBatchStatus = 'running' | 'not_ready' | 'failed' | 'holding' | 'differences' | 'balanced';
export type ReconDifferenceKind = 'missing_local' | 'missing_channel' | 'amount_mismatch' | 'status_mismatch' | 'fee_mismatch' | 'fund_flow' | 'internal';
export type ReconResolution = 'notification_applied' | 'exception_refund' | 'suspense' | 'trust_channel' | 'trust_fen' | 'accepted';

export interface ReconBatchesTable {
  id: string;
  channel_account_id: string;
  channel: string;
  mode: 'shared' | 'own';
  bill_date: ColumnType<string, string, string>;
  status: ReconBatchStatus;
  currency: Generated<string>;
  lines_channel: Generated<number>;
  lines_local: Generated<number>;
  matched: Generated<number>;
  channel_payments_amount: Generated<bigint>;
  channel_refunds_amount: Generated<bigint>;
  channel_fee_amount: Generated<bigint>;
  channel_net_amount: Generated<bigint>;
  fees_booked_amount: Generated<bigint>;
  ledger_net_amount: bigint | null;
  open_delta_amount: bigint | null;
  fund_flow_drift: bigint | null;
  run_count: Generated<number>;
  error_code: string | null;
  error_message: string | null;
  started_at: Timestamp | null;
  finished_at: Timestamp | null;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface ReconDifferencesTable {
  id: string;
  batch_id: string;
  channel_account_id: string;
  bill_date: ColumnType<string, string, string>;
  kind: ReconDifferenceKind;
  dedupe_key: string;
  line_kind: 'payment' | 'refund' | null;
  channel_trade_no: string | null;
  out_trade_no: string | null;
  out_refund_no: string | null;
  payment_id: string | null;
  refund_id: string | null;
  merchant_id: string | null;
  currency: string;
  channel_amount: bigint | null;
  local_amount: bigint | null;
  local_booked: bigint | null;
  channel_fee: bigint | null;
  expected_fee: bigint | null;
  channel_status: string | null;
  local_status: string | null;
  delta: bigint;
  occurred_at: Timestamp | null;
  line_number: number | null;
  detail: string;
  status: 'open' | 'resolved' | 'withdrawn';
  resolution: ReconResolution | null;
  resolution_reason: string | null;
  resolved_by: string | null;
  resolved_at: Timestamp | null;
  entry_id: string | null;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface ReconPoolTable {
  channel_account_id: string;
  item_key: string;
  item_type: 'payment' | 'refund' | 'exception';
  item_id: string;
  line_kind: 'payment' | 'refund';
  payment_id: string;
  merchant_id: string | null;
  channel_trade_no: string | null;
  currency: string;
  amount: bigint;
  booked: Generated<bigint>;
  business_at: Timestamp;
  origin_date: ColumnType<string, string, string>;
  status: 'held' | 'matched' | 'expired';
  matched_batch_id: string | null;
  created_at: Timestamp;
  updated_at: Timestamp;
}
