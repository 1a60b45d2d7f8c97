import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BillLine, ChannelBill } from '../../src/channels/index.js';
import { money } from '../../src/platform/money.js';
import { BillFormatError } from '../../src/reconciliation/bill.types.js';
import { listDifferences, reconcileAccountDay } from '../../src/reconciliation/index.js';
import { lineOutcome, pairDiffers } from '../../src/reconciliation/matching.js';
import { createTestContext, type TestContext } from '../helpers/context.js';

/**
 * The matching's SQL paths on a small day seeded straight into the tables (no
 * simulator): the join keeps only lines and records that differ, a record
 * listed twice with identical lines, refund lines, a record held at midnight
 * that a corrected bill lists, a line for a record of another day, a line for
 * nothing (paid, and closed unpaid), and a bill refused half-way. Every run must leave no work table.
 */
const ids = { merchant: 'mch_matching000000000000000000', app: 'app_matching000000000000000000', account: 'cha_matching000000000000000000' };
const ledger = { clearing: 'acc_matchingclearing0000000000', pending: 'acc_matchingpending00000000000' };
const day = '2026-01-14';
const beijing = (date: string, time: string) => new Date(`${date}T${time}+08:00`);
const fee = (amount: bigint) => (amount * 60n + 5000n) / 10000n;

interface Payment {
  id: string;
  trade: string;
  amount: bigint;
  paidAt: Date;
}

const payments: Payment[] = [
  ...[1, 2, 3].map((index) => ({ id: `pay_plain${index}`, trade: `T${index}`, amount: 1000n + BigInt(index), paidAt: beijing(day, `0${index}:00:00`) })),
  { id: 'pay_twice', trade: 'TTWICE', amount: 2000n, paidAt: beijing(day, '09:00:00') },
  { id: 'pay_refunded', trade: 'TREF', amount: 50_000n, paidAt: beijing(day, '08:00:00') },
  { id: 'pay_held', trade: 'THELD', amount: 3000n, paidAt: beijing(day, '23:50:00') },
  { id: 'pay_missing', trade: 'TMISS', amount: 3100n, paidAt: beijing(day, '12:00:00') },
  { id: 'pay_before', trade: 'TBEFORE', amount: 3200n, paidAt: beijing('2026-01-13', '12:00:00') },
];
const refunds = [
  { id: 'ref_one', amount: 5000n, at: beijing(day, '15:00:00') },
  { id: 'ref_two', amount: 7000n, at: beijing(day, '16:00:00') },
];

async function seed(context: TestContext): Promise<void> {
  const query = context.database.superuserQuery;
  await query('BEGIN');
  await query('SET LOCAL session_replication_role = replica');
  await query(`INSERT INTO merchants (id, name, status, business_licence_no, legal_representative, contact_name, contact_phone, contact_email, settlement_bank_name,
      settlement_account_name, settlement_account_number_sealed, settlement_account_number_last4, fee_rate_basis_points, created_at, updated_at)
    VALUES ($1, 'M', 'active', '91310000MATCHING1', 'M', 'M', '13800000000', 'm@fen.test', 'Bank', 'M', 'sealed', '0000', 0, now(), now())`, [ids.merchant]);
  await query(`INSERT INTO apps (id, merchant_id, name, status, created_at, updated_at) VALUES ($1, $2, 'M', 'active', now(), now())`, [ids.app, ids.merchant]);
  await query(`INSERT INTO channel_accounts (id, channel, name, mode, status, methods, settings, secrets_sealed, created_at, updated_at)
    VALUES ($1, 'alipay', 'M', 'shared', 'active', '{alipay_qr}', '{}', 'unused', now(), now())`, [ids.account]);
  for (const [id, code, type, merchant] of [[ledger.clearing, `channel_clearing:${ids.account}`, 'asset', null], [ledger.pending, `merchant_pending:${ids.merchant}`, 'liability', ids.merchant]] as const) {
    await query(`INSERT INTO ledger_accounts (id, code, currency, type, merchant_id, slot_count, no_overdraft, created_at) VALUES ($1, $2, 'CNY', $3, $4, 8, false, now())`, [id, code, type, merchant]);
    await query(`INSERT INTO ledger_balance_slots (account_id, slot, balance, guard) SELECT $1, s, 0, 'none' FROM generate_series(0, 7) AS s`, [id]);
  }
  const book = async (key: string, reference: string, amount: bigint, at: Date) => {
    const entryId = `jnl_${key.replace(/[^a-z0-9]/g, '')}`.slice(0, 30);
    await query(`INSERT INTO journal_entries (id, dedupe_key, kind, reference_type, reference_id, merchant_id, posting_count, postings_hash, effective_at, created_at)
      VALUES ($1, $2, 'seeded', 'seeded', $3, $4, 2, 'seeded', $5, $5)`, [entryId, key, reference, ids.merchant, at]);
    await query(`INSERT INTO ledger_postings (entry_id, account_id, slot, currency, amount, created_at) VALUES ($1, $2, 0, 'CNY', $3, $5), ($1, $4, 0, 'CNY', -$3::bigint, $5)`, [entryId, ledger.clearing, amount, ledger.pending, at]);
  };
  for (const payment of payments) {
    const refunded = payment.id === 'pay_refunded' ? refunds.reduce((sum, refund) => sum + refund.amount, 0n) : 0n;
    await query(`INSERT INTO payments (id, merchant_id, app_id, out_trade_no, amount, currency, subject, method, channel, channel_account_id, account_mode, status,
        channel_trade_no, expires_at, paid_at, refunded_amount, created_at, updated_at)
      VALUES ($1, $2, $3, $1, $4, 'CNY', 's', 'alipay_qr', 'alipay', $5, 'shared', 'succeeded', $6, now() + interval '1 day', $7, $8, now(), now())`,
      [payment.id, ids.merchant, ids.app, payment.amount, ids.account, payment.trade, payment.paidAt, refunded]);
    await book(`payment:${payment.id}:capture`, payment.id, payment.amount, payment.paidAt);
  }
  for (const refund of refunds) {
    await query(`INSERT INTO refunds (id, merchant_id, app_id, payment_id, out_refund_no, amount, currency, status, created_at, updated_at, succeeded_at)
      VALUES ($1, $2, $3, 'pay_refunded', $1, $4, 'CNY', 'succeeded', now(), now(), $5)`, [refund.id, ids.merchant, ids.app, refund.amount, refund.at]);
    await book(`refund:${refund.id}`, refund.id, -refund.amount, refund.at);
  }
  await query(`UPDATE ledger_balance_slots s SET balance = t.total FROM (SELECT account_id, slot, sum(amount) AS total FROM ledger_postings GROUP BY account_id, slot) t
    WHERE s.account_id = t.account_id AND s.slot = t.slot`);
  await query('COMMIT');
}

let lineNumber = 0;
function paymentLine(payment: Payment, overrides: Partial<BillLine> = {}): BillLine {
  lineNumber += 1;
  return {
    kind: 'payment',
    channelTradeNo: payment.trade,
    outTradeNo: payment.id,
    outRefundNo: undefined,
    amount: money(payment.amount, 'CNY'),
    fee: money(fee(payment.amount), 'CNY'),
    status: 'succeeded',
    occurredAt: payment.paidAt,
    lineNumber,
    ...overrides,
  };
}

function refundLine(refundNo: string | undefined, amount: bigint, feeBack: bigint): BillLine {
  lineNumber += 1;
  return { kind: 'refund', channelTradeNo: 'TREF', outTradeNo: 'pay_refunded', outRefundNo: refundNo, amount: money(amount, 'CNY'), fee: money(feeBack, 'CNY'), status: 'succeeded', occurredAt: beijing(day, '17:00:00'), lineNumber };
}

/** A bill held in memory, in batches of three lines, its totals those of its lines; `refuse` makes it fail after its lines as a malformed file does. */
function billOf(lines: BillLine[], refuse = false): ChannelBill {
  const side = (kind: 'payment' | 'refund') => {
    // As the parsers total a bill: only the lines that moved money.
    const of = lines.filter((line) => line.kind === kind && line.status === 'succeeded');
    return { count: of.length, amount: money(of.reduce((sum, line) => sum + line.amount.amount, 0n), 'CNY'), fee: money(of.reduce((sum, line) => sum + line.fee.amount, 0n), 'CNY') };
  };
  return {
    billDate: day,
    filePath: '/dev/null',
    async *lines() {
      for (let start = 0; start < lines.length; start += 3) yield lines.slice(start, start + 3);
      if (refuse) throw new BillFormatError('inconsistent', 'bill.csv', undefined, 'the totals do not add up');
      const payments = side('payment');
      const refunded = side('refund');
      const net = payments.amount.amount - refunded.amount.amount - payments.fee.amount + refunded.fee.amount;
      return { lineCount: lines.length, payments, refunds: refunded, netAmount: money(net, 'CNY'), linesOutsidePeriod: 0 };
    },
    discard: async () => undefined,
  };
}

const byId = (id: string) => payments.find((payment) => payment.id === id)!;

/** The day's bill: the held and the missing payment left out, the other day's payment listed, one payment twice, refunds, and two lines for nothing. */
function dayLines(options: { listHeld: boolean }): BillLine[] {
  lineNumber = 0;
  return [
    ...['pay_plain1', 'pay_plain2', 'pay_plain3', 'pay_refunded'].map((id) => paymentLine(byId(id))),
    paymentLine(byId('pay_twice')),
    paymentLine(byId('pay_twice')),
    ...(options.listHeld ? [paymentLine(byId('pay_held'))] : []),
    paymentLine(byId('pay_before'), { occurredAt: beijing(day, '00:00:01') }),
    // The channel's running share of the fee: 300 of 50,000 paid, 5,000 then 12,000 refunded.
    refundLine('ref_one', 5000n, 30n),
    refundLine('ref_two', 7000n, 99n),
    refundLine(undefined, 700n, 0n),
    paymentLine({ id: 'nobody', trade: 'TNOBODY', amount: 999n, paidAt: beijing(day, '18:00:00') }),
    // An order nobody at Fen placed, closed unpaid at the channel: no money moved, so nothing to reconcile. It was once
    // a missing_local difference booked to suspense as 888 the channel never took.
    paymentLine({ id: 'nobody_closed', trade: 'TNOBODYCLOSED', amount: 888n, paidAt: beijing(day, '19:00:00') }, { status: 'failed' }),
  ];
}

async function workTables(context: TestContext): Promise<string[]> {
  const rows = await sql<{ name: string }>`SELECT tablename AS name FROM pg_tables WHERE schemaname = 'recon_work'`.execute(context.db);
  return rows.rows.map((row) => row.name);
}

describe('matching a bill against the day', () => {
  let context: TestContext;
  const summary = async (batchId: string) =>
    (await listDifferences(context.db, { batchId, limit: 100 })).map((item) => `${item.kind}:${item.payment_id ?? item.out_trade_no ?? ''}:${item.refund_id ?? ''}:${item.status}`).sort();

  beforeAll(async () => {
    context = await createTestContext({ now: beijing('2026-01-15', '10:00:00').toISOString() });
    await seed(context);
  });
  afterAll(async () => context?.close());

  it('keeps only what differs, holds the record at midnight and finds the other day’s record', async () => {
    const report = await reconcileAccountDay(context, ids.account, day, { bill: billOf(dayLines({ listHeld: false })) });
    expect(report).toMatchObject({ lines_channel: 12, lines_local: 9, matched: 8, held: 1, internal_differences: 0 });
    expect(report.differences).toEqual({ missing_local: 3, missing_channel: 1, amount_mismatch: 0, status_mismatch: 0, fee_mismatch: 1 });
    // The second line of pay_twice keeps the payment's id, so the automatic pass resolves it as the payment's own
    // notification (its capture entry, already counted as the payment's booking): its 2,000 is left as drift.
    expect(report.fund_flow).toMatchObject({ channel_net: 48_267n, drift: 2000n });
    expect(await summary(report.batch_id)).toEqual(
      [
        'fee_mismatch:pay_refunded:ref_two:open',
        'fund_flow:::open',
        'missing_channel:pay_missing::open',
        'missing_local:nobody::resolved',
        'missing_local:pay_refunded::resolved',
        // The second line of a payment listed twice: a line for nothing Fen has, the payment itself stays matched.
        'missing_local:pay_twice::resolved',
      ].sort(),
    );
    const pool = await context.db.selectFrom('recon_pool').select(['item_id', 'status']).orderBy('item_id').execute();
    expect(pool).toEqual([
      { item_id: 'pay_before', status: 'matched' },
      { item_id: 'pay_held', status: 'held' },
      { item_id: 'pay_missing', status: 'expired' },
    ]);
    expect(await workTables(context)).toEqual([]);
  });

  it('settles the held record when a corrected bill lists it, and adds nothing on a re-run', async () => {
    const corrected = await reconcileAccountDay(context, ids.account, day, { bill: billOf(dayLines({ listHeld: true })) });
    expect(corrected).toMatchObject({ lines_channel: 13, matched: 9, held: 0 });
    expect(corrected.differences).toEqual({ missing_local: 3, missing_channel: 1, amount_mismatch: 0, status_mismatch: 0, fee_mismatch: 1 });
    const pool = await context.db.selectFrom('recon_pool').select('status').where('item_id', '=', 'pay_held').executeTakeFirst();
    expect(pool?.status).toBe('matched');
    const before = await summary(corrected.batch_id);
    const again = await reconcileAccountDay(context, ids.account, day, { bill: billOf(dayLines({ listHeld: true })) });
    expect({ ...again, lines_local: corrected.lines_local }).toEqual(corrected);
    expect(await summary(again.batch_id)).toEqual(before);
  });

  it('ends a run whose bill is refused with nothing kept, not even its work tables', async () => {
    const refused = await reconcileAccountDay(context, ids.account, '2026-01-13', { bill: billOf(dayLines({ listHeld: true }), true) });
    expect(refused).toMatchObject({ status: 'failed', error: { code: 'bill_inconsistent' } });
    expect(await workTables(context)).toEqual([]);
  });

  it('tells a differing pair the way lineOutcome does, for every combination', async () => {
    const values = (name: string, items: string[]) => sql.raw(`(VALUES ${items.map((item) => `(${item})`).join(', ')}) AS ${name}`);
    const pairs = sql`SELECT 'x' AS f_item_id, * FROM ${values('s(status)', ["'succeeded'", "'pending'", "'failed'"])},
        ${values('fs(f_status)', ["'succeeded'", "'processing'", "'failed'", "'closed'"])}, ${values('a(amount)', ['100::bigint', '200::bigint'])},
        ${values('fa(f_amount)', ['100::bigint', '200::bigint'])}, ${values('c(currency)', ["'CNY'", "'USD'"])}, ${values('fc(f_currency)', ["'CNY'", "'USD'"])},
        ${values('e(fee)', ['1::bigint', '2::bigint'])}, ${values('fe(f_expected_fee)', ['1::bigint', '2::bigint'])}`;
    const rows = await sql<{ pairs: string; disagreeing: string }>`SELECT count(*)::text AS pairs,
        (count(*) FILTER (WHERE (${lineOutcome} <> 'matched') IS DISTINCT FROM ${pairDiffers}))::text AS disagreeing FROM (${pairs}) p`.execute(context.db);
    expect(rows.rows[0]).toEqual({ pairs: String(3 * 4 * 2 ** 6), disagreeing: '0' });
  });
});
