/**
 * Batches: what the capability runs in each role. Ingest runs where a batch is submitted (the API
 * or the CLI, through ingest.ts); the worker role runs the batch tracker (tracker.ts), which keeps
 * the bookkeeping (counts, completion) from the events stream, next to the workers that produce
 * those events.
 */
import type { CapabilityModule } from '../infra/module.ts';
import { startBatchTracker, type BatchTrackerDeps, type BatchTrackerOptions } from './tracker.ts';

/** The ports of the batches module. */
export interface BatchesDeps extends BatchTrackerDeps {
  /** Tuning of the tracker (tests; the defaults suit production). */
  tracker?: BatchTrackerOptions;
}

export const batchesModule: CapabilityModule<BatchesDeps> = {
  name: 'batches',
  roles: {
    worker: (deps) => ({
      start: () =>
        startBatchTracker(
          { batches: deps.batches, events: deps.events, clock: deps.clock, logger: deps.logger },
          deps.tracker,
        ),
    }),
  },
};
