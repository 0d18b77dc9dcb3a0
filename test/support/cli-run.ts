/**
 * Runs `billing` (bin/billing.js) in a child process with stdout and stderr kept apart, for tests
 * of what each stream carries (`--json`: one document on stdout, logs on stderr). The child runs
 * in `cwd` (default: a fresh empty temp directory, so a developer's `.env` is never read) with
 * only PATH, HOME and the given variables.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { openApp, startRoles, type AppOverrides } from '../../src/app/composition.ts';
import type { CliContext } from '../../src/cli/context.ts';
import { runCli, type CommandRegistrar } from '../../src/cli/program.ts';
import type { Config } from '../../src/config/config.ts';
import { createLogger } from '../../src/infra/logger.ts';
import { BIN } from './child.ts';
import { until } from './poll.ts';
import { dieWithThisProcess } from './watchdog.ts';

export interface CliChild {
  proc: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code (or the signal name). */
  exited: Promise<number | string>;
  /** Resolves once `text` appears on stderr; rejects if the process exits first. */
  waitForStderr(text: string, timeoutMs?: number): Promise<void>;
  kill(signal?: NodeJS.Signals): void;
}

export interface CliResult {
  code: number | string;
  stdout: string;
  stderr: string;
}

/** An empty directory to run the CLI in. */
export function emptyDir(label = 'billing-cli'): string {
  return mkdtempSync(join(tmpdir(), `${label}-`));
}

export function spawnCli(
  args: string[],
  env: Record<string, string>,
  opts: { cwd?: string } = {},
): CliChild {
  const proc = spawn(process.execPath, [BIN, ...args], {
    cwd: opts.cwd ?? emptyDir(),
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  dieWithThisProcess(proc);
  let out = '';
  let err = '';
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | string>((resolve) => {
    proc.on('close', (code, signal) => resolve(code ?? signal ?? 'unknown'));
  });
  return {
    proc,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitForStderr: async (text, timeoutMs = 30_000) => {
      const seen = await until(
        () =>
          err.includes(text)
            ? 'seen'
            : proc.exitCode !== null || proc.signalCode !== null
              ? 'exited'
              : undefined,
        { what: () => `"${text}" on stderr:\n${err}`, timeoutMs },
      );
      if (seen === 'exited') throw new Error(`exited before "${text}":\n${err}\n${out}`);
    },
    kill: (signal = 'SIGTERM') => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
    },
  };
}

/** Runs `billing …` to completion. */
export async function runCliChild(
  args: string[],
  env: Record<string, string>,
  opts: { cwd?: string } = {},
): Promise<CliResult> {
  const child = spawnCli(args, env, opts);
  const code = await child.exited;
  return { code, stdout: child.stdout(), stderr: child.stderr() };
}

/**
 * Runs `billing <args>` in this process against `config` (the app opened with `overrides`, e.g. a
 * test's clock), its stdout and stderr captured apart, logs silent. `registrars` add commands;
 * without a config, a command that needs one fails (for commands that open no app).
 */
export async function runCliInProcess(
  config: Config | undefined,
  args: readonly string[],
  overrides: AppOverrides = {},
  registrars: CommandRegistrar[] = [],
): Promise<{ code: number; out: string; err: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (c: Buffer) => (out += c.toString()));
  stderr.on('data', (c: Buffer) => (err += c.toString()));
  const ctx: CliContext = {
    out: () => {
      throw new Error('provided by runCli');
    },
    config: () => {
      if (!config) throw new Error('this run has no config');
      return config;
    },
    logger: () => createLogger({ level: 'silent' }),
    openApp: (c, logger) => openApp(c, logger, overrides),
    startRoles,
    untilSignal: () => new Promise(() => {}),
    env: {},
    stdout: stdout as unknown as NodeJS.WriteStream,
    stderr: stderr as unknown as NodeJS.WriteStream,
  };
  const code = await runCli(['node', 'billing', ...args], ctx, registrars);
  return { code, out, err };
}

const notUsed = () => {
  throw new Error('not used to list commands or options');
};

/** A CLI context for building the program only, to list its commands and options. */
export const LISTING_CTX = {
  out: notUsed,
  config: notUsed,
  logger: notUsed,
  openApp: notUsed,
  startRoles: notUsed,
  untilSignal: notUsed,
  env: {},
  stdout: process.stdout,
  stderr: process.stderr,
} as unknown as CliContext;
