/**
 * Process entry and composition root of the `billing` CLI: reads the environment (the only place
 * besides src/config), wires signals, and hands the composition factories to the CLI.
 */
import { loadConfig } from './config/config.ts';
import { openApp, startRoles } from './app/composition.ts';
import { runCli } from './cli/program.ts';
import type { CliContext } from './cli/context.ts';
import { createLogger } from './infra/logger.ts';

function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const first = (signal: NodeJS.Signals) => {
      process.off('SIGINT', first);
      process.off('SIGTERM', first);
      // A second signal forces the exit.
      const force = () => process.exit(130);
      process.once('SIGINT', force);
      process.once('SIGTERM', force);
      resolve(signal);
    };
    process.on('SIGINT', first);
    process.on('SIGTERM', first);
  });
}

const ctx: CliContext = {
  out: () => {
    throw new Error('output is provided by runCli');
  },
  config: (overrides = {}) => loadConfig({ ...process.env, ...overrides }),
  logger: (config) => createLogger({ level: config?.logLevel ?? process.env.LOG_LEVEL ?? 'info' }),
  openApp,
  startRoles,
  untilSignal,
  env: process.env,
  stdout: process.stdout,
  stderr: process.stderr,
};

process.exitCode = await runCli(process.argv, ctx);
// Everything is closed by now; should a connection or timer still hold the event loop (a Redis
// that never answered), exit anyway rather than hang.
setTimeout(() => process.exit(), 1_000).unref();
