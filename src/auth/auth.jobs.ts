import { sql } from 'kysely';
import type { PlatformContext } from '../platform/context.js';
import type { DbExecutor } from '../platform/db/index.js';
import type { CronSpec, JobHandler } from '../platform/jobs/index.js';
import { deleteEndedSessions } from './sessions.js';
import { totpTimeStep, totpPeriodSeconds } from './totp.js';

/**
 * Housekeeping for sign-in state: sessions that ended a while ago, and TOTP
 * time steps too old to be replayed (a code is only accepted within one step
 * of now, so a step from an hour ago can never match again).
 */
export const authCleanupTask = 'auth.cleanup';

/** Ended sessions are kept a week, for questions like "who was signed in from where" after an incident. */
export const endedSessionRetentionSeconds = 7 * 24 * 60 * 60;
/** Far beyond the ±1 step window, so a clock moved back a little never reopens a used code. */
export const usedTotpStepRetentionSeconds = 60 * 60;
export const authCleanupBatchSize = 1000;
/** Bounded work per run; the next run picks up whatever is left. */
export const authCleanupBatchesMax = 50;

async function deleteOldTotpSteps(db: DbExecutor, beforeStep: number, batchSize: number): Promise<number> {
  const result = await sql`
    WITH doomed AS (
      SELECT user_id, time_step FROM totp_used_steps WHERE time_step < ${beforeStep} LIMIT ${batchSize}
    )
    DELETE FROM totp_used_steps t USING doomed d WHERE t.user_id = d.user_id AND t.time_step = d.time_step`.execute(db);
  return Number(result.numAffectedRows ?? 0n);
}

async function inBatches(deleteBatch: () => Promise<number>): Promise<number> {
  let total = 0;
  for (let batch = 0; batch < authCleanupBatchesMax; batch += 1) {
    const deleted = await deleteBatch();
    total += deleted;
    if (deleted < authCleanupBatchSize) break;
  }
  return total;
}

export async function cleanUpAuthState(context: PlatformContext): Promise<{ sessionsDeleted: number; totpStepsDeleted: number }> {
  const now = context.clock.now();
  const sessionsEndedBefore = new Date(now.getTime() - endedSessionRetentionSeconds * 1000);
  const stepsBefore = totpTimeStep(now) - Math.ceil(usedTotpStepRetentionSeconds / totpPeriodSeconds);
  const sessionsDeleted = await inBatches(() => deleteEndedSessions(context.db, sessionsEndedBefore, authCleanupBatchSize));
  const totpStepsDeleted = await inBatches(() => deleteOldTotpSteps(context.db, stepsBefore, authCleanupBatchSize));
  return { sessionsDeleted, totpStepsDeleted };
}

/** The job handlers need the platform (database, clock), so they are made for one context. */
export function authJobHandlers(context: PlatformContext): Record<string, JobHandler> {
  return {
    [authCleanupTask]: async () => {
      const deleted = await cleanUpAuthState(context);
      context.logger.info({ task: authCleanupTask, sessions_deleted: deleted.sessionsDeleted, totp_steps_deleted: deleted.totpStepsDeleted }, 'auth state cleaned up');
    },
  };
}

export const authCron: CronSpec[] = [{ task: authCleanupTask, pattern: '17 * * * *' }];
