/**
 * `billing start [--roles …] [--health-file <path>]`: run roles until SIGTERM/SIGINT, then drain
 * gracefully. With `--health-file`, a heartbeat for `billing health` (src/cli/health-file.ts).
 * Logs go to stderr; with --json the one document on stdout says which roles ran and how they
 * stopped.
 */
import { Option, type Command } from 'commander';
import { ROLES, withDeadline, type App, type RunningRoles } from '../../app/composition.ts';
import { SHUTDOWN_CLOSE_RESERVE_MS } from '../../config/limits.ts';
import type { Logger } from '../../infra/logger.ts';
import { asRedisUnavailable, untilRedis, type CliContext } from '../context.ts';
import {
  HEARTBEAT_EVERY_MS,
  removeHeartbeat,
  writeHeartbeat,
  type Heartbeat,
} from '../health-file.ts';
import { parseRoles } from '../parsers.ts';

/** Keeps the heartbeat file fresh while the roles run; `stop` removes it. */
function startHeartbeat(path: string, app: App, running: RunningRoles, logger: Logger) {
  const startedAt = new Date().toISOString();
  let writing: Promise<void> = Promise.resolve();
  let stopped = false;
  const beat = async () => {
    const ready = await app
      .ready()
      .catch(() => ({ ok: false as const, reason: 'redis_unavailable' }));
    const heartbeat: Heartbeat = {
      pid: process.pid,
      roles: running.roles,
      startedAt,
      at: new Date().toISOString(),
      redis: ready.ok ? 'up' : ready.reason,
      workers: running.workers.map((w) => ({ queue: w.name, running: w.isRunning() })),
      ...(running.http ? { http: { listening: running.http.server.listening } } : {}),
    };
    if (stopped) return;
    await writeHeartbeat(path, heartbeat).catch((err: unknown) =>
      logger.warn(
        { healthFile: path, code: (err as NodeJS.ErrnoException).code },
        'cannot write the health file',
      ),
    );
  };
  const tick = () => {
    writing = writing.then(beat);
  };
  tick();
  const timer = setInterval(tick, HEARTBEAT_EVERY_MS);
  timer.unref();
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await writing;
      await removeHeartbeat(path).catch(() => undefined);
    },
  };
}

export function registerStartCommand(program: Command, ctx: CliContext) {
  program
    .command('start')
    .description('run the given roles until SIGTERM/SIGINT, then drain gracefully')
    .addOption(
      new Option('--roles <roles>', `comma-separated roles (${ROLES.join(', ')})`)
        .argParser(parseRoles)
        // Shown as it is typed, not as the array it becomes.
        .default([...ROLES], ROLES.join(',')),
    )
    .option(
      '--health-file <path>',
      'keep a heartbeat in this file for `billing health` (container healthchecks)',
    )
    .action(async (opts: { roles: (typeof ROLES)[number][]; healthFile?: string }) => {
      const config = ctx.config();
      const logger = ctx.logger(config);
      const app = ctx.openApp(config, logger);
      // Listening for SIGTERM/SIGINT before the roles start: a signal during start-up drains and
      // stops once they are up, instead of killing the process mid-start (Node's default).
      const stopSignal = ctx.untilSignal();
      let running: RunningRoles | undefined;
      try {
        await untilRedis(app);
        running = await ctx.startRoles(app, opts.roles);
      } catch (err) {
        await app.close();
        throw asRedisUnavailable(app, err);
      }
      const heartbeat =
        opts.healthFile !== undefined
          ? startHeartbeat(opts.healthFile, app, running, logger)
          : undefined;
      const signal = await stopSignal;
      logger.info({ signal }, 'shutting down: no new jobs, finishing in-flight ones');
      await heartbeat?.stop();
      // The whole shutdown fits in SHUTDOWN_TIMEOUT whatever Redis does: in-flight jobs get most
      // of it, closing the connections the rest; what is still running then is abandoned (its
      // leases and locks expire and the work is picked up again, docs/operations.md).
      const total = config.shutdownTimeoutMs;
      const drain = Math.max(0, total - SHUTDOWN_CLOSE_RESERVE_MS);
      const started = Date.now();
      const stopped = await withDeadline(
        running.stop(drain),
        drain + SHUTDOWN_CLOSE_RESERVE_MS / 2,
      ).then(
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
      // Humans read the log's "stopped"; a script gets the document.
      if (ctx.out().json) ctx.out().result({ roles: opts.roles, signal, stopped: true });
    });
}
