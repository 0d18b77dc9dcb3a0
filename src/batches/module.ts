/**
 * Batches: what the capability runs in each role. Ingest runs where a batch is submitted (the API
 * or the CLI); the worker role keeps the bookkeeping (counts, completion) from the events stream,
 * next to the workers that produce those events.
 */
import type { CapabilityModule } from '../infra/module.ts';
import { startBatchTracker, type TrackerDeps } from './tracking.ts';

export type BatchesDeps = TrackerDeps;

export const batchesModule: CapabilityModule<BatchesDeps> = {
  name: 'batches',
  roles: {
    worker: (deps) => ({ start: () => startBatchTracker(deps) }),
  },
};
