/**
 * The job catalog is typed per queue: a worker for a queue takes exactly that queue's handlers.
 * The `@ts-expect-error` lines are the test: `npm run typecheck` fails if any of them compiles.
 * The runtime part only checks the catalog's queue of each job name.
 */
import type { Worker } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { JOBS, type JobsOf } from '../../src/infra/queues/catalog.ts';
import type { Handler, ProcessorDeps } from '../../src/infra/queues/processor.ts';
import type { startWorker } from '../../src/infra/queues/worker-factory.ts';

declare const start: typeof startWorker;
declare const deps: ProcessorDeps;
declare const opts: Parameters<typeof startWorker>[3];
declare function handler<N extends keyof typeof JOBS>(name: N): Handler<N>;

/** Never called: it exists to be type-checked. */
export function typeChecks(): Worker[] {
  const check = handler('reconcile.check');
  const sweep = handler('reconcile.sweep');
  const submit = handler('charges.submit');
  const complete = { 'reconcile.check': check, 'reconcile.sweep': sweep };
  const extra = { ...complete, 'charges.submit': submit };
  return [
    // Every job of the queue has a handler: compiles.
    start('reconcile', { 'reconcile.check': check, 'reconcile.sweep': sweep }, deps, opts),
    start('reconcile', complete, deps, opts),
    // @ts-expect-error a job of the queue (reconcile.sweep) has no handler
    start('reconcile', { 'reconcile.check': check }, deps, opts),
    // @ts-expect-error a handler for another queue's job, in an object literal
    start('reconcile', { ...complete, 'charges.submit': submit }, deps, opts),
    // @ts-expect-error a handler for another queue's job, not in a literal
    start('reconcile', extra, deps, opts),
    // @ts-expect-error the charges queue runs charges.submit, not payouts.submit
    start('charges', { 'payouts.submit': handler('payouts.submit') }, deps, opts),
    // @ts-expect-error a handler for the wrong job's payload
    start('charges', { 'charges.submit': handler('subscriptions.dunning') }, deps, opts),
  ];
}

describe('job catalog, typed per queue', () => {
  it('names every job "<queue>.<job>" on its own queue', () => {
    for (const [name, spec] of Object.entries(JOBS)) {
      expect(name.split('.')[0]).toBe(spec.queue);
    }
    const reconcileJobs: JobsOf<'reconcile'>[] = ['reconcile.check', 'reconcile.sweep'];
    expect(reconcileJobs.every((n) => JOBS[n].queue === 'reconcile')).toBe(true);
  });
});
