import { sql, type Kysely } from 'kysely';

/**
 * The foundation schema: audit log, merchants, apps and their secrets, request
 * nonces, idempotency records, users and sessions, and the ledger.
 * Money is BIGINT minor units everywhere; every merchant-owned table carries
 * merchant_id so the schema can later be sharded by it.
 */
const statements = String.raw`
CREATE FUNCTION fen_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;

-- Audit log: hash-chained, append-only. audit_head holds the last sequence and
-- hash; appending locks it, so sequences are gapless and the chain has one order.
CREATE TABLE audit_log (
  sequence      BIGINT PRIMARY KEY CHECK (sequence > 0),
  id            TEXT NOT NULL UNIQUE,
  occurred_at   TIMESTAMPTZ NOT NULL,
  actor_type    TEXT NOT NULL CHECK (actor_type IN ('operator', 'merchant_user', 'app', 'system')),
  actor_id      TEXT,
  actor_roles   TEXT[] NOT NULL DEFAULT '{}',
  ip            TEXT,
  action        TEXT NOT NULL,
  target_type   TEXT NOT NULL,
  target_id     TEXT,
  merchant_id   TEXT,
  before        JSONB,
  after         JSONB,
  previous_hash TEXT NOT NULL,
  hash          TEXT NOT NULL
);
CREATE INDEX audit_log_target ON audit_log (target_type, target_id);
CREATE INDEX audit_log_merchant ON audit_log (merchant_id, sequence) WHERE merchant_id IS NOT NULL;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log FOR EACH ROW EXECUTE FUNCTION fen_refuse_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log FOR EACH STATEMENT EXECUTE FUNCTION fen_refuse_change();

CREATE TABLE audit_head (
  singleton BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
  sequence  BIGINT NOT NULL,
  hash      TEXT NOT NULL
);
INSERT INTO audit_head (singleton, sequence, hash) VALUES (TRUE, 0, repeat('0', 64));

-- Merchants and their onboarding documents.
CREATE TABLE merchants (
  id                               TEXT PRIMARY KEY,
  name                             TEXT NOT NULL,
  short_name                       TEXT,
  status                           TEXT NOT NULL CHECK (status IN ('pending_review', 'active', 'rejected', 'frozen', 'closed')),
  status_reason                    TEXT,
  business_licence_no              TEXT NOT NULL,
  legal_representative             TEXT NOT NULL,
  contact_name                     TEXT NOT NULL,
  contact_phone                    TEXT NOT NULL,
  contact_email                    TEXT NOT NULL,
  settlement_bank_name             TEXT NOT NULL,
  settlement_account_name          TEXT NOT NULL,
  settlement_account_number_sealed TEXT NOT NULL,
  settlement_account_number_last4  TEXT NOT NULL,
  fee_rate_basis_points            BIGINT NOT NULL DEFAULT 60 CHECK (fee_rate_basis_points BETWEEN 0 AND 10000),
  fee_minimum_minor                BIGINT NOT NULL DEFAULT 0 CHECK (fee_minimum_minor >= 0),
  fee_maximum_minor                BIGINT CHECK (fee_maximum_minor IS NULL OR fee_maximum_minor >= fee_minimum_minor),
  settlement_cycle                 TEXT NOT NULL DEFAULT 'T1' CHECK (settlement_cycle IN ('T0', 'T1', 'D1', 'manual')),
  risk_level                       TEXT NOT NULL DEFAULT 'normal' CHECK (risk_level IN ('low', 'normal', 'high')),
  reviewed_by                      TEXT,
  reviewed_at                      TIMESTAMPTZ,
  created_at                       TIMESTAMPTZ NOT NULL,
  updated_at                       TIMESTAMPTZ NOT NULL
);
-- One live merchant per business licence; a rejected or closed one may apply again.
CREATE UNIQUE INDEX merchants_licence_live ON merchants (business_licence_no) WHERE status NOT IN ('rejected', 'closed');
CREATE INDEX merchants_status ON merchants (status, id);
CREATE INDEX merchants_name ON merchants (lower(name));

-- Apps: the systems that call the merchant API on a merchant's behalf.
CREATE TABLE apps (
  id              TEXT PRIMARY KEY,
  merchant_id     TEXT NOT NULL REFERENCES merchants (id),
  name            TEXT NOT NULL,
  status          TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
  notify_url      TEXT,
  ip_allowlist    TEXT[] NOT NULL DEFAULT '{}',
  enabled_methods TEXT[] NOT NULL DEFAULT '{}',
  created_at      TIMESTAMPTZ NOT NULL,
  updated_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX apps_merchant ON apps (merchant_id, id);

-- An app's secrets, sealed. A rotated secret keeps working until retires_at.
CREATE TABLE app_secrets (
  id            TEXT PRIMARY KEY,
  app_id        TEXT NOT NULL REFERENCES apps (id),
  merchant_id   TEXT NOT NULL,
  kind          TEXT NOT NULL CHECK (kind IN ('api', 'webhook')),
  secret_sealed TEXT NOT NULL,
  created_at    TIMESTAMPTZ NOT NULL,
  retires_at    TIMESTAMPTZ
);
CREATE INDEX app_secrets_app ON app_secrets (app_id, kind, created_at DESC);

-- Nonces seen within the signature window; a second use is a replay.
CREATE TABLE api_nonces (
  app_id     TEXT NOT NULL,
  nonce      TEXT NOT NULL,
  expires_at TIMESTAMPTZ NOT NULL,
  PRIMARY KEY (app_id, nonce)
);
CREATE INDEX api_nonces_expiry ON api_nonces (expires_at);

-- Idempotency records: the first response to a key, replayed byte for byte.
CREATE TABLE idempotency_keys (
  app_id                TEXT NOT NULL,
  key                   TEXT NOT NULL,
  merchant_id           TEXT NOT NULL,
  method                TEXT NOT NULL,
  path                  TEXT NOT NULL,
  request_hash          TEXT NOT NULL,
  state                 TEXT NOT NULL CHECK (state IN ('in_progress', 'completed')),
  lease_expires_at      TIMESTAMPTZ NOT NULL,
  response_status       INTEGER,
  response_content_type TEXT,
  response_body         TEXT,
  created_at            TIMESTAMPTZ NOT NULL,
  completed_at          TIMESTAMPTZ,
  PRIMARY KEY (app_id, key),
  CHECK (state = 'in_progress' OR (response_status IS NOT NULL AND response_body IS NOT NULL))
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

-- Operators and merchant users.
CREATE TABLE users (
  id                 TEXT PRIMARY KEY,
  kind               TEXT NOT NULL CHECK (kind IN ('operator', 'merchant_user')),
  merchant_id        TEXT REFERENCES merchants (id),
  email              TEXT NOT NULL,
  name               TEXT NOT NULL,
  password_hash      TEXT NOT NULL,
  totp_secret_sealed TEXT,
  roles              TEXT[] NOT NULL DEFAULT '{}',
  status             TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
  failed_login_count INTEGER NOT NULL DEFAULT 0,
  locked_until       TIMESTAMPTZ,
  last_login_at      TIMESTAMPTZ,
  created_at         TIMESTAMPTZ NOT NULL,
  updated_at         TIMESTAMPTZ NOT NULL,
  CHECK ((kind = 'operator') = (merchant_id IS NULL))
);
CREATE UNIQUE INDEX users_email ON users (lower(email));

-- A TOTP code is accepted once: the time step it was used in is remembered.
CREATE TABLE totp_used_steps (
  user_id   TEXT NOT NULL REFERENCES users (id),
  time_step BIGINT NOT NULL,
  PRIMARY KEY (user_id, time_step)
);

CREATE TABLE sessions (
  token_hash   TEXT PRIMARY KEY,
  user_id      TEXT NOT NULL REFERENCES users (id),
  csrf_token   TEXT NOT NULL,
  ip           TEXT,
  user_agent   TEXT,
  created_at   TIMESTAMPTZ NOT NULL,
  expires_at   TIMESTAMPTZ NOT NULL,
  revoked_at   TIMESTAMPTZ
);
CREATE INDEX sessions_user ON sessions (user_id);

-- Ledger. Balances live in slots: an ordinary account has one, a hot platform
-- account has many, and a posting lands on one slot chosen at random, so the
-- payments that all touch a hot account do not queue on one row lock
-- (DESIGN.md §3.6). An account's balance is the sum of its slots.
CREATE TABLE ledger_accounts (
  id           TEXT PRIMARY KEY,
  code         TEXT NOT NULL,
  currency     TEXT NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  type         TEXT NOT NULL CHECK (type IN ('asset', 'liability', 'equity', 'revenue', 'expense')),
  merchant_id  TEXT,
  slot_count   INTEGER NOT NULL CHECK (slot_count BETWEEN 1 AND 256),
  no_overdraft BOOLEAN NOT NULL DEFAULT FALSE,
  created_at   TIMESTAMPTZ NOT NULL,
  UNIQUE (code, currency),
  -- An account that must not be overdrawn is checked under one row lock, so it has one slot.
  CHECK (NOT no_overdraft OR slot_count = 1)
);
CREATE INDEX ledger_accounts_merchant ON ledger_accounts (merchant_id) WHERE merchant_id IS NOT NULL;

-- balance is signed: debits positive, credits negative. 'debit' guards keep an
-- asset at or above zero; 'credit' guards keep a liability (what Fen owes) at or above zero.
CREATE TABLE ledger_balance_slots (
  account_id TEXT NOT NULL REFERENCES ledger_accounts (id),
  slot       INTEGER NOT NULL CHECK (slot >= 0),
  balance    BIGINT NOT NULL DEFAULT 0,
  guard      TEXT NOT NULL CHECK (guard IN ('none', 'debit', 'credit')),
  PRIMARY KEY (account_id, slot),
  CONSTRAINT ledger_no_overdraft CHECK (guard = 'none' OR (guard = 'debit' AND balance >= 0) OR (guard = 'credit' AND balance <= 0))
);

CREATE TABLE journal_entries (
  id             TEXT PRIMARY KEY,
  dedupe_key     TEXT NOT NULL UNIQUE,
  kind           TEXT NOT NULL,
  reference_type TEXT,
  reference_id   TEXT,
  merchant_id    TEXT,
  description    TEXT,
  posting_count  INTEGER NOT NULL CHECK (posting_count BETWEEN 2 AND 64),
  postings_hash  TEXT NOT NULL,
  effective_at   TIMESTAMPTZ NOT NULL,
  created_at     TIMESTAMPTZ NOT NULL
);
CREATE INDEX journal_entries_reference ON journal_entries (reference_type, reference_id);
CREATE INDEX journal_entries_effective ON journal_entries (effective_at);

CREATE TABLE ledger_postings (
  id         BIGSERIAL PRIMARY KEY,
  entry_id   TEXT NOT NULL REFERENCES journal_entries (id),
  account_id TEXT NOT NULL,
  slot       INTEGER NOT NULL,
  currency   TEXT NOT NULL,
  amount     BIGINT NOT NULL CHECK (amount <> 0),
  created_at TIMESTAMPTZ NOT NULL,
  FOREIGN KEY (account_id, slot) REFERENCES ledger_balance_slots (account_id, slot)
);
CREATE INDEX ledger_postings_entry ON ledger_postings (entry_id);
CREATE INDEX ledger_postings_account ON ledger_postings (account_id, id);

CREATE TRIGGER journal_entries_append_only BEFORE UPDATE OR DELETE ON journal_entries FOR EACH ROW EXECUTE FUNCTION fen_refuse_change();
CREATE TRIGGER journal_entries_no_truncate BEFORE TRUNCATE ON journal_entries FOR EACH STATEMENT EXECUTE FUNCTION fen_refuse_change();
CREATE TRIGGER ledger_postings_append_only BEFORE UPDATE OR DELETE ON ledger_postings FOR EACH ROW EXECUTE FUNCTION fen_refuse_change();
CREATE TRIGGER ledger_postings_no_truncate BEFORE TRUNCATE ON ledger_postings FOR EACH STATEMENT EXECUTE FUNCTION fen_refuse_change();

-- The database checks balance again, whatever the service did: every statement's
-- postings sum to zero per entry and currency, and each posting's currency is its account's.
CREATE FUNCTION ledger_postings_check_statement() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM inserted GROUP BY entry_id, currency HAVING sum(amount) <> 0) THEN
    RAISE EXCEPTION 'unbalanced journal entry: postings must sum to zero per currency' USING ERRCODE = 'check_violation';
  END IF;
  IF EXISTS (SELECT 1 FROM inserted i JOIN ledger_accounts a ON a.id = i.account_id WHERE a.currency <> i.currency) THEN
    RAISE EXCEPTION 'posting currency differs from its account''s' USING ERRCODE = 'check_violation';
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER ledger_postings_balanced AFTER INSERT ON ledger_postings
  REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION ledger_postings_check_statement();

-- At commit, an entry has exactly the postings it declared: none lost, none added later.
CREATE FUNCTION journal_entries_check_complete() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  found_count INTEGER;
BEGIN
  SELECT count(*) INTO found_count FROM ledger_postings WHERE entry_id = NEW.id;
  IF found_count <> NEW.posting_count THEN
    RAISE EXCEPTION 'journal entry % has % postings, declared %', NEW.id, found_count, NEW.posting_count USING ERRCODE = 'check_violation';
  END IF;
  RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER journal_entries_complete AFTER INSERT ON journal_entries
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION journal_entries_check_complete();
`;

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql.raw(statements).execute(db);
}
