import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkLedger, listEntries } from '../../src/ledger/index.js';
import type { PaymentView } from '../../src/payments/index.js';
import { testMasterKey } from '../helpers/context.js';
import { signInOperator } from '../helpers/operators.js';
import { startPaymentsHarness, type PaymentsHarness } from '../helpers/payments-harness.js';
import { runFen } from '../helpers/process.js';

/**
 * The operator's side of reconciliation: running a batch, reading batches
 * and differences, resolving differences (each a ledger entry, audited),
 * the CSV export, bad input answered with 4xx — and `fen reconcile` as the
 * operator runs it, a child process of its own.
 */
const beijing = (text: string) => new Date(`${text}+08:00`);
const day = '2026-02-03';

let harness: PaymentsHarness;
let finance: Record<string, string>;
let operations: Record<string, string>;
const orders: Record<string, PaymentView> = {};

async function pay(name: string, amount: number): Promise<PaymentView> {
  const created = await harness.client.request<PaymentView>('POST', '/v1/payments', { out_trade_no: `api-${name}`, amount, currency: 'CNY', subject: name, method: 'alipay_qr' });
  await harness.payerPresses(created, 'pay');
  await harness.deliverAll();
  orders[name] = created;
  return created;
}

const inject = (method: 'GET' | 'POST', url: string, headers: Record<string, string>, payload?: unknown) => harness.app.inject({ method, url, headers, ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }) });

beforeAll(async () => {
  harness = await startPaymentsHarness();
  harness.context.clock.set(beijing('2026-02-03T11:00:00'));
  await pay('kept', 1000);
  await pay('lost', 2500);
  await pay('altered', 3000);
  await pay('overcharged', 4000);
  await harness.simulator.setFault({ outTradeNo: orders.lost!.id, fault: { kind: 'bill_missing_line' } });
  await harness.simulator.setFault({ outTradeNo: orders.altered!.id, fault: { kind: 'bill_wrong_amount', totalAmount: '31.00' } });
  await harness.simulator.setFault({ outTradeNo: orders.overcharged!.id, fault: { kind: 'bill_wrong_fee', serviceFee: '0.50' } });
  harness.context.clock.set(beijing('2026-02-04T10:00:00'));
  finance = (await signInOperator(harness.app, harness.context, { roles: ['finance'] })).headers;
  operations = (await signInOperator(harness.app, harness.context, { roles: ['operations'] })).headers;
});

afterAll(async () => harness?.close());

describe('the reconciliation operator API', () => {
  let batchId: string;

  it('runs a batch and lists it with its differences', async () => {
    const run = await inject('POST', '/admin/v1/reconciliation/runs', finance, { channel_account_id: harness.account.id, date: day });
    expect(run.statusCode).toBe(200);
    const batch = run.json<{ batch_id: string; differences: Record<string, number>; status: string; lines_channel: number; matched: number }>();
    batchId = batch.batch_id;
    expect(batch).toMatchObject({ lines_channel: 3, matched: 1, status: 'differences', differences: { missing_local: 0, missing_channel: 1, amount_mismatch: 1, status_mismatch: 0, fee_mismatch: 1 } });
    const listed = await inject('GET', `/admin/v1/reconciliation/batches?date=${day}`, finance);
    expect(listed.json<{ data: Array<{ batch_id: string }> }>().data.map((item) => item.batch_id)).toEqual([batchId]);
    const differences = await inject('GET', `/admin/v1/reconciliation/batches/${batchId}/differences?status=open`, finance);
    expect(differences.json<{ data: Array<{ kind: string }> }>().data.map((item) => item.kind).sort()).toEqual(['amount_mismatch', 'fee_mismatch', 'missing_channel']);
  });

  it('resolves each difference as a ledger entry, audited, and the batch balances', async () => {
    const open = (await inject('GET', `/admin/v1/reconciliation/batches/${batchId}/differences?status=open`, finance)).json<{ data: Array<{ id: string; kind: string; delta: number }> }>().data;
    const byKind = Object.fromEntries(open.map((item) => [item.kind, item]));
    expect(byKind.amount_mismatch!.delta).toBe(100);
    expect(byKind.fee_mismatch!.delta).toBe(-26);
    expect(byKind.missing_channel!.delta).toBe(-2500);
    const decisions: Array<[string, string]> = [['amount_mismatch', 'trust_channel'], ['fee_mismatch', 'trust_fen'], ['missing_channel', 'accepted']];
    for (const [kind, resolution] of decisions) {
      const resolved = await inject('POST', `/admin/v1/reconciliation/differences/${byKind[kind]!.id}/resolve`, finance, { resolution, reason: `checked ${kind} with the channel` });
      expect(resolved.statusCode).toBe(200);
      const body = resolved.json<{ status: string; resolution: string; entry_id: string }>();
      expect(body).toMatchObject({ status: 'resolved', resolution });
      const entries = await listEntries(harness.context.db, { referenceType: 'recon_difference', referenceId: byKind[kind]!.id, limit: 10 });
      expect(entries.items.map((entry) => entry.id)).toEqual([body.entry_id]);
      const audit = await harness.context.db.selectFrom('audit_log').select(['action', 'actor_type']).where('target_id', '=', byKind[kind]!.id).execute();
      expect(audit).toEqual([{ action: 'reconciliation.difference_resolved', actor_type: 'operator' }]);
    }
    const again = await inject('POST', `/admin/v1/reconciliation/differences/${byKind.amount_mismatch!.id}/resolve`, finance, { resolution: 'trust_fen', reason: 'twice' });
    expect(again.statusCode).toBe(409);
    const batch = (await inject('GET', `/admin/v1/reconciliation/batches/${batchId}`, finance)).json<{ status: string; open_differences: number; fund_flow: { drift: number } }>();
    expect(batch).toMatchObject({ status: 'balanced', open_differences: 0, fund_flow: { drift: 0 } });
    expect((await checkLedger(harness.context.db)).problems).toEqual([]);
  });

  it('exports a batch’s differences as CSV', async () => {
    const csv = await inject('GET', `/admin/v1/reconciliation/batches/${batchId}/differences.csv`, finance);
    expect(csv.statusCode).toBe(200);
    expect(csv.headers['content-type']).toBe('text/csv; charset=utf-8');
    const lines = csv.body.replace(/^\uFEFF/, '').trimEnd().split('\r\n');
    expect(lines[0]).toMatch(/^id,batch_id,bill_date,kind,status,/);
    expect(lines).toHaveLength(4);
    expect(lines.slice(1).every((line) => line.includes(',resolved,'))).toBe(true);
    expect(csv.body).toContain(`,${orders.lost!.id},`);
  });

  it('answers bad input and missing permissions with 4xx', async () => {
    expect((await inject('GET', '/admin/v1/reconciliation/batches?date=2026-02-30', finance)).statusCode).toBe(400);
    expect((await inject('GET', '/admin/v1/reconciliation/batches/rcb_nonsense', finance)).statusCode).toBe(400);
    expect((await inject('GET', `/admin/v1/reconciliation/batches/rcb_${'0'.repeat(26)}`, finance)).statusCode).toBe(404);
    expect((await inject('POST', `/admin/v1/reconciliation/differences/dif_${'0'.repeat(26)}/resolve`, finance, { resolution: 'trust_fen', reason: 'x' })).statusCode).toBe(404);
    const open = (await inject('GET', `/admin/v1/reconciliation/batches/${batchId}/differences`, finance)).json<{ data: Array<{ id: string }> }>().data;
    expect((await inject('POST', `/admin/v1/reconciliation/differences/${open[0]!.id}/resolve`, finance, { resolution: 'ignore', reason: 'x' })).statusCode).toBe(400);
    expect((await inject('POST', `/admin/v1/reconciliation/differences/${open[0]!.id}/resolve`, finance, { resolution: 'accepted' })).statusCode).toBe(400);
    expect((await inject('POST', '/admin/v1/reconciliation/runs', finance, { channel_account_id: harness.account.id, date: 'yesterday' })).statusCode).toBe(400);
    expect((await inject('GET', '/admin/v1/reconciliation/batches', operations)).statusCode).toBe(403);
    expect((await inject('GET', '/admin/v1/reconciliation/batches', {})).statusCode).toBe(401);
  });
});

describe('fen reconcile', () => {
  const environment = () => ({ DATABASE_URL: harness.context.databaseUrl, FEN_MASTER_KEY: testMasterKey.toString('hex'), FEN_DATA_DIR: '/tmp/fen-recon-cli-test', LOG_LEVEL: 'warn' });

  it('prints each batch as JSON and changes nothing on a re-run', async () => {
    const entriesBefore = (await listEntries(harness.context.db, { limit: 100 })).items.length;
    const result = await runFen(['reconcile', '--date', day, '--channel-account', harness.account.id, '--json'], environment());
    expect(result.code).toBe(0);
    const printed = JSON.parse(result.output.trim().split('\n').at(-1)!) as Record<string, unknown>;
    expect(printed).toMatchObject({
      channel_account: harness.account.id,
      date: day,
      lines_channel: 3,
      lines_local: 4,
      matched: 1,
      differences: { missing_local: 0, missing_channel: 1, amount_mismatch: 1, status_mismatch: 0, fee_mismatch: 1 },
      status: 'balanced',
    });
    expect((await listEntries(harness.context.db, { limit: 100 })).items.length).toBe(entriesBefore);
  });

  it('exits 2 for a bad date and 1 for a day whose bill is not ready', async () => {
    expect((await runFen(['reconcile', '--date', '2026-13-01'], environment())).code).toBe(2);
    const notReady = await runFen(['reconcile', '--date', '2026-02-04', '--channel-account', harness.account.id], environment());
    expect(notReady.code).toBe(1);
    expect(notReady.output).toContain('not_ready');
  });
});
