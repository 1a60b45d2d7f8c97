import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { checkNotificationAmount, type ChannelConnector, type NotificationEvent } from '../channels/index.js';
import { raiseAlert } from '../monitoring/index.js';
import { connectorFor, getChannelAccount, type ChannelAccountRow } from '../routing/index.js';
import type { PlatformContext } from '../platform/context.js';
import { FenError } from '../platform/errors.js';
import { limits } from '../platform/limits.js';
import { applyPaymentResult, scheduleQuery } from './payment-results.js';
import { currencyOf, findPayment, findRefund } from './payments.repository.js';
import { applyRefundResult } from './refunds.service.js';

/**
 * Channel notification endpoints `/channels/<channel>/notify/<channel account>`.
 * A notification counts only after the connector has verified it (signature,
 * then amount against the order). One that fails verification is never
 * trusted: Fen raises a security alert and asks the channel about the
 * account's open payments instead (DESIGN.md §3.5).
 */
const paramsSchema = z.object({
  channel: z.enum(['alipay', 'wechatpay', 'unionpay']),
  channelAccountId: z.string().regex(/^cha_[0-9a-z]{26}$/, 'must be a channel account id'),
});

/**
 * A notification verified by one account's key speaks only for that account's
 * trades: a payment sent through another account is not this one's to settle.
 * Before this check, a genuine notification of one account (a merchant's own,
 * say) closed or paid a payment of another (the platform's shared account),
 * booking money that account never received. Found by
 * test/fuzz/channels-and-cashier.test.ts.
 */
async function raiseForeignTrade(context: PlatformContext, account: ChannelAccountRow, subjectId: string, what: string): Promise<void> {
  await raiseAlert(context.db, context.clock, { kind: 'forged_notification', severity: 'critical', merchantId: account.merchant_id, subjectId, message: `a notification verified for ${account.id} names ${what} of another channel account; ignored` });
}

async function applyVerified(context: PlatformContext, account: ChannelAccountRow, event: NotificationEvent): Promise<void> {
  if (event.kind === 'payment') {
    const payment = await findPayment(context.db, event.facts.outTradeNo);
    if (!payment) {
      await raiseAlert(context.db, context.clock, { kind: 'forged_notification', severity: 'warning', merchantId: null, subjectId: event.facts.outTradeNo, message: `a verified notification names an unknown payment ${event.facts.outTradeNo}` });
      return;
    }
    if (payment.channel_account_id !== account.id) return raiseForeignTrade(context, account, payment.id, `payment ${payment.id}`);
    await applyPaymentResult(context, payment, checkNotificationAmount(event, { amount: payment.amount, currency: currencyOf(payment) }));
    return;
  }
  const refund = await findRefund(context.db, event.facts.outRefundNo);
  if (!refund) return;
  const refunded = await findPayment(context.db, refund.payment_id);
  if (refunded?.channel_account_id !== account.id) return raiseForeignTrade(context, account, refund.id, `refund ${refund.id}`);
  await applyRefundResult(context, refund.id, checkNotificationAmount(event, { amount: refund.amount, currency: currencyOf(refund) }));
}

/** After a notification that failed verification: query the account's open payments rather than believe it. */
async function queryOpenPayments(context: PlatformContext, account: ChannelAccountRow): Promise<void> {
  const open = await context.db.selectFrom('payments').select('id').where('channel_account_id', '=', account.id).where('status', '=', 'paying').orderBy('updated_at', 'desc').limit(limits.dueBatchSize).execute();
  for (const payment of open) await scheduleQuery(context, payment.id, 0);
}

async function handleNotification(context: PlatformContext, account: ChannelAccountRow, connector: ChannelConnector, request: { headers: Record<string, string | string[] | undefined>; rawBody: string | undefined; body: unknown }) {
  const form = request.body !== null && typeof request.body === 'object' && !Array.isArray(request.body) ? (request.body as Record<string, string>) : undefined;
  const verification = await connector.verifyNotification({ headers: request.headers, rawBody: request.rawBody ?? '', form, json: request.body });
  if (!verification.verified) {
    await raiseAlert(context.db, context.clock, {
      kind: 'forged_notification',
      severity: 'critical',
      merchantId: account.merchant_id,
      subjectId: account.id,
      message: `a ${account.channel} notification for ${account.id} failed verification (${verification.reason})`,
      details: { reason: verification.reason, message: verification.message },
    });
    await queryOpenPayments(context, account);
    return connector.acknowledgeNotification('rejected');
  }
  await applyVerified(context, account, verification.event);
  return connector.acknowledgeNotification('accepted');
}

export function registerChannelNotificationRoutes(app: FastifyInstance, context: PlatformContext): void {
  app.withTypeProvider<ZodTypeProvider>().post(
    '/channels/:channel/notify/:channelAccountId',
    { schema: { tags: ['channels'], summary: 'Where a channel posts its payment and refund notifications', params: paramsSchema, body: z.unknown() }, config: { auth: 'none' } },
    async (request, reply) => {
      const account = await getChannelAccount(context, request.params.channelAccountId);
      if (account.channel !== request.params.channel) throw new FenError('not_found', `no ${request.params.channel} account ${account.id}`);
      const connector = connectorFor(context, account);
      let acknowledgement;
      try {
        acknowledgement = await handleNotification(context, account, connector, { headers: request.headers, rawBody: request.rawBody, body: request.body });
      } catch (error) {
        // Fen could not record it: say so in the channel's words, and the channel will send it again.
        request.log.error({ err: error, channel_account_id: account.id }, 'channel notification not recorded');
        acknowledgement = connector.acknowledgeNotification('rejected');
      }
      return reply.code(acknowledgement.statusCode).header('content-type', acknowledgement.contentType).send(acknowledgement.body);
    },
  );
}
