import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import path from 'node:path';

/** Runs `fen <args>` as a real child process, the way a newcomer or an operator would. */
export const repositoryRoot = path.resolve(import.meta.dirname, '../..');

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

export interface FenProcess {
  child: ChildProcess;
  output(): string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export function spawnFen(args: string[], environment: Record<string, string | undefined>): FenProcess {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries({ ...process.env, ...environment })) if (value !== undefined) env[key] = value;
  const child = spawn(process.execPath, [path.join(repositoryRoot, 'bin/fen.mjs'), ...args], { cwd: repositoryRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    child,
    output: () => output,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** Polls a URL until it answers 200 or the deadline passes; returns the time it took. */
export async function waitForOk(url: string, deadlineMs: number, fen?: FenProcess): Promise<number> {
  const startedMs = Date.now();
  while (Date.now() - startedMs < deadlineMs) {
    if (fen && fen.child.exitCode !== null) throw new Error(`fen exited with ${fen.child.exitCode}:\n${fen.output()}`);
    try {
      const response = await fetch(url);
      if (response.ok) return Date.now() - startedMs;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`${url} did not answer 200 within ${deadlineMs} ms${fen ? `:\n${fen.output()}` : ''}`);
}

export async function runFen(args: string[], environment: Record<string, string | undefined>): Promise<{ code: number | null; output: string }> {
  const fen = spawnFen(args, environment);
  const code = await new Promise<number | null>((resolve) => fen.child.on('exit', (exitCode) => resolve(exitCode)));
  return { code, output: fen.output() };
}
