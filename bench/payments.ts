import os from 'node:os';
import type { BenchContext, BenchSection, ResultValue, SectionReport } from './index.js';
import { formatProfile, summariseCpuProfile, type ProfileSummary } from './helpers/cpu-profile.js';
import { busyCoresBetween, cpuBetween, machineTicks, takeCpuSnapshot, type CpuSnapshot, type CpuUse } from './helpers/cpu.js';
import { deployPayments, deploymentSettings } from './helpers/deploy.js';
import { mainThreadProfile, repositoryRoot } from './helpers/fen-stack.js';
import { closeIdleConnections } from './helpers/http.js';
import { closedLoop, openLoop, type ClosedLoopResult, type OpenLoopResult } from './helpers/load.js';
import { findPgbench, runPgbench, type PgbenchResult } from './helpers/pgbench.js';

/**
 * Figure 1, payments: the whole lifecycle of a payment (signed create through
 * the SDK → the channel, i.e. the Alipay simulator as `fen sim` → the payer
 * pays on the simulator's page → the verified notification → the books → the
 * signed webhook received and verified here) with Fen as `fen api` +
 * `fen worker`, FEN_DEMO=false, on the section's database.
 *
 *   - payments/s at saturation: a closed loop of `saturationConcurrency`
 *     payers, counting payments whose payment.succeeded webhook arrived in the
 *     window. Then a second, shorter closed loop with the API under
 *     `node --cpu-prof`, whose profile says where its time goes (apart, so the
 *     profiler's cost never lowers the reported rate).
 *   - POST /v1/payments latency at half that rate: an open loop (fixed arrival
 *     rate, each arrival a whole payment), latency from the scheduled send time.
 *   - beside it, on the same server in the same run: pgbench's TPC-B-like
 *     figure (`pgbench -i -s 10`, 8 clients) and the ratio.
 *
 * Targets: payments/s ≥ 0.25 × pgbench TPS; create p99 ≤ 50 ms at half rate.
 * docs/performance.md explains the method and the latest figures.
 */

/**
 * Payers in the closed loop. Enough to keep every process busy: by Little's
 * law, the saturated rate times a payment's duration at light load (about
 * 0.5 s, half of it the simulator's 500 ms notification poll) is far below
 * 64 on this kind of machine; more payers only add queueing.
 */
export const saturationConcurrency = 64;
/** Long enough for a payer's first payment to finish even when saturated, so the window sees a steady state. */
const saturationWarmupMs = 5_000;
const paymentsToPgbenchTarget = 0.25;
const createP99TargetMs = 50;
const pgbenchScale = 10;
const pgbenchClients = 8;
const pgbenchThreads = 2;
const pgbenchSecondsMax = 30;
/** The light-load reference: a few creates a second, 8 s. */
const lightRatePerS = 4;
const lightWindowMs = 8_000;
/** The API was just restarted (to write its profile): its JIT warms up here, unmeasured. */
const openLoopWarmupMs = 5_000;
const openLoopInFlightMax = 2_000;

export interface Durations {
  pgbenchS: number;
  saturationMs: number;
  /** The profiled closed loop after the measured one. */
  profileMs: number;
  openLoopMs: number;
}

/** From FEN_BENCH_SECONDS (the runner's measureMs, 10 s by default): pgbench 30 s, each payments phase 20 s. */
export function durationsFor(timing: BenchContext['timing']): Durations {
  const measureS = timing.measureMs / 1000;
  return { pgbenchS: Math.max(3, Math.min(pgbenchSecondsMax, Math.round(measureS * 3))), saturationMs: timing.measureMs * 2, profileMs: timing.measureMs, openLoopMs: timing.measureMs * 2 };
}

const round1 = (value: number) => Math.round(value * 10) / 10;
const round2 = (value: number) => Math.round(value * 100) / 100;
const finiteOrNull = (value: number): number | null => (Number.isFinite(value) ? value : null);

/** CPU milliseconds per completed payment, per part of the system. */
export function cpuPerPayment(use: CpuUse, payments: number): Record<string, number> {
  if (payments <= 0) return {};
  return Object.fromEntries(Object.entries(use.seconds).map(([part, seconds]) => [part, round1((seconds * 1000) / payments)]));
}

/** Cores the benchmark's own processes (Fen, the simulator, their PostgreSQL backends, the load generator) kept busy on average. */
export function coresUsed(seconds: Record<string, number>, wallS: number): number | null {
  if (wallS <= 0) return null;
  return round2(Object.values(seconds).filter(Number.isFinite).reduce((sum, value) => sum + value, 0) / wallS);
}

export function cpuText(perPayment: Record<string, number>): string {
  return Object.entries(perPayment)
    .filter(([, ms]) => Number.isFinite(ms))
    .sort((left, right) => right[1] - left[1])
    .map(([part, ms]) => `${part} ${ms}`)
    .join(', ');
}

function profileResults(summary: ProfileSummary | undefined): Record<string, ResultValue> {
  if (!summary) return { payments_api_profile_top_self: null, payments_api_profile_areas: null };
  const text = (entries: ProfileSummary['topSelf'], count: number) =>
    entries
      .slice(0, count)
      .map((entry) => `${entry.name} ${entry.percent}%`)
      .join('; ');
  return {
    payments_api_profile_busy_ms: summary.busyMs,
    payments_api_profile_core_share: summary.coreShare,
    payments_api_profile_top_self: text(summary.topSelf, 10),
    payments_api_profile_areas: text(summary.byArea, 10),
    payments_api_profile_fen_inclusive: text(summary.fenInclusive, 8),
  };
}

async function measureSaturation(
  context: BenchContext,
  deployment: Awaited<ReturnType<typeof deployPayments>>,
  durations: Durations,
): Promise<{ result: ClosedLoopResult; cpu: CpuUse; windowUs: { fromUs: number; toUs: number } }> {
  let before: Promise<CpuSnapshot> | undefined;
  let after: Promise<CpuSnapshot> | undefined;
  const windowUs = { fromUs: 0, toUs: 0 };
  const monotonicUs = () => Number(process.hrtime.bigint() / 1000n);
  context.log(`payments: closed loop, ${saturationConcurrency} payers, ${saturationWarmupMs / 1000} s warm-up + ${durations.saturationMs / 1000} s`);
  const result = await closedLoop(deployment.driver, {
    concurrency: saturationConcurrency,
    warmupMs: saturationWarmupMs,
    windowMs: durations.saturationMs,
    onWindow: (edge) => {
      if (edge === 'start') {
        windowUs.fromUs = monotonicUs();
        before = takeCpuSnapshot(deployment.stack);
      } else {
        windowUs.toUs = monotonicUs();
        after = takeCpuSnapshot(deployment.stack);
      }
    },
  });
  deployment.stack.assertAlive();
  if (!before || !after) throw new Error('the CPU snapshots of the window were not taken');
  return { result, cpu: cpuBetween(await before, await after), windowUs };
}

async function measureOpenLoop(context: BenchContext, deployment: Awaited<ReturnType<typeof deployPayments>>, ratePerS: number, durations: Durations): Promise<OpenLoopResult> {
  context.log(`payments: open loop at ${ratePerS}/s, ${openLoopWarmupMs / 1000} s warm-up + ${durations.openLoopMs / 1000} s`);
  const result = await openLoop(deployment.driver, { ratePerS, warmupMs: openLoopWarmupMs, windowMs: durations.openLoopMs, inFlightMax: openLoopInFlightMax });
  deployment.stack.assertAlive();
  return result;
}

/** Stops the API and starts another on the same port, under --cpu-prof or not; returns the stopped one's profile when it had one. */
async function restartApi(deployment: Awaited<ReturnType<typeof deployPayments>>, options: { profile: boolean; window?: { fromUs: number; toUs: number } }): Promise<ProfileSummary | undefined> {
  const [api] = deployment.stack.apis();
  if (!api) throw new Error('no API to restart');
  const port = Number(new URL(api.url).port);
  await api.stop();
  closeIdleConnections();
  const file = mainThreadProfile(api);
  await deployment.stack.startApi({ port, profile: options.profile });
  return file ? summariseCpuProfile(file, repositoryRoot, options.window ? { window: options.window } : {}) : undefined;
}

/**
 * Where the API's time goes at saturation: a closed loop of its own with the
 * API under --cpu-prof, after the measured window, so the profiler's own cost
 * never lowers the reported rate.
 */
async function profileSaturatedApi(context: BenchContext, deployment: Awaited<ReturnType<typeof deployPayments>>, durations: Durations): Promise<ProfileSummary | undefined> {
  await restartApi(deployment, { profile: true });
  const windowUs = { fromUs: 0, toUs: 0 };
  const monotonicUs = () => Number(process.hrtime.bigint() / 1000n);
  context.log(`payments: closed loop again with fen api under --cpu-prof, ${saturationWarmupMs / 1000} s warm-up + ${durations.profileMs / 1000} s (not counted)`);
  await closedLoop(deployment.driver, {
    concurrency: saturationConcurrency,
    warmupMs: saturationWarmupMs,
    windowMs: durations.profileMs,
    onWindow: (edge) => {
      if (edge === 'start') windowUs.fromUs = monotonicUs();
      else windowUs.toUs = monotonicUs();
    },
  });
  deployment.stack.assertAlive();
  return restartApi(deployment, { profile: false, window: windowUs });
}

async function runPgbenchIfPresent(context: BenchContext, durations: Durations): Promise<PgbenchResult | undefined> {
  const binary = findPgbench();
  if (!binary) {
    context.log('pgbench is not on this machine (set PGBENCH to its path): no baseline');
    return undefined;
  }
  return runPgbench(binary, context.databaseUrl, { scale: pgbenchScale, clients: pgbenchClients, threads: pgbenchThreads, durationS: durations.pgbenchS, log: context.log });
}

/** How busy the machine was while pgbench ran: the same question as for the payments window. */
async function measuredPgbench(context: BenchContext, durations: Durations): Promise<{ pgbench: PgbenchResult | undefined; machineBusyCores: number | null; loadAverage1m: number }> {
  const before = machineTicks();
  const pgbench = await runPgbenchIfPresent(context, durations);
  return { pgbench, machineBusyCores: busyCoresBetween(before, machineTicks()), loadAverage1m: round2(os.loadavg()[0] ?? 0) };
}

async function runPaymentsBench(context: BenchContext): Promise<SectionReport> {
  const durations = durationsFor(context.timing);
  // pgbench first, alone: Fen's processes are not yet running to take CPU from it.
  const { pgbench, ...pgbenchMachine } = await measuredPgbench(context, durations);
  if (pgbench) context.log(`pgbench: ${round1(pgbench.tps)} tps`);
  const deployment = await deployPayments({ databaseUrl: context.databaseUrl, apis: 1, workers: 1, profileApi: false, log: context.log });
  try {
    const saturated = await measureSaturation(context, deployment, durations);
    const perPayment = cpuPerPayment(saturated.cpu, saturated.result.completed);
    context.log(`payments: ${round1(saturated.result.paymentsPerS)}/s, ${saturated.result.errors} errors; CPU ms per payment: ${cpuText(perPayment)}`);
    const profile = await profileSaturatedApi(context, deployment, durations);
    if (profile) context.log(`fen api CPU profile, saturated phase:\n${formatProfile(profile)}`);
    const halfRate = Math.max(1, round1(saturated.result.paymentsPerS / 2));
    const open = await measureOpenLoop(context, deployment, halfRate, durations);
    context.log(`payments: create p50 ${open.create.p50} ms, p99 ${open.create.p99} ms at ${halfRate}/s (${open.errors} errors)`);
    // For reference: the same at a light rate, where a create waits for nothing but the machine.
    context.log(`payments: open loop at ${lightRatePerS}/s for ${lightWindowMs / 1000} s (light load, for reference)`);
    const light = await openLoop(deployment.driver, { ratePerS: lightRatePerS, warmupMs: 1_000, windowMs: lightWindowMs, inFlightMax: openLoopInFlightMax });
    context.log(`payments: create p50 ${light.create.p50} ms, p90 ${light.create.p90} ms at ${lightRatePerS}/s`);
    return report(saturated, perPayment, profile, open, light, pgbench, pgbenchMachine, durations);
  } finally {
    await deployment.close();
  }
}

function report(
  saturated: { result: ClosedLoopResult; cpu: CpuUse; windowUs: { fromUs: number; toUs: number } },
  perPayment: Record<string, number>,
  profile: ProfileSummary | undefined,
  open: OpenLoopResult,
  light: OpenLoopResult,
  pgbench: PgbenchResult | undefined,
  pgbenchMachine: { machineBusyCores: number | null; loadAverage1m: number },
  durations: Durations,
): SectionReport {
  const paymentsPerS = round1(saturated.result.paymentsPerS);
  const ratio = pgbench && pgbench.tps > 0 ? round2(saturated.result.paymentsPerS / pgbench.tps) : null;
  const steps = saturated.result.steps;
  const results: Record<string, ResultValue> = {
    payments_per_s: paymentsPerS,
    payments_per_s_unit: 'payments/s: whole lifecycle, counted when the verified payment.succeeded webhook arrived; closed loop, 1 fen api + 1 fen worker + fen sim',
    pgbench_tps: pgbench ? round1(pgbench.tps) : null,
    pgbench_tps_unit: `transactions/s: pgbench TPC-B-like, -s ${pgbenchScale}, ${pgbenchClients} clients, same server, same run`,
    payments_vs_pgbench: ratio,
    payments_vs_pgbench_unit: `ratio: payments_per_s / pgbench_tps (target >= ${paymentsToPgbenchTarget})`,
    create_p50_ms: finiteOrNull(open.create.p50),
    create_p50_ms_unit: 'ms: POST /v1/payments from its scheduled send time to the 201, open loop at half the saturated rate',
    create_p99_ms: finiteOrNull(open.create.p99),
    create_p99_ms_unit: `ms: as create_p50_ms, 99th percentile (target <= ${createP99TargetMs}); a failed create counts as infinite`,
    payments_concurrency: saturated.result.concurrency,
    payments_measure_s: saturated.result.windowS,
    payments_completed: saturated.result.completed,
    payments_errors: saturated.result.errors,
    payments_api_profiled: false,
    payments_api_profile_window_s: durations.profileMs / 1000,
    payments_db_pool_size: deploymentSettings.dbPoolSize,
    payments_worker_concurrency: deploymentSettings.workerConcurrency,
    payments_step_create_p50_ms: finiteOrNull(steps.create.p50),
    payments_step_create_p99_ms: finiteOrNull(steps.create.p99),
    payments_step_pay_p50_ms: finiteOrNull(steps.pay.p50),
    payments_step_pay_p99_ms: finiteOrNull(steps.pay.p99),
    payments_step_settle_p50_ms: finiteOrNull(steps.settle.p50),
    payments_step_settle_p99_ms: finiteOrNull(steps.settle.p99),
    payments_step_total_p50_ms: finiteOrNull(steps.total.p50),
    payments_step_total_p99_ms: finiteOrNull(steps.total.p99),
    payments_cpu_ms_per_payment: cpuText(perPayment),
    payments_cpu_ms_per_payment_total: round1(Object.values(perPayment).filter(Number.isFinite).reduce((sum, ms) => sum + ms, 0)),
    payments_db_cpu_in_pgbench_transactions:
      pgbench?.serverCpuMsPerTransaction && Number.isFinite(perPayment.postgres ?? NaN) ? round1((perPayment.postgres ?? 0) / pgbench.serverCpuMsPerTransaction) : null,
    payments_db_transactions_per_payment: saturated.result.completed > 0 ? round1(saturated.cpu.transactions / saturated.result.completed) : null,
    payments_machine_busy_cores: saturated.cpu.machineBusyCores,
    payments_cores_used: coresUsed(saturated.cpu.seconds, saturated.cpu.wallS),
    payments_load_average_1m: saturated.cpu.loadAverage1m,
    ...profileResults(profile),
    create_rate_per_s: open.ratePerS,
    create_measure_s: durations.openLoopMs / 1000,
    create_requests: open.scheduled,
    create_errors: open.errors,
    create_p90_ms: finiteOrNull(open.create.p90),
    create_max_ms: finiteOrNull(open.create.max),
    create_send_lag_p99_ms: finiteOrNull(open.sendLag.p99),
    create_open_loop_total_p50_ms: finiteOrNull(open.total.p50),
    create_open_loop_total_p99_ms: finiteOrNull(open.total.p99),
    create_open_loop_completed: open.completed,
    create_light_rate_per_s: light.ratePerS,
    create_light_requests: light.scheduled,
    create_light_p50_ms: finiteOrNull(light.create.p50),
    create_light_p90_ms: finiteOrNull(light.create.p90),
    create_light_max_ms: finiteOrNull(light.create.max),
    pgbench_clients: pgbench?.clients ?? null,
    pgbench_scale: pgbench?.scale ?? null,
    pgbench_duration_s: pgbench?.durationS ?? null,
    pgbench_latency_average_ms: pgbench?.latencyAverageMs ?? null,
    pgbench_version: pgbench?.version ?? null,
    pgbench_machine_busy_cores: pgbench ? pgbenchMachine.machineBusyCores : null,
    pgbench_server_cpu_ms_per_transaction: pgbench?.serverCpuMsPerTransaction ?? null,
    pgbench_client_cpu_ms_per_transaction: pgbench?.clientCpuMsPerTransaction ?? null,
    pgbench_load_average_1m: pgbench ? pgbenchMachine.loadAverage1m : null,
  };
  const p99 = open.create.p99;
  return {
    results,
    rows: [
      [
        `payments, whole lifecycle (${saturated.result.concurrency} payers)`,
        `${paymentsPerS} payments/s`,
        pgbench ? `${round1(pgbench.tps)} tps (pgbench)` : 'no pgbench',
        ratio === null ? '-' : `${ratio}×`,
        `≥ ${paymentsToPgbenchTarget}×`,
      ],
      [`POST /v1/payments at ${open.ratePerS}/s, open loop`, `p50 ${open.create.p50} ms, p99 ${Number.isFinite(p99) ? p99 : '∞'} ms`, '', '', `p99 ≤ ${createP99TargetMs} ms`],
      [`POST /v1/payments at ${light.ratePerS}/s, open loop`, `p50 ${light.create.p50} ms, p90 ${light.create.p90} ms`, '', '', '(for reference)'],
    ],
  };
}

export const paymentsSection: BenchSection = { name: 'payments', run: runPaymentsBench };
