import { sql } from 'kysely';
import { z } from 'zod';
import type { PlatformContext } from '../platform/context.js';
import type { CronSpec, JobHandler } from '../platform/jobs/index.js';
import { enqueueJob } from '../platform/jobs/index.js';
import { FenError } from '../platform/errors.js';
import { accountsToReconcile, reconcileAccountDay } from './reconciliation.service.js';
import { addDays, beijingDateOf } from './recon.types.js';

/**
 * The daily reconciliation. A dispatcher runs every five minutes; for each
 * active channel account whose connector fetches bills, once the Beijing time
 * of day has passed the account's recon_time (10:00 unless set otherwise), it
 * queues the batch of the day before — unless that batch has already run to
 * the end. A bill that is not ready yet, or a run that failed, is simply
 * queued again by a later pass (a failed one at most hourly). The job key
 * (account and date) keeps one job per batch in the queue.
 */
export const reconcileDispatchTask = 'reconciliation.dispatch';
export const reconcileRunTask = 'reconciliation.run';

const failedRetryMs = 60 * 60 * 1000;
const runPayload = z.object({ channel_account_id: z.string().min(1).max(64), bill_date: z.string().regex(/^\d{4}-\d{2}-\d{2}$/) });

function minutesOf(time: string): number {
  const [hours, minutes] = time.split(':').map(Number) as [number, number];
  return hours * 60 + minutes;
}

/** Queues the batches due now; returns them as account/date pairs. */
export async function dispatchDueBatches(context: PlatformContext): Promise<Array<{ channelAccountId: string; billDate: string }>> {
  const now = context.clock.now();
  const today = beijingDateOf(now);
  const beijingMinutes = Math.floor(((now.getTime() + 8 * 60 * 60 * 1000) % (24 * 60 * 60 * 1000)) / 60_000);
  const billDate = addDays(today, -1);
  const queued: Array<{ channelAccountId: string; billDate: string }> = [];
  for (const account of await accountsToReconcile(context)) {
    const settings = await context.db.selectFrom('channel_accounts').select('recon_time').where('id', '=', account.id).executeTakeFirstOrThrow();
    if (beijingMinutes < minutesOf(settings.recon_time)) continue;
    const batch = await sql<{ status: string; updated_at: Date }>`SELECT status, updated_at FROM recon_batches WHERE channel_account_id = ${account.id} AND bill_date = ${billDate}::date`.execute(context.db);
    const existing = batch.rows[0];
    const due = !existing || existing.status === 'not_ready' || (existing.status === 'failed' && now.getTime() - existing.updated_at.getTime() >= failedRetryMs);
    if (!due) continue;
    await enqueueJob(context.db, { task: reconcileRunTask, payload: { channel_account_id: account.id, bill_date: billDate }, jobKey: `recon:${account.id}:${billDate}`, maxAttempts: 3 });
    queued.push({ channelAccountId: account.id, billDate });
  }
  return queued;
}

export function reconciliationJobHandlers(context: PlatformContext): Record<string, JobHandler> {
  return {
    [reconcileDispatchTask]: async () => {
      await dispatchDueBatches(context);
    },
    [reconcileRunTask]: async (payload) => {
      const { channel_account_id: channelAccountId, bill_date: billDate } = runPayload.parse(payload);
      try {
        await reconcileAccountDay(context, channelAccountId, billDate);
      } catch (error) {
        // Another process is running this batch right now: its run is as good as ours.
        if (error instanceof FenError && error.code === 'conflict') return;
        throw error;
      }
    },
  };
}

export const reconciliationCron: CronSpec[] = [{ task: reconcileDispatchTask, pattern: '*/5 * * * *' }];
