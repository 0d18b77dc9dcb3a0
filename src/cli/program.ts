/**
 * The `billing` CLI (docs/product.md §3), built with commander. Exit codes: 0 success; 1
 * runtime failure; 2 bad usage or invalid input, with a message naming the flag, file, line or
 * variable.
 */
import { Command, CommanderError, Option } from 'commander';
import { ConfigError } from '../config/config.ts';
import type { CliContext } from './context.ts';
import { UsageError } from './errors.ts';
import { createOutput, type Output } from './output.ts';
import { registerPaymentsCommands } from './commands/payments.ts';
import { registerBatchCommands, seedSampleBatch } from './commands/batch.ts';
import { registerSandboxCommand } from './commands/sandbox.ts';
import { registerStartCommand } from './commands/start.ts';
import { registerReconcileCommand } from './commands/reconcile.ts';
import { registerDemoCommand } from './commands/demo.ts';
import { registerSubsCommands } from './commands/subs.ts';
import { registerRedisCommands } from './commands/redis.ts';

export type CommandRegistrar = (program: Command, ctx: CliContext) => void;

/** Builds the program. Feature commands register themselves through `registrars`. */
export function buildProgram(ctx: CliContext, registrars: CommandRegistrar[] = []): Command {
  const program = new Command('billing')
    .description("Subscription billing, bulk charges and payouts through Sayswitch's S2S API")
    .addOption(new Option('--json', 'machine-readable output'))
    .exitOverride()
    .configureOutput({
      writeOut: (s) => ctx.stdout.write(s),
      writeErr: (s) => ctx.stderr.write(s),
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
  for (const register of registrars) register(program, ctx);

  return program;
}

/** Runs the CLI and returns the exit code. */
export async function runCli(
  argv: string[],
  ctx: CliContext,
  registrars: CommandRegistrar[] = [],
): Promise<number> {
  const json = argv.includes('--json');
  const out: Output = createOutput(json, ctx.stdout, ctx.stderr);
  const program = buildProgram({ ...ctx, out: () => out }, registrars);
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version exit 0; everything else commander refuses is bad usage.
      return err.exitCode === 0 || err.code === 'commander.helpDisplayed' ? 0 : 2;
    }
    if (err instanceof ConfigError || err instanceof UsageError) {
      out.error(err.message);
      return 2;
    }
    out.error(`error: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
}
