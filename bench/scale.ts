import type { BenchContext, BenchSection, SectionReport } from './index.js';
import { cpuBetween, takeCpuSnapshot, type CpuSnapshot, type CpuUse } from './helpers/cpu.js';
import { deployPayments, type PaymentsDeployment } from './helpers/deploy.js';
import { closedLoop } from './helpers/load.js';
import { coresUsed, cpuPerPayment, cpuText, saturationConcurrency } from './payments.js';

/**
 * Figure 4, scale: the payments figure (whole lifecycle, closed loop at
 * saturation) with 2 × `fen api` + 2 × `fen worker` beside 1 + 1, on one
 * database, with one `fen sim`. All four Fen processes run throughout; the
 * 1 + 1 slices send every payment to the first API and stop the second worker
 * (its jobs could otherwise be taken by it), the 2 + 2 slices send payments
 * round-robin to both APIs with both workers running. The slices alternate
 * 2+2, 1+1, 1+1, 2+2, so load on the machine that comes and goes, or drifts,
 * weighs on both alike. The second API, idle in the 1 + 1 slices, uses no CPU.
 *
 * Fen keeps no state in a process, so on more cores the ratio should approach
 * 2 until the database or the simulator is the limit; on a 2-core machine that
 * the database, the simulator and the load generator share, expect about 1.
 * On a machine that other work keeps busy too, 2 + 2 can come out ahead only
 * because more processes get a bigger share of the CPU: the slices report the
 * cores the benchmark's processes used, to tell the two apart.
 */
const topologies = ['2x2', '1x1', '1x1', '2x2'] as const;
/** Each slice follows a deployment warm-up or another slice under the same load, so a short warm-up settles the queues. */
const sliceWarmupMs = 3_000;
type Topology = (typeof topologies)[number];

interface SliceResult {
  completed: number;
  windowS: number;
  errors: number;
  cpu: CpuUse;
}

async function setTopology(deployment: PaymentsDeployment, topology: Topology, context: BenchContext): Promise<void> {
  const workers = deployment.stack.workers();
  if (topology === '1x1') {
    deployment.driver.setApiCount(1);
    for (const worker of workers.slice(1)) await worker.stop();
  } else {
    deployment.driver.setApiCount(2);
    for (let count = workers.length; count < 2; count += 1) {
      const startedMs = performance.now();
      await deployment.stack.startWorkers(1);
      context.log(`scale: second worker back in ${Math.round(performance.now() - startedMs)} ms`);
    }
  }
}

async function measureSlice(deployment: PaymentsDeployment, windowMs: number): Promise<SliceResult> {
  let before: Promise<CpuSnapshot> | undefined;
  let after: Promise<CpuSnapshot> | undefined;
  const result = await closedLoop(deployment.driver, {
    concurrency: saturationConcurrency,
    warmupMs: sliceWarmupMs,
    windowMs,
    onWindow: (edge) => {
      if (edge === 'start') before = takeCpuSnapshot(deployment.stack);
      else after = takeCpuSnapshot(deployment.stack);
    },
  });
  deployment.stack.assertAlive();
  if (!before || !after) throw new Error('the CPU snapshots of the window were not taken');
  return { completed: result.completed, windowS: result.windowS, errors: result.errors, cpu: cpuBetween(await before, await after) };
}

function combine(slices: SliceResult[]): { paymentsPerS: number; completed: number; errors: number; seconds: Record<string, number>; wallS: number; machineBusyCores: number | null } {
  const completed = slices.reduce((sum, slice) => sum + slice.completed, 0);
  const windowS = slices.reduce((sum, slice) => sum + slice.windowS, 0);
  const seconds: Record<string, number> = {};
  for (const slice of slices) for (const [part, value] of Object.entries(slice.cpu.seconds)) seconds[part] = (seconds[part] ?? 0) + value;
  const busy = slices.map((slice) => slice.cpu.machineBusyCores).filter((value): value is number => value !== null);
  return {
    paymentsPerS: windowS > 0 ? completed / windowS : 0,
    completed,
    errors: slices.reduce((sum, slice) => sum + slice.errors, 0),
    seconds,
    wallS: slices.reduce((sum, slice) => sum + slice.cpu.wallS, 0),
    machineBusyCores: busy.length > 0 ? Math.round((busy.reduce((sum, value) => sum + value, 0) / busy.length) * 100) / 100 : null,
  };
}

async function runScaleBench(context: BenchContext): Promise<SectionReport> {
  const sliceMs = context.timing.measureMs;
  const deployment = await deployPayments({ databaseUrl: context.databaseUrl, apis: 2, workers: 2, log: context.log });
  try {
    const slices: Record<'1x1' | '2x2', SliceResult[]> = { '1x1': [], '2x2': [] };
    for (const topology of topologies) {
      await setTopology(deployment, topology, context);
      context.log(`scale ${topology}: closed loop, ${saturationConcurrency} payers, ${sliceWarmupMs / 1000} s warm-up + ${sliceMs / 1000} s`);
      const slice = await measureSlice(deployment, sliceMs);
      context.log(`scale ${topology}: ${Math.round((slice.completed / slice.windowS) * 10) / 10} payments/s, ${slice.errors} errors`);
      slices[topology].push(slice);
    }
    const one = combine(slices['1x1']);
    const two = combine(slices['2x2']);
    const ratio = one.paymentsPerS > 0 ? Math.round((two.paymentsPerS / one.paymentsPerS) * 100) / 100 : null;
    const perPayment = (combined: ReturnType<typeof combine>) => cpuText(cpuPerPayment({ seconds: combined.seconds, wallS: 0, transactions: 0, machineBusyCores: null, cores: 0, loadAverage1m: 0 }, combined.completed));
    const round1 = (value: number) => Math.round(value * 10) / 10;
    return {
      results: {
        scale_2x2_vs_1x1: ratio,
        scale_2x2_vs_1x1_unit: 'ratio: payments/s with 2 fen api + 2 fen worker over payments/s with 1 + 1, same database, same fen sim, same closed loop',
        scale_1x1_payments_per_s: round1(one.paymentsPerS),
        scale_2x2_payments_per_s: round1(two.paymentsPerS),
        scale_1x1_completed: one.completed,
        scale_2x2_completed: two.completed,
        scale_errors: one.errors + two.errors,
        scale_concurrency: saturationConcurrency,
        scale_measure_s_each: (sliceMs / 1000) * 2,
        scale_1x1_cpu_ms_per_payment: perPayment(one),
        scale_2x2_cpu_ms_per_payment: perPayment(two),
        scale_1x1_machine_busy_cores: one.machineBusyCores,
        scale_2x2_machine_busy_cores: two.machineBusyCores,
        scale_1x1_cores_used: coresUsed(one.seconds, one.wallS),
        scale_2x2_cores_used: coresUsed(two.seconds, two.wallS),
      },
      rows: [[`payments, 2 api + 2 worker vs 1 + 1`, `${round1(two.paymentsPerS)} payments/s`, `${round1(one.paymentsPerS)} payments/s (1 + 1)`, ratio === null ? '-' : `${ratio}×`, '≈ 1× on 2 cores']],
    };
  } finally {
    await deployment.close();
  }
}

export const scaleSection: BenchSection = { name: 'scale', run: runScaleBench };
