import type pg from 'pg';
import {
  accountSpecs,
  checkLedger,
  ensureAccount,
  ensurePlatformAccounts,
  postEntries,
  postTransfer,
  transferPostings,
  type LedgerAccount,
  type PostEntryResult,
} from '../src/ledger/index.js';
import { systemClock } from '../src/platform/clock.js';
import { connectDatabase, createPool, type Db } from '../src/platform/db/index.js';
import { newId } from '../src/platform/ids.js';
import type { BenchContext, BenchSection, SectionReport } from './index.js';

/**
 * Ledger throughput: entries of two postings per second through postEntry,
 * beside the same work done the plain way (BEGIN; UPDATE two balance rows;
 * INSERT two posting rows; COMMIT) on plain tables on the same server, in the
 * same run, with the same client concurrency. Two scenarios: entries spread
 * over many ordinary accounts, and every entry on the same two hot accounts.
 *
 * postEntry through the pool gathers concurrent entries into batches. So that
 * the figures say what batching buys, each scenario also runs unbatched: one
 * database call per entry (postEntries with a single entry), which is also
 * what an entry posted inside a caller's transaction costs.
 */
const clientCount = 16;
const spreadAccountCount = 1000;
const setupConcurrency = 16;
const amountMaxMinor = 10_000;

interface Scenario {
  /** Books one entry. */
  work(): Promise<void>;
}

/** Runs `clientCount` loops for a warm-up and then `windowMs`, and returns the entries finished inside the window. */
async function measureSlice(scenario: Scenario, warmupMs: number, windowMs: number): Promise<number> {
  const windowStartMs = performance.now() + warmupMs;
  const endMs = windowStartMs + windowMs;
  let counted = 0;
  const client = async () => {
    while (performance.now() < endMs) {
      await scenario.work();
      const finishedMs = performance.now();
      if (finishedMs >= windowStartMs && finishedMs <= endMs) counted += 1;
    }
  };
  await Promise.all(Array.from({ length: clientCount }, client));
  return counted;
}

/** Measures the variants in turn, slice by slice, and returns each one's rate per second. */
async function measureInTurn(variants: Scenario[], timing: BenchContext['timing']): Promise<number[]> {
  const counts = variants.map(() => 0);
  const sliceMs = timing.measureMs / timing.rounds;
  for (let round = 0; round < timing.rounds; round += 1) {
    for (const [index, variant] of variants.entries()) counts[index]! += await measureSlice(variant, timing.warmupMs, sliceMs);
  }
  return counts.map((count) => count / (timing.measureMs / 1000));
}

function randomAmount(): bigint {
  return BigInt(1 + Math.floor(Math.random() * amountMaxMinor));
}

/** Two distinct indexes below `count`, in ascending order. */
function twoDistinct(count: number): [number, number] {
  const first = Math.floor(Math.random() * count);
  const second = (first + 1 + Math.floor(Math.random() * (count - 1))) % count;
  return first < second ? [first, second] : [second, first];
}

function fenScenario(db: Db, label: string, pick: () => [LedgerAccount, LedgerAccount], batched: boolean): Scenario {
  const runId = newId('request');
  let posted = 0;
  return {
    async work() {
      const [debit, credit] = pick();
      posted += 1;
      const transfer = { dedupeKey: `bench:${runId}:${label}:${posted}`, kind: 'bench_transfer', debitAccountId: debit.id, creditAccountId: credit.id, amount: randomAmount(), currency: 'CNY' as const };
      const result: PostEntryResult | undefined = batched
        ? await postTransfer(db, systemClock, transfer)
        : (await postEntries(db, systemClock, [{ dedupeKey: transfer.dedupeKey, kind: transfer.kind, postings: transferPostings(transfer) }]))[0];
      // Anything but a new entry (a refusal, or 'exists' from a reused key) would make the count a lie.
      if (!result?.ok || result.value.status !== 'created') throw new Error(`ledger bench entry not created: ${JSON.stringify(result)}`);
    },
  };
}

/** The baseline: what a hand-written double-entry transfer costs, one statement per round trip, no batching. */
function plainScenario(pool: pg.Pool, pick: () => [number, number]): Scenario {
  return {
    async work() {
      // Rows are updated in ascending id order, so the baseline never deadlocks either.
      const [debit, credit] = pick();
      const amount = randomAmount();
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        await client.query('UPDATE bench_plain_balances SET balance = balance + $2 WHERE id = $1', [debit, amount]);
        await client.query('UPDATE bench_plain_balances SET balance = balance - $2 WHERE id = $1', [credit, amount]);
        await client.query('INSERT INTO bench_plain_postings (account_id, amount) VALUES ($1, $2)', [debit, amount]);
        await client.query('INSERT INTO bench_plain_postings (account_id, amount) VALUES ($1, $2)', [credit, -amount]);
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK');
        throw error;
      } finally {
        client.release();
      }
    },
  };
}

async function createPlainTables(pool: pg.Pool): Promise<void> {
  await pool.query(`
    CREATE TABLE bench_plain_balances (id INTEGER PRIMARY KEY, balance BIGINT NOT NULL DEFAULT 0);
    CREATE TABLE bench_plain_postings (id BIGSERIAL PRIMARY KEY, account_id INTEGER NOT NULL, amount BIGINT NOT NULL, created_at TIMESTAMPTZ NOT NULL DEFAULT now());
    INSERT INTO bench_plain_balances (id) SELECT generate_series(0, ${spreadAccountCount + 1});`);
}

async function createMerchantAccounts(db: Db): Promise<LedgerAccount[]> {
  const accounts: LedgerAccount[] = [];
  let next = 0;
  const worker = async () => {
    while (next < spreadAccountCount) {
      next += 1;
      accounts.push(await ensureAccount(db, systemClock, accountSpecs.merchantPending(newId('merchant'), 'CNY')));
    }
  };
  await Promise.all(Array.from({ length: setupConcurrency }, worker));
  return accounts;
}

function ratio(fen: number, plain: number): number {
  return plain > 0 ? Math.round((fen / plain) * 100) / 100 : 0;
}

interface Figures {
  fen: number;
  unbatched: number;
  plain: number;
}

async function runScenario(context: BenchContext, label: string, fen: (batched: boolean) => Scenario, plain: Scenario): Promise<Figures> {
  context.log(`ledger ${label}: plain SQL, Fen and Fen unbatched in turn, ${context.timing.rounds} rounds`);
  const [plainRate = 0, fenRate = 0, unbatchedRate = 0] = await measureInTurn([plain, fen(true), fen(false)], context.timing);
  return { fen: fenRate, unbatched: unbatchedRate, plain: plainRate };
}

function scenarioResults(name: 'spread' | 'hot', figures: Figures): Record<string, number> {
  return {
    [`ledger_${name}_entries_per_s`]: Math.round(figures.fen),
    [`ledger_${name}_plain_per_s`]: Math.round(figures.plain),
    [`ledger_${name}_ratio`]: ratio(figures.fen, figures.plain),
    [`ledger_${name}_unbatched_entries_per_s`]: Math.round(figures.unbatched),
    [`ledger_${name}_unbatched_ratio`]: ratio(figures.unbatched, figures.plain),
  };
}

function tableRows(label: string, figures: Figures, target: string): string[][] {
  return [
    [label, `${Math.round(figures.fen)} entries/s`, `${Math.round(figures.plain)} tx/s`, `${ratio(figures.fen, figures.plain)}×`, target],
    [`${label}, unbatched`, `${Math.round(figures.unbatched)} entries/s`, `${Math.round(figures.plain)} tx/s`, `${ratio(figures.unbatched, figures.plain)}×`, '(for reference)'],
  ];
}

async function runLedgerBench(context: BenchContext): Promise<SectionReport> {
  const fen = connectDatabase(context.databaseUrl, clientCount);
  const plainPool = createPool(context.databaseUrl, clientCount);
  try {
    await createPlainTables(plainPool);
    const platform = await ensurePlatformAccounts(fen.db, systemClock, 'CNY');
    const clearing = await ensureAccount(fen.db, systemClock, accountSpecs.channelClearing(newId('channelAccount'), 'CNY'));
    const merchants = await createMerchantAccounts(fen.db);
    const pickMerchants = (): [LedgerAccount, LedgerAccount] => {
      const [first, second] = twoDistinct(merchants.length);
      return [merchants[first]!, merchants[second]!];
    };
    const spread = await runScenario(context, 'spread', (batched) => fenScenario(fen.db, 'spread', pickMerchants, batched), plainScenario(plainPool, () => twoDistinct(spreadAccountCount)));
    const hot = await runScenario(
      context,
      'hot',
      (batched) => fenScenario(fen.db, 'hot', () => [clearing, platform.platformFeeIncome], batched),
      plainScenario(plainPool, () => [spreadAccountCount, spreadAccountCount + 1]),
    );
    const check = await checkLedger(fen.db);
    return {
      results: {
        ...scenarioResults('spread', spread),
        ...scenarioResults('hot', hot),
        ledger_clients: clientCount,
        ledger_spread_accounts: spreadAccountCount,
        ledger_hot_slots: clearing.slotCount,
        ledger_measure_s: context.timing.measureMs / 1000,
        ledger_check_ok: check.ok,
      },
      rows: [
        ...tableRows(`ledger spread (${spreadAccountCount} accounts)`, spread, '≥ 1×'),
        ...tableRows('ledger hot (2 accounts)', hot, '≥ 2×'),
        ['ledger check after the run', check.ok ? 'ok' : `${check.problems.length} problems`, '', '', 'ok'],
      ],
    };
  } finally {
    await fen.close();
    await plainPool.end();
  }
}

export const ledgerSection: BenchSection = { name: 'ledger', run: runLedgerBench };
