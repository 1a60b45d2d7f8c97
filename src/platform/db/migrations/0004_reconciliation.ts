import { sql, type Kysely } from 'kysely';

/**
 * Reconciliation (对账): one batch per channel account per bill date, the
 * differences it finds, and the holding pool for Fen's records that sit on
 * either side of a day's cut-off. Money columns are BIGINT minor units; the
 * rules the service keeps are checked here a second time (a batch's net is its
 * payments less its refunds and fees; a resolved difference names how).
 *
 * Channel accounts gain the fee rate the channel is expected to charge (basis
 * points, half-up per line), which the matching compares each bill line's fee
 * with, and the Beijing time of day the daily reconciliation runs at.
 */
const statements = String.raw`
ALTER TABLE channel_accounts
  ADD COLUMN channel_fee_rate_basis_points BIGINT NOT NULL DEFAULT 60
    CHECK (channel_fee_rate_basis_points BETWEEN 0 AND 10000),
  ADD COLUMN recon_time TEXT NOT NULL DEFAULT '10:00'
    CHECK (recon_time ~ '^([01][0-9]|2[0-3]):[0-5][0-9]$');

-- Fen's side of a bill day is read by business time, per channel account.
CREATE INDEX recon_payments_paid ON payments (channel_account_id, paid_at) WHERE paid_at IS NOT NULL;
CREATE INDEX recon_refunds_succeeded ON refunds (succeeded_at) WHERE status = 'succeeded';
CREATE INDEX recon_exceptions_trade ON payment_exceptions (channel_trade_no);
CREATE INDEX recon_exceptions_created ON payment_exceptions (created_at);

CREATE TABLE recon_batches (
  id                      TEXT PRIMARY KEY,
  channel_account_id      TEXT NOT NULL REFERENCES channel_accounts (id),
  channel                 TEXT NOT NULL,
  mode                    TEXT NOT NULL CHECK (mode IN ('shared', 'own')),
  bill_date               DATE NOT NULL,
  status                  TEXT NOT NULL CHECK (status IN ('running', 'not_ready', 'failed', 'holding', 'differences', 'balanced')),
  currency                TEXT NOT NULL DEFAULT 'CNY',
  lines_channel           INTEGER NOT NULL DEFAULT 0 CHECK (lines_channel >= 0),
  lines_local             INTEGER NOT NULL DEFAULT 0 CHECK (lines_local >= 0),
  matched                 INTEGER NOT NULL DEFAULT 0 CHECK (matched >= 0),
  channel_payments_amount BIGINT NOT NULL DEFAULT 0 CHECK (channel_payments_amount >= 0),
  channel_refunds_amount  BIGINT NOT NULL DEFAULT 0 CHECK (channel_refunds_amount >= 0),
  -- Fees charged less fees handed back: negative on a day of more refunds than payments.
  channel_fee_amount      BIGINT NOT NULL DEFAULT 0,
  channel_net_amount      BIGINT NOT NULL DEFAULT 0,
  fees_booked_amount      BIGINT NOT NULL DEFAULT 0,
  ledger_net_amount       BIGINT,
  open_delta_amount       BIGINT,
  fund_flow_drift         BIGINT,
  run_count               INTEGER NOT NULL DEFAULT 0 CHECK (run_count >= 0),
  error_code              TEXT,
  error_message           TEXT,
  started_at              TIMESTAMPTZ,
  finished_at             TIMESTAMPTZ,
  created_at              TIMESTAMPTZ NOT NULL,
  updated_at              TIMESTAMPTZ NOT NULL,
  UNIQUE (channel_account_id, bill_date),
  CHECK (matched <= lines_channel),
  CHECK (channel_net_amount = channel_payments_amount - channel_refunds_amount - channel_fee_amount)
);
CREATE INDEX recon_batches_date ON recon_batches (bill_date DESC, id);

CREATE TABLE recon_differences (
  id                 TEXT PRIMARY KEY,
  batch_id           TEXT NOT NULL REFERENCES recon_batches (id),
  channel_account_id TEXT NOT NULL REFERENCES channel_accounts (id),
  bill_date          DATE NOT NULL,
  kind               TEXT NOT NULL CHECK (kind IN ('missing_local', 'missing_channel', 'amount_mismatch', 'status_mismatch', 'fee_mismatch', 'fund_flow', 'internal')),
  -- What the difference is about, the same on every run: re-runs never add a second one.
  dedupe_key         TEXT NOT NULL,
  line_kind          TEXT CHECK (line_kind IN ('payment', 'refund')),
  channel_trade_no   TEXT,
  out_trade_no       TEXT,
  out_refund_no      TEXT,
  payment_id         TEXT,
  refund_id          TEXT,
  merchant_id        TEXT,
  currency           TEXT NOT NULL,
  channel_amount     BIGINT CHECK (channel_amount >= 0),
  local_amount       BIGINT CHECK (local_amount >= 0),
  -- What Fen's books hold on channel_clearing for the record (its capture or refund entry).
  local_booked       BIGINT,
  channel_fee        BIGINT CHECK (channel_fee >= 0),
  expected_fee       BIGINT CHECK (expected_fee >= 0),
  channel_status     TEXT,
  local_status       TEXT,
  -- What channel_clearing must move by to agree with the channel (debit positive).
  delta              BIGINT NOT NULL,
  occurred_at        TIMESTAMPTZ,
  line_number        INTEGER,
  detail             TEXT NOT NULL,
  status             TEXT NOT NULL CHECK (status IN ('open', 'resolved', 'withdrawn')),
  resolution         TEXT CHECK (resolution IN ('notification_applied', 'exception_refund', 'suspense', 'trust_channel', 'trust_fen', 'accepted')),
  resolution_reason  TEXT,
  resolved_by        TEXT,
  resolved_at        TIMESTAMPTZ,
  entry_id           TEXT,
  created_at         TIMESTAMPTZ NOT NULL,
  updated_at         TIMESTAMPTZ NOT NULL,
  UNIQUE (channel_account_id, dedupe_key),
  CHECK ((status = 'resolved') = (resolution IS NOT NULL)),
  CHECK (status <> 'resolved' OR resolved_at IS NOT NULL)
);
CREATE INDEX recon_differences_batch ON recon_differences (batch_id, id);
CREATE INDEX recon_differences_open ON recon_differences (status, id) WHERE status = 'open';

-- Fen's records near a cut-off that the day's bill did not list (held, for up
-- to three days), and Fen's records that a bill of another day listed (matched).
CREATE TABLE recon_pool (
  channel_account_id TEXT NOT NULL REFERENCES channel_accounts (id),
  item_key           TEXT NOT NULL,
  item_type          TEXT NOT NULL CHECK (item_type IN ('payment', 'refund', 'exception')),
  item_id            TEXT NOT NULL,
  line_kind          TEXT NOT NULL CHECK (line_kind IN ('payment', 'refund')),
  payment_id         TEXT NOT NULL,
  merchant_id        TEXT,
  channel_trade_no   TEXT,
  currency           TEXT NOT NULL,
  amount             BIGINT NOT NULL CHECK (amount > 0),
  booked             BIGINT NOT NULL DEFAULT 0,
  business_at        TIMESTAMPTZ NOT NULL,
  origin_date        DATE NOT NULL,
  status             TEXT NOT NULL CHECK (status IN ('held', 'matched', 'expired')),
  matched_batch_id   TEXT REFERENCES recon_batches (id),
  created_at         TIMESTAMPTZ NOT NULL,
  updated_at         TIMESTAMPTZ NOT NULL,
  PRIMARY KEY (channel_account_id, item_key),
  CHECK ((status = 'matched') = (matched_batch_id IS NOT NULL))
);
-- Ids for rows made by set-based statements, in Fen's form (prefix, then a
-- lower-case ULID: 48 bits of milliseconds and 80 random bits), so a batch of
-- differences is one INSERT … SELECT rather than a round trip per row.
CREATE FUNCTION recon_new_id(prefix TEXT, at TIMESTAMPTZ) RETURNS TEXT LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  alphabet CONSTANT TEXT := '0123456789abcdefghjkmnpqrstvwxyz';
  ms BIGINT := floor(extract(epoch FROM at) * 1000);
  encoded TEXT := '';
  position INTEGER;
BEGIN
  FOR position IN 1 .. 10 LOOP
    encoded := substr(alphabet, (ms % 32)::INTEGER + 1, 1) || encoded;
    ms := ms / 32;
  END LOOP;
  FOR position IN 1 .. 16 LOOP
    encoded := encoded || substr(alphabet, floor(random() * 32)::INTEGER + 1, 1);
  END LOOP;
  RETURN prefix || '_' || encoded;
END $$;

CREATE INDEX recon_pool_held ON recon_pool (channel_account_id, origin_date) WHERE status = 'held';
`;

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql.raw(statements).execute(db);
}
