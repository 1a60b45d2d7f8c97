import type pg from 'pg';
import type { Clock } from '../../platform/clock.js';
import type { Logger } from '../../platform/logging.js';
import type { SimulatorSchema } from './transactions.js';

/**
 * The machinery of asynchronous notifications that all three channels share:
 * due notifications are claimed from the `notifications` table with a lease,
 * sent (possibly as several copies), every copy's outcome is kept in
 * `notification_attempts`, and the notification is then marked delivered,
 * rescheduled on the channel's retry schedule, or abandoned. What is sent, how
 * it is signed, what counts as an acknowledgement and which faults apply stay
 * in each channel's notifier.
 */

const claimBatchSize = 100;
const replyLengthStoredMax = 200;

/** What every channel's notifier context carries; each adds its own signing material. */
export interface DeliveryContext {
  pool: pg.Pool;
  clock: Clock;
  /** Multiplies the retry delays, so demos and tests need not wait hours. */
  timeScale: number;
  logger: Logger;
  /** How long one POST may take before it counts as failed. */
  requestTimeoutMs: number;
  /** Called after a new notification has been committed; the server points it at its delivery loop's kick. */
  onScheduled?: () => void;
}

export interface DeliveryReport {
  /** Notifications attempted in this pass. */
  attempted: number;
  delivered: number;
  /** Attempts that failed, were refused or were dropped by a fault, and will be retried. */
  retrying: number;
  abandoned: number;
  /** HTTP requests made (duplicates count each copy). */
  requestsSent: number;
}

/** The outcome of one HTTP request, as recorded in `notification_attempts`. */
export interface CopyOutcome {
  outcome: 'acknowledged' | 'refused' | 'failed';
  httpStatus: number | null;
  reply: string | null;
}

/** What one attempt of one notification came to. */
export interface AttemptResult {
  acknowledged: boolean;
  /** HTTP requests made; 0 when a fault dropped the attempt. */
  requests: number;
}

/** The columns every channel's `notifications` table has, read for every claimed row. */
export interface ClaimedNotification {
  id: number;
  attempts: number;
  /** When it was due; the claim moves next_attempt_at to the lease's end, so this is kept apart. */
  dueAt: Date;
}

/** States a claim may pick up: WeChat Pay's held notifications also go out on their own once their time comes. */
export type ClaimableState = 'pending' | 'held';

export interface DeliveryChannel<Context extends DeliveryContext, Notification extends ClaimedNotification> {
  /** Names the channel in log messages. */
  name: 'alipay' | 'wechatpay' | 'unionpay';
  schema: SimulatorSchema;
  /** The delays after each failed attempt; once they run out, the notification is abandoned. */
  retryDelaysMs: readonly number[];
  claimableStates: readonly ClaimableState[];
  /** The channel's own columns of `notifications` that `fromRow` reads. */
  columns: readonly string[];
  fromRow(row: Record<string, unknown>, claimed: ClaimedNotification): Notification;
  /**
   * Notifications with the same key go out one after another, in due order,
   * so a pair reordered by a fault arrives in the order the fault meant;
   * different keys go out side by side.
   */
  sequenceKey(notification: Notification): string;
  /** Makes one attempt, with the channel's faults, through `sendCopies` or `recordDroppedAttempt`, which record it. */
  attempt(context: Context, notification: Notification, attempt: number): Promise<AttemptResult>;
  /** What the warning on giving up says about the notification, besides the attempts. */
  describe(notification: Notification): Record<string, unknown>;
}

/** The attempts table's definition, for the channel's schema statements, so the layout is written once for all three. */
export function notificationAttemptsTableStatement(schema: SimulatorSchema): string {
  return `CREATE TABLE IF NOT EXISTS ${schema}.notification_attempts (
  notification_id BIGINT NOT NULL REFERENCES ${schema}.notifications (id),
  attempt         INTEGER NOT NULL,
  copy            INTEGER NOT NULL,
  attempted_at    TIMESTAMPTZ NOT NULL,
  outcome         TEXT NOT NULL CHECK (outcome IN ('acknowledged', 'refused', 'failed', 'dropped')),
  http_status     INTEGER,
  reply           TEXT,
  PRIMARY KEY (notification_id, attempt, copy)
);`;
}

/** A duration of the channel's schedule compressed by timeScale; at least 1 ms, so a retry never falls due in the same pass. */
export function scaledDelayMs(durationMs: number, timeScale: number): number {
  return Math.max(1, Math.round(durationMs * timeScale));
}

/**
 * POSTs one copy. Network errors and timeouts are outcomes, not exceptions:
 * the channel retries them like any refusal. Only the start of the reply is
 * kept, enough to see what the merchant said.
 */
export async function postNotification(
  url: string,
  request: { headers: Record<string, string>; body: string },
  timeoutMs: number,
  acknowledges: (httpStatus: number, reply: string) => boolean,
): Promise<CopyOutcome> {
  try {
    const response = await fetch(url, { method: 'POST', headers: request.headers, body: request.body, signal: AbortSignal.timeout(timeoutMs) });
    const reply = await response.text();
    return { outcome: acknowledges(response.status, reply) ? 'acknowledged' : 'refused', httpStatus: response.status, reply: reply.slice(0, replyLengthStoredMax) };
  } catch (error) {
    return { outcome: 'failed', httpStatus: null, reply: (error as Error).name };
  }
}

async function recordAttempt(
  context: DeliveryContext,
  schema: SimulatorSchema,
  target: { notificationId: number; attempt: number; copy: number },
  outcome: CopyOutcome | 'dropped',
): Promise<void> {
  const row = outcome === 'dropped' ? { outcome: 'dropped', httpStatus: null, reply: null } : outcome;
  await context.pool.query(
    `INSERT INTO ${schema}.notification_attempts (notification_id, attempt, copy, attempted_at, outcome, http_status, reply)
     VALUES ($1, $2, $3, $4, $5, $6, $7)`,
    [target.notificationId, target.attempt, target.copy, context.clock.now(), row.outcome, row.httpStatus, row.reply],
  );
}

/** Records an attempt the drop fault swallowed: nothing was sent, and it counts as failed, so the schedule goes on. */
export async function recordDroppedAttempt(context: DeliveryContext, schema: SimulatorSchema, target: { notificationId: number; attempt: number }): Promise<AttemptResult> {
  await recordAttempt(context, schema, { ...target, copy: 1 }, 'dropped');
  return { acknowledged: false, requests: 0 };
}

/**
 * Sends `copies` identical requests at once (the duplicate fault sends more
 * than one) and records each; the attempt counts as acknowledged when any
 * copy was, as the merchant then has the notification.
 */
export async function sendCopies(
  context: DeliveryContext,
  schema: SimulatorSchema,
  target: { notificationId: number; attempt: number },
  copies: number,
  send: () => Promise<CopyOutcome>,
): Promise<AttemptResult> {
  const outcomes = await Promise.all(Array.from({ length: copies }, send));
  for (const [index, outcome] of outcomes.entries()) await recordAttempt(context, schema, { ...target, copy: index + 1 }, outcome);
  return { acknowledged: outcomes.some((outcome) => outcome.outcome === 'acknowledged'), requests: copies };
}

/** Claims due notifications with a lease, so two simulator processes never send the same attempt. */
async function claimDue<Context extends DeliveryContext, Notification extends ClaimedNotification>(
  context: Context,
  channel: DeliveryChannel<Context, Notification>,
): Promise<Notification[]> {
  const now = context.clock.now();
  const leaseUntil = new Date(now.getTime() + context.requestTimeoutMs * 2 + 60_000);
  const table = `${channel.schema}.notifications`;
  // The states are literals of a closed type, written into the text so the planner can use the partial index on pending rows.
  const states = channel.claimableStates.map((state) => `'${state}'`).join(', ');
  const columns = channel.columns.map((column) => `n.${column}`).join(', ');
  // A held notification whose time has come goes out as an ordinary pending one.
  const result = await context.pool.query(
    `WITH due AS (
       SELECT id, next_attempt_at FROM ${table}
       WHERE state IN (${states}) AND next_attempt_at <= $1
       ORDER BY next_attempt_at, id LIMIT $2 FOR UPDATE SKIP LOCKED)
     UPDATE ${table} AS n SET next_attempt_at = $3, state = 'pending' FROM due WHERE n.id = due.id
     RETURNING n.id, n.attempts, ${columns}, due.next_attempt_at AS due_at`,
    [now, claimBatchSize, leaseUntil],
  );
  return result.rows
    .map((row: Record<string, unknown>) => channel.fromRow(row, { id: Number(row.id), attempts: Number(row.attempts), dueAt: row.due_at as Date }))
    .sort((left, right) => left.dueAt.getTime() - right.dueAt.getTime() || left.id - right.id);
}

/** Makes one attempt and records where the notification stands after it. */
async function deliverOne<Context extends DeliveryContext, Notification extends ClaimedNotification>(
  context: Context,
  channel: DeliveryChannel<Context, Notification>,
  notification: Notification,
  report: DeliveryReport,
): Promise<void> {
  const table = `${channel.schema}.notifications`;
  const attempt = notification.attempts + 1;
  const { acknowledged, requests } = await channel.attempt(context, notification, attempt);
  report.attempted += 1;
  report.requestsSent += requests;
  const now = context.clock.now();
  if (acknowledged) {
    report.delivered += 1;
    await context.pool.query(`UPDATE ${table} SET state = 'delivered', attempts = $2, delivered_at = $3 WHERE id = $1`, [notification.id, attempt, now]);
    return;
  }
  const delayMs = channel.retryDelaysMs[attempt - 1];
  if (delayMs === undefined) {
    report.abandoned += 1;
    await context.pool.query(`UPDATE ${table} SET state = 'abandoned', attempts = $2 WHERE id = $1`, [notification.id, attempt]);
    context.logger.warn({ ...channel.describe(notification), attempts: attempt }, `${channel.name} simulator gave up on a notification`);
    return;
  }
  report.retrying += 1;
  const nextAttemptAt = new Date(now.getTime() + scaledDelayMs(delayMs, context.timeScale));
  await context.pool.query(`UPDATE ${table} SET attempts = $2, next_attempt_at = $3 WHERE id = $1`, [notification.id, attempt, nextAttemptAt]);
}

/**
 * One pass of the delivery loop: every notification due now, claimed a batch
 * at a time until none is left, each sequence in order and the sequences side
 * by side.
 */
export async function deliverDue<Context extends DeliveryContext, Notification extends ClaimedNotification>(
  context: Context,
  channel: DeliveryChannel<Context, Notification>,
): Promise<DeliveryReport> {
  const report: DeliveryReport = { attempted: 0, delivered: 0, retrying: 0, abandoned: 0, requestsSent: 0 };
  for (;;) {
    const claimed = await claimDue(context, channel);
    if (claimed.length === 0) return report;
    const sequences = new Map<string, Notification[]>();
    for (const notification of claimed) {
      const key = channel.sequenceKey(notification);
      sequences.set(key, [...(sequences.get(key) ?? []), notification]);
    }
    await Promise.all(
      [...sequences.values()].map(async (sequence) => {
        for (const notification of sequence) await deliverOne(context, channel, notification, report);
      }),
    );
    if (claimed.length < claimBatchSize) return report;
  }
}
