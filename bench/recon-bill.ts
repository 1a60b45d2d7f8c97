import { execFile } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import iconv from 'iconv-lite';
import { forEachBillBatch, parseBillFile } from '../src/reconciliation/bills/index.js';
import { AlipayBillTotals, alipayDetailFooter, alipayDetailPreamble, alipayDetailRow, type AlipayBillLine } from '../src/simulators/alipay/bills.js';
import type { BenchContext, BenchSection, SectionReport } from './index.js';

/**
 * Parsing a large Alipay bill: a generated 业务明细 file of a million lines
 * (GBK, as the simulator writes it) read through the streaming parser in a
 * child process of its own, so the peak RSS reported is the parse's and not
 * the generator's. The parse keeps no line, so memory must stay flat however
 * long the file is.
 *
 * Standalone: node bin/run-ts.mjs bench/recon-bill.ts --recon-bill [lines]
 */

export const billBenchLinesDefault = 1_000_000;
const rowsPerWrite = 5_000;
const billDayStart = new Date('2026-01-14T00:00:00+08:00');
const dayMs = 24 * 60 * 60 * 1000;
const repositoryRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** A small deterministic generator (LCG), so every run parses the same file. */
function randomSequence(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
    return state / 2 ** 32;
  };
}

function benchLine(index: number, lineCount: number, random: () => number): AlipayBillLine {
  const refund = index % 10 === 9;
  const amountFen = BigInt(1 + Math.floor(random() * 1_000_000));
  const completedAt = new Date(billDayStart.getTime() + Math.floor((index / lineCount) * (dayMs - 1000)));
  return {
    kind: refund ? 'refund' : 'payment',
    tradeNo: `20260114220014${String(refund ? index - 1 : index).padStart(14, '0')}`,
    outTradeNo: `pay_bench_${String(refund ? index - 1 : index).padStart(10, '0')}`,
    subject: index % 3 === 0 ? '基准测试订单' : 'Bench order, large',
    createdAt: completedAt,
    completedAt,
    counterparty: '138***@example.com',
    amountFen,
    serviceFeeFen: (amountFen * 6n + 500n) / 1000n,
    ...(refund ? { outRequestNo: `ref_bench_${String(index).padStart(10, '0')}` } : {}),
  };
}

/** Writes a detail file of `lineCount` lines, streaming, with a footer whose totals match. */
export async function generateAlipayDetailFile(filePath: string, lineCount = billBenchLinesDefault): Promise<void> {
  const output = createWriteStream(filePath);
  const write = async (text: string) => {
    if (!output.write(iconv.encode(text, 'gbk'))) await new Promise<void>((resolve) => output.once('drain', resolve));
  };
  const random = randomSequence(20_260_114);
  const totals = new AlipayBillTotals();
  await write(alipayDetailPreamble('20881234567890120156', { start: billDayStart, end: new Date(billDayStart.getTime() + dayMs) }));
  for (let start = 0; start < lineCount; start += rowsPerWrite) {
    let block = '';
    for (let index = start; index < Math.min(lineCount, start + rowsPerWrite); index += 1) {
      const line = benchLine(index, lineCount, random);
      totals.add(line);
      block += alipayDetailRow(line);
    }
    await write(block);
  }
  await write(alipayDetailFooter(totals, new Date(billDayStart.getTime() + dayMs)));
  await new Promise<void>((resolve, reject) => output.end((error?: Error | null) => (error ? reject(error) : resolve())));
}

export interface BillParseMeasurement {
  lines: number;
  parseMs: number;
  peakRssMb: number;
  fileMb: number;
}

/** Parses the file here, in this process, counting lines and keeping none. */
export async function measureAlipayDetailParse(filePath: string): Promise<BillParseMeasurement> {
  const startMs = performance.now();
  let lines = 0;
  const summary = await forEachBillBatch(parseBillFile('alipay', filePath), (batch) => {
    lines += batch.length;
  });
  const parseMs = performance.now() - startMs;
  if (summary.lineCount !== lines) throw new Error('the summary disagrees with the lines counted');
  return { lines, parseMs, peakRssMb: process.resourceUsage().maxRSS / 1024, fileMb: (await stat(filePath)).size / 1024 / 1024 };
}

/** The same in a fresh child process, so its peak RSS is the parse's alone. */
export async function measureInChild(filePath: string): Promise<BillParseMeasurement> {
  const run = promisify(execFile);
  const { stdout } = await run(process.execPath, [path.join(repositoryRoot, 'bin/run-ts.mjs'), path.join(repositoryRoot, 'bench/recon-bill.ts'), '--recon-bill-child', filePath], {
    cwd: repositoryRoot,
    maxBuffer: 1024 * 1024,
  });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as BillParseMeasurement;
}

export async function runBillParseBench(lineCount: number, log: (message: string) => void): Promise<BillParseMeasurement> {
  const directory = await mkdtemp(path.join(os.tmpdir(), 'fen-bench-bill-'));
  try {
    const filePath = path.join(directory, '20881234567890120156_20260114_业务明细.csv');
    const generatedAt = performance.now();
    await generateAlipayDetailFile(filePath, lineCount);
    log(`generated ${lineCount} lines in ${Math.round(performance.now() - generatedAt)} ms`);
    return await measureInChild(filePath);
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}

/** For bench/index.ts: `sections` gains `reconBillParseSection`. */
export const reconBillParseSection: BenchSection = {
  name: 'recon-bill-parse',
  async run(context: BenchContext): Promise<SectionReport> {
    const measured = await runBillParseBench(billBenchLinesDefault, context.log);
    const linesPerSecond = Math.round(measured.lines / (measured.parseMs / 1000));
    return {
      results: {
        bill_parse_lines: measured.lines,
        bill_parse_ms: Math.round(measured.parseMs),
        bill_parse_lines_per_s: linesPerSecond,
        bill_parse_peak_rss_mb: Math.round(measured.peakRssMb),
        bill_parse_file_mb: Math.round(measured.fileMb),
      },
      rows: [[`parse Alipay bill, ${measured.lines} lines (${Math.round(measured.fileMb)} MB)`, `${Math.round(measured.parseMs)} ms, peak RSS ${Math.round(measured.peakRssMb)} MB`, '', '', 'RSS < 512 MB']],
    };
  },
};

const childIndex = process.argv.indexOf('--recon-bill-child');
const standaloneIndex = process.argv.indexOf('--recon-bill');
if (childIndex !== -1) {
  process.stdout.write(`${JSON.stringify(await measureAlipayDetailParse(process.argv[childIndex + 1]!))}\n`);
} else if (standaloneIndex !== -1) {
  const lineCount = Number(process.argv[standaloneIndex + 1] ?? billBenchLinesDefault);
  const measured = await runBillParseBench(lineCount, (message) => process.stderr.write(`[bench] ${message}\n`));
  process.stdout.write(`${JSON.stringify(measured)}\n`);
}
