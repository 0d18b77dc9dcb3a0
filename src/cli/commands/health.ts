/**
 * `billing health --health-file <path> [--max-age 30s]`: the healthcheck of a role container
 * (docker-compose.yml). Reads the heartbeat `billing start --health-file <path>` keeps
 * (src/cli/health-file.ts): exit 0 when it is fresh, its process alive, Redis up, every worker
 * running and (role api) the HTTP server listening; exit 1 naming what is wrong otherwise.
 */
import { InvalidArgumentError, Option, type Command } from 'commander';
import { parseDurationMs } from '../../config/duration.ts';
import type { CliContext } from '../context.ts';
import { CliError, describeFsError } from '../errors.ts';
import {
  DEFAULT_MAX_AGE_MS,
  heartbeatProblems,
  NotAHeartbeatError,
  processAlive,
  readHeartbeat,
  type Heartbeat,
} from '../health-file.ts';

function parseMaxAge(value: string): number {
  const ms = parseDurationMs(value);
  if (ms === undefined || ms <= 0) {
    throw new InvalidArgumentError('--max-age must be a duration like 30s or 2m');
  }
  return ms;
}

export function registerHealthCommand(program: Command, ctx: CliContext) {
  program
    .command('health')
    .description(
      'check a role started with --health-file: heartbeat fresh, Redis up, workers running (exit 0), else exit 1',
    )
    .requiredOption('--health-file <path>', 'the heartbeat file `billing start` writes')
    .addOption(
      new Option('--max-age <duration>', 'the oldest acceptable heartbeat')
        .argParser(parseMaxAge)
        // Shown as a duration, the form the option takes (the value itself is in ms).
        .default(DEFAULT_MAX_AGE_MS, `${DEFAULT_MAX_AGE_MS / 1000}s`),
    )
    .action(async (opts: { healthFile: string; maxAge: number }) => {
      let beat: Heartbeat;
      try {
        beat = await readHeartbeat(opts.healthFile);
      } catch (err) {
        if (err instanceof NotAHeartbeatError) {
          throw new CliError(
            `${err.message}; is it the file \`billing start --health-file\` writes?`,
            { code: 'unhealthy', details: { healthFile: opts.healthFile, problem: err.why } },
          );
        }
        throw new CliError(
          `${opts.healthFile}: no heartbeat (${describeFsError(err)}); is \`billing start --health-file ${opts.healthFile}\` running?`,
          { code: 'unhealthy', details: { healthFile: opts.healthFile } },
        );
      }
      const nowMs = Date.now();
      const problems = heartbeatProblems(beat, {
        nowMs,
        maxAgeMs: opts.maxAge,
        alive: processAlive,
      });
      const report = {
        healthy: problems.length === 0,
        ageMs: nowMs - Date.parse(beat.at),
        ...beat,
      };
      if (problems.length > 0) {
        throw new CliError(`unhealthy (roles ${beat.roles.join(', ')}): ${problems.join('; ')}`, {
          code: 'unhealthy',
          details: { ...report, problems },
        });
      }
      ctx
        .out()
        .result(
          report,
          () =>
            `healthy: roles ${beat.roles.join(', ')} (pid ${beat.pid}), Redis up, ` +
            `${beat.workers.length} worker${beat.workers.length === 1 ? '' : 's'} running` +
            `${beat.http ? ', HTTP listening' : ''}; heartbeat ${Math.round(report.ageMs / 1000)} s old`,
        );
    });
}
