import { sql, type Kysely } from 'kysely';

/**
 * Channels, channel accounts and routes; payments, refunds and their exception
 * records; events for apps and every delivery attempt; alerts. Amounts are
 * BIGINT minor units, and the money rules are checked here a second time:
 * refunds can never exceed the payment, in flight or done.
 */
const statements = String.raw`
CREATE TABLE channel_accounts (
  id                   TEXT PRIMARY KEY,
  channel              TEXT NOT NULL CHECK (channel IN ('alipay', 'wechatpay', 'unionpay')),
  name                 TEXT NOT NULL,
  mode                 TEXT NOT NULL CHECK (mode IN ('shared', 'own')),
  merchant_id          TEXT REFERENCES merchants (id),
  status               TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
  methods              TEXT[] NOT NULL,
  settings             JSONB NOT NULL,
  secrets_sealed       TEXT NOT NULL,
  consecutive_failures INTEGER NOT NULL DEFAULT 0,
  circuit_open_until   TIMESTAMPTZ,
  created_at           TIMESTAMPTZ NOT NULL,
  updated_at           TIMESTAMPTZ NOT NULL,
  CHECK ((mode = 'own') = (merchant_id IS NOT NULL))
);

CREATE TABLE payment_routes (
  app_id             TEXT NOT NULL REFERENCES apps (id),
  merchant_id        TEXT NOT NULL,
  method             TEXT NOT NULL,
  channel_account_id TEXT NOT NULL REFERENCES channel_accounts (id),
  priority           INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (app_id, method, channel_account_id)
);

CREATE TABLE merchant_fee_plans (
  merchant_id           TEXT NOT NULL REFERENCES merchants (id),
  method                TEXT NOT NULL,
  rate_basis_points     BIGINT NOT NULL CHECK (rate_basis_points BETWEEN 0 AND 10000),
  minimum_minor         BIGINT NOT NULL DEFAULT 0 CHECK (minimum_minor >= 0),
  maximum_minor         BIGINT CHECK (maximum_minor IS NULL OR maximum_minor >= minimum_minor),
  PRIMARY KEY (merchant_id, method)
);

CREATE TABLE payments (
  id                  TEXT PRIMARY KEY,
  merchant_id         TEXT NOT NULL REFERENCES merchants (id),
  app_id              TEXT NOT NULL REFERENCES apps (id),
  out_trade_no        TEXT NOT NULL,
  amount              BIGINT NOT NULL CHECK (amount > 0),
  currency            TEXT NOT NULL,
  subject             TEXT NOT NULL,
  method              TEXT NOT NULL,
  channel             TEXT,
  channel_account_id  TEXT REFERENCES channel_accounts (id),
  account_mode        TEXT CHECK (account_mode IN ('shared', 'own')),
  status              TEXT NOT NULL CHECK (status IN ('created', 'paying', 'succeeded', 'failed', 'closed')),
  channel_trade_no    TEXT,
  qr_code             TEXT,
  pay_url             TEXT,
  -- What the payer does next when it is neither a QR code nor a URL: a channel's form, or app parameters.
  payer_action        JSONB,
  notify_url          TEXT,
  return_url          TEXT,
  client_ip           TEXT,
  metadata            JSONB,
  fee_amount          BIGINT NOT NULL DEFAULT 0 CHECK (fee_amount >= 0 AND fee_amount <= amount),
  fee_rate_basis_points BIGINT NOT NULL DEFAULT 0,
  refunded_amount     BIGINT NOT NULL DEFAULT 0 CHECK (refunded_amount >= 0),
  refunding_amount    BIGINT NOT NULL DEFAULT 0 CHECK (refunding_amount >= 0),
  refunded_fee_amount BIGINT NOT NULL DEFAULT 0 CHECK (refunded_fee_amount >= 0 AND refunded_fee_amount <= fee_amount),
  failure_code        TEXT,
  failure_message     TEXT,
  expires_at          TIMESTAMPTZ NOT NULL,
  paid_at             TIMESTAMPTZ,
  closed_at           TIMESTAMPTZ,
  query_attempts      INTEGER NOT NULL DEFAULT 0,
  created_at          TIMESTAMPTZ NOT NULL,
  updated_at          TIMESTAMPTZ NOT NULL,
  UNIQUE (app_id, out_trade_no),
  -- What is refunded and what is being refunded never exceed what was paid.
  CHECK (refunded_amount + refunding_amount <= amount),
  CHECK (status = 'succeeded' OR (refunded_amount = 0 AND refunding_amount = 0))
);
CREATE INDEX payments_merchant ON payments (merchant_id, id DESC);
CREATE INDEX payments_open ON payments (status, updated_at) WHERE status IN ('created', 'paying');
CREATE INDEX payments_expiry ON payments (expires_at) WHERE status IN ('created', 'paying');
CREATE INDEX payments_channel_trade ON payments (channel_trade_no) WHERE channel_trade_no IS NOT NULL;

CREATE TABLE refunds (
  id                TEXT PRIMARY KEY,
  merchant_id       TEXT NOT NULL,
  app_id            TEXT NOT NULL,
  payment_id        TEXT NOT NULL REFERENCES payments (id),
  out_refund_no     TEXT NOT NULL,
  amount            BIGINT NOT NULL CHECK (amount > 0),
  currency          TEXT NOT NULL,
  fee_refund_amount BIGINT NOT NULL DEFAULT 0 CHECK (fee_refund_amount >= 0),
  reason            TEXT,
  status            TEXT NOT NULL CHECK (status IN ('processing', 'succeeded', 'failed')),
  channel_refund_no TEXT,
  failure_code      TEXT,
  failure_message   TEXT,
  query_attempts    INTEGER NOT NULL DEFAULT 0,
  source            TEXT NOT NULL DEFAULT 'merchant' CHECK (source IN ('merchant', 'operator', 'exception')),
  created_at        TIMESTAMPTZ NOT NULL,
  updated_at        TIMESTAMPTZ NOT NULL,
  succeeded_at      TIMESTAMPTZ,
  UNIQUE (app_id, out_refund_no)
);
CREATE INDEX refunds_payment ON refunds (payment_id);
CREATE INDEX refunds_open ON refunds (status, updated_at) WHERE status = 'processing';

-- Money that arrived and must not count as a plain success: paid after close,
-- a second payment of one order, an amount that differs from the order.
CREATE TABLE payment_exceptions (
  id               TEXT PRIMARY KEY,
  merchant_id      TEXT NOT NULL,
  payment_id       TEXT NOT NULL REFERENCES payments (id),
  kind             TEXT NOT NULL CHECK (kind IN ('paid_after_close', 'duplicate_payment', 'amount_mismatch')),
  channel_trade_no TEXT NOT NULL,
  amount           BIGINT NOT NULL CHECK (amount > 0),
  currency         TEXT NOT NULL,
  status           TEXT NOT NULL CHECK (status IN ('open', 'refunding', 'refunded', 'resolved')),
  refund_id        TEXT,
  resolution       TEXT,
  created_at       TIMESTAMPTZ NOT NULL,
  updated_at       TIMESTAMPTZ NOT NULL,
  UNIQUE (payment_id, channel_trade_no)
);

CREATE TABLE events (
  id               TEXT PRIMARY KEY,
  merchant_id      TEXT NOT NULL,
  app_id           TEXT NOT NULL,
  type             TEXT NOT NULL,
  object_id        TEXT NOT NULL,
  body             TEXT NOT NULL,
  notify_url       TEXT,
  delivery_status  TEXT NOT NULL CHECK (delivery_status IN ('pending', 'delivered', 'failed', 'no_endpoint')),
  attempts         INTEGER NOT NULL DEFAULT 0,
  next_attempt_at  TIMESTAMPTZ,
  delivered_at     TIMESTAMPTZ,
  created_at       TIMESTAMPTZ NOT NULL,
  UNIQUE (object_id, type)
);
CREATE INDEX events_app ON events (app_id, id DESC);
CREATE INDEX events_due ON events (next_attempt_at) WHERE delivery_status = 'pending';

CREATE TABLE event_deliveries (
  event_id     TEXT NOT NULL REFERENCES events (id),
  attempt      INTEGER NOT NULL,
  merchant_id  TEXT NOT NULL,
  url          TEXT NOT NULL,
  attempted_at TIMESTAMPTZ NOT NULL,
  status_code  INTEGER,
  latency_ms   INTEGER NOT NULL,
  error        TEXT,
  manual       BOOLEAN NOT NULL DEFAULT FALSE,
  PRIMARY KEY (event_id, attempt)
);

CREATE TABLE alerts (
  id          TEXT PRIMARY KEY,
  kind        TEXT NOT NULL,
  severity    TEXT NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
  merchant_id TEXT,
  subject_id  TEXT,
  message     TEXT NOT NULL,
  details     JSONB,
  status      TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'acknowledged', 'closed')),
  created_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX alerts_open ON alerts (status, created_at DESC);
`;

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql.raw(statements).execute(db);
}
