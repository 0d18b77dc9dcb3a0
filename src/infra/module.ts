/**
 * What a capability contributes to a running process, role by role. Each capability exports one
 * `module.ts` with a {@link CapabilityModule}; the composition root (app/composition.ts) holds the
 * table role → modules, builds the ports once and starts what the modules return. A module never
 * builds a store or a connection: it receives ports.
 */
import type { BillingError } from '../kernel/errors.ts';
import type { JobsOf } from './queues/catalog.ts';
import type { QueueName } from './queues/names.ts';
import type { HandlersFor } from './queues/processor.ts';

export const ROLES = ['api', 'worker', 'scheduler', 'reconciler'] as const;
export type Role = (typeof ROLES)[number];

/** The handlers of one queue, typed per queue, and how its worker runs. */
export interface QueueJobs<Q extends QueueName> {
  queue: Q;
  handlers: HandlersFor<Q>;
  /** Jobs in parallel per process; default WORKER_CONCURRENCY. */
  concurrency?: number;
  /** Replaces the catalog backoff (e.g. a schedule from configuration). */
  backoffMs?: (attemptsMade: number) => number;
  /**
   * What a 401/403 from the gateway does to this queue (the processor then parks the job).
   * Default: logged only (the queue's jobs do not call the gateway).
   */
  onAuthFailure?: (queue: QueueName, err: BillingError) => Promise<void>;
}

/** {@link QueueJobs} of any one queue. */
export type AnyQueueJobs = { [Q in QueueName]: QueueJobs<Q> }[QueueName];

/**
 * Declares a queue's handlers. Exactly the catalog's jobs of that queue: a missing handler, or one
 * for another queue's job, does not compile.
 */
export function queueJobs<Q extends QueueName, H extends HandlersFor<Q>>(
  queue: Q,
  handlers: H & { [K in Exclude<keyof H, JobsOf<Q>>]: never },
  opts: Omit<QueueJobs<Q>, 'queue' | 'handlers'> = {},
): QueueJobs<Q> {
  return { queue, handlers, ...opts };
}

/** Something started for a role and stopped on shutdown. */
export interface Stoppable {
  stop(): Promise<void>;
}

/** What a module runs in one role. */
export interface RoleContribution {
  /** Queues consumed in this role, each with exactly its catalog jobs. */
  jobs?: readonly AnyQueueJobs[];
  /** Started after the workers (stream consumers, job schedulers); stopped before they close. */
  start?: () => Promise<Stoppable | undefined>;
}

/** A capability's module description: per role, what it runs, from the ports it is given. */
export interface CapabilityModule<Deps> {
  readonly name: string;
  readonly roles: Partial<Record<Role, (deps: Deps) => RoleContribution>>;
}
