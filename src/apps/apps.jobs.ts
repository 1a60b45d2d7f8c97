import { sql } from 'kysely';
import type { PlatformContext } from '../platform/context.js';
import type { CronSpec, JobHandler } from '../platform/jobs/index.js';
import { limits } from '../platform/limits.js';

/**
 * Housekeeping for the merchant API: idempotency records past their retention
 * and nonces past their expiry are deleted in bounded batches, so one run never
 * holds long locks or bloats one transaction.
 */
export const appCleanupTask = 'apps.cleanup';
const cleanupBatchSize = 1000;
const cleanupBatchesMax = 100;

export interface CleanupReport {
  idempotencyKeysDeleted: number;
  noncesDeleted: number;
}

async function deleteInBatches(run: () => Promise<number>): Promise<number> {
  let total = 0;
  for (let batch = 0; batch < cleanupBatchesMax; batch += 1) {
    const deleted = await run();
    total += deleted;
    if (deleted < cleanupBatchSize) break;
  }
  return total;
}

export async function cleanupExpiredRequestRecords(context: PlatformContext): Promise<CleanupReport> {
  const now = context.clock.now();
  const retentionCutoff = new Date(now.getTime() - limits.idempotencyRetentionHours * 60 * 60 * 1000);
  const idempotencyKeysDeleted = await deleteInBatches(async () => {
    const result = await sql`
      DELETE FROM idempotency_keys WHERE (app_id, key) IN (
        SELECT app_id, key FROM idempotency_keys WHERE created_at < ${retentionCutoff} LIMIT ${cleanupBatchSize}
      )`.execute(context.db);
    return Number(result.numAffectedRows ?? 0n);
  });
  const noncesDeleted = await deleteInBatches(async () => {
    const result = await sql`
      DELETE FROM api_nonces WHERE (app_id, nonce) IN (
        SELECT app_id, nonce FROM api_nonces WHERE expires_at <= ${now} LIMIT ${cleanupBatchSize}
      )`.execute(context.db);
    return Number(result.numAffectedRows ?? 0n);
  });
  return { idempotencyKeysDeleted, noncesDeleted };
}

export function appJobHandlers(context: PlatformContext): Record<string, JobHandler> {
  return {
    [appCleanupTask]: async () => {
      const report = await cleanupExpiredRequestRecords(context);
      context.logger.info({ task: appCleanupTask, ...report }, 'merchant API records cleaned up');
    },
  };
}

export const appCron: CronSpec[] = [{ task: appCleanupTask, pattern: '7 * * * *' }];
