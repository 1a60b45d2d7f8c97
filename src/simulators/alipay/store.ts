import { generateKeyPairSync } from 'node:crypto';
import type pg from 'pg';
import { faultsTableStatement } from '../shared/fault-store.js';
import { notificationAttemptsTableStatement } from '../shared/notification-delivery.js';
import { ensureSchemaOnce, withTransaction, type Executor, type SimulatorSchema } from '../shared/transactions.js';

/**
 * The simulator's own state, in its own schema `sim_alipay`, created by the
 * simulator when it starts — so it survives restarts, runs as its own process,
 * and never touches Fen's tables. Amounts are BIGINT fen, as everywhere.
 */

export const simulatorSchema = 'sim_alipay' satisfies SimulatorSchema;

const schemaStatements = `
CREATE SCHEMA IF NOT EXISTS sim_alipay;
CREATE TABLE IF NOT EXISTS sim_alipay.settings (
  name  TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sim_alipay.apps (
  app_id         TEXT PRIMARY KEY,
  public_key_pem TEXT NOT NULL,
  seller_id      TEXT NOT NULL,
  seller_email   TEXT NOT NULL,
  created_at     TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS sim_alipay.trades (
  trade_no       TEXT PRIMARY KEY,
  app_id         TEXT NOT NULL REFERENCES sim_alipay.apps (app_id),
  out_trade_no   TEXT NOT NULL,
  product_code   TEXT NOT NULL,
  subject        TEXT NOT NULL,
  body           TEXT,
  total_fen      BIGINT NOT NULL CHECK (total_fen > 0),
  status         TEXT NOT NULL CHECK (status IN ('PRECREATED', 'WAIT_BUYER_PAY', 'TRADE_SUCCESS', 'TRADE_CLOSED', 'TRADE_FINISHED')),
  payer_token    TEXT NOT NULL UNIQUE,
  notify_url     TEXT,
  return_url     TEXT,
  buyer_id       TEXT,
  buyer_logon_id TEXT,
  refunded_fen   BIGINT NOT NULL DEFAULT 0 CHECK (refunded_fen >= 0 AND refunded_fen <= total_fen),
  created_at     TIMESTAMPTZ NOT NULL,
  opened_at      TIMESTAMPTZ,
  paid_at        TIMESTAMPTZ,
  closed_at      TIMESTAMPTZ,
  expires_at     TIMESTAMPTZ NOT NULL,
  UNIQUE (app_id, out_trade_no)
);
CREATE TABLE IF NOT EXISTS sim_alipay.refunds (
  trade_no       TEXT NOT NULL REFERENCES sim_alipay.trades (trade_no),
  out_request_no TEXT NOT NULL,
  refund_fen     BIGINT NOT NULL CHECK (refund_fen > 0),
  refund_reason  TEXT,
  refunded_at    TIMESTAMPTZ NOT NULL,
  PRIMARY KEY (trade_no, out_request_no)
);
CREATE TABLE IF NOT EXISTS sim_alipay.notifications (
  id              BIGSERIAL PRIMARY KEY,
  notify_id       TEXT NOT NULL,
  trade_no        TEXT NOT NULL REFERENCES sim_alipay.trades (trade_no),
  out_trade_no    TEXT NOT NULL,
  notify_url      TEXT NOT NULL,
  trade_status    TEXT NOT NULL,
  fields          JSONB NOT NULL,
  state           TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'abandoned')),
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_attempt_at TIMESTAMPTZ NOT NULL,
  created_at      TIMESTAMPTZ NOT NULL,
  delivered_at    TIMESTAMPTZ
);
CREATE INDEX IF NOT EXISTS notifications_due ON sim_alipay.notifications (next_attempt_at, id) WHERE state = 'pending';
${notificationAttemptsTableStatement(simulatorSchema)}
${faultsTableStatement(simulatorSchema, 'out_trade_no')}
`;

export { withTransaction, type Executor };

/** Creates the schema once, even when several simulator processes start together. */
export async function ensureSchema(pool: pg.Pool): Promise<void> {
  await ensureSchemaOnce(pool, simulatorSchema, schemaStatements);
}

export interface SigningKey {
  privateKeyPem: string;
  publicKeyPem: string;
}

/**
 * The simulator's own RSA key pair ("Alipay's key"), made once and kept in the
 * schema, so the public key configured in Fen stays valid across restarts.
 */
export async function loadSigningKey(pool: pg.Pool, given?: SigningKey): Promise<SigningKey> {
  const candidate = given ?? generateSigningKey();
  if (given) {
    await pool.query(
      `INSERT INTO sim_alipay.settings (name, value) VALUES ('signing_private_key', $1), ('signing_public_key', $2)
       ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value`,
      [given.privateKeyPem, given.publicKeyPem],
    );
    return given;
  }
  await pool.query(
    `INSERT INTO sim_alipay.settings (name, value) VALUES ('signing_private_key', $1), ('signing_public_key', $2)
     ON CONFLICT (name) DO NOTHING`,
    [candidate.privateKeyPem, candidate.publicKeyPem],
  );
  const rows = await pool.query<{ name: string; value: string }>(
    `SELECT name, value FROM sim_alipay.settings WHERE name IN ('signing_private_key', 'signing_public_key')`,
  );
  const byName = new Map(rows.rows.map((row) => [row.name, row.value]));
  return { privateKeyPem: byName.get('signing_private_key') ?? '', publicKeyPem: byName.get('signing_public_key') ?? '' };
}

function generateSigningKey(): SigningKey {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  return { privateKeyPem: privateKey, publicKeyPem: publicKey };
}

// ---------------------------------------------------------------------------
// Apps

export interface SimApp {
  appId: string;
  publicKeyPem: string;
  sellerId: string;
  sellerEmail: string;
}

export async function upsertApp(executor: Executor, app: SimApp, now: Date): Promise<void> {
  await executor.query(
    `INSERT INTO sim_alipay.apps (app_id, public_key_pem, seller_id, seller_email, created_at) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (app_id) DO UPDATE SET public_key_pem = EXCLUDED.public_key_pem`,
    [app.appId, app.publicKeyPem, app.sellerId, app.sellerEmail, now],
  );
}

export async function findApp(executor: Executor, appId: string): Promise<SimApp | undefined> {
  const result = await executor.query('SELECT * FROM sim_alipay.apps WHERE app_id = $1', [appId]);
  const row = result.rows[0] as Record<string, string> | undefined;
  return row && { appId: row.app_id!, publicKeyPem: row.public_key_pem!, sellerId: row.seller_id!, sellerEmail: row.seller_email! };
}

// ---------------------------------------------------------------------------
// Trades

export const simTradeStatuses = ['PRECREATED', 'WAIT_BUYER_PAY', 'TRADE_SUCCESS', 'TRADE_CLOSED', 'TRADE_FINISHED'] as const;
/** Alipay's trade states, plus PRECREATED: a QR order nobody has scanned, which Alipay's query does not know yet. */
export type SimTradeStatus = (typeof simTradeStatuses)[number];

export interface SimTrade {
  tradeNo: string;
  appId: string;
  outTradeNo: string;
  productCode: string;
  subject: string;
  body: string | null;
  totalFen: bigint;
  status: SimTradeStatus;
  payerToken: string;
  notifyUrl: string | null;
  returnUrl: string | null;
  buyerId: string | null;
  buyerLogonId: string | null;
  refundedFen: bigint;
  createdAt: Date;
  openedAt: Date | null;
  paidAt: Date | null;
  closedAt: Date | null;
  expiresAt: Date;
}

function tradeFromRow(row: Record<string, unknown>): SimTrade {
  return {
    tradeNo: row.trade_no as string,
    appId: row.app_id as string,
    outTradeNo: row.out_trade_no as string,
    productCode: row.product_code as string,
    subject: row.subject as string,
    body: row.body as string | null,
    // int8 arrives as bigint or as text depending on the pool's parsers.
    totalFen: BigInt(String(row.total_fen)),
    status: row.status as SimTradeStatus,
    payerToken: row.payer_token as string,
    notifyUrl: row.notify_url as string | null,
    returnUrl: row.return_url as string | null,
    buyerId: row.buyer_id as string | null,
    buyerLogonId: row.buyer_logon_id as string | null,
    refundedFen: BigInt(String(row.refunded_fen)),
    createdAt: row.created_at as Date,
    openedAt: row.opened_at as Date | null,
    paidAt: row.paid_at as Date | null,
    closedAt: row.closed_at as Date | null,
    expiresAt: row.expires_at as Date,
  };
}

export type NewTrade = Omit<SimTrade, 'buyerId' | 'buyerLogonId' | 'refundedFen' | 'paidAt' | 'closedAt'>;

/** Inserts the trade unless (app, out_trade_no) exists; either way returns the stored one and whether it is new. */
export async function insertTrade(executor: Executor, trade: NewTrade): Promise<{ trade: SimTrade; created: boolean }> {
  const inserted = await executor.query(
    `INSERT INTO sim_alipay.trades (trade_no, app_id, out_trade_no, product_code, subject, body, total_fen, status,
       payer_token, notify_url, return_url, created_at, opened_at, expires_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
     ON CONFLICT (app_id, out_trade_no) DO NOTHING RETURNING *`,
    [
      trade.tradeNo, trade.appId, trade.outTradeNo, trade.productCode, trade.subject, trade.body, trade.totalFen.toString(),
      trade.status, trade.payerToken, trade.notifyUrl, trade.returnUrl, trade.createdAt, trade.openedAt, trade.expiresAt,
    ],
  );
  if (inserted.rows[0]) return { trade: tradeFromRow(inserted.rows[0]), created: true };
  const existing = await findTrade(executor, { appId: trade.appId, outTradeNo: trade.outTradeNo });
  if (!existing) throw new Error(`trade ${trade.outTradeNo} vanished after a conflicting insert`);
  return { trade: existing, created: false };
}

export interface TradeReference {
  appId?: string;
  outTradeNo?: string;
  tradeNo?: string;
  payerToken?: string;
}

/** Finds a trade by whichever reference is given; `forUpdate` locks it for the caller's transaction. */
export async function findTrade(executor: Executor, reference: TradeReference, forUpdate = false): Promise<SimTrade | undefined> {
  const conditions: string[] = [];
  const values: unknown[] = [];
  const add = (column: string, value: string | undefined): void => {
    if (value === undefined) return;
    values.push(value);
    conditions.push(`${column} = $${values.length}`);
  };
  add('app_id', reference.appId);
  add('trade_no', reference.tradeNo);
  add('out_trade_no', reference.outTradeNo);
  add('payer_token', reference.payerToken);
  if (conditions.length === 0) return undefined;
  const result = await executor.query(
    `SELECT * FROM sim_alipay.trades WHERE ${conditions.join(' AND ')} ORDER BY created_at LIMIT 1${forUpdate ? ' FOR UPDATE' : ''}`,
    values,
  );
  return result.rows[0] ? tradeFromRow(result.rows[0]) : undefined;
}

export type TradeChange = Partial<Pick<SimTrade, 'status' | 'buyerId' | 'buyerLogonId' | 'refundedFen' | 'openedAt' | 'paidAt' | 'closedAt'>>;

const changeColumns: Record<keyof TradeChange, string> = {
  status: 'status',
  buyerId: 'buyer_id',
  buyerLogonId: 'buyer_logon_id',
  refundedFen: 'refunded_fen',
  openedAt: 'opened_at',
  paidAt: 'paid_at',
  closedAt: 'closed_at',
};

/** Applies a change only while the trade is still in `expectedStatus`, so two racing payers cannot both win. */
export async function updateTrade(executor: Executor, tradeNo: string, expectedStatus: SimTradeStatus, change: TradeChange): Promise<SimTrade | undefined> {
  const entries = Object.entries(change) as [keyof TradeChange, unknown][];
  const values: unknown[] = [tradeNo, expectedStatus];
  const assignments = entries.map(([key, value]) => {
    values.push(typeof value === 'bigint' ? value.toString() : value);
    return `${changeColumns[key]} = $${values.length}`;
  });
  const result = await executor.query(
    `UPDATE sim_alipay.trades SET ${assignments.join(', ')} WHERE trade_no = $1 AND status = $2 RETURNING *`,
    values,
  );
  return result.rows[0] ? tradeFromRow(result.rows[0]) : undefined;
}

// ---------------------------------------------------------------------------
// Refunds

export interface SimRefund {
  tradeNo: string;
  outRequestNo: string;
  refundFen: bigint;
  refundReason: string | null;
  refundedAt: Date;
}

export async function findRefund(executor: Executor, tradeNo: string, outRequestNo: string): Promise<SimRefund | undefined> {
  const result = await executor.query('SELECT * FROM sim_alipay.refunds WHERE trade_no = $1 AND out_request_no = $2', [tradeNo, outRequestNo]);
  const row = result.rows[0] as Record<string, unknown> | undefined;
  if (!row) return undefined;
  return {
    tradeNo: row.trade_no as string,
    outRequestNo: row.out_request_no as string,
    refundFen: BigInt(String(row.refund_fen)),
    refundReason: row.refund_reason as string | null,
    refundedAt: row.refunded_at as Date,
  };
}

export async function insertRefund(executor: Executor, refund: SimRefund): Promise<void> {
  await executor.query(
    'INSERT INTO sim_alipay.refunds (trade_no, out_request_no, refund_fen, refund_reason, refunded_at) VALUES ($1, $2, $3, $4, $5)',
    [refund.tradeNo, refund.outRequestNo, refund.refundFen.toString(), refund.refundReason, refund.refundedAt],
  );
}
