import type { PlatformContext } from '../platform/context.js';
import type { CronSpec, JobHandler } from '../platform/jobs/index.js';

/**
 * Every background task, by name. A module contributes its handlers through its
 * index.ts; the worker role runs them all.
 */
export function jobHandlers(_context: PlatformContext): Record<string, JobHandler> {
  return {};
}

export const jobCron: CronSpec[] = [];
