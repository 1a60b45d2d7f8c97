import type { Kysely } from 'kysely';
import type { ChannelBill, ChannelBillTotals } from '../channels/index.js';
import { connectDatabase, type Database, type DatabaseHandle } from '../platform/db/index.js';
import { LineCopy } from './line-copy.js';
import {
  countOutcomes,
  dropWorkTables,
  endMatching,
  joinHalf,
  loadFenDay,
  pairLeftovers,
  prepareJoin,
  prepareMatching,
  hideReconFen,
  showFenAsReconFen,
  tuneSession,
  workTablesOf,
  type FenDay,
  type MatchCounts,
  type MatchScope,
  type WorkTables,
} from './matching.js';

/**
 * The connections of one matching and what runs on each. The main one (the
 * run's, holding the batch's advisory lock) loads Fen's side of the day while
 * the bill is parsed, then joins one half, pairs the leftovers and persists.
 * Two workers, connections of the run's own: one copies the lines in during
 * the parse and then joins the other half; the other runs the internal check
 * beside the join. Every step of a million rows runs beside another, so the
 * server keeps every core busy until the report.
 */

export type PhaseReport = (phase: string, durationMs: number) => void;

/** Runs one phase and reports its duration. */
export async function timed<T>(report: PhaseReport, phase: string, work: () => Promise<T>): Promise<T> {
  const startMs = performance.now();
  try {
    return await work();
  } finally {
    report(phase, performance.now() - startMs);
  }
}

export interface BillRead {
  totals: ChannelBillTotals;
  lineCount: number;
  fenDay: FenDay;
}

export class MatchRun {
  private readonly work: WorkTables;
  private readonly worker: DatabaseHandle;
  private aside: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly db: Kysely<Database>,
    databaseUrl: string,
    private readonly scope: MatchScope,
  ) {
    this.work = workTablesOf(scope.batchId);
    // Connections of the run's own, opened on first use and closed by end(), never ones the pool's other users wait for:
    // one copies the lines and joins a half, the other runs the check beside the join.
    this.worker = connectDatabase(databaseUrl, 2);
  }

  /**
   * Reads the bill into its work table while Fen's side of the day loads;
   * nothing is written for good until the bill has been read to its end and
   * its totals checked.
   */
  async read(bill: ChannelBill, phase: PhaseReport): Promise<BillRead> {
    await prepareMatching(this.db, this.work);
    const fenLoading = timed(phase, 'read.fen', () => loadFenDay(this.db, this.scope, this.work));
    // Whatever happens to the copy, the load is awaited: a rejection left unobserved would end the process.
    fenLoading.catch(() => undefined);
    let copy: LineCopy | undefined;
    try {
      copy = await LineCopy.open(this.worker.pool, this.work.lines);
      const reading = bill.lines();
      for (let step = await reading.next(); ; step = await reading.next()) {
        if (step.done) {
          await timed(phase, 'read.copy_end', () => copy!.finish(this.work.lines));
          return { totals: step.value, lineCount: copy.lineCount, fenDay: await fenLoading };
        }
        await copy.add(step.value);
      }
    } catch (error) {
      copy?.abandon();
      await fenLoading.catch(() => undefined);
      throw error;
    }
  }

  /** Joins the two halves at once, one on each connection, then pairs what is left over on the main one and counts the outcomes. */
  async pair(read: BillRead, phase: PhaseReport): Promise<MatchCounts> {
    await timed(phase, 'pair.join', async () => {
      const kept = await prepareJoin(this.db, this.scope, this.work);
      const otherHalf = this.onWorker(async (worker) => {
        await tuneSession(worker);
        await joinHalf(worker, this.work, kept, 1);
      });
      try {
        await joinHalf(this.db, this.work, kept, 0);
      } finally {
        await otherHalf;
      }
    });
    await pairLeftovers(this.db, this.scope, this.work, { count: read.lineCount, fenDay: read.fenDay });
    await dropWorkTables(this.db, { lines: this.work.lines, kept: this.work.kept });
    return countOutcomes(this.db, read.lineCount, read.fenDay);
  }

  /** Starts a check that reads Fen's side (as recon_fen) on a worker, beside what the main connection does next; end() waits for it. */
  runAside(check: (worker: Kysely<Database>) => Promise<unknown>): Promise<unknown> {
    const running = this.onWorker(async (worker) => {
      await tuneSession(worker);
      await showFenAsReconFen(worker, this.work);
      try {
        await check(worker);
      } finally {
        // The view depends on the work table, which the main connection drops at the end.
        await hideReconFen(worker);
      }
    });
    this.aside = running.catch(() => undefined);
    return running;
  }

  /** Waits for the worker, drops the work tables and closes the worker's connection. */
  async end(): Promise<void> {
    await this.aside;
    try {
      await endMatching(this.db, this.work);
    } finally {
      await this.worker.close();
    }
  }

  private onWorker<T>(work: (worker: Kysely<Database>) => Promise<T>): Promise<T> {
    return this.worker.db.connection().execute(work);
  }
}
