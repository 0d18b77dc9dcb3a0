/**
 * Process entry and composition root of the `billing` CLI: reads the environment (the only place
 * besides src/config), wires signals, and hands the composition factories to the CLI. Every log
 * line goes to stderr, for every command (`billing start` included): stdout carries results only,
 * so `--json` output is one document and `billing batch results … > out.csv` holds only CSV.
 * Container runtimes collect both streams alike (docs/operations.md, "Logs").
 */
import { loadConfig, logLevelOf } from './config/config.ts';
import { openApp, startRoles } from './app/composition.ts';
import { runCli } from './cli/program.ts';
import type { CliContext } from './cli/context.ts';
import { createLogger, stderrDestination } from './infra/logger.ts';

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

const logDestination = stderrDestination();

const ctx: CliContext = {
  out: () => {
    throw new Error('output is provided by runCli');
  },
  config: (overrides = {}) => loadConfig({ ...process.env, ...overrides }),
  logger: (config) =>
    createLogger({
      level: config?.logLevel ?? logLevelOf(process.env.LOG_LEVEL),
      destination: logDestination,
    }),
  openApp,
  startRoles,
  untilSignal,
  env: process.env,
  stdout: process.stdout,
  stderr: process.stderr,
  // `.env` in the working directory is read when present (the environment wins).
  cwd: process.cwd(),
};

process.exitCode = await runCli(process.argv, ctx);
// Everything is closed by now; should a connection or timer still hold the event loop (a Redis
// that never answered), exit anyway rather than hang.
setTimeout(() => process.exit(), 1_000).unref();
