/**
 * Limits that configuration shares with the code that runs on it: the submit handler's timeout
 * (infra/queues/catalog.ts takes it from here) and the gateway timeout it bounds, the submit
 * lease's margin, the part of SHUTDOWN_TIMEOUT kept for closing connections, and the longest
 * delay a timer can take. config.ts enforces them at load, so the
 * rule between SAYSWITCH_TIMEOUT_MS and the handler's timeout lives in this one place.
 */

/** setTimeout's longest delay: past it Node fires the timer at once (after a warning). */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The least margin of SUBMIT_LEASE over SAYSWITCH_TIMEOUT_MS. The lease starts once the outbound
 * rate limit granted the call (payments/submit.ts) and must outlive everything the claim guards:
 * the submission (up to the timeout), the lookup that adopts a duplicate reference (up to the
 * timeout again) and recording the outcome in Redis. Hence the margin is the timeout itself, and
 * at least this much for the Redis round trips when the timeout is tiny.
 */
export const SUBMIT_LEASE_MIN_MARGIN_MS = 1_000;

/** The shortest SUBMIT_LEASE allowed with a gateway timeout of `timeoutMs`. */
export function minSubmitLeaseMs(timeoutMs: number): number {
  return timeoutMs + Math.max(timeoutMs, SUBMIT_LEASE_MIN_MARGIN_MS);
}

/**
 * How long the `charges.submit` and `payouts.submit` handlers run before they are given up on
 * (infra/queues/processor.ts): the job then completes as handed to the reconciler. It must never
 * fire while a gateway call runs, so it bounds SAYSWITCH_TIMEOUT_MS ({@link MAX_GATEWAY_TIMEOUT_MS}).
 */
export const SUBMIT_HANDLER_TIMEOUT_MS = 120_000;

/**
 * What a submit handler spends besides its gateway calls, kept free of them inside
 * {@link SUBMIT_HANDLER_TIMEOUT_MS}: waiting for the outbound rate limit before the claim and
 * recording the outcome in Redis afterwards.
 */
export const SUBMIT_HANDLER_RESERVE_MS = 30_000;

/**
 * The longest SAYSWITCH_TIMEOUT_MS: a submission's calls (the charge or payout and the lookup that
 * adopts a duplicate reference, {@link minSubmitLeaseMs} of the timeout) plus the reserve fit in
 * the submit handler's timeout. 45000 ms with a 120 s handler and a 30 s reserve.
 */
export const MAX_GATEWAY_TIMEOUT_MS = Math.floor(
  (SUBMIT_HANDLER_TIMEOUT_MS - SUBMIT_HANDLER_RESERVE_MS) / 2,
);

/**
 * What `billing start` keeps of SHUTDOWN_TIMEOUT for closing its connections after draining the
 * in-flight jobs (cli/commands/start.ts). SHUTDOWN_TIMEOUT's minimum (bounds.ts) leaves the jobs at
 * least as much again.
 */
export const SHUTDOWN_CLOSE_RESERVE_MS = 2_000;
