import { appCron, appJobHandlers } from '../apps/index.js';
import { authCron, authJobHandlers } from '../auth/index.js';
import { paymentCron, paymentJobHandlers } from '../payments/index.js';
import type { PlatformContext } from '../platform/context.js';
import { reconciliationCron, reconciliationJobHandlers } from '../reconciliation/index.js';
import type { CronSpec, JobHandler } from '../platform/jobs/index.js';

/**
 * Every background task, by name. A module contributes its handlers through its
 * index.ts; the worker role runs them all.
 */
export function jobHandlers(context: PlatformContext): Record<string, JobHandler> {
  return { ...appJobHandlers(context), ...authJobHandlers(context), ...paymentJobHandlers(context), ...reconciliationJobHandlers(context) };
}

export const jobCron: CronSpec[] = [...appCron, ...authCron, ...paymentCron, ...reconciliationCron];
