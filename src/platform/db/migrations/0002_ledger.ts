import { sql, type Kysely } from 'kysely';

/**
 * The ledger's write path as one server-side function, so booking entries is
 * a single round trip instead of one per statement. The function only adds a
 * way in: the tables, CHECKs and triggers of 0001 still refuse anything
 * unbalanced, overdrawn or altered, whoever writes it.
 *
 * `ledger_post_entries` books a batch of entries in order, each all or nothing.
 * Expected failures (unknown account, wrong currency, insufficient funds, a
 * dedupe key already used) are answered per entry, never raised, and are found
 * before that entry writes anything, so the caller's transaction stays usable
 * and a refused entry leaves no trace.
 *
 * Locking: every balance slot the batch touches is locked once, up front, in
 * (account, slot) order, so two batches never wait on each other crosswise. A
 * hot account (many slots) is touched on one slot per transaction, spread by
 * transaction id, so concurrent payments rarely share a row lock (DESIGN.md
 * §3.6). Balances move in memory while entries are checked, and each slot is
 * written once at the end.
 */
const statements = String.raw`
CREATE FUNCTION ledger_post_entries(
  p_entry_ids        TEXT[],
  p_dedupe_keys      TEXT[],
  p_kinds            TEXT[],
  p_reference_types  TEXT[],
  p_reference_ids    TEXT[],
  p_merchant_ids     TEXT[],
  p_descriptions     TEXT[],
  p_postings_hashes  TEXT[],
  p_effective_ats    TIMESTAMPTZ[],
  p_created_ats      TIMESTAMPTZ[],
  p_posting_counts   INTEGER[],
  p_posting_accounts TEXT[],
  p_currencies       TEXT[],
  p_amounts          BIGINT[]
) RETURNS TABLE (result_index INTEGER, result_status TEXT, result_entry_id TEXT, result_detail TEXT)
LANGUAGE plpgsql
-- Every statement here has the same shape on every call: plan it once per
-- session rather than once per call (planning was a third of the cost). Every
-- row is reached by its key: a scan chosen from stale statistics of a small,
-- young table would read it whole on every call, so scans are ruled out.
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
AS $$
DECLARE
  entry_count      INTEGER := coalesce(cardinality(p_entry_ids), 0);
  posting_total    INTEGER := 0;
  posting_slots    INTEGER[];  -- per posting: its slot, or -1 (unknown account) or -2 (not the account's currency)
  posting_locks    INTEGER[];  -- per posting: its index in the lock arrays
  posting_entries  INTEGER[] := '{}';
  lock_accounts    TEXT[];     -- the slots locked, in locking order
  lock_slots       INTEGER[];
  initial_balances BIGINT[];
  balances         BIGINT[];
  guards           TEXT[];
  created          BOOLEAN[] := '{}';
  first_posting    INTEGER := 1;
  last_posting     INTEGER;
  entry_index      INTEGER;
  posting_index    INTEGER;
  slot_lock        INTEGER;
  problem          TEXT;
  problem_detail   TEXT;
  existing_hash    TEXT;
BEGIN
  FOR entry_index IN 1 .. entry_count LOOP
    posting_total := posting_total + p_posting_counts[entry_index];
  END LOOP;
  IF posting_total <> coalesce(cardinality(p_posting_accounts), 0) THEN
    RAISE EXCEPTION 'ledger_post_entries: posting counts do not match the postings given' USING ERRCODE = 'invalid_parameter_value';
  END IF;

  -- Choose one slot per account (slot 0 of an ordinary account), then lock
  -- the chosen slots: the sorted list drives a nested loop whose inner side
  -- locks one slot per row, so the locks are taken in (account, slot) order.
  -- A hot account's slot comes from the transaction id: transactions running
  -- side by side have neighbouring ids and so land on different slots, and
  -- every call within one transaction lands on the slot it already holds, so
  -- a transaction that books several entries never waits for itself nor
  -- locks two slots of one account in an order another transaction reverses.
  WITH accounts AS (
    SELECT DISTINCT ON (x.account_id) x.account_id, a.currency, a.slot_count
      FROM unnest(p_posting_accounts) AS x(account_id)
      CROSS JOIN LATERAL (SELECT l.currency, l.slot_count FROM ledger_accounts l WHERE l.id = x.account_id LIMIT 1) a
     ORDER BY x.account_id
  ), chosen AS (
    SELECT account_id, currency,
           CASE WHEN slot_count = 1 THEN 0 ELSE (pg_current_xact_id()::TEXT::BIGINT % slot_count)::INTEGER END AS slot,
           row_number() OVER (ORDER BY account_id)::INTEGER AS lock_order
      FROM accounts
  ), locked AS (
    SELECT c.lock_order, s.balance, s.guard
      FROM (SELECT * FROM chosen ORDER BY lock_order) c
      CROSS JOIN LATERAL (
        SELECT b.balance, b.guard FROM ledger_balance_slots b
         WHERE b.account_id = c.account_id AND b.slot = c.slot
         LIMIT 1 FOR NO KEY UPDATE) s
  ), postings AS (
    SELECT x.ordinal, c.lock_order,
           CASE WHEN c.account_id IS NULL THEN -1 WHEN c.currency <> x.currency THEN -2 ELSE c.slot END AS slot
      FROM unnest(p_posting_accounts, p_currencies) WITH ORDINALITY AS x(account_id, currency, ordinal)
      LEFT JOIN chosen c ON c.account_id = x.account_id
  )
  SELECT (SELECT array_agg(p.slot ORDER BY p.ordinal) FROM postings p),
         (SELECT array_agg(p.lock_order ORDER BY p.ordinal) FROM postings p),
         (SELECT array_agg(c.account_id ORDER BY c.lock_order) FROM chosen c),
         (SELECT array_agg(c.slot ORDER BY c.lock_order) FROM chosen c),
         (SELECT array_agg(l.balance ORDER BY l.lock_order) FROM locked l),
         (SELECT array_agg(l.guard ORDER BY l.lock_order) FROM locked l)
    INTO posting_slots, posting_locks, lock_accounts, lock_slots, initial_balances, guards;
  IF coalesce(cardinality(initial_balances), 0) <> coalesce(cardinality(lock_accounts), 0) THEN
    RAISE EXCEPTION 'ledger balance slots are missing for accounts %', lock_accounts USING ERRCODE = 'data_exception';
  END IF;
  balances := initial_balances;

  FOR entry_index IN 1 .. entry_count LOOP
    last_posting := first_posting + p_posting_counts[entry_index] - 1;
    problem := NULL;
    problem_detail := NULL;
    FOR posting_index IN first_posting .. last_posting LOOP
      posting_entries[posting_index] := entry_index;
      IF problem IS NULL AND posting_slots[posting_index] < 0 THEN
        problem := CASE posting_slots[posting_index] WHEN -1 THEN 'account_not_found' ELSE 'currency_mismatch' END;
        problem_detail := p_posting_accounts[posting_index];
      END IF;
    END LOOP;

    IF problem IS NULL THEN
      -- Move the money in the locked balances, then check the guarded slots.
      FOR posting_index IN first_posting .. last_posting LOOP
        slot_lock := posting_locks[posting_index];
        balances[slot_lock] := balances[slot_lock] + p_amounts[posting_index];
      END LOOP;
      FOR posting_index IN first_posting .. last_posting LOOP
        slot_lock := posting_locks[posting_index];
        IF (guards[slot_lock] = 'debit' AND balances[slot_lock] < 0) OR (guards[slot_lock] = 'credit' AND balances[slot_lock] > 0) THEN
          problem := 'insufficient_funds';
          problem_detail := p_posting_accounts[posting_index];
          EXIT;
        END IF;
      END LOOP;
      -- A dedupe key booked before, by an earlier entry of this batch, or by a
      -- concurrent caller (whom this insert waits for) makes it do nothing.
      IF problem IS NULL THEN
        INSERT INTO journal_entries (id, dedupe_key, kind, reference_type, reference_id, merchant_id, description,
                                     posting_count, postings_hash, effective_at, created_at)
        VALUES (p_entry_ids[entry_index], p_dedupe_keys[entry_index], p_kinds[entry_index], p_reference_types[entry_index],
                p_reference_ids[entry_index], p_merchant_ids[entry_index], p_descriptions[entry_index],
                p_posting_counts[entry_index], p_postings_hashes[entry_index], p_effective_ats[entry_index], p_created_ats[entry_index])
        ON CONFLICT (dedupe_key) DO NOTHING;
        IF NOT FOUND THEN
          problem := 'exists';
        END IF;
      END IF;
      IF problem IS NOT NULL THEN
        FOR posting_index IN first_posting .. last_posting LOOP
          slot_lock := posting_locks[posting_index];
          balances[slot_lock] := balances[slot_lock] - p_amounts[posting_index];
        END LOOP;
      END IF;
    END IF;

    created[entry_index] := problem IS NULL;
    result_index := entry_index;
    result_status := 'created';
    result_entry_id := p_entry_ids[entry_index];
    result_detail := NULL;
    IF problem IS NOT NULL THEN
      -- A key already used answers with its entry, even when the money has
      -- moved on since and the entry would not fit now.
      SELECT e.id, e.postings_hash INTO result_entry_id, existing_hash FROM journal_entries e WHERE e.dedupe_key = p_dedupe_keys[entry_index];
      IF FOUND THEN
        result_status := CASE WHEN existing_hash = p_postings_hashes[entry_index] THEN 'exists' ELSE 'exists_with_different_postings' END;
      ELSE
        result_status := problem;
        result_detail := problem_detail;
      END IF;
    END IF;
    RETURN NEXT;
    first_posting := last_posting + 1;
  END LOOP;

  IF true = ANY (created) THEN
    UPDATE ledger_balance_slots b
       SET balance = b.balance + (d.final_balance - d.initial_balance)
      FROM unnest(lock_accounts, lock_slots, balances, initial_balances) AS d(account_id, slot, final_balance, initial_balance)
     WHERE b.account_id = d.account_id AND b.slot = d.slot AND d.final_balance <> d.initial_balance;
    -- One INSERT for all postings, so the statement trigger of 0001 sees every
    -- entry whole and checks that each balances.
    INSERT INTO ledger_postings (entry_id, account_id, slot, currency, amount, created_at)
    SELECT p_entry_ids[x.entry_number], x.account_id, posting_slots[x.ordinal], x.currency, x.amount, p_created_ats[x.entry_number]
      FROM unnest(posting_entries, p_posting_accounts, p_currencies, p_amounts) WITH ORDINALITY
           AS x(entry_number, account_id, currency, amount, ordinal)
     WHERE created[x.entry_number]
     ORDER BY x.ordinal;
  END IF;
END $$;

-- The statement trigger of 0001 with the same checks, written so that each
-- posting's account is one index probe: knowing little about a transition
-- table, the planner otherwise hashes the whole accounts table on every insert.
CREATE OR REPLACE FUNCTION ledger_postings_check_statement() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  IF EXISTS (SELECT 1 FROM inserted GROUP BY entry_id, currency HAVING sum(amount) <> 0) THEN
    RAISE EXCEPTION 'unbalanced journal entry: postings must sum to zero per currency' USING ERRCODE = 'check_violation';
  END IF;
  IF EXISTS (SELECT 1 FROM inserted i
               CROSS JOIN LATERAL (SELECT a.currency FROM ledger_accounts a WHERE a.id = i.account_id LIMIT 1) a
              WHERE a.currency <> i.currency) THEN
    RAISE EXCEPTION 'posting currency differs from its account''s' USING ERRCODE = 'check_violation';
  END IF;
  RETURN NULL;
END $fn$;
`;

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql.raw(statements).execute(db);
}
