import { sql } from 'kysely';
import type { ChannelConnector, CreatePaymentResult, PaymentMethod } from '../channels/index.js';
import { chooseChannelAccount, connectorFor, getChannelAccount, recordChannelCall, type ChannelAccountRow } from '../routing/index.js';
import type { PlatformContext } from '../platform/context.js';
import { FenError } from '../platform/errors.js';
import type { AuthenticatedApp } from '../platform/http/index.js';
import { newId } from '../platform/ids.js';
import { addJobExpression } from '../platform/jobs/index.js';
import { limits } from '../platform/limits.js';
import { feeFor, type Currency, type FeePlan } from '../platform/money.js';
import { applyPaymentResult, markEnded, recordPaymentEvent, scheduleQuery } from './payment-results.js';
import { currencyOf, findPayment, type PaymentRow } from './payments.repository.js';

/**
 * Creating a payment: record the intent and commit, then call the channel
 * outside any transaction, then record what it said (DESIGN.md §3.3). An
 * unknown answer never fails the payment: it stays `paying` and a job asks the
 * channel until it knows.
 */
export const expirePaymentTask = 'payments.expire';

export interface CreatePaymentInput {
  outTradeNo: string;
  amount: bigint;
  currency: Currency;
  subject: string;
  method: string;
  notifyUrl: string | null;
  returnUrl: string | null;
  expiresInSeconds: number;
  clientIp: string | null;
  metadata: Record<string, unknown> | null;
}

/** The merchant's plan for the method when it has one, else its general rate: one round trip either way. */
async function feePlanFor(context: PlatformContext, merchantId: string, method: string): Promise<FeePlan> {
  const row = await context.db
    .selectFrom('merchants as m')
    .leftJoin('merchant_fee_plans as p', (join) => join.onRef('p.merchant_id', '=', 'm.id').on('p.method', '=', method))
    .select(['m.fee_rate_basis_points', 'm.fee_minimum_minor', 'm.fee_maximum_minor', 'p.merchant_id as plan_merchant_id', 'p.rate_basis_points', 'p.minimum_minor', 'p.maximum_minor'])
    .where('m.id', '=', merchantId)
    .executeTakeFirstOrThrow();
  if (row.plan_merchant_id !== null && row.rate_basis_points !== null) return { rateBasisPoints: row.rate_basis_points, minimumMinor: row.minimum_minor ?? 0n, maximumMinor: row.maximum_minor };
  return { rateBasisPoints: row.fee_rate_basis_points, minimumMinor: row.fee_minimum_minor, maximumMinor: row.fee_maximum_minor };
}

async function routeFor(context: PlatformContext, app: AuthenticatedApp, method: string): Promise<ChannelAccountRow | undefined> {
  if (method === 'cashier') return undefined;
  const account = await chooseChannelAccount(context, { appId: app.appId, merchantId: app.merchantId, method });
  if (!account) throw new FenError('no_channel_account', `no active channel account offers ${method}; ask the platform to set one up`);
  return account;
}

function checkMethod(app: AuthenticatedApp, method: string): void {
  if (!app.enabledMethods.includes(method)) throw new FenError('method_not_enabled', `method ${method} is not enabled for app ${app.appId}`);
}

/**
 * The payment and its expiry job, written by one statement: the job is queued
 * only when the row was inserted. The statement still runs in an explicit
 * transaction: a connection lost while it runs (waiting on a lock, say) then
 * leaves nothing behind, because the server waits for a COMMIT that never
 * comes. Autocommitted, it would commit on its own after the client had been
 * told the create failed, and the retry would find its out_trade_no taken.
 * Found by test/integration/faults-database.test.ts.
 */
async function insertPayment(context: PlatformContext, app: AuthenticatedApp, input: CreatePaymentInput, account: ChannelAccountRow | undefined): Promise<PaymentRow> {
  const plan = await feePlanFor(context, app.merchantId, input.method);
  const now = context.clock.now();
  const expiresAt = new Date(now.getTime() + input.expiresInSeconds * 1000);
  // By the injected clock: UnionPay's txnTime is read back from the id's time, so it must be Fen's time, not the machine's.
  const id = newId('payment', now.getTime());
  const expiryJob = addJobExpression({ task: expirePaymentTask, payload: { payment_id: id }, runAt: expiresAt, jobKey: `expire:${id}` });
  const inserted = await context.db.transaction().execute(async (trx) =>
    trx
      .with('inserted', (db) =>
        db
          .insertInto('payments')
          .values({
            id,
            merchant_id: app.merchantId,
            app_id: app.appId,
            out_trade_no: input.outTradeNo,
            amount: input.amount,
            currency: input.currency,
            subject: input.subject,
            method: input.method,
            channel: account?.channel ?? null,
            channel_account_id: account?.id ?? null,
            account_mode: account?.mode ?? null,
            status: 'created',
            notify_url: input.notifyUrl ?? app.notifyUrl,
            return_url: input.returnUrl,
            client_ip: input.clientIp,
            metadata: input.metadata ? JSON.stringify(input.metadata) : null,
            fee_amount: feeFor(input.amount, plan),
            fee_rate_basis_points: plan.rateBasisPoints,
            expires_at: expiresAt,
            created_at: now,
            updated_at: now,
          })
          .onConflict((conflict) => conflict.columns(['app_id', 'out_trade_no']).doNothing())
          .returningAll(),
      )
      .selectFrom('inserted')
      .selectAll('inserted')
      .select(sql<string>`(${expiryJob}).id`.as('expiry_job_id'))
      .executeTakeFirst(),
  );
  if (!inserted) {
    const existing = await context.db.selectFrom('payments').select('id').where('app_id', '=', app.appId).where('out_trade_no', '=', input.outTradeNo).executeTakeFirst();
    throw new FenError('out_trade_no_exists', `out_trade_no ${input.outTradeNo} is already used by payment ${existing?.id ?? ''}`, { payment_id: existing?.id });
  }
  const { expiry_job_id: _expiryJobId, ...row } = inserted;
  return row;
}

export async function createPayment(context: PlatformContext, app: AuthenticatedApp, input: CreatePaymentInput): Promise<PaymentRow> {
  checkMethod(app, input.method);
  const account = await routeFor(context, app, input.method);
  const payment = await insertPayment(context, app, input, account);
  if (!account) return payment;
  return startChannelPayment(context, payment, account);
}

/**
 * Chooses a method for a cashier payment (the payer's choice) and sends it to
 * the channel. The fee is priced again for the chosen method, and the
 * connector is built before the payment is claimed, so a channel that cannot
 * be used leaves the payment free to choose again.
 *
 * `payer.ip` is the address the payer chose from. The merchant's server
 * created the payment, so the payment rarely carries the payer's IP, and
 * WeChat H5 refuses an order without it: before the cashier passed it here,
 * every cashier payment whose payer picked WeChat Pay mobile web failed with
 * channel_missing_payer_ip. Found by test/e2e/wechatpay-checkout.test.ts.
 */
export async function chooseCashierMethod(context: PlatformContext, paymentId: string, method: string, payer: { ip?: string } = {}): Promise<PaymentRow> {
  const payment = await findPayment(context.db, paymentId);
  if (!payment) throw new FenError('not_found', `no payment ${paymentId}`);
  if (method === 'cashier') throw new FenError('invalid_request', 'choose a channel method');
  if (payment.status !== 'created' || payment.channel_account_id) throw new FenError('invalid_state', `payment ${paymentId} already has a method`);
  if (payment.expires_at <= context.clock.now()) throw new FenError('invalid_state', `payment ${paymentId} has expired`);
  const app = await context.db.selectFrom('apps').select(['id', 'merchant_id', 'enabled_methods', 'notify_url', 'status']).where('id', '=', payment.app_id).executeTakeFirstOrThrow();
  if (app.status !== 'active') throw new FenError('app_disabled', `app ${app.id} is disabled`);
  const authenticated: AuthenticatedApp = { appId: app.id, merchantId: app.merchant_id, enabledMethods: app.enabled_methods, notifyUrl: app.notify_url };
  checkMethod(authenticated, method);
  const account = await routeFor(context, authenticated, method);
  if (!account) throw new FenError('no_channel_account', `no active channel account offers ${method}`);
  const connector = connectorFor(context, account);
  const plan = await feePlanFor(context, payment.merchant_id, method);
  const claimed = await context.db
    .updateTable('payments')
    .set({
      method,
      channel: account.channel,
      channel_account_id: account.id,
      account_mode: account.mode,
      fee_amount: feeFor(payment.amount, plan),
      fee_rate_basis_points: plan.rateBasisPoints,
      // An IP the merchant sent stays; otherwise the payer's own, seen by the cashier.
      client_ip: payment.client_ip ?? payer.ip ?? null,
      updated_at: context.clock.now(),
    })
    .where('id', '=', paymentId)
    .where('status', '=', 'created')
    .where('channel_account_id', 'is', null)
    .returningAll()
    .executeTakeFirst();
  if (!claimed) throw new FenError('invalid_state', `payment ${paymentId} already has a method`);
  return callChannel(context, claimed, account, connector);
}

async function startChannelPayment(context: PlatformContext, payment: PaymentRow, account: ChannelAccountRow): Promise<PaymentRow> {
  return callChannel(context, payment, account, connectorFor(context, account));
}

async function callChannel(context: PlatformContext, payment: PaymentRow, account: ChannelAccountRow, connector: ChannelConnector): Promise<PaymentRow> {
  const result: CreatePaymentResult = await connector.createPayment({
    method: payment.method as PaymentMethod,
    outTradeNo: payment.id,
    amount: { amount: payment.amount, currency: currencyOf(payment) },
    subject: payment.subject,
    expiresAt: payment.expires_at,
    // The payer comes back to the cashier page, which shows the payment as Fen knows it and then goes on to the merchant.
    returnUrl: `${context.config.publicUrl}/pay/${payment.id}/return`,
    ...(payment.client_ip ? { payerIp: payment.client_ip } : {}),
  });
  await recordChannelCall(context, account, result.status === 'unknown' ? 'failed' : 'ok');
  return recordCreateResult(context, payment, result);
}

async function recordCreateResult(context: PlatformContext, payment: PaymentRow, result: CreatePaymentResult): Promise<PaymentRow> {
  const now = context.clock.now();
  if (result.status === 'failed') {
    return (await markEnded(context, payment.id, { status: 'failed', code: `channel_${result.channelCode}`.slice(0, 64), message: result.message })) ?? payment;
  }
  const action = result.status === 'pending' ? result.action : undefined;
  const updated = await context.db
    .updateTable('payments')
    .set({
      status: 'paying',
      qr_code: action?.kind === 'qr_code' ? action.qrCode : null,
      pay_url: action?.kind === 'redirect' ? action.url : null,
      payer_action: action && (action.kind === 'form' || action.kind === 'client_parameters') ? JSON.stringify(action) : null,
      channel_trade_no: result.status === 'pending' ? (result.channelTradeNo ?? null) : null,
      updated_at: now,
    })
    .where('id', '=', payment.id)
    .where('status', '=', 'created')
    .returningAll()
    .executeTakeFirst();
  // The channel might have the order even though it did not say so: ask it soon.
  if (result.status === 'unknown') await scheduleQuery(context, payment.id, 0);
  return updated ?? (await findPayment(context.db, payment.id)) ?? payment;
}

/** Asks the channel about an open payment and applies the answer. */
export async function queryPayment(context: PlatformContext, paymentId: string, attempt = 0): Promise<PaymentRow | undefined> {
  const payment = await findPayment(context.db, paymentId);
  if (!payment?.channel_account_id || (payment.status !== 'paying' && payment.status !== 'created')) return payment;
  const account = await getChannelAccount(context, payment.channel_account_id);
  const result = await connectorFor(context, account).queryPayment({
    outTradeNo: payment.id,
    ...(payment.channel_trade_no ? { channelTradeNo: payment.channel_trade_no } : {}),
    expected: { amount: payment.amount, currency: currencyOf(payment) },
  });
  await context.db.updateTable('payments').set((eb) => ({ query_attempts: eb('query_attempts', '+', 1) })).where('id', '=', paymentId).execute();
  return applyPaymentResult(context, payment, result, { attempt: attempt + 1 });
}

/**
 * Closes an open payment: at the channel first when it was sent there. A
 * channel that will not close it (usually: it was paid meanwhile) is asked what
 * happened, and that answer is applied instead.
 */
export async function closePayment(context: PlatformContext, paymentId: string, reason: { code: string; message: string }): Promise<PaymentRow> {
  const payment = await findPayment(context.db, paymentId);
  if (!payment) throw new FenError('not_found', `no payment ${paymentId}`);
  if (payment.status !== 'created' && payment.status !== 'paying') {
    throw new FenError('payment_not_closable', `payment ${paymentId} is ${payment.status} and cannot be closed`);
  }
  if (payment.channel_account_id && payment.status === 'paying') {
    const account = await getChannelAccount(context, payment.channel_account_id);
    const closed = await connectorFor(context, account).closePayment({ outTradeNo: payment.id, ...(payment.channel_trade_no ? { channelTradeNo: payment.channel_trade_no } : {}) });
    if (closed.status === 'unknown') throw new FenError('channel_unavailable', `the channel did not answer the close (${closed.message}); try again`);
    if (closed.status === 'failed') {
      const after = await queryPayment(context, paymentId);
      if (after && after.status !== 'paying' && after.status !== 'created') return after;
      throw new FenError('payment_not_closable', `the channel refused to close payment ${paymentId}: ${closed.message}`);
    }
  }
  const ended = await markEnded(context, paymentId, { status: 'closed', ...reason });
  if (ended) return ended;
  const current = await findPayment(context.db, paymentId);
  if (!current) throw new FenError('not_found', `no payment ${paymentId}`);
  return current;
}

/** The expiry job: an order still open at its expiry is closed (at the channel too). */
export async function expirePayment(context: PlatformContext, paymentId: string): Promise<void> {
  const payment = await findPayment(context.db, paymentId);
  if (!payment || (payment.status !== 'created' && payment.status !== 'paying')) return;
  if (payment.expires_at > context.clock.now()) return;
  try {
    await closePayment(context, paymentId, { code: 'expired', message: 'the payment expired before it was paid' });
  } catch (error) {
    // A channel that cannot be reached now is asked again by the next sweep.
    if (!(error instanceof FenError)) throw error;
    context.logger.warn({ payment_id: paymentId, code: error.code }, 'expiry could not close the payment yet');
  }
}

export async function expiredPaymentIds(context: PlatformContext, limit: number): Promise<string[]> {
  const rows = await context.db
    .selectFrom('payments')
    .select('id')
    .where('status', 'in', ['created', 'paying'])
    .where('expires_at', '<=', context.clock.now())
    .orderBy('expires_at')
    .limit(limit)
    .execute();
  return rows.map((row) => row.id);
}

export { recordPaymentEvent, limits as paymentLimits };
