/** `billing demo [--exit-when-done]`: everything on embedded defaults. */
import type { Command } from 'commander';
import { runDemo } from '../../demo/run-demo.ts';
import { seedApiPayments, seedSubscriptions } from '../../demo/seeds.ts';
import type { App } from '../../app/composition.ts';
import type { CliContext } from '../context.ts';
import { parseIntFlag } from '../parsers.ts';

/** Seeders other features contribute (a sample batch, sample subscriptions). */
export type DemoSeeder = (app: App) => Promise<string>;

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
    .action(async (opts: { exitWhenDone?: boolean; timeout: number }) => {
      const tty = ctx.stdout.isTTY;
      let lastPlain = 0;
      const code = await runDemo(
        {
          env: ctx.env,
          loadConfig: (overrides) => ctx.config(overrides),
          logger: (config) => ctx.logger(config),
          openApp: (config, logger) => ctx.openApp(config, logger),
          startRoles: (app, roles) => ctx.startRoles(app, roles),
          untilSignal: () => ctx.untilSignal(),
          print: (line) => ctx.stdout.write(`${tty ? '\r\x1b[K' : ''}${line}\n`),
          progress: (line) => {
            if (tty) ctx.stdout.write(`\r\x1b[K${line}`);
            else if (Date.now() - lastPlain >= 2_000) {
              lastPlain = Date.now();
              ctx.stdout.write(`${line}\n`);
            }
          },
          seeders: [seedApiPayments, seedSubscriptions, ...extraSeeders],
        },
        { exitWhenDone: opts.exitWhenDone ?? false, timeoutMs: opts.timeout * 1000 },
      );
      if (code !== 0) throw new Error('the demo ended with payments still in flight');
    });
}
