/**
 * `billing demo [--exit-when-done] [--env-out .env.demo]`: everything on embedded defaults. Its
 * lines go to stdout (stderr with --json, whose one document is the report at the end); the
 * environment for continuing in another shell is printed and written to `--env-out`.
 */
import type { Command } from 'commander';
import { runDemo } from '../../demo/run-demo.ts';
import { seedApiPayments, seedSubscriptions } from '../../demo/seeds.ts';
import type { App } from '../../app/composition.ts';
import type { CliContext } from '../context.ts';
import { CliError } from '../errors.ts';
import { printable } from '../output.ts';
import { parseIntFlag } from '../parsers.ts';

/** Seeders other features contribute (a sample batch, sample subscriptions). */
export type DemoSeeder = (app: App) => Promise<string>;

/** The env file the demo writes by default, in the working directory. */
export const DEMO_ENV_FILE = '.env.demo';

export function registerDemoCommand(
  program: Command,
  ctx: CliContext,
  extraSeeders: DemoSeeder[] = [],
) {
  program
    .command('demo')
    .description(
      'run everything on embedded defaults: Redis, the sandbox, all roles, sample data, progress',
    )
    .option('--exit-when-done', 'exit once every payment is final (for scripts)')
    .option(
      '--timeout <seconds>',
      'stop waiting for final states after this long',
      parseIntFlag('--timeout'),
      180,
    )
    .option(
      '--env-out <path>',
      'write the environment for using the CLI against the running demo here',
      DEMO_ENV_FILE,
    )
    .option('--no-env-out', 'write no env file (the environment is still printed)')
    .action(async (opts: { exitWhenDone?: boolean; timeout: number; envOut: string | false }) => {
      const out = ctx.out();
      const stream = out.progress;
      const tty = stream.isTTY === true;
      let lastPlain = 0;
      const { exitCode, report } = await runDemo(
        {
          env: ctx.env,
          loadConfig: (overrides) => ctx.config(overrides),
          logger: (config) => ctx.logger(config),
          openApp: (config, logger) => ctx.openApp(config, logger),
          startRoles: (app, roles) => ctx.startRoles(app, roles),
          untilSignal: () => ctx.untilSignal(),
          // Written to the stream itself, not through Output: each line printable here (it may
          // quote an error's message or a seeder's data), the erase sequences are ours.
          print: (line) => stream.write(`${tty ? '\r\x1b[K' : ''}${printable(line)}\n`),
          progress: (line) => {
            if (tty) stream.write(`\r\x1b[K${printable(line)}`);
            else if (Date.now() - lastPlain >= 2_000) {
              lastPlain = Date.now();
              stream.write(`${printable(line)}\n`);
            }
          },
          seeders: [seedApiPayments, seedSubscriptions, ...extraSeeders],
        },
        {
          exitWhenDone: opts.exitWhenDone ?? false,
          timeoutMs: opts.timeout * 1000,
          ...(opts.envOut !== false ? { envFile: opts.envOut } : {}),
        },
      );
      if (out.json) out.result(report);
      if (exitCode !== 0) {
        throw new CliError('the demo ended with payments still in flight', { code: 'in_flight' });
      }
    });
}
