/** `billing start [--roles …]`: run roles until SIGTERM/SIGINT, then drain gracefully. */
import type { Command } from 'commander';
import { ROLES } from '../../app/composition.ts';
import type { CliContext } from '../context.ts';
import { parseRoles } from '../parsers.ts';

export function registerStartCommand(program: Command, ctx: CliContext) {
  program
    .command('start')
    .description('run the given roles until SIGTERM/SIGINT, then drain gracefully')
    .option('--roles <roles>', `comma-separated roles (${ROLES.join(', ')})`, parseRoles, [
      ...ROLES,
    ])
    .action(async (opts: { roles: (typeof ROLES)[number][] }) => {
      const config = ctx.config();
      const logger = ctx.logger(config);
      const app = ctx.openApp(config, logger);
      try {
        const running = await ctx.startRoles(app, opts.roles);
        const signal = await ctx.untilSignal();
        logger.info({ signal }, 'shutting down: no new jobs, finishing in-flight ones');
        await running.stop();
      } finally {
        await app.close();
      }
      logger.info('stopped');
    });
}
