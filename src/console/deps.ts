/**
 * What the console needs of the application: the same ports the HTTP routes get, from which it
 * builds the same capability services' dependencies (the composition root's `App` fits).
 */
import type { Clock } from '../kernel/clock.ts';
import type { PaymentGateway, RefundStore, SignInThrottle } from '../kernel/ports.ts';
import type { Logger } from '../infra/logger.ts';
import type { BatchDeps } from '../batches/ingest.ts';
import { resolveDeps, type ResolveDeps } from '../payments/resolve.ts';
import {
  subscriptionServiceDeps,
  type ServiceApp,
  type SubscriptionServiceDeps,
} from '../subscriptions/service.ts';

/** The slice of the application (`App`, `ApiApp`) the console is built from. */
export interface ConsoleApp extends ServiceApp, BatchDeps {
  clock: Clock;
  logger: Logger;
  gateway: PaymentGateway;
  refunds: RefundStore;
  /** Failed password sign-ins per client address (http/sign-in.ts); absent: not throttled. */
  signIns?: SignInThrottle;
  config: ServiceApp['config'] & {
    /** The CSRF key is derived from it (and, during a rotation, from the previous one too). */
    dataEncryptionKey: Buffer;
    previousDataEncryptionKey?: Buffer;
    reconcile: { resolveUnknownAfterMs: number; payoutWatchMs: number[] };
    batchApproval: 'none' | 'payouts' | 'all';
    http: {
      apiToken: string;
      apiReadToken?: string;
      apiTokenPrevious?: string;
      apiReadTokenPrevious?: string;
      dashboard?: { user: string; password: string };
      dashboardReadOnly: boolean;
    };
  };
}

/** The services' dependencies, built once when the console is registered. */
export interface ConsoleDeps {
  batch: BatchDeps;
  resolve: ResolveDeps;
  subs: SubscriptionServiceDeps;
  app: ConsoleApp;
}

export function consoleDeps(app: ConsoleApp): ConsoleDeps {
  return {
    app,
    batch: app,
    resolve: resolveDeps(app),
    subs: subscriptionServiceDeps(app),
  };
}
