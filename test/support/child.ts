/**
 * Runs `billing` in a child process exactly as an operator would (bin/billing.js), for crash,
 * shutdown and CLI tests. Output is collected for failure messages.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { until } from './poll.ts';
import { dieWithThisProcess } from './watchdog.ts';

export const BIN = fileURLToPath(new URL('../../bin/billing.js', import.meta.url));

export interface BillingChild {
  proc: ChildProcess;
  output(): string;
  /** Resolves with the exit code (or the signal name). */
  exited: Promise<number | string>;
  kill(signal?: NodeJS.Signals): void;
  /** Resolves once `text` appears in the output (e.g. "roles started"). */
  waitFor(text: string, timeoutMs?: number): Promise<void>;
}

export function spawnBilling(
  args: string[],
  env: Record<string, string>,
  /** How many characters of output to keep (the last ones); 20,000 by default. */
  keepOutput = 20_000,
): BillingChild {
  const proc = spawn(process.execPath, [BIN, ...args], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  dieWithThisProcess(proc);
  let out = '';
  proc.stdout?.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-keepOutput)));
  proc.stderr?.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-keepOutput)));
  const exited = new Promise<number | string>((resolve) => {
    proc.on('exit', (code, signal) => resolve(code ?? signal ?? 'unknown'));
  });
  return {
    proc,
    output: () => out,
    exited,
    waitFor: async (text, timeoutMs = 30_000) => {
      const seen = await until(
        () =>
          out.includes(text)
            ? 'seen'
            : proc.exitCode !== null || proc.signalCode !== null
              ? 'exited'
              : undefined,
        { what: () => `"${text}" in the output:\n${out}`, timeoutMs },
      );
      if (seen === 'exited') throw new Error(`exited before "${text}":\n${out}`);
    },
    kill: (signal = 'SIGKILL') => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
    },
  };
}

/** Runs `billing …` to completion and returns its exit code and output. */
export async function runBilling(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | string; output: string }> {
  const child = spawnBilling(args, env);
  const code = await child.exited;
  return { code, output: child.output() };
}
