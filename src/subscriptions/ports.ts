/**
 * What recurring billing needs from the outside world beyond kernel/ports.ts: the store of
 * subscription records. Implemented by `store/subscription-store.ts` (Redis), built once by the
 * composition root and handed to the features (tick, outcome consumer, dunning, service).
 */
import type { BillingEvent } from '../kernel/events.ts';
import type { UnreadableRecordError } from '../kernel/errors.ts';
import type { Decision, Subscription } from './record.ts';
import type { TestClock } from './test-clocks.ts';

/** Thrown when a record keeps changing under a compare-and-set loop; safe to retry later. */
export class SubscriptionContentionError extends Error {
  constructor(id: string) {
    super(`subscription ${id} kept changing while it was being updated`);
    this.name = 'SubscriptionContentionError';
  }
}

/**
 * A subscription was to be created under a test clock that was deleted after the caller read it
 * (the store's create refuses it in the same step as the write: nothing was stored).
 */
export class TestClockGoneError extends Error {
  constructor(readonly clockId: string) {
    super(`test_clock "${clockId}" does not exist`);
    this.name = 'TestClockGoneError';
  }
}

/** A record and the version it was read at, for compare-and-set. */
export interface Versioned {
  sub: Subscription;
  version: number;
}

/** The result of {@link SubscriptionStore.mutate}. */
export type MutateResult<T> =
  { found: false } | { found: true; saved: boolean; sub: Subscription; version: number; value: T };

/**
 * Persistence of subscriptions. Every write is a compare-and-set on the record's version that
 * also rescores the due index from the record and appends the change's events, atomically.
 */
export interface SubscriptionStore {
  /**
   * Creates `sub` unless its id exists, with `events` in the same step; returns what is stored
   * either way (the stored one when its id is this one in another case: ids are one id ignoring
   * case).
   */
  create(
    sub: Subscription,
    events?: readonly BillingEvent[],
  ): Promise<{ created: boolean } & Versioned>;
  /**
   * Creates many in few round trips, each with `eventsOf(sub)`; per input, whether it was created
   * (false: the id existed, also in another case).
   */
  createMany(
    subs: readonly Subscription[],
    eventsOf?: (sub: Subscription) => readonly BillingEvent[],
  ): Promise<boolean[]>;
  get(id: string): Promise<Versioned | undefined>;
  /**
   * Per id, the stored subscription's id when it is this one in another case (ids are one id
   * ignoring case), else undefined.
   */
  otherCaseOf(ids: readonly string[]): Promise<(string | undefined)[]>;
  /**
   * Several records in one round trip, in the order of `ids` (undefined when missing); a record
   * that does not parse throws its UnreadableRecordError (kernel/errors.ts).
   */
  getMany(ids: readonly string[]): Promise<(Versioned | undefined)[]>;
  /**
   * As getMany, but a record that does not parse is its UnreadableRecordError in the answer, and
   * the others are read: for loops over many records, which skip it and log it (the tick).
   */
  readMany(ids: readonly string[]): Promise<(Versioned | UnreadableRecordError | undefined)[]>;
  /**
   * Many compare-and-set saves in one round trip; per item, the new version or undefined on
   * conflict. Each save is atomic on its own; they are not atomic together.
   */
  saveMany(
    items: readonly {
      sub: Subscription;
      expectVersion: number;
      events?: readonly BillingEvent[];
    }[],
  ): Promise<(number | undefined)[]>;
  /**
   * Applies `decide` to the current record with compare-and-set, re-reading and re-deciding when
   * another writer got there first (`next` undefined: no change). Throws when the record keeps
   * changing.
   */
  mutate<T>(
    id: string,
    decide: (sub: Subscription) => { decision: Pick<Decision, 'next' | 'events'>; value: T },
  ): Promise<MutateResult<T>>;
  /**
   * Ids due at or before `now`, earliest first. Cost follows the due ones, not the total. A test
   * clock's subscriptions are only in its own index (`testClock`), never in the deployment's.
   */
  dueIds(now: number, limit: number, testClock?: string): Promise<string[]>;
  /**
   * Ids in lexicographic order, after `after` (exclusive); with `customerEmail`, only that
   * customer's (ignoring case).
   */
  listIds(opts: { after?: string; limit: number; customerEmail?: string }): Promise<string[]>;
  /** The subscription's charge intents, newest first. */
  intentKeys(id: string, limit: number): Promise<string[]>;
  /** Test clocks (test-clocks.ts), kept beside the subscriptions that live on them. */
  readonly clocks: TestClockStore;
}

/** A test clock and the version it was read at. */
export interface VersionedClock {
  clock: TestClock;
  version: number;
}

/** Persistence of test clocks; every write is a compare-and-set on the clock's version. */
export interface TestClockStore {
  /** Creates the clock unless its id exists; true when created. */
  create(clock: TestClock): Promise<boolean>;
  /** The clock; a clock that does not parse throws its UnreadableRecordError (kernel/errors.ts). */
  get(id: string): Promise<VersionedClock | undefined>;
  /**
   * Several clocks in one round trip, in the order of `ids` (undefined when missing); a clock that
   * does not parse throws its UnreadableRecordError.
   */
  getMany(ids: readonly string[]): Promise<(VersionedClock | undefined)[]>;
  /**
   * As getMany, but a clock that does not parse is its UnreadableRecordError in the answer, and
   * the others are read: for the restart of advancing clocks, which skips it and logs it.
   */
  readMany(ids: readonly string[]): Promise<(VersionedClock | UnreadableRecordError | undefined)[]>;
  /** Stores `clock` if still at `expectVersion`; the new version, or undefined on conflict. */
  save(clock: TestClock, expectVersion: number): Promise<number | undefined>;
  /** Ids of the clocks advancing now. */
  advancing(limit: number): Promise<string[]>;
  /** Ids of the subscriptions created under the clock. */
  members(id: string): Promise<string[]>;
  /**
   * Deletes the clock and its indexes if it is still at `expectVersion` and has exactly
   * `memberCount` subscriptions: `deleted`, `changed` (read it again), or `gone` (no such clock).
   */
  remove(
    id: string,
    expectVersion: number,
    memberCount: number,
  ): Promise<'deleted' | 'changed' | 'gone'>;
}
