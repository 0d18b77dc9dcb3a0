/**
 * What CLI commands get from the entry point: output, the environment's configuration (parsed
 * lazily: `billing sandbox` needs none) and the composition root's factories. Commands never read
 * process.env and never build adapters themselves.
 */
import type { App, AppOverrides, Role, RunningRoles } from '../app/composition.ts';
import type { Config } from '../config/config.ts';
import type { Logger } from '../infra/logger.ts';
import type { Output } from './output.ts';

export interface CliContext {
  out: () => Output;
  /** Parses the environment; throws ConfigError listing every bad variable. */
  config: (overrides?: Record<string, string>) => Config;
  logger: (config?: Config) => Logger;
  openApp: (config: Config, logger: Logger, overrides?: AppOverrides) => App;
  startRoles: (app: App, roles: Role[]) => Promise<RunningRoles>;
  /** Resolves when SIGINT/SIGTERM arrives; a second signal exits at once. */
  untilSignal: () => Promise<NodeJS.Signals>;
  /** Raw environment, for the demo's "use REDIS_URL if set" and nothing else. */
  env: Record<string, string | undefined>;
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
}

/** Opens the app for a one-shot command, runs `fn`, and always closes it. */
export async function withApp<T>(ctx: CliContext, fn: (app: App) => Promise<T>): Promise<T> {
  const config = ctx.config();
  const app = ctx.openApp(config, ctx.logger(config));
  try {
    return await fn(app);
  } finally {
    await app.close();
  }
}
