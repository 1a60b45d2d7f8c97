import { z } from 'zod';
import { deliverDueEvents, deliverEvent, deliverEventTask } from '../notify/index.js';
import type { PlatformContext } from '../platform/context.js';
import type { CronSpec, JobHandler } from '../platform/jobs/index.js';
import { limits } from '../platform/limits.js';
import { exceptionRefundTask, queryPaymentTask, stalePaymentIds } from './payment-results.js';
import { expiredPaymentIds, expirePayment, expirePaymentTask, queryPayment } from './payments.service.js';
import { queryRefund, queryRefundTask, refundException } from './refunds.service.js';

/**
 * The payments module's background work. Each task re-reads the state it acts
 * on and acts only if it still applies, so a job that runs twice, late or after
 * a crash does no harm. The minute sweep catches whatever a lost job missed.
 */
export const paymentSweepTask = 'payments.sweep';

const paymentPayload = z.object({ payment_id: z.string(), attempt: z.number().int().min(0).default(0) });
const refundPayload = z.object({ refund_id: z.string(), attempt: z.number().int().min(0).default(0) });
const exceptionPayload = z.object({ exception_id: z.string() });
const eventPayload = z.object({ event_id: z.string() });

/** One minute's sweep: expired orders, stale paying orders, stuck refunds, due webhooks, open exceptions. */
export async function sweepPayments(context: PlatformContext): Promise<void> {
  for (const id of await expiredPaymentIds(context, limits.dueBatchSize)) await expirePayment(context, id);
  for (const id of await stalePaymentIds(context, limits.dueBatchSize)) await queryPayment(context, id);
  const staleBefore = new Date(context.clock.now().getTime() - limits.paymentStaleSeconds * 1000);
  const refunds = await context.db.selectFrom('refunds').select('id').where('status', '=', 'processing').where('updated_at', '<=', staleBefore).limit(limits.dueBatchSize).execute();
  for (const refund of refunds) await queryRefund(context, refund.id, 0);
  if (context.config.exceptionAutoRefund) {
    const open = await context.db.selectFrom('payment_exceptions').select('id').where('status', '=', 'open').where('kind', '<>', 'amount_mismatch').limit(limits.dueBatchSize).execute();
    for (const exception of open) await refundException(context, exception.id);
  }
  await deliverDueEvents(context);
}

export function paymentJobHandlers(context: PlatformContext): Record<string, JobHandler> {
  return {
    [queryPaymentTask]: async (payload) => {
      const { payment_id: paymentId, attempt } = paymentPayload.parse(payload);
      await queryPayment(context, paymentId, attempt);
    },
    [expirePaymentTask]: async (payload) => expirePayment(context, paymentPayload.parse(payload).payment_id),
    [queryRefundTask]: async (payload) => {
      const { refund_id: refundId, attempt } = refundPayload.parse(payload);
      await queryRefund(context, refundId, attempt);
    },
    [exceptionRefundTask]: async (payload) => {
      await refundException(context, exceptionPayload.parse(payload).exception_id);
    },
    [deliverEventTask]: async (payload) => {
      await deliverEvent(context, eventPayload.parse(payload).event_id);
    },
    [paymentSweepTask]: async () => sweepPayments(context),
  };
}

export const paymentCron: CronSpec[] = [{ task: paymentSweepTask, pattern: '* * * * *' }];
