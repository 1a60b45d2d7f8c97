import { generateKeyPairSync, randomInt } from 'node:crypto';
import type pg from 'pg';
import type { PlatformKey } from './protocol.js';
import { faultsTableStatement } from '../shared/fault-store.js';
import { notificationAttemptsTableStatement } from '../shared/notification-delivery.js';
import { ensureSchemaOnce, withTransaction, type Executor, type SimulatorSchema } from '../shared/transactions.js';

/**
 * The simulator's own state, in its own schema `sim_wechatpay`, created by the
 * simulator when it starts — so it survives restarts, runs as its own process,
 * and never touches Fen's tables. Amounts are BIGINT fen, as everywhere. The
 * merchants' APIv3 keys are kept in clear here: this is the stand-in for
 * WeChat Pay, which holds them too, and never a place for real keys.
 */

export const simulatorSchema = 'sim_wechatpay' satisfies SimulatorSchema;

const schemaStatements = `
CREATE SCHEMA IF NOT EXISTS sim_wechatpay;
CREATE TABLE IF NOT EXISTS sim_wechatpay.settings (
  name  TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sim_wechatpay.merchants (
  mchid      TEXT PRIMARY KEY,
  api_v3_key TEXT NOT NULL CHECK (octet_length(api_v3_key) = 32),
  app_ids    TEXT[] NOT NULL DEFAULT '{}',
  created_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS sim_wechatpay.merchant_keys (
  mchid          TEXT NOT NULL REFERENCES sim_wechatpay.merchants (mchid),
  serial_no      TEXT NOT NULL,
  public_key_pem TEXT NOT NULL,
  created_at     TIMESTAMPTZ NOT NULL,
  PRIMARY KEY (mchid, serial_no)
);
CREATE TABLE IF NOT EXISTS sim_wechatpay.trades (
  id              BIGSERIAL PRIMARY KEY,
  mchid           TEXT NOT NULL REFERENCES sim_wechatpay.merchants (mchid),
  appid           TEXT NOT NULL,
  out_trade_no    TEXT NOT NULL,
  trade_type      TEXT NOT NULL CHECK (trade_type IN ('NATIVE', 'H5', 'JSAPI')),
  description     TEXT NOT NULL,
  total_fen       BIGINT NOT NULL CHECK (total_fen > 0),
  currency        TEXT NOT NULL,
  trade_state     TEXT NOT NULL CHECK (trade_state IN ('NOTPAY', 'SUCCESS', 'REFUND', 'CLOSED')),
  transaction_id  TEXT UNIQUE,
  prepay_id       TEXT NOT NULL UNIQUE,
  payer_token     TEXT NOT NULL UNIQUE,
  notify_url      TEXT NOT NULL,
  payer_client_ip TEXT,
  payer_openid    TEXT,
  refunded_fen    BIGINT NOT NULL DEFAULT 0 CHECK (refunded_fen >= 0 AND refunded_fen <= total_fen),
  created_at      TIMESTAMPTZ NOT NULL,
  paid_at         TIMESTAMPTZ,
  closed_at       TIMESTAMPTZ,
  expires_at      TIMESTAMPTZ NOT NULL,
  UNIQUE (mchid, out_trade_no)
);
CREATE TABLE IF NOT EXISTS sim_wechatpay.refunds (
  refund_id     TEXT PRIMARY KEY,
  trade_id      BIGINT NOT NULL REFERENCES sim_wechatpay.trades (id),
  mchid         TEXT NOT NULL,
  out_refund_no TEXT NOT NULL,
  refund_fen    BIGINT NOT NULL CHECK (refund_fen > 0),
  reason        TEXT,
  notify_url    TEXT,
  status        TEXT NOT NULL CHECK (status IN ('PROCESSING', 'SUCCESS', 'ABNORMAL', 'CLOSED')),
  outcome       TEXT NOT NULL CHECK (outcome IN ('SUCCESS', 'ABNORMAL', 'CLOSED')),
  created_at    TIMESTAMPTZ NOT NULL,
  completes_at  TIMESTAMPTZ NOT NULL,
  success_time  TIMESTAMPTZ,
  UNIQUE (mchid, out_refund_no)
);
CREATE INDEX IF NOT EXISTS refunds_due ON sim_wechatpay.refunds (completes_at) WHERE status = 'PROCESSING';
CREATE TABLE IF NOT EXISTS sim_wechatpay.notifications (
  id              BIGSERIAL PRIMARY KEY,
  notification_id TEXT NOT NULL,
  mchid           TEXT NOT NULL,
  out_trade_no    TEXT NOT NULL,
  notify_url      TEXT NOT NULL,
  event_type      TEXT NOT NULL,
  summary         TEXT NOT NULL,
  original_type   TEXT NOT NULL,
  resource        JSONB NOT NULL,
  state           TEXT NOT NULL CHECK (state IN ('pending', 'held', 'delivered', 'abandoned')),
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_attempt_at TIMESTAMPTZ NOT NULL,
  created_at      TIMESTAMPTZ NOT NULL,
  delivered_at    TIMESTAMPTZ
);
CREATE INDEX IF NOT EXISTS notifications_due ON sim_wechatpay.notifications (next_attempt_at, id) WHERE state = 'pending';
${notificationAttemptsTableStatement(simulatorSchema)}
-- Each trade bill as built for a tradebill request and served by its download_url: built once,
-- so the file downloaded is exactly the one hash_value names, whatever faults change meanwhile.
CREATE TABLE IF NOT EXISTS sim_wechatpay.bills (
  id         BIGSERIAL PRIMARY KEY,
  mchid      TEXT NOT NULL,
  bill_date  TEXT NOT NULL,
  content    BYTEA NOT NULL,
  sha1       TEXT NOT NULL,
  created_at TIMESTAMPTZ NOT NULL
);
${faultsTableStatement(simulatorSchema, 'out_trade_no')}
`;

export { withTransaction, type Executor };

/** Creates the schema once, even when several simulator processes start together. */
export async function ensureSchema(pool: pg.Pool): Promise<void> {
  await ensureSchemaOnce(pool, simulatorSchema, schemaStatements);
}

const platformKeySettings = ['platform_key_id', 'platform_private_key', 'platform_public_key'] as const;

/**
 * The simulator's own platform key pair ("WeChat Pay's public key") with its
 * PUB_KEY_ID_…, made once and kept in the schema, so the key configured in Fen
 * stays valid across restarts.
 */
export async function loadPlatformKey(pool: pg.Pool, given?: PlatformKey): Promise<PlatformKey> {
  const candidate = given ?? generatePlatformKey();
  const conflict = given ? 'DO UPDATE SET value = EXCLUDED.value' : 'DO NOTHING';
  await pool.query(
    `INSERT INTO sim_wechatpay.settings (name, value) VALUES ($1, $2), ($3, $4), ($5, $6) ON CONFLICT (name) ${conflict}`,
    [platformKeySettings[0], candidate.publicKeyId, platformKeySettings[1], candidate.privateKeyPem, platformKeySettings[2], candidate.publicKeyPem],
  );
  const rows = await pool.query<{ name: string; value: string }>('SELECT name, value FROM sim_wechatpay.settings WHERE name = ANY($1)', [platformKeySettings]);
  const byName = new Map(rows.rows.map((row) => [row.name, row.value]));
  return {
    publicKeyId: byName.get('platform_key_id') ?? '',
    privateKeyPem: byName.get('platform_private_key') ?? '',
    publicKeyPem: byName.get('platform_public_key') ?? '',
  };
}

function generatePlatformKey(): PlatformKey {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  // WeChat Pay's public key ids are PUB_KEY_ID_ followed by 32 digits.
  let idDigits = '';
  for (let index = 0; index < 32; index += 1) idDigits += String(randomInt(10));
  return { publicKeyId: `PUB_KEY_ID_${idDigits}`, privateKeyPem: privateKey, publicKeyPem: publicKey };
}

// ---------------------------------------------------------------------------
// Merchants

export interface SimMerchant {
  mchId: string;
  apiV3Key: string;
  /** The AppIDs bound to the merchant; empty: any AppID is accepted. */
  appIds: string[];
}

export async function upsertMerchant(executor: Executor, merchant: SimMerchant, now: Date): Promise<void> {
  await executor.query(
    `INSERT INTO sim_wechatpay.merchants (mchid, api_v3_key, app_ids, created_at) VALUES ($1, $2, $3, $4)
     ON CONFLICT (mchid) DO UPDATE SET api_v3_key = EXCLUDED.api_v3_key, app_ids = EXCLUDED.app_ids`,
    [merchant.mchId, merchant.apiV3Key, merchant.appIds, now],
  );
}

/** Adds (or replaces) one of a merchant's API certificate keys; several serials may be valid at once, as during a rotation. */
export async function upsertMerchantKey(executor: Executor, mchId: string, serialNo: string, publicKeyPem: string, now: Date): Promise<void> {
  await executor.query(
    `INSERT INTO sim_wechatpay.merchant_keys (mchid, serial_no, public_key_pem, created_at) VALUES ($1, $2, $3, $4)
     ON CONFLICT (mchid, serial_no) DO UPDATE SET public_key_pem = EXCLUDED.public_key_pem`,
    [mchId, serialNo, publicKeyPem, now],
  );
}

export async function findMerchant(executor: Executor, mchId: string): Promise<SimMerchant | undefined> {
  const result = await executor.query('SELECT mchid, api_v3_key, app_ids FROM sim_wechatpay.merchants WHERE mchid = $1', [mchId]);
  const row = result.rows[0] as { mchid: string; api_v3_key: string; app_ids: string[] } | undefined;
  return row && { mchId: row.mchid, apiV3Key: row.api_v3_key, appIds: row.app_ids };
}

export async function findMerchantKeys(executor: Executor, mchId: string): Promise<Map<string, string>> {
  const result = await executor.query<{ serial_no: string; public_key_pem: string }>(
    'SELECT serial_no, public_key_pem FROM sim_wechatpay.merchant_keys WHERE mchid = $1',
    [mchId],
  );
  return new Map(result.rows.map((row) => [row.serial_no, row.public_key_pem]));
}

// ---------------------------------------------------------------------------
// Trades

export const simTradeStates = ['NOTPAY', 'SUCCESS', 'REFUND', 'CLOSED'] as const;
/** The states the simulated products reach (payment-code states such as USERPAYING and REVOKED do not occur here). */
export type SimTradeState = (typeof simTradeStates)[number];
export type SimTradeType = 'NATIVE' | 'H5' | 'JSAPI';

export interface SimTrade {
  id: number;
  mchId: string;
  appId: string;
  outTradeNo: string;
  tradeType: SimTradeType;
  description: string;
  totalFen: bigint;
  currency: string;
  tradeState: SimTradeState;
  transactionId: string | null;
  prepayId: string;
  payerToken: string;
  notifyUrl: string;
  payerClientIp: string | null;
  payerOpenId: string | null;
  refundedFen: bigint;
  createdAt: Date;
  paidAt: Date | null;
  closedAt: Date | null;
  expiresAt: Date;
}

function tradeFromRow(row: Record<string, unknown>): SimTrade {
  return {
    id: Number(row.id),
    mchId: row.mchid as string,
    appId: row.appid as string,
    outTradeNo: row.out_trade_no as string,
    tradeType: row.trade_type as SimTradeType,
    description: row.description as string,
    // int8 arrives as bigint or as text depending on the pool's parsers.
    totalFen: BigInt(String(row.total_fen)),
    currency: row.currency as string,
    tradeState: row.trade_state as SimTradeState,
    transactionId: row.transaction_id as string | null,
    prepayId: row.prepay_id as string,
    payerToken: row.payer_token as string,
    notifyUrl: row.notify_url as string,
    payerClientIp: row.payer_client_ip as string | null,
    payerOpenId: row.payer_openid as string | null,
    refundedFen: BigInt(String(row.refunded_fen)),
    createdAt: row.created_at as Date,
    paidAt: row.paid_at as Date | null,
    closedAt: row.closed_at as Date | null,
    expiresAt: row.expires_at as Date,
  };
}

export type NewTrade = Omit<SimTrade, 'id' | 'tradeState' | 'transactionId' | 'refundedFen' | 'paidAt' | 'closedAt'>;

/** Inserts the trade unless (mchid, out_trade_no) exists; either way returns the stored one and whether it is new. */
export async function insertTrade(executor: Executor, trade: NewTrade): Promise<{ trade: SimTrade; created: boolean }> {
  const inserted = await executor.query(
    `INSERT INTO sim_wechatpay.trades (mchid, appid, out_trade_no, trade_type, description, total_fen, currency, trade_state,
       prepay_id, payer_token, notify_url, payer_client_ip, payer_openid, created_at, expires_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, 'NOTPAY', $8, $9, $10, $11, $12, $13, $14)
     ON CONFLICT (mchid, out_trade_no) DO NOTHING RETURNING *`,
    [
      trade.mchId, trade.appId, trade.outTradeNo, trade.tradeType, trade.description, trade.totalFen.toString(), trade.currency,
      trade.prepayId, trade.payerToken, trade.notifyUrl, trade.payerClientIp, trade.payerOpenId, trade.createdAt, trade.expiresAt,
    ],
  );
  if (inserted.rows[0]) return { trade: tradeFromRow(inserted.rows[0]), created: true };
  const existing = await findTrade(executor, { mchId: trade.mchId, outTradeNo: trade.outTradeNo });
  if (!existing) throw new Error(`trade ${trade.outTradeNo} vanished after a conflicting insert`);
  return { trade: existing, created: false };
}

export interface TradeReference {
  id?: number;
  mchId?: string;
  outTradeNo?: string;
  transactionId?: string;
  payerToken?: string;
  prepayId?: string;
}

const tradeReferenceColumns: Record<keyof TradeReference, string> = {
  id: 'id',
  mchId: 'mchid',
  outTradeNo: 'out_trade_no',
  transactionId: 'transaction_id',
  payerToken: 'payer_token',
  prepayId: 'prepay_id',
};

/** Finds a trade by whichever references are given; `forUpdate` locks it for the caller's transaction. */
export async function findTrade(executor: Executor, reference: TradeReference, forUpdate = false): Promise<SimTrade | undefined> {
  const entries = (Object.entries(reference) as [keyof TradeReference, unknown][]).filter(([, value]) => value !== undefined);
  if (entries.length === 0) return undefined;
  const conditions = entries.map(([key], index) => `${tradeReferenceColumns[key]} = $${index + 1}`);
  const result = await executor.query(
    `SELECT * FROM sim_wechatpay.trades WHERE ${conditions.join(' AND ')} ORDER BY id LIMIT 1${forUpdate ? ' FOR UPDATE' : ''}`,
    entries.map(([, value]) => value),
  );
  return result.rows[0] ? tradeFromRow(result.rows[0]) : undefined;
}

export type TradeChange = Partial<Pick<SimTrade, 'tradeState' | 'transactionId' | 'payerOpenId' | 'refundedFen' | 'paidAt' | 'closedAt'>>;

const changeColumns: Record<keyof TradeChange, string> = {
  tradeState: 'trade_state',
  transactionId: 'transaction_id',
  payerOpenId: 'payer_openid',
  refundedFen: 'refunded_fen',
  paidAt: 'paid_at',
  closedAt: 'closed_at',
};

/** Applies a change only while the trade is still in `expectedState`, so two racing payers cannot both win. */
export async function updateTrade(executor: Executor, id: number, expectedState: SimTradeState, change: TradeChange): Promise<SimTrade | undefined> {
  const entries = Object.entries(change) as [keyof TradeChange, unknown][];
  const values: unknown[] = [id, expectedState];
  const assignments = entries.map(([key, value]) => {
    values.push(typeof value === 'bigint' ? value.toString() : value);
    return `${changeColumns[key]} = $${values.length}`;
  });
  const result = await executor.query(
    `UPDATE sim_wechatpay.trades SET ${assignments.join(', ')} WHERE id = $1 AND trade_state = $2 RETURNING *`,
    values,
  );
  return result.rows[0] ? tradeFromRow(result.rows[0]) : undefined;
}

// ---------------------------------------------------------------------------
// Refunds

export const simRefundStatuses = ['PROCESSING', 'SUCCESS', 'ABNORMAL', 'CLOSED'] as const;
export type SimRefundStatus = (typeof simRefundStatuses)[number];
export type SimRefundOutcome = Exclude<SimRefundStatus, 'PROCESSING'>;

export interface SimRefund {
  refundId: string;
  tradeId: number;
  mchId: string;
  outRefundNo: string;
  refundFen: bigint;
  reason: string | null;
  notifyUrl: string | null;
  status: SimRefundStatus;
  /** What the refund becomes when it completes (SUCCESS unless a fault says otherwise). */
  outcome: SimRefundOutcome;
  createdAt: Date;
  completesAt: Date;
  successTime: Date | null;
}

function refundFromRow(row: Record<string, unknown>): SimRefund {
  return {
    refundId: row.refund_id as string,
    tradeId: Number(row.trade_id),
    mchId: row.mchid as string,
    outRefundNo: row.out_refund_no as string,
    refundFen: BigInt(String(row.refund_fen)),
    reason: row.reason as string | null,
    notifyUrl: row.notify_url as string | null,
    status: row.status as SimRefundStatus,
    outcome: row.outcome as SimRefundOutcome,
    createdAt: row.created_at as Date,
    completesAt: row.completes_at as Date,
    successTime: row.success_time as Date | null,
  };
}

export async function findRefund(executor: Executor, reference: { mchId?: string; outRefundNo: string }, forUpdate = false): Promise<SimRefund | undefined> {
  const byMerchant = reference.mchId !== undefined;
  const result = await executor.query(
    `SELECT * FROM sim_wechatpay.refunds WHERE out_refund_no = $1${byMerchant ? ' AND mchid = $2' : ''} ORDER BY created_at LIMIT 1${forUpdate ? ' FOR UPDATE' : ''}`,
    byMerchant ? [reference.outRefundNo, reference.mchId] : [reference.outRefundNo],
  );
  return result.rows[0] ? refundFromRow(result.rows[0]) : undefined;
}

export async function insertRefund(executor: Executor, refund: SimRefund): Promise<void> {
  await executor.query(
    `INSERT INTO sim_wechatpay.refunds (refund_id, trade_id, mchid, out_refund_no, refund_fen, reason, notify_url, status, outcome, created_at, completes_at, success_time)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
    [
      refund.refundId, refund.tradeId, refund.mchId, refund.outRefundNo, refund.refundFen.toString(), refund.reason, refund.notifyUrl,
      refund.status, refund.outcome, refund.createdAt, refund.completesAt, refund.successTime,
    ],
  );
}

/** Processing refunds whose time has come (or all processing ones, or one by number), locked for completion. */
export async function claimProcessingRefunds(
  executor: Executor,
  filter: { dueBy?: Date; outRefundNo?: string; mchId?: string },
  limit: number,
): Promise<SimRefund[]> {
  const conditions = [`status = 'PROCESSING'`];
  const values: unknown[] = [];
  const add = (condition: string, value: unknown) => {
    values.push(value);
    conditions.push(condition.replace('?', `$${values.length}`));
  };
  if (filter.dueBy) add('completes_at <= ?', filter.dueBy);
  if (filter.outRefundNo) add('out_refund_no = ?', filter.outRefundNo);
  if (filter.mchId) add('mchid = ?', filter.mchId);
  values.push(limit);
  const result = await executor.query(
    `SELECT * FROM sim_wechatpay.refunds WHERE ${conditions.join(' AND ')} ORDER BY completes_at, refund_id LIMIT $${values.length} FOR UPDATE SKIP LOCKED`,
    values,
  );
  return result.rows.map(refundFromRow);
}

export async function finishRefund(executor: Executor, refundId: string, status: SimRefundOutcome, successTime: Date | null): Promise<SimRefund | undefined> {
  const result = await executor.query(
    `UPDATE sim_wechatpay.refunds SET status = $2, success_time = $3 WHERE refund_id = $1 AND status = 'PROCESSING' RETURNING *`,
    [refundId, status, successTime],
  );
  return result.rows[0] ? refundFromRow(result.rows[0]) : undefined;
}
