import { execFile } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import iconv from 'iconv-lite';
import pg from 'pg';
import { systemClock } from '../src/platform/clock.js';
import { loadConfig } from '../src/platform/config.js';
import { connectDatabase } from '../src/platform/db/index.js';
import { createLogger } from '../src/platform/logging.js';
import { createSecretBox } from '../src/platform/secret-box.js';
import { channelBillFromFile } from '../src/reconciliation/bills/index.js';
import { reconcileAccountDay, type BatchReport } from '../src/reconciliation/index.js';
import { AlipayBillTotals, alipayDetailFooter, alipayDetailPreamble, alipayDetailRow, type AlipayBillLine } from '../src/simulators/alipay/bills.js';
import type { BenchContext, BenchSection, SectionReport } from './index.js';
import { measureInChild } from './recon-bill.js';

/**
 * Reconciling a day of a million payments: a generated Alipay 业务明细 bill of
 * 1,000,000 lines against 1,000,000 payments of the same day in Fen (inserted
 * with set-based SQL, each with its capture entry in the ledger), through the
 * same code the daily job runs (reconcileAccountDay, given the file instead of
 * downloading it). The parse alone of the same file is timed in the same run,
 * each in a child process of its own so each peak RSS is its own; they
 * alternate, and the best of each is reported.
 *
 * Standalone: node bin/run-ts.mjs bench/recon.ts --recon [lines]  (needs DATABASE_URL)
 */
export const reconBenchLinesDefault = 1_000_000;
const billDate = '2026-01-14';
const dayStart = new Date(`${billDate}T00:00:00+08:00`);
const dayMs = 24 * 60 * 60 * 1000;
const rounds = 2;
const rowsPerWrite = 5_000;
const repositoryRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ids = { merchant: 'mch_bench00000000000000000000', app: 'app_bench00000000000000000000', account: 'cha_bench00000000000000000000' };

/** The i-th payment, the same in the bill and in the database. */
const paymentId = (index: number) => `pay_${String(index).padStart(26, '0')}`;
const tradeNo = (index: number) => `2026011422001${String(index).padStart(15, '0')}`;
const amountOf = (index: number) => 100n + BigInt((index * 7919) % 1_000_000);
const paidAtOf = (index: number, count: number) => new Date(dayStart.getTime() + Math.floor((index * (dayMs - 1000)) / count));

export async function generateBill(filePath: string, count: number): Promise<void> {
  const output = createWriteStream(filePath);
  const write = async (text: string) => {
    if (!output.write(iconv.encode(text, 'gbk'))) await new Promise<void>((resolve) => output.once('drain', resolve));
  };
  const totals = new AlipayBillTotals();
  await write(alipayDetailPreamble('20881234567890120156', { start: dayStart, end: new Date(dayStart.getTime() + dayMs) }));
  for (let start = 0; start < count; start += rowsPerWrite) {
    let block = '';
    for (let index = start; index < Math.min(count, start + rowsPerWrite); index += 1) {
      const amountFen = amountOf(index);
      const paidAt = paidAtOf(index, count);
      const line: AlipayBillLine = { kind: 'payment', tradeNo: tradeNo(index), outTradeNo: paymentId(index), subject: '基准测试订单', createdAt: paidAt, completedAt: paidAt, counterparty: '138***@example.com', amountFen, serviceFeeFen: (amountFen * 60n + 5000n) / 10000n };
      totals.add(line);
      block += alipayDetailRow(line);
    }
    await write(block);
  }
  await write(alipayDetailFooter(totals, new Date(dayStart.getTime() + dayMs)));
  await new Promise<void>((resolve, reject) => output.end((error?: Error | null) => (error ? reject(error) : resolve())));
}

/**
 * The day in Fen: a merchant, an app, a shared channel account, a million
 * succeeded payments and their capture entries (channel_clearing against
 * merchant_pending), with balances to match. Written as a benchmark fixture:
 * in one transaction with triggers off (session_replication_role), so setting
 * up takes seconds, not the hour a million API calls would.
 */
export async function seedPayments(databaseUrl: string, count: number): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query('BEGIN');
    await client.query(`SET LOCAL session_replication_role = replica`);
    await client.query(`INSERT INTO merchants (id, name, status, business_licence_no, legal_representative, contact_name, contact_phone, contact_email, settlement_bank_name,
        settlement_account_name, settlement_account_number_sealed, settlement_account_number_last4, fee_rate_basis_points, created_at, updated_at)
      VALUES ($1, 'Bench', 'active', '91310000BENCH0001', 'Bench', 'Bench', '13800000000', 'bench@fen.test', 'Bank', 'Bench', 'sealed', '0000', 0, now(), now())`, [ids.merchant]);
    await client.query(`INSERT INTO apps (id, merchant_id, name, status, created_at, updated_at) VALUES ($1, $2, 'Bench', 'active', now(), now())`, [ids.app, ids.merchant]);
    await client.query(`INSERT INTO channel_accounts (id, channel, name, mode, status, methods, settings, secrets_sealed, created_at, updated_at)
      VALUES ($1, 'alipay', 'Bench', 'shared', 'active', '{alipay_qr}', '{}', 'unused', now(), now())`, [ids.account]);
    await client.query(`INSERT INTO payments (id, merchant_id, app_id, out_trade_no, amount, currency, subject, method, channel, channel_account_id, account_mode,
        status, channel_trade_no, expires_at, paid_at, created_at, updated_at)
      SELECT 'pay_' || lpad(i::text, 26, '0'), $1, $2, 'bench-' || i, 100 + (i::bigint * 7919) % 1000000, 'CNY', 'bench', 'alipay_qr', 'alipay', $3, 'shared',
             'succeeded', '2026011422001' || lpad(i::text, 15, '0'), $4::timestamptz + interval '1 day',
             $4::timestamptz + (floor(i::numeric * ($6::bigint - 1000) / $5) * interval '1 millisecond'), $4::timestamptz, $4::timestamptz
        FROM generate_series(0, $5 - 1) AS i`, [ids.merchant, ids.app, ids.account, dayStart, count, dayMs]);
    await seedLedger(client);
    await client.query('COMMIT');
    // Settled as a day of business is by the next morning: vacuumed (hint bits set, pages marked all-visible) and
    // analysed. Otherwise the first reconciliation pays for the fixture's four million fresh rows, and autovacuum
    // works through them while the rounds are timed.
    await client.query('VACUUM (ANALYZE)');
  } finally {
    await client.end();
  }
}

async function seedLedger(client: pg.Client): Promise<void> {
  const accounts = [['acc_bench0clearing0000000000', `channel_clearing:${ids.account}`, 'asset', null, 32], ['acc_bench0pending00000000000', `merchant_pending:${ids.merchant}`, 'liability', ids.merchant, 1]] as const;
  for (const [id, code, type, merchant, slots] of accounts) {
    await client.query(`INSERT INTO ledger_accounts (id, code, currency, type, merchant_id, slot_count, no_overdraft, created_at) VALUES ($1, $2, 'CNY', $3, $4, $5, false, now())`, [id, code, type, merchant, slots]);
    await client.query(`INSERT INTO ledger_balance_slots (account_id, slot, balance, guard) SELECT $1, s, 0, 'none' FROM generate_series(0, $2 - 1) AS s`, [id, slots]);
  }
  await client.query(`INSERT INTO journal_entries (id, dedupe_key, kind, reference_type, reference_id, merchant_id, posting_count, postings_hash, effective_at, created_at)
    SELECT 'jnl_' || substr(p.id, 5), 'payment:' || p.id || ':capture', 'payment_captured', 'payment', p.id, p.merchant_id, 2, 'bench', p.paid_at, p.paid_at FROM payments p`);
  await client.query(`INSERT INTO ledger_postings (entry_id, account_id, slot, currency, amount, created_at)
    SELECT 'jnl_' || substr(p.id, 5), a.account_id, 0, 'CNY', a.sign * p.amount, p.paid_at
      FROM payments p CROSS JOIN (VALUES ('acc_bench0clearing0000000000', 1), ('acc_bench0pending00000000000', -1)) AS a(account_id, sign)`);
  await client.query(`UPDATE ledger_balance_slots s SET balance = t.total FROM (SELECT account_id, slot, sum(amount) AS total FROM ledger_postings GROUP BY account_id, slot) t
    WHERE s.account_id = t.account_id AND s.slot = t.slot`);
}

interface ReconMeasurement {
  reconMs: number;
  phases: Record<string, number>;
  peakRssMb: number;
  report: Record<string, unknown>;
}

/** In the child: one reconciliation of the file, timed from the first byte read to the report. */
async function reconcileOnce(databaseUrl: string, filePath: string): Promise<ReconMeasurement> {
  const handle = connectDatabase(databaseUrl, 4);
  const context = { db: handle.db, databaseUrl, clock: systemClock, secretBox: createSecretBox({ current: Buffer.alloc(32, 1) }), logger: createLogger('silent'), config: loadConfig({ LOG_LEVEL: 'silent', FEN_DATA_DIR: os.tmpdir() }) };
  try {
    const startMs = performance.now();
    const bill = channelBillFromFile({ channel: 'alipay', billDate, filePath, remove: async () => undefined });
    const phases: Record<string, number> = {};
    const report: BatchReport = await reconcileAccountDay(context, ids.account, billDate, { bill, onPhase: (phase, ms) => (phases[phase] = Math.round(ms)) });
    const reconMs = performance.now() - startMs;
    return { reconMs, peakRssMb: process.resourceUsage().maxRSS / 1024, phases, report: JSON.parse(JSON.stringify(report, (_key, value: unknown) => (typeof value === 'bigint' ? Number(value) : value))) as Record<string, unknown> };
  } finally {
    await handle.close();
  }
}

async function reconcileInChild(databaseUrl: string, filePath: string): Promise<ReconMeasurement> {
  const { stdout } = await promisify(execFile)(process.execPath, [path.join(repositoryRoot, 'bin/run-ts.mjs'), path.join(repositoryRoot, 'bench/recon.ts'), '--recon-child', databaseUrl, filePath], { cwd: repositoryRoot, maxBuffer: 1024 * 1024 });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as ReconMeasurement;
}

export interface ReconBenchResult {
  lines: number;
  parseMs: number;
  parsePeakRssMb: number;
  reconMs: number;
  reconPeakRssMb: number;
  /** The highest one-minute load average seen after a round: what else the machine was doing. */
  loadAverage: number;
  /** The phases of the fastest reconciliation (reconcileAccountDay's onPhase). */
  phases: Record<string, number>;
  report: Record<string, unknown>;
}

export async function runReconBench(databaseUrl: string, count: number, log: (message: string) => void): Promise<ReconBenchResult> {
  const directory = await mkdtemp(path.join(os.tmpdir(), 'fen-bench-recon-'));
  try {
    const filePath = path.join(directory, '20881234567890120156_20260114_业务明细.csv');
    let startMs = performance.now();
    await generateBill(filePath, count);
    log(`generated a bill of ${count} lines in ${Math.round(performance.now() - startMs)} ms`);
    startMs = performance.now();
    await seedPayments(databaseUrl, count);
    log(`inserted ${count} payments with their capture entries in ${Math.round(performance.now() - startMs)} ms`);
    const parses = [];
    const recons = [];
    const loads: number[] = [];
    for (let round = 0; round < rounds; round += 1) {
      parses.push(await measureInChild(filePath));
      recons.push(await reconcileInChild(databaseUrl, filePath));
      // The machine is shared: the load average says how much of it the other work took while this round ran.
      loads.push(os.loadavg()[0]!);
      log(`round ${round + 1}: parse ${Math.round(parses.at(-1)!.parseMs)} ms, reconcile ${Math.round(recons.at(-1)!.reconMs)} ms, load average ${loads.at(-1)!.toFixed(2)} ${JSON.stringify(recons.at(-1)!.phases)}`);
    }
    const parse = parses.reduce((best, item) => (item.parseMs < best.parseMs ? item : best));
    const recon = recons.reduce((best, item) => (item.reconMs < best.reconMs ? item : best));
    return {
      lines: parse.lines,
      parseMs: parse.parseMs,
      parsePeakRssMb: parse.peakRssMb,
      reconMs: recon.reconMs,
      reconPeakRssMb: Math.max(...recons.map((item) => item.peakRssMb)),
      loadAverage: Math.max(...loads),
      phases: recon.phases,
      report: recon.report,
    };
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}

/** For bench/index.ts: reconciling a million lines against a million payments, beside parsing the same file. */
export const reconSection: BenchSection = {
  name: 'recon',
  async run(context: BenchContext): Promise<SectionReport> {
    const measured = await runReconBench(context.databaseUrl, reconBenchLinesDefault, context.log);
    const ratio = Math.round((measured.reconMs / measured.parseMs) * 100) / 100;
    const report = measured.report as { matched?: number; open_differences?: number; status?: string };
    return {
      results: {
        recon_lines: measured.lines,
        recon_ms: Math.round(measured.reconMs),
        recon_parse_ms: Math.round(measured.parseMs),
        recon_vs_parse: ratio,
        recon_peak_rss_mb: Math.round(measured.reconPeakRssMb),
        recon_parse_peak_rss_mb: Math.round(measured.parsePeakRssMb),
        recon_load_average: Math.round(measured.loadAverage * 100) / 100,
        recon_matched: report.matched ?? null,
        recon_open_differences: report.open_differences ?? null,
        recon_status: report.status ?? null,
      },
      rows: [
        [`reconcile ${measured.lines} lines vs ${measured.lines} payments`, `${Math.round(measured.reconMs)} ms`, `parse only ${Math.round(measured.parseMs)} ms`, `${ratio}×`, '≤ 1.5×'],
        ['reconcile peak RSS', `${Math.round(measured.reconPeakRssMb)} MB`, `parse only ${Math.round(measured.parsePeakRssMb)} MB`, '', '< 512 MB'],
      ],
    };
  },
};

const childIndex = process.argv.indexOf('--recon-child');
const standaloneIndex = process.argv.indexOf('--recon');
if (childIndex !== -1) {
  process.stdout.write(`${JSON.stringify(await reconcileOnce(process.argv[childIndex + 1]!, process.argv[childIndex + 2]!))}\n`);
} else if (standaloneIndex !== -1) {
  const databaseUrl = process.env.DATABASE_URL;
  if (!databaseUrl) throw new Error('set DATABASE_URL to a fresh, migrated database');
  const measured = await runReconBench(databaseUrl, Number(process.argv[standaloneIndex + 1] ?? reconBenchLinesDefault), (message) => process.stderr.write(`[bench] ${message}\n`));
  process.stdout.write(`${JSON.stringify({ ...measured, ratio: measured.reconMs / measured.parseMs })}\n`);
}
