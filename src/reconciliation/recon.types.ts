import type { ReconBatchStatus, ReconDifferenceKind, ReconResolution } from '../platform/db/index.js';

/**
 * What the matching part of reconciliation shares: its limits, the kinds of
 * differences and resolutions, and the shape a batch is reported in (by the
 * CLI, the API and the daily job alike).
 */
export const reconLimits = {
  /** A Fen record the day's bill does not list waits this long for a later bill before it becomes a difference. */
  holdingDaysMax: 3,
  /** Only records this close to a Beijing midnight are held: further from it, a record the bill does not list is missing. */
  cutoffWindowSeconds: 60 * 60,
  /** Bill lines (as COPY rows) buffered for PostgreSQL before the parse waits for it: bounds memory while the parse runs ahead. */
  copyBufferBytes: 4 * 1024 * 1024,
  /** Bill dates a single `fen reconcile` or job may look back. */
  billDateLookbackDaysMax: 400,
  /** Differences listed per page and exported per CSV chunk. */
  csvChunkRows: 1000,
} as const;

export const lineDifferenceKinds = ['missing_local', 'missing_channel', 'amount_mismatch', 'status_mismatch', 'fee_mismatch'] as const;
export type LineDifferenceKind = (typeof lineDifferenceKinds)[number];
export const differenceKinds: readonly ReconDifferenceKind[] = [...lineDifferenceKinds, 'fund_flow', 'internal'];
export const operatorResolutions = ['trust_channel', 'trust_fen', 'accepted'] as const;
export type OperatorResolution = (typeof operatorResolutions)[number];
export type { ReconBatchStatus, ReconDifferenceKind, ReconResolution };

/** A batch as `fen reconcile` prints it and the API returns it. */
export interface BatchReport {
  batch_id: string;
  channel_account: string;
  channel: string;
  date: string;
  lines_channel: number;
  lines_local: number;
  matched: number;
  held: number;
  differences: Record<LineDifferenceKind, number>;
  fund_flow: { channel_net: bigint; ledger_net: bigint | null; drift: bigint | null; differences: number };
  internal_differences: number;
  open_differences: number;
  status: ReconBatchStatus;
  error: { code: string; message: string } | null;
}

const dayMs = 24 * 60 * 60 * 1000;
const beijingOffsetMs = 8 * 60 * 60 * 1000;

/** The Beijing calendar day a moment falls on, YYYY-MM-DD. */
export function beijingDateOf(moment: Date): string {
  return new Date(moment.getTime() + beijingOffsetMs).toISOString().slice(0, 10);
}

/** A YYYY-MM-DD moved by whole days. */
export function addDays(billDate: string, days: number): string {
  return new Date(Date.parse(`${billDate}T00:00:00Z`) + days * dayMs).toISOString().slice(0, 10);
}

/** A real calendar date written YYYY-MM-DD. */
export function isBillDate(text: string): boolean {
  return /^\d{4}-\d{2}-\d{2}$/.test(text) && !Number.isNaN(Date.parse(`${text}T00:00:00Z`)) && new Date(`${text}T00:00:00Z`).toISOString().startsWith(text);
}
