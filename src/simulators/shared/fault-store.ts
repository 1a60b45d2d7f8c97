import type { Executor, SimulatorSchema } from './transactions.js';

/**
 * The storage of fault switches, the same for every simulator: a `faults`
 * table in the simulator's schema, one row per switch, aimed at one order or
 * (with no key) at every order, optionally counting down the times it may
 * still fire. What a switch means is the channel's business: each passes its
 * own parser, and keeps its own settings schema and its own name for the key.
 */

/** The column that names the order a switch aims at; each channel names it after its own order number. */
export type FaultKeyColumn = 'out_trade_no' | 'order_id';

/** Every channel's faults are a union discriminated by `kind`. */
export interface FaultShape {
  kind: string;
}

export interface StoredFault<Fault extends FaultShape> {
  id: number;
  /** The order the switch aims at; null when it aims at every order. */
  key: string | null;
  /** How many more times it fires; null when it fires until cleared. */
  remaining: number | null;
  fault: Fault;
}

export interface FaultStoreOptions<Fault extends FaultShape> {
  schema: SimulatorSchema;
  keyColumn: FaultKeyColumn;
  /** Parses a stored switch's settings; the channel's own schema, so a stored row is checked again on the way out. */
  parseFault: (settings: unknown) => Fault;
}

export interface FaultStore<Fault extends FaultShape> {
  insert(executor: Executor, key: string | null, fault: Fault, times: number | null, now: Date): Promise<StoredFault<Fault>>;
  list(executor: Executor): Promise<StoredFault<Fault>[]>;
  /** Clears one switch, the switches of one order, or all; returns how many were cleared. */
  clear(executor: Executor, filter: { id?: number; key?: string }): Promise<number>;
  take<Kind extends Fault['kind']>(
    executor: Executor,
    kind: Kind,
    key: string | undefined,
    matches?: (fault: Extract<Fault, { kind: Kind }>) => boolean,
  ): Promise<Extract<Fault, { kind: Kind }> | undefined>;
}

/** The table's definition, for the channel's schema statements, so the layout is written once for all three. */
export function faultsTableStatement(schema: SimulatorSchema, keyColumn: FaultKeyColumn): string {
  return `CREATE TABLE IF NOT EXISTS ${schema}.faults (
  id         BIGSERIAL PRIMARY KEY,
  ${keyColumn} TEXT,
  kind       TEXT NOT NULL,
  settings   JSONB NOT NULL,
  remaining  INTEGER CHECK (remaining IS NULL OR remaining >= 0),
  created_at TIMESTAMPTZ NOT NULL
);`;
}

export function createFaultStore<Fault extends FaultShape>({ schema, keyColumn, parseFault }: FaultStoreOptions<Fault>): FaultStore<Fault> {
  const table = `${schema}.faults`;
  return {
    async insert(executor, key, fault, times, now) {
      const result = await executor.query(
        `INSERT INTO ${table} (${keyColumn}, kind, settings, remaining, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id`,
        [key, fault.kind, JSON.stringify(fault), times, now],
      );
      return { id: Number(result.rows[0].id), key, remaining: times, fault };
    },

    async list(executor) {
      const result = await executor.query(`SELECT id, ${keyColumn} AS key, remaining, settings FROM ${table} WHERE remaining IS NULL OR remaining > 0 ORDER BY id`);
      return result.rows.map((row: Record<string, unknown>) => ({
        id: Number(row.id),
        key: row.key as string | null,
        remaining: row.remaining as number | null,
        fault: parseFault(row.settings),
      }));
    },

    async clear(executor, filter) {
      if (filter.id !== undefined) return (await executor.query(`DELETE FROM ${table} WHERE id = $1`, [filter.id])).rowCount ?? 0;
      if (filter.key !== undefined) return (await executor.query(`DELETE FROM ${table} WHERE ${keyColumn} = $1`, [filter.key])).rowCount ?? 0;
      return (await executor.query(`DELETE FROM ${table}`)).rowCount ?? 0;
    },

    /**
     * Fires the most specific active switch of a kind for an order (its own
     * before a global one), counting down `times`; `matches` narrows by the
     * fault's settings (the operation aimed at, where an amount is misreported).
     */
    async take<Kind extends Fault['kind']>(
      executor: Executor,
      kind: Kind,
      key: string | undefined,
      matches: (fault: Extract<Fault, { kind: Kind }>) => boolean = () => true,
    ): Promise<Extract<Fault, { kind: Kind }> | undefined> {
      const result = await executor.query(
        `SELECT id, settings FROM ${table}
         WHERE kind = $1 AND (${keyColumn} IS NULL OR ${keyColumn} = $2) AND (remaining IS NULL OR remaining > 0)
         ORDER BY (${keyColumn} IS NULL), id`,
        [kind, key ?? null],
      );
      for (const row of result.rows as { id: string | number; settings: unknown }[]) {
        const fault = parseFault(row.settings) as Extract<Fault, { kind: Kind }>;
        if (!matches(fault)) continue;
        // Counting down is one conditional update, so two requests cannot both take the last firing.
        const taken = await executor.query(`UPDATE ${table} SET remaining = remaining - 1 WHERE id = $1 AND (remaining IS NULL OR remaining > 0) RETURNING id`, [row.id]);
        if ((taken.rowCount ?? 0) > 0) return fault;
      }
      return undefined;
    },
  };
}
