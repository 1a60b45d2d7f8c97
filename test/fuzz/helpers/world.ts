import { sql } from 'kysely';
import type { CreatedApp } from '../../../src/apps/index.js';
import { createOperator } from '../../../src/auth/index.js';
import type { MerchantView } from '../../../src/merchants/index.js';
import { connectAlipaySimulator } from '../../../src/main/sandbox.js';
import type { PaymentView, RefundView } from '../../../src/payments/index.js';
import type { ChannelAccountRow } from '../../../src/routing/index.js';
import type { TestContext } from '../../helpers/context.js';
import { createActiveApp, createActiveMerchant, signedClient, testOperatorActor } from '../../helpers/merchant-api.js';
import { signInOperator } from '../../helpers/operators.js';
import { startPaymentsHarness, type PaymentsHarness } from '../../helpers/payments-harness.js';
import { IdPools, type Credentials } from './runner.js';

/**
 * What the fuzzer plays against: real Fen and the Alipay simulator (the
 * payments harness), an admin and a read-only operator signed in, and a cast
 * of "victims" — a merchant, an app, an operator and a channel account that
 * fuzzed requests may change at will. The fuzzer's own app, its merchant, the
 * signed-in operators and the channel account payments go through are guarded:
 * requests read them but never change them, so the run keeps its footing (a
 * fuzzed "rotate this app's secret" would otherwise lock the fuzzer out).
 */
export interface FuzzWorld {
  harness: PaymentsHarness;
  pools: IdPools;
  credentials: Credentials;
  victims: { merchant: MerchantView; app: CreatedApp; operatorId: string; channelAccount: ChannelAccountRow };
  /** Payments of the fuzzer's app, in every state a route cares about. */
  payments: Record<'paid' | 'paidRefunded' | 'paying' | 'closed' | 'cashier', PaymentView>;
  close(): Promise<void>;
}

/**
 * Gives the simulator's channel account a long call timeout. The harness's two
 * seconds suit an idle machine; on a loaded one a slow simulator would turn
 * into "the channel did not answer", a 503 that says nothing about Fen.
 */
export async function patientChannel(context: TestContext, channelAccountId: string): Promise<void> {
  await sql`UPDATE channel_accounts SET settings = jsonb_set(settings, '{timeout_ms}', '30000'), updated_at = ${context.clock.now()} WHERE id = ${channelAccountId}`.execute(context.db);
}

export async function startFuzzWorld(): Promise<FuzzWorld> {
  const harness = await startPaymentsHarness();
  const { context, app, client, merchantApp } = harness;
  await patientChannel(context, harness.account.id);
  const pools = new IdPools();
  const admin = await signInOperator(app, context, { roles: ['admin'] });
  const auditor = await signInOperator(app, context, { roles: ['auditor'] });
  pools.guard(merchantApp.id);
  pools.guard(merchantApp.merchant_id);
  pools.guard(admin.userId);
  pools.guard(auditor.userId);
  pools.guard(harness.account.id);

  const victimMerchant = await createActiveMerchant(context);
  const victimApp = await createActiveApp(context, { merchantId: victimMerchant.id });
  const victimOperator = await createOperator(context, { email: 'victim-operator@fen.test', name: 'Victim', password: 'a victim password 123', roles: ['operations'] });
  // Created after the harness's account, so new payments keep going to that one while it is active.
  const victimChannelAccount = await connectAlipaySimulator(context, testOperatorActor, harness.simulator, { name: 'Victim account' });
  for (const id of [victimMerchant.id, victimApp.id, victimOperator.user.id, victimChannelAccount.id]) pools.add(id);

  const create = (amount: number, method = 'alipay_qr') =>
    client.request<PaymentView>('POST', '/v1/payments', { out_trade_no: `fuzz-setup-${amount}-${method}`, amount, currency: 'CNY', subject: 'Fuzz setup', method });
  const paid = await create(12_000);
  const paidRefunded = await create(15_000);
  const paying = await create(9_000);
  const closed = await create(7_000);
  const cashier = await create(5_000, 'cashier');
  await harness.payerPresses(paid, 'pay');
  await harness.payerPresses(paidRefunded, 'pay');
  await harness.deliverAll();
  await client.request<RefundView>('POST', `/v1/payments/${paidRefunded.id}/refunds`, { amount: 3_000, out_refund_no: 'fuzz-setup-refund' });
  await client.request<PaymentView>('POST', `/v1/payments/${closed.id}/close`);
  // A payment of another app: well-formed, real, and not the fuzzer's to see.
  const foreign = await signedClient(app, context, { appId: victimApp.id, appSecret: victimApp.app_secret }).request<PaymentView>('POST', '/v1/payments', { out_trade_no: 'foreign-1', amount: 100, subject: 'Foreign', method: 'cashier' });
  pools.add(foreign.id);
  for (const row of await context.db.selectFrom('payments').select('id').execute()) pools.add(row.id);
  for (const row of await context.db.selectFrom('refunds').select('id').execute()) pools.add(row.id);
  for (const row of await context.db.selectFrom('events').select('id').execute()) pools.add(row.id);
  for (const row of await context.db.selectFrom('ledger_accounts').select('id').execute()) pools.add(row.id);

  const read = (id: string) => client.request<PaymentView>('GET', `/v1/payments/${id}`);
  return {
    harness,
    pools,
    credentials: { signing: { appId: merchantApp.id, secret: merchantApp.app_secret }, admin: admin.headers, readOnly: auditor.headers },
    victims: { merchant: victimMerchant, app: victimApp, operatorId: victimOperator.user.id, channelAccount: victimChannelAccount },
    payments: { paid: await read(paid.id), paidRefunded: await read(paidRefunded.id), paying: await read(paying.id), closed: await read(closed.id), cashier: await read(cashier.id) },
    close: () => harness.close(),
  };
}
