/**
 * Payments: what the capability runs in each role. The worker role submits charges and payouts;
 * the reconciler verifies what is pending or unknown and runs the sweep; the scheduler keeps the
 * sweep's job scheduler on RECONCILE_CRON (one per id, however many replicas upsert it).
 */
import type { Clock } from '../kernel/clock.ts';
import type {
  DiscrepancyCounter,
  EventLog,
  IntentStore,
  PaymentGateway,
  RefundStore,
  Sealer,
} from '../kernel/ports.ts';
import type { Logger } from '../infra/logger.ts';
import { queueJobs, type CapabilityModule } from '../infra/module.ts';
import type { JobPayload } from '../infra/queues/catalog.ts';
import type { Dispatcher } from '../infra/queues/dispatcher.ts';
import type { ReconcilePolicy } from './apply-outcome.ts';
import { authFailureAlert } from './auth-alert.ts';
import { createReconcileHandler } from './reconcile.ts';
import { createSubmitHandler } from './submit.ts';
import { runSweep, type SweepDeps } from './sweep.ts';

/** The id of the job scheduler that fires `reconcile.sweep`. */
export const SWEEP_SCHEDULER_ID = 'reconcile-sweep';

export interface PaymentsDeps {
  store: IntentStore;
  dispatcher: Dispatcher;
  /** Lookups wait for the rate limit inside it; submissions take their token with the claim. */
  gateway: PaymentGateway;
  sealer: Sealer;
  events: EventLog;
  clock: Clock;
  logger: Logger;
  policy: ReconcilePolicy;
  /** Counts the gateway answers a person must check (apply-outcome.ts): the metrics. */
  discrepancies: DiscrepancyCounter;
  /** SUBMIT_LEASE, counted from the claim, after the rate limit granted the call. */
  submitLeaseMs: number;
  /** ORPHAN_AFTER: a `queued` intent older than this without a job is re-enqueued by the sweep. */
  orphanAfterMs: number;
  /** RECONCILE_CRON. */
  sweepCron: string;
  /** Refunds of charges (docs/refunds.md): reservations and the one-in-flight slot. */
  refunds: RefundStore;
  /** SAYSWITCH_PARTIAL_REFUNDS. */
  partialRefunds: boolean;
  /** The sweep's question to the batches capability (sweep.ts `SweepDeps.claimBatchOrphan`). */
  claimBatchOrphan?: SweepDeps['claimBatchOrphan'];
  /** The sweep's other question to it (sweep.ts `SweepDeps.resumeStuckCancels`). */
  resumeStuckCancels?: SweepDeps['resumeStuckCancels'];
  /** And its third (sweep.ts `SweepDeps.resumeStuckReleases`). */
  resumeStuckReleases?: SweepDeps['resumeStuckReleases'];
  /** And the subscriptions' (sweep.ts `SweepDeps.rerunFailedDunning`). */
  rerunFailedDunning?: SweepDeps['rerunFailedDunning'];
}

export const paymentsModule: CapabilityModule<PaymentsDeps> = {
  name: 'payments',
  roles: {
    worker: (deps) => {
      const submit = createSubmitHandler({ ...deps, leaseMs: deps.submitLeaseMs });
      const onAuthFailure = authFailureAlert(deps);
      return {
        jobs: [
          queueJobs('charges', { 'charges.submit': submit }, { onAuthFailure }),
          queueJobs('payouts', { 'payouts.submit': submit }, { onAuthFailure }),
        ],
      };
    },
    reconciler: (deps) => ({
      jobs: [
        queueJobs(
          'reconcile',
          {
            'reconcile.check': createReconcileHandler(deps),
            'reconcile.sweep': (data: JobPayload<'reconcile.sweep'>) =>
              runSweep(
                deps,
                data.olderThanMs !== undefined ? { olderThanMs: data.olderThanMs } : {},
              ),
          },
          { onAuthFailure: authFailureAlert(deps) },
        ),
      ],
    }),
    scheduler: (deps) => ({
      start: async () => {
        await deps.dispatcher.schedule(SWEEP_SCHEDULER_ID, 'reconcile.sweep', deps.sweepCron, {});
        return undefined;
      },
    }),
  },
};
