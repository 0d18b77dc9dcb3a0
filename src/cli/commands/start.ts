/** `billing start [--roles …]`: run roles until SIGTERM/SIGINT, then drain gracefully. */
import type { Command } from 'commander';
import { ROLES, withDeadline, type RunningRoles } from '../../app/composition.ts';
import { asRedisUnavailable, untilRedis, type CliContext } from '../context.ts';
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
      let running: RunningRoles | undefined;
      try {
        await untilRedis(app);
        running = await ctx.startRoles(app, opts.roles);
      } catch (err) {
        await app.close();
        throw asRedisUnavailable(app, err);
      }
      const signal = await ctx.untilSignal();
      logger.info({ signal }, 'shutting down: no new jobs, finishing in-flight ones');
      // The whole shutdown fits in SHUTDOWN_TIMEOUT whatever Redis does: in-flight jobs get most
      // of it, closing the connections the rest; what is still running then is abandoned (its
      // leases and locks expire and the work is picked up again, docs/operations.md).
      const total = config.shutdownTimeoutMs;
      const drain = Math.max(0, total - CLOSE_RESERVE_MS);
      const started = Date.now();
      const stopped = await withDeadline(running.stop(drain), drain + CLOSE_RESERVE_MS / 2).then(
        () => true,
        () => false,
      );
      const left = Math.max(0, total - (Date.now() - started));
      const closed = await withDeadline(app.close(), left).then(
        () => true,
        () => false,
      );
      if (!stopped || !closed) {
        throw new Error(
          `shutdown did not finish within SHUTDOWN_TIMEOUT (${total} ms); exiting anyway`,
        );
      }
      logger.info('stopped');
    });
}

/** What SHUTDOWN_TIMEOUT keeps for closing connections after draining. */
const CLOSE_RESERVE_MS = 2_000;
