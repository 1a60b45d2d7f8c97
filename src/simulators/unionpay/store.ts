import type pg from 'pg';
import { faultsTableStatement } from '../shared/fault-store.js';
import { notificationAttemptsTableStatement } from '../shared/notification-delivery.js';
import { ensureSchemaOnce, withTransaction, type Executor, type SimulatorSchema } from '../shared/transactions.js';

/**
 * The simulator's own state, in its own schema `sim_unionpay`, created by the
 * simulator when it starts — so it survives restarts, runs as its own process,
 * and never touches Fen's tables. Amounts are BIGINT fen, as everywhere.
 *
 * A payment (consumption, txnType 01) and a refund (txnType 04) are both
 * "transactions" as UnionPay sees them: each has its own orderId + txnTime
 * (which the merchant queries by) and its own queryId (UnionPay's number); a
 * refund points at its payment by orig_query_id.
 */

export const simulatorSchema = 'sim_unionpay' satisfies SimulatorSchema;

const schemaStatements = `
CREATE SCHEMA IF NOT EXISTS sim_unionpay;
CREATE TABLE IF NOT EXISTS sim_unionpay.settings (
  name  TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sim_unionpay.merchants (
  mer_id          TEXT PRIMARY KEY,
  certificate_pem TEXT NOT NULL,
  cert_id         TEXT NOT NULL,
  created_at      TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS sim_unionpay.transactions (
  query_id       TEXT PRIMARY KEY,
  mer_id         TEXT NOT NULL REFERENCES sim_unionpay.merchants (mer_id),
  order_id       TEXT NOT NULL,
  txn_time       TEXT NOT NULL,
  txn_type       TEXT NOT NULL CHECK (txn_type IN ('01', '04')),
  txn_sub_type   TEXT NOT NULL,
  biz_type       TEXT NOT NULL,
  channel_type   TEXT NOT NULL,
  txn_fen        BIGINT NOT NULL CHECK (txn_fen > 0),
  currency_code  TEXT NOT NULL,
  status         TEXT NOT NULL CHECK (status IN ('waiting', 'succeeded', 'failed')),
  result_code    TEXT,
  result_message TEXT,
  orig_query_id  TEXT REFERENCES sim_unionpay.transactions (query_id),
  refunded_fen   BIGINT NOT NULL DEFAULT 0 CHECK (refunded_fen >= 0 AND refunded_fen <= txn_fen),
  commodity_name TEXT,
  payer_token    TEXT UNIQUE,
  back_url       TEXT,
  front_url      TEXT,
  req_reserved   TEXT,
  pay_timeout_at TIMESTAMPTZ,
  trace_no       TEXT NOT NULL,
  trace_time     TEXT,
  settle_date    TEXT,
  created_at     TIMESTAMPTZ NOT NULL,
  completed_at   TIMESTAMPTZ,
  UNIQUE (mer_id, order_id, txn_time)
);
CREATE TABLE IF NOT EXISTS sim_unionpay.notifications (
  id              BIGSERIAL PRIMARY KEY,
  query_id        TEXT NOT NULL REFERENCES sim_unionpay.transactions (query_id),
  group_query_id  TEXT NOT NULL,
  order_id        TEXT NOT NULL,
  back_url        TEXT NOT NULL,
  fields          JSONB NOT NULL,
  state           TEXT NOT NULL CHECK (state IN ('held', 'pending', 'delivered', 'abandoned')),
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_attempt_at TIMESTAMPTZ NOT NULL,
  created_at      TIMESTAMPTZ NOT NULL,
  delivered_at    TIMESTAMPTZ
);
CREATE INDEX IF NOT EXISTS notifications_due ON sim_unionpay.notifications (next_attempt_at, id) WHERE state = 'pending';
${notificationAttemptsTableStatement(simulatorSchema)}
${faultsTableStatement(simulatorSchema, 'order_id')}
`;

export { withTransaction, type Executor };

/** Creates the schema once, even when several simulator processes start together. */
export async function ensureSchema(pool: pg.Pool): Promise<void> {
  await ensureSchemaOnce(pool, simulatorSchema, schemaStatements);
}

// ---------------------------------------------------------------------------
// Merchants

export interface SimMerchant {
  merId: string;
  certificatePem: string;
  certId: string;
}

export async function upsertMerchant(executor: Executor, merchant: SimMerchant, now: Date): Promise<void> {
  await executor.query(
    `INSERT INTO sim_unionpay.merchants (mer_id, certificate_pem, cert_id, created_at) VALUES ($1, $2, $3, $4)
     ON CONFLICT (mer_id) DO UPDATE SET certificate_pem = EXCLUDED.certificate_pem, cert_id = EXCLUDED.cert_id`,
    [merchant.merId, merchant.certificatePem, merchant.certId, now],
  );
}

export async function findMerchant(executor: Executor, merId: string): Promise<SimMerchant | undefined> {
  const result = await executor.query('SELECT mer_id, certificate_pem, cert_id FROM sim_unionpay.merchants WHERE mer_id = $1', [merId]);
  const row = result.rows[0] as Record<string, string> | undefined;
  return row && { merId: row.mer_id!, certificatePem: row.certificate_pem!, certId: row.cert_id! };
}

// ---------------------------------------------------------------------------
// Transactions

export const simTransactionStatuses = ['waiting', 'succeeded', 'failed'] as const;
export type SimTransactionStatus = (typeof simTransactionStatuses)[number];

export interface SimTransaction {
  queryId: string;
  merId: string;
  orderId: string;
  txnTime: string;
  txnType: '01' | '04';
  txnSubType: string;
  bizType: string;
  channelType: string;
  txnFen: bigint;
  currencyCode: string;
  status: SimTransactionStatus;
  /** origRespCode and its message once the transaction is final. */
  resultCode: string | null;
  resultMessage: string | null;
  origQueryId: string | null;
  refundedFen: bigint;
  commodityName: string | null;
  payerToken: string | null;
  backUrl: string | null;
  frontUrl: string | null;
  reqReserved: string | null;
  payTimeoutAt: Date | null;
  traceNo: string;
  /** MMddHHmmss, Beijing time, when UnionPay processed it. */
  traceTime: string | null;
  settleDate: string | null;
  createdAt: Date;
  completedAt: Date | null;
}

function transactionFromRow(row: Record<string, unknown>): SimTransaction {
  return {
    queryId: row.query_id as string,
    merId: row.mer_id as string,
    orderId: row.order_id as string,
    txnTime: row.txn_time as string,
    txnType: row.txn_type as '01' | '04',
    txnSubType: row.txn_sub_type as string,
    bizType: row.biz_type as string,
    channelType: row.channel_type as string,
    // int8 arrives as bigint or as text depending on the pool's parsers.
    txnFen: BigInt(String(row.txn_fen)),
    currencyCode: row.currency_code as string,
    status: row.status as SimTransactionStatus,
    resultCode: row.result_code as string | null,
    resultMessage: row.result_message as string | null,
    origQueryId: row.orig_query_id as string | null,
    refundedFen: BigInt(String(row.refunded_fen)),
    commodityName: row.commodity_name as string | null,
    payerToken: row.payer_token as string | null,
    backUrl: row.back_url as string | null,
    frontUrl: row.front_url as string | null,
    reqReserved: row.req_reserved as string | null,
    payTimeoutAt: row.pay_timeout_at as Date | null,
    traceNo: row.trace_no as string,
    traceTime: row.trace_time as string | null,
    settleDate: row.settle_date as string | null,
    createdAt: row.created_at as Date,
    completedAt: row.completed_at as Date | null,
  };
}

export type NewTransaction = Omit<SimTransaction, 'refundedFen' | 'completedAt'>;

const insertColumns = [
  'query_id', 'mer_id', 'order_id', 'txn_time', 'txn_type', 'txn_sub_type', 'biz_type', 'channel_type', 'txn_fen', 'currency_code', 'status',
  'result_code', 'result_message', 'orig_query_id', 'commodity_name', 'payer_token', 'back_url', 'front_url', 'req_reserved', 'pay_timeout_at',
  'trace_no', 'trace_time', 'settle_date', 'created_at',
] as const;

/** Inserts the transaction unless (merId, orderId, txnTime) exists; either way returns the stored one and whether it is new. */
export async function insertTransaction(executor: Executor, transaction: NewTransaction): Promise<{ transaction: SimTransaction; created: boolean }> {
  const values = [
    transaction.queryId, transaction.merId, transaction.orderId, transaction.txnTime, transaction.txnType, transaction.txnSubType,
    transaction.bizType, transaction.channelType, transaction.txnFen.toString(), transaction.currencyCode, transaction.status,
    transaction.resultCode, transaction.resultMessage, transaction.origQueryId, transaction.commodityName, transaction.payerToken,
    transaction.backUrl, transaction.frontUrl, transaction.reqReserved, transaction.payTimeoutAt, transaction.traceNo,
    transaction.traceTime, transaction.settleDate, transaction.createdAt,
  ];
  const placeholders = values.map((_value, index) => `$${index + 1}`).join(', ');
  const inserted = await executor.query(
    `INSERT INTO sim_unionpay.transactions (${insertColumns.join(', ')}) VALUES (${placeholders})
     ON CONFLICT (mer_id, order_id, txn_time) DO NOTHING RETURNING *`,
    values,
  );
  if (inserted.rows[0]) return { transaction: transactionFromRow(inserted.rows[0]), created: true };
  const existing = await findTransaction(executor, { merId: transaction.merId, orderId: transaction.orderId, txnTime: transaction.txnTime });
  if (!existing) throw new Error(`transaction ${transaction.orderId} vanished after a conflicting insert`);
  return { transaction: existing, created: false };
}

export type TransactionReference = { merId: string; orderId: string; txnTime: string } | { queryId: string } | { payerToken: string };

/** Finds a transaction by whichever reference is given; `forUpdate` locks it for the caller's transaction. */
export async function findTransaction(executor: Executor, reference: TransactionReference, forUpdate = false): Promise<SimTransaction | undefined> {
  const [where, values] =
    'queryId' in reference
      ? ['query_id = $1', [reference.queryId]]
      : 'payerToken' in reference
        ? ['payer_token = $1', [reference.payerToken]]
        : ['mer_id = $1 AND order_id = $2 AND txn_time = $3', [reference.merId, reference.orderId, reference.txnTime]];
  const result = await executor.query(`SELECT * FROM sim_unionpay.transactions WHERE ${where}${forUpdate ? ' FOR UPDATE' : ''}`, values);
  return result.rows[0] ? transactionFromRow(result.rows[0]) : undefined;
}

/** Orders of one merchant by orderId alone (any txnTime), newest first: for the admin API. */
export async function findTransactionsByOrderId(executor: Executor, orderId: string): Promise<SimTransaction[]> {
  const result = await executor.query('SELECT * FROM sim_unionpay.transactions WHERE order_id = $1 ORDER BY created_at DESC', [orderId]);
  return result.rows.map(transactionFromRow);
}

export type TransactionChange = Partial<Pick<SimTransaction, 'status' | 'resultCode' | 'resultMessage' | 'refundedFen' | 'traceTime' | 'settleDate' | 'completedAt'>>;

const changeColumns: Record<keyof TransactionChange, string> = {
  status: 'status',
  resultCode: 'result_code',
  resultMessage: 'result_message',
  refundedFen: 'refunded_fen',
  traceTime: 'trace_time',
  settleDate: 'settle_date',
  completedAt: 'completed_at',
};

/** Applies a change only while the transaction is still in `expectedStatus`, so two racing payers cannot both win. */
export async function updateTransaction(
  executor: Executor,
  queryId: string,
  expectedStatus: SimTransactionStatus,
  change: TransactionChange,
): Promise<SimTransaction | undefined> {
  const values: unknown[] = [queryId, expectedStatus];
  const assignments = (Object.entries(change) as [keyof TransactionChange, unknown][]).map(([key, value]) => {
    values.push(typeof value === 'bigint' ? value.toString() : value);
    return `${changeColumns[key]} = $${values.length}`;
  });
  const result = await executor.query(
    `UPDATE sim_unionpay.transactions SET ${assignments.join(', ')} WHERE query_id = $1 AND status = $2 RETURNING *`,
    values,
  );
  return result.rows[0] ? transactionFromRow(result.rows[0]) : undefined;
}
