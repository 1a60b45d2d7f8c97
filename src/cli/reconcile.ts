import type { Command } from 'commander';
import { openPlatform } from '../main/bootstrap.js';
import { loadConfig } from '../platform/config.js';
import { FenError } from '../platform/errors.js';
import { isBillDate, reconcileDay, type BatchReport } from '../reconciliation/index.js';

/**
 * `fen reconcile --date YYYY-MM-DD [--channel-account ID] [--json]`: runs (or
 * runs again) the day's batch of every active channel account that can fetch
 * bills, or of the one named, and prints each batch — with --json, one JSON
 * object per line, amounts as integers of minor units. Exit status: 0 when
 * every batch was reconciled (whatever it found), 1 when a bill could not be
 * (not ready yet, refused, unreadable), 2 for a mistake in the command.
 */
export const reconcileExitCodes = { ok: 0, notReconciled: 1, usage: 2 } as const;

function jsonLine(report: BatchReport): string {
  return JSON.stringify(report, (_key, value: unknown) => (typeof value === 'bigint' ? Number(value) : value));
}

function textLine(report: BatchReport): string {
  const differences = Object.entries(report.differences)
    .filter(([, count]) => count > 0)
    .map(([kind, count]) => `${kind} ${count}`)
    .join(', ');
  const drift = report.fund_flow.drift === null ? '' : `, fund flow drift ${report.fund_flow.drift}`;
  const error = report.error ? ` (${report.error.code}: ${report.error.message})` : '';
  return `${report.batch_id}  ${report.channel_account}  ${report.date}  ${report.status}${error}\n  lines: channel ${report.lines_channel}, Fen ${report.lines_local}, matched ${report.matched}, held ${report.held}${drift}\n  differences: ${differences || 'none'}; open ${report.open_differences}\n`;
}

function exitOnceFlushed(code: number): Promise<void> {
  return new Promise(() => {
    process.stdout.write('', () => process.exit(code));
  });
}

export async function runReconcile(options: { date: string; channelAccount?: string; json?: boolean }): Promise<number> {
  if (!isBillDate(options.date)) {
    process.stderr.write(`fen reconcile: --date must be a date, YYYY-MM-DD, not ${JSON.stringify(options.date)}\n`);
    return reconcileExitCodes.usage;
  }
  const platform = await openPlatform(loadConfig(), { poolSize: 4 });
  try {
    const reports = await reconcileDay(platform.context, { billDate: options.date, channelAccountId: options.channelAccount });
    for (const report of reports) process.stdout.write(options.json ? `${jsonLine(report)}\n` : textLine(report));
    if (reports.length === 0 && !options.json) process.stdout.write('no active channel account can fetch bills\n');
    return reports.some((report) => report.status === 'not_ready' || report.status === 'failed') ? reconcileExitCodes.notReconciled : reconcileExitCodes.ok;
  } catch (error) {
    if (!(error instanceof FenError)) throw error;
    process.stderr.write(`fen reconcile: ${error.message}\n`);
    return error.code === 'not_found' || error.code === 'invalid_request' ? reconcileExitCodes.usage : reconcileExitCodes.notReconciled;
  } finally {
    await platform.close();
  }
}

/** Adds `fen reconcile` to the `fen` program (one line in src/cli/main.ts). */
export function registerReconcileCommand(program: Command): void {
  program
    .command('reconcile')
    .description('Reconcile a bill day: download each channel account’s bill, match it against Fen’s records, report every batch')
    .requiredOption('--date <date>', 'the bill date (a Beijing day), YYYY-MM-DD')
    .option('--channel-account <id>', 'only this channel account')
    .option('--json', 'one JSON object per batch, for scripts')
    .action(async (options: { date: string; channelAccount?: string; json?: boolean }) => {
      const code = await runReconcile(options);
      if (code !== reconcileExitCodes.ok) await exitOnceFlushed(code);
    });
}
