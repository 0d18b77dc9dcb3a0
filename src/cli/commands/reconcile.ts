/** `billing reconcile [--older-than 5m]`: run a reconcile sweep now. */
import { InvalidArgumentError, type Command } from 'commander';
import { parseDurationMs } from '../../config/duration.ts';
import { sweepDeps } from '../../app/composition.ts';
import { runSweep, type SweepResult } from '../../payments/sweep.ts';
import { withApp, type CliContext } from '../context.ts';

function parseOlderThan(value: string): number {
  const ms = parseDurationMs(value);
  if (ms === undefined)
    throw new InvalidArgumentError('--older-than must be a duration like 30s, 5m or 1h');
  return ms;
}

export function registerReconcileCommand(program: Command, ctx: CliContext) {
  program
    .command('reconcile')
    .description(
      'run a reconcile sweep now: enqueue checks of due, stale and orphaned payments (a running reconciler role processes them)',
    )
    .option(
      '--older-than <duration>',
      'also check every pending/unknown payment unchanged for this long',
      parseOlderThan,
    )
    .action(async (opts: { olderThan?: number }) => {
      await withApp(ctx, async (app) => {
        const result = await runSweep(
          sweepDeps(app),
          opts.olderThan !== undefined ? { olderThanMs: opts.olderThan } : {},
        );
        ctx.out().result(result, (v) => {
          const r = v as SweepResult;
          return (
            `checks enqueued: ${r.due} due, ${r.expiredLeases} expired leases, ${r.forced} forced; ` +
            `${r.requeued} orphaned payments re-enqueued` +
            (r.cancelsResumed > 0
              ? `; ${r.cancelsResumed} interrupted batch cancels resumed`
              : '') +
            (r.releasesResumed > 0
              ? `; ${r.releasesResumed} interrupted batch releases resumed`
              : '') +
            (r.dunningRerun > 0 ? `; ${r.dunningRerun} failed dunning retries run again` : '')
          );
        });
      });
    });
}
