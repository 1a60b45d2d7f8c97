import { once } from 'node:events';
import type pg from 'pg';
import { from as copyFrom, type CopyStreamQuery } from 'pg-copy-streams';
import type { BillLine } from '../channels/index.js';
import { lineRow } from './matching.js';
import { reconLimits } from './recon.types.js';

/**
 * A bill's lines on their way into PostgreSQL: streamed with COPY FROM STDIN,
 * as they are parsed, into the batch's unlogged work table (migration 0005)
 * on a connection other than the run's main one. COPY costs the server about
 * half of what splitting lines out of text in SQL did, and because it is
 * another connection, the server ingests the lines while the main connection
 * loads Fen's side of the day and Node parses.
 *
 * Memory stays flat: the stream buffers at most copyBufferBytes of rows, and
 * a parse that runs ahead of the server waits for it.
 */

const lineColumns = 'kind, channel_trade_no, out_trade_no, out_refund_no, amount, fee, currency, status, occurred_ms, line_number';

/** The work table's columns, in the order lineRow writes them; the time stays epoch milliseconds until a line is kept. */
const lineTableColumns = `kind text NOT NULL, channel_trade_no text NOT NULL, out_trade_no text NOT NULL, out_refund_no text,
  amount bigint NOT NULL, fee bigint NOT NULL, currency text NOT NULL, status text NOT NULL, occurred_ms bigint NOT NULL, line_number integer NOT NULL`;

export class LineCopy {
  lineCount = 0;
  private failure: Error | undefined;

  private constructor(
    private readonly client: pg.PoolClient,
    private readonly stream: CopyStreamQuery,
  ) {
    // Kept rather than thrown: the stream may fail while nobody is writing, and add() or finish() reports it.
    stream.on('error', (error: Error) => (this.failure ??= error));
  }

  /** Takes a connection of the pool, makes the batch's work table afresh (an interrupted run may have left one) and starts the COPY. */
  static async open(pool: pg.Pool, table: string): Promise<LineCopy> {
    const client = await pool.connect();
    try {
      await client.query(`DROP TABLE IF EXISTS ${table}`);
      // Made and filled in one transaction, the rows can be written frozen: the joins then read them without a
      // visibility check each, and nothing rewrites the pages to mark them seen. A failed copy takes the table with it.
      await client.query('BEGIN');
      await client.query(`CREATE UNLOGGED TABLE ${table} (${lineTableColumns})`);
      const stream = client.query(copyFrom(`COPY ${table} (${lineColumns}) FROM STDIN (FREEZE)`, { highWaterMark: reconLimits.copyBufferBytes }));
      return new LineCopy(client, stream);
    } catch (error) {
      client.release(error instanceof Error ? error : true);
      throw error;
    }
  }

  /** Sends a batch of lines; waits only when the server is more than copyBufferBytes behind. */
  async add(lines: readonly BillLine[]): Promise<void> {
    if (this.failure) throw this.failure;
    if (lines.length === 0) return;
    let text = '';
    for (const line of lines) text += `${lineRow(line)}\n`;
    this.lineCount += lines.length;
    if (!this.stream.write(text)) await once(this.stream, 'drain');
  }

  /** Ends the COPY (the lines are then visible to every connection), gives the planner a sample of them and hands the connection back. */
  async finish(table: string): Promise<void> {
    let failed: Error | undefined;
    try {
      if (this.failure) throw this.failure;
      this.stream.end();
      await once(this.stream, 'finish');
      await this.client.query('COMMIT');
      // The joins need row counts and key widths, not fine histograms: a small sample is enough and cheap.
      await this.client.query('SET default_statistics_target = 10');
      await this.client.query(`ANALYZE ${table}`);
    } catch (error) {
      failed = error instanceof Error ? error : new Error(String(error));
      throw error;
    } finally {
      this.client.release(failed ?? false);
    }
  }

  /** After a failed parse: the COPY is abandoned (rolled back) with its connection; the caller drops the table. */
  abandon(): void {
    this.stream.destroy();
    this.client.release(true);
  }
}
