/**
 * What CLI commands get from the entry point: output, the environment's configuration (parsed
 * lazily: `billing sandbox` needs none) and the composition root's factories. Commands never read
 * process.env and never build adapters themselves. `runCli` layers the `.env` file (or
 * `--env-file`) under the environment before a command runs (src/cli/env-file.ts).
 */
import type { App, AppOverrides, Role, RunningRoles } from '../app/composition.ts';
import type { Config } from '../config/config.ts';
import {
  isRedisConnectionError,
  redisWriteRefusal,
  WRITE_REFUSALS,
  RedisUnavailableError,
} from '../infra/redis/health.ts';
import {
  assertClusterSeeds,
  assertRedisTopology,
  RedisClusterNotConfiguredError,
  RedisReplicaError,
} from '../infra/redis/redis-check.ts';
import { assertShardCount, ShardCountMismatchError } from '../infra/redis/shards.ts';
import type { Logger } from '../infra/logger.ts';
import { CliError } from './errors.ts';
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
  /**
   * The working directory whose `.env` is read when no `--env-file` is given (src/main.ts sets
   * it). Unset (in-process tests): no `.env` is read unless `--env-file` names one.
   */
  cwd?: string;
}

/**
 * How long a command waits for Redis before giving up with one line naming the address
 * (docs/operations.md, "Redis outages"); with closing, a command against a dead Redis exits 1
 * well within 10 s.
 */
export const REDIS_WAIT_MS = 5_000;

/**
 * Waits for the app's Redis connections. Throws {@link RedisUnavailableError} (the CLI prints its
 * one line and exits 1) when they are not ready in time.
 */
export function untilRedis(app: App): Promise<void> {
  return app.health.waitUntilUp(REDIS_WAIT_MS);
}

/**
 * A connection error from anywhere in a command, as the one-line "cannot reach Redis" error; a
 * write Redis refused, as the one-line `redis_out_of_memory` or `redis_cannot_persist` error.
 */
export function asRedisUnavailable(app: App, err: unknown): unknown {
  const refusal = redisWriteRefusal(err);
  if (refusal) {
    const { code, words } = WRITE_REFUSALS[refusal];
    return new CliError(`Redis at ${app.health.address}: ${words}`, { code, cause: err });
  }
  if (err instanceof RedisUnavailableError || !isRedisConnectionError(err)) return err;
  return new RedisUnavailableError(app.health.address, err);
}

/**
 * REDIS_SHARDS differing from the count the deployment recorded, as the CLI's error (exit 1, code
 * `redis_shard_count_mismatch`, like the service's refusal to start): with another count a
 * command would look for API payments in the wrong shards and miss them.
 */
export function shardCountError(err: ShardCountMismatchError): CliError {
  return new CliError(
    `REDIS_SHARDS=${err.configured} but this deployment records REDIS_SHARDS=${err.stored}: ` +
      `with another count the CLI would miss the payments of other shards. Run it with ` +
      `REDIS_SHARDS=${err.stored}, as the service runs (docs/operations.md, "Redis Cluster").`,
    {
      code: err.code,
      details: { variable: 'REDIS_SHARDS', configured: err.configured, stored: err.stored },
      cause: err,
    },
  );
}

/**
 * Opens the app for a one-shot command, runs `fn` once Redis answers, and always closes it. The
 * shard count is checked first, as a service checks it when it starts: a command run with
 * another REDIS_SHARDS than the deployment's is refused ({@link shardCountError}), and one run
 * before the first service start records its count, as that start would (an epoch without a
 * count would otherwise stand for a one-shard deployment). Then the deployment epoch is read,
 * as a service reads it when it starts: while a Redis data loss is unacknowledged, what the
 * command creates (a batch re-posted with `batch submit`, a retry, an approval's rows, a refund)
 * is marked `afterDataLoss` like what the service creates (docs/operations.md "Redis lost its
 * data").
 */
export async function withApp<T>(ctx: CliContext, fn: (app: App) => Promise<T>): Promise<T> {
  const config = ctx.config();
  const app = ctx.openApp(config, ctx.logger(config));
  try {
    // REDIS_CLUSTER_NODES naming a standalone server would leave untilRedis waiting forever.
    await assertClusterSeeds(config.redis);
    await untilRedis(app);
    // REDIS_URL at a cluster node without REDIS_CLUSTER_NODES, refused as `billing start` refuses
    // it: over a plain connection the command's first script met a bare CROSSSLOT, which named
    // nothing the operator could fix.
    try {
      await assertRedisTopology(app.redis, app.health.address);
    } catch (err) {
      throw err instanceof RedisClusterNotConfiguredError || err instanceof RedisReplicaError
        ? new CliError(err.message, { code: err.code, cause: err })
        : err;
    }
    try {
      await assertShardCount(app.redis, app.layout);
    } catch (err) {
      throw err instanceof ShardCountMismatchError ? shardCountError(err) : err;
    }
    const epoch = await app.epoch.open(app.clock.now());
    if (epoch.detected) {
      // A group that lost its data while nothing ran, found by this command's opening: the
      // record is now `lost` (services report it and send the alert when they start or check).
      app.logger.error(
        { lostEpoch: epoch.detected.lostId, epoch: epoch.id },
        'REDIS DATA LOSS: a key group has no deployment epoch while the others have (its master ' +
          'restarted empty while no process ran); payments accepted before it may be missing. ' +
          'See `billing redis status`, then docs/operations.md "Redis lost its data"',
      );
    }
    return await fn(app);
  } catch (err) {
    throw asRedisUnavailable(app, err);
  } finally {
    await app.close();
  }
}
