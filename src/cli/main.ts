import { Command } from 'commander';
import { verifyAuditChain } from '../audit/index.js';
import { ConfigError, loadConfig, settingDescriptions, type FenConfig } from '../platform/config.js';
import { EmbeddedDatabaseError } from '../platform/db/index.js';
import { openPlatform, type Platform } from '../main/bootstrap.js';
import { startApiRole, startWorkerRole, stopOnSignals } from '../main/roles.js';

/**
 * The `fen` command: one codebase, several roles, and the operator's tools.
 * Output meant for people goes to stderr as JSON logs; output meant for scripts
 * (--json) goes to stdout.
 */
const settingsHelp = `\nSettings (environment variables, or keys of the JSON file named by FEN_CONFIG_FILE):\n${Object.entries(settingDescriptions)
  .map(([name, description]) => `  ${name.padEnd(26)} ${description}`)
  .join('\n')}\n`;

function config(): FenConfig {
  return loadConfig();
}

async function withPlatform<T>(work: (platform: Platform) => Promise<T>): Promise<T> {
  const platform = await openPlatform(config(), { poolSize: 4 });
  try {
    return await work(platform);
  } finally {
    await platform.close();
  }
}

const program = new Command('fen').description('Fen payment platform').showHelpAfterError();

program
  .command('start')
  .description('Run every role in one process: API, worker and the channel simulators, with demo data on first start')
  .addHelpText('after', settingsHelp)
  .action(async () => {
    const settings = config();
    const platform = await openPlatform(settings);
    const api = await startApiRole(platform, settings);
    const worker = await startWorkerRole(platform, settings);
    stopOnSignals(platform, [api, worker]);
    platform.context.logger.info({ url: api.url }, 'Fen is running');
  });

program
  .command('api')
  .description('Run the HTTP API role only')
  .addHelpText('after', settingsHelp)
  .action(async () => {
    const settings = config();
    const platform = await openPlatform(settings);
    const api = await startApiRole(platform, settings);
    stopOnSignals(platform, [api]);
  });

program
  .command('worker')
  .description('Run the background job role only')
  .addHelpText('after', settingsHelp)
  .action(async () => {
    const settings = config();
    const platform = await openPlatform(settings);
    const worker = await startWorkerRole(platform, settings);
    stopOnSignals(platform, [worker]);
  });

program
  .command('migrate')
  .description('Bring the database schema up to date, then exit')
  .action(async () => {
    await withPlatform(async () => undefined);
  });

const audit = program.command('audit').description('The append-only audit log');
audit
  .command('verify')
  .description('Check the hash chain; exit 1 and name the first altered, removed or reordered record')
  .option('--json', 'print the result as JSON')
  .action(async (options: { json?: boolean }) => {
    const result = await withPlatform((platform) => verifyAuditChain(platform.context.db));
    const printable = { ...result, ...('sequence' in result ? { sequence: result.sequence.toString() } : {}) };
    if (options.json) process.stdout.write(`${JSON.stringify(printable)}\n`);
    else process.stdout.write(result.ok ? `audit log intact: ${result.records} records\n` : `audit log BROKEN: ${result.message}\n`);
    process.exitCode = result.ok ? 0 : 1;
  });

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof ConfigError || error instanceof EmbeddedDatabaseError) {
    process.stderr.write(`fen: ${error.message}\n`);
    process.exit(2);
  }
  throw error;
}
