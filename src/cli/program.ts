/**
 * The `billing` CLI (docs/product.md §3), built with commander. Exit codes: 0 success; 1 runtime
 * failure; 2 bad usage or invalid input, with a message naming the flag, file, line or variable;
 * 3 `batch submit --wait` saw rows that did not succeed; 130 interrupted. With `--json`, stdout
 * holds exactly one JSON document, on success and on failure (src/cli/output.ts); logs always go
 * to stderr (src/main.ts).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { ConfigError } from '../config/config.ts';
import { RedisUnavailableError } from '../infra/redis/health.ts';
import { ShardCountMismatchError } from '../infra/redis/shards.ts';
import type { CliContext } from './context.ts';
import { DEFAULT_ENV_FILE, EnvFileSyntaxError, fileAdditions, readEnvFile } from './env-file.ts';
import { CliError, describeFsError, UsageError } from './errors.ts';
import { createOutput, printable, type ErrorDocument } from './output.ts';
import { registerPaymentsCommands } from './commands/payments.ts';
import { registerBatchCommands, seedSampleBatch } from './commands/batch.ts';
import { registerSandboxCommand } from './commands/sandbox.ts';
import { registerStartCommand } from './commands/start.ts';
import { registerReconcileCommand } from './commands/reconcile.ts';
import { registerDemoCommand } from './commands/demo.ts';
import { registerSubsCommands } from './commands/subs.ts';
import { registerRedisCommands } from './commands/redis.ts';
import { registerKeysCommands } from './commands/keys.ts';
import { registerHealthCommand } from './commands/health.ts';

export type CommandRegistrar = (program: Command, ctx: CliContext) => void;

/** The package's version (`billing --version`); package.json sits two levels up in src/ and dist/. */
export const VERSION = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  }
).version;

/** True when `--json` is among the arguments (before a `--`). */
function jsonRequested(argv: readonly string[]): boolean {
  const args = argv.slice(2);
  const end = args.indexOf('--');
  return (end < 0 ? args : args.slice(0, end)).includes('--json');
}

/**
 * commander's error message as printed: it quotes the arguments as typed (a script may pass a
 * value from outside), so it is shown {@link printable} like every line the CLI prints
 * (src/cli/output.ts). Its one line break of its own is before the `(Did you mean …?)` it may
 * end with; any other is an argument's, and stays on its line as `\n`.
 */
function commanderError(message: string): string {
  const text = message.replace(/\n$/, '');
  const suggested = /^([^]*)\n(\(Did you mean [^\n]*\?\))$/.exec(text);
  const lines = suggested ? [suggested[1] ?? '', suggested[2] ?? ''] : [text];
  return `${lines.map(printable).join('\n')}\n`;
}

/** Builds the program. Feature commands register themselves through `registrars`. */
export function buildProgram(ctx: CliContext, registrars: CommandRegistrar[] = []): Command {
  const json = (() => {
    try {
      return ctx.out().json;
    } catch {
      return false;
    }
  })();
  const program = new Command('billing')
    .description("Subscription billing, bulk charges and payouts through Sayswitch's S2S API")
    .version(VERSION, '-V, --version', 'print the version')
    .addOption(
      new Option(
        '--json',
        'machine-readable output: exactly one JSON document on stdout, also on failure',
      ),
    )
    .addOption(
      new Option(
        '--env-file <path>',
        `read variables from this file instead of ./${DEFAULT_ENV_FILE} (the environment wins)`,
      ),
    )
    .addOption(new Option('--no-env-file', `read no ${DEFAULT_ENV_FILE} file`))
    .exitOverride()
    .configureOutput({
      // With --json, stdout is the document: help and the version text go to stderr.
      writeOut: (s) => (json ? ctx.stderr : ctx.stdout).write(s),
      writeErr: (s) => ctx.stderr.write(s),
      outputError: (s, write) => write(commanderError(s)),
    })
    .showHelpAfterError('(run with --help for usage)');

  registerStartCommand(program, ctx);
  registerSandboxCommand(program, ctx);
  registerPaymentsCommands(program, ctx);
  registerBatchCommands(program, ctx);
  registerReconcileCommand(program, ctx);
  registerDemoCommand(program, ctx, [seedSampleBatch]);
  registerSubsCommands(program, ctx);
  registerRedisCommands(program, ctx);
  registerKeysCommands(program, ctx);
  registerHealthCommand(program, ctx);
  for (const register of registrars) register(program, ctx);

  return program;
}

/** The variables of the env file the global options name (or ./.env), as far as the environment lacks them. */
function envFileAdditions(
  opts: { envFile?: string | false },
  ctx: CliContext,
): Record<string, string> {
  if (opts.envFile === false) return {};
  const explicit = typeof opts.envFile === 'string';
  if (!explicit && ctx.cwd === undefined) return {};
  const path = explicit ? (opts.envFile as string) : join(ctx.cwd ?? '.', DEFAULT_ENV_FILE);
  try {
    return fileAdditions(readEnvFile(path), ctx.env);
  } catch (err) {
    if (err instanceof EnvFileSyntaxError) {
      throw new UsageError(`${explicit ? '--env-file ' : ''}${path}:${err.line}: ${err.why}`, {
        code: 'env_file',
        details: { file: path, line: err.line },
      });
    }
    if (!explicit && (err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new UsageError(
      `${explicit ? '--env-file ' : ''}${path}: cannot read (${describeFsError(err)})`,
      { code: 'env_file' },
    );
  }
}

/**
 * What a failure becomes: exit code, the human lines (if any are still to print; Output shows each
 * printable, so a line break in an error's message that is not one of its lines stays on its
 * line), the JSON error.
 */
function failure(err: unknown): { exitCode: number; lines?: string[]; error: ErrorDocument } {
  if (err instanceof InvalidArgumentError) {
    // Thrown by an action, not by a flag's parser: commander turns a parser's InvalidArgumentError
    // into a CommanderError of its own after printing it, so this one was printed by nobody.
    return { exitCode: 2, lines: [err.message], error: { code: 'usage', message: err.message } };
  }
  if (err instanceof CommanderError) {
    // commander printed its own message already.
    return {
      exitCode: 2,
      error: { code: 'usage', message: err.message.replace(/^error: /, '') },
    };
  }
  if (err instanceof ConfigError) {
    return {
      exitCode: 2,
      lines: [...err.lines],
      error: { code: 'config', message: err.message, details: { problems: err.problems } },
    };
  }
  if (err instanceof ShardCountMismatchError) {
    // `billing start`'s refusal (startRoles); one-shot commands get shardCountError (context.ts).
    return failure(
      new CliError(err.message, {
        code: err.code,
        details: { variable: 'REDIS_SHARDS', configured: err.configured, stored: err.stored },
      }),
    );
  }
  if (err instanceof CliError) {
    const [first = '', ...rest] = err.lines;
    return {
      exitCode: err.exitCode,
      lines:
        err instanceof UsageError || err.exitCode !== 1
          ? [...err.lines]
          : [`error: ${first}`, ...rest],
      error: {
        code: err.code,
        message: err.message,
        ...(err.details !== undefined ? { details: err.details } : {}),
      },
    };
  }
  const message = err instanceof Error ? err.message : String(err);
  return {
    exitCode: 1,
    lines: [`error: ${message}`],
    error: { code: err instanceof RedisUnavailableError ? err.code : 'failed', message },
  };
}

/** Runs the CLI and returns the exit code. */
export async function runCli(
  argv: string[],
  ctx: CliContext,
  registrars: CommandRegistrar[] = [],
): Promise<number> {
  const json = jsonRequested(argv);
  const out = createOutput(json, ctx.stdout, ctx.stderr);
  // The env file's variables, under the real environment, once the global options are parsed.
  let fromFile: Record<string, string> = {};
  const effective: CliContext = {
    ...ctx,
    out: () => out,
    config: (overrides = {}) => ctx.config({ ...fromFile, ...overrides }),
    get env() {
      return { ...fromFile, ...ctx.env };
    },
  };
  const program = buildProgram(effective, registrars);
  program.hook('preAction', () => {
    fromFile = envFileAdditions(program.opts<{ envFile?: string | false }>(), ctx);
  });
  try {
    await program.parseAsync(argv);
    out.finish();
    return 0;
  } catch (err) {
    if (
      err instanceof CommanderError &&
      (err.exitCode === 0 || err.code === 'commander.helpDisplayed')
    ) {
      // --help and --version exit 0; with --json the version is the document.
      if (err.code === 'commander.version' && json) {
        out.result({ version: VERSION });
        out.finish();
      }
      return 0;
    }
    const f = failure(err);
    if (f.lines !== undefined) out.error(f.lines);
    out.finish(f.error);
    return f.exitCode;
  }
}
