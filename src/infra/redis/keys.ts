/**
 * Redis key layout, in one place. Everything lives under `<prefix>:` so several deployments
 * (and every test) can share one Redis. Standalone Redis only: the Lua scripts touch several
 * keys of one prefix, as BullMQ's do.
 */
import { INTENT_STATES, type IntentState, type IntentType } from '../../kernel/intent.ts';
import { eventsKey } from './event-log.ts';

export function storeKeys(prefix: string) {
  return {
    intent: (key: string) => `${prefix}:intent:${key}`,
    history: (key: string) => `${prefix}:intent:${key}:history`,
    byState: (state: IntentState) => `${prefix}:idx:state:${state}`,
    allStateIndexes: () => INTENT_STATES.map((s) => `${prefix}:idx:state:${s}`),
    byBatch: (batchId: string) => `${prefix}:idx:batch:${batchId}`,
    /** Every intent (or every intent of one type) scored by createdAt: the lists' main index. */
    byCreated: (type?: IntentType) =>
      type === undefined ? `${prefix}:idx:created` : `${prefix}:idx:created:${type}`,
    bySubscription: (subscriptionId: string) => `${prefix}:idx:sub:${subscriptionId}`,
    leases: () => `${prefix}:leases`,
    reconcileDue: () => `${prefix}:reconcile:due`,
    events: () => eventsKey(prefix),
    /** The outbound gateway rate limit's window counter (claims and lookups share it). */
    rateLimit: () => `${prefix}:ratelimit:sayswitch`,
    /** Failed password sign-ins, per client address (infra/redis/sign-in-throttle.ts). */
    signInFailures: () => `${prefix}:signin`,
  };
}
export type StoreKeys = ReturnType<typeof storeKeys>;
