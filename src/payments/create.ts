/**
 * Creating a payment intent from a single instruction (the HTTP `POST /payments` and tests),
 * idempotent on the caller's key: the same key and body return the same intent; the same key with
 * a different body is refused. The intent is persisted before its job is enqueued; repeating the
 * request re-adds the (deterministic) job, so a crash between the two loses nothing.
 */
import { randomUUID } from 'node:crypto';
import { configure } from 'safe-stable-stringify';
import { apiIntentKey } from '../kernel/ids.ts';
import type { Clock } from '../kernel/clock.ts';
import type { Intent } from '../kernel/payment.ts';
import type { ChargeRow, PayoutRow } from '../input/instructions.ts';
import { draftFromRow } from '../input/drafts.ts';
import { parseInstruction } from '../input/instruction-body.ts';
import type { FieldIssue } from '../input/record.ts';
import type { Dispatcher } from '../infra/queues/dispatcher.ts';
import type { IntentStore } from '../kernel/ports.ts';
import type { RequestHasher, Sealer } from '../kernel/ports.ts';

export interface CreateDeps {
  store: IntentStore;
  dispatcher: Dispatcher;
  sealer: Sealer;
  clock: Clock;
  /** Keys the request hash, so a stored hash reveals nothing about a card token. */
  hasher: RequestHasher;
}

/** The slice of the application payments are created from (the composition root's `App` fits). */
export type CreatePaymentApp = CreateDeps;

/** The one place `createPayment`'s dependencies are built: the API, the demo, tests and benches. */
export function createPaymentDeps(app: CreatePaymentApp): CreateDeps {
  return {
    store: app.store,
    dispatcher: app.dispatcher,
    sealer: app.sealer,
    clock: app.clock,
    hasher: app.hasher,
  };
}

export type CreateResult =
  | { status: 'created' | 'existing'; intent: Intent }
  | { status: 'conflict'; intent: Intent }
  | { status: 'invalid'; issues: FieldIssue[] };

/** JSON with every object's keys sorted, at every depth; anything JSON cannot carry throws. */
const canonicalJson = configure({ deterministic: true, strict: true, circularValue: TypeError });

const REQUEST_HASH_VERSION = 'v2:';

/**
 * What the stored digest of a request covers: every field of the row but its line, `meta`
 * included (digested by the hasher, DATA_ENCRYPTION_KEY). Versioned: hashes stored before `v2:`
 * are compared by {@link legacyCanonicalRequest}.
 */
function canonicalRequest(type: string, row: ChargeRow | PayoutRow): string {
  const { line: _line, ...rest } = row;
  return canonicalJson({ type, ...rest }) as string; // an object: never undefined
}

/**
 * What the digest covered before `v2:`. Its key list (JSON.stringify's array replacer) filtered nested objects
 * too, so `meta` counted only under keys that are also row fields: a retry that changed `meta`
 * alone matched. Kept so an intent created before `v2:` still answers its identical retry.
 */
function legacyCanonicalRequest(type: string, row: ChargeRow | PayoutRow): string {
  const { line: _line, ...rest } = row;
  return JSON.stringify({ type, ...rest }, Object.keys({ type, ...rest }).sort());
}

/**
 * Whether a stored intent's request hash is this request's (same key and body), under the current
 * key or, during a rotation, the previous one.
 */
function sameRequest(
  stored: string | undefined,
  hasher: RequestHasher,
  parsed: { type: string; row: ChargeRow | PayoutRow },
): boolean {
  if (stored === undefined) return false;
  if (stored.startsWith(REQUEST_HASH_VERSION))
    return hasher.matches(
      stored.slice(REQUEST_HASH_VERSION.length),
      canonicalRequest(parsed.type, parsed.row),
    );
  return hasher.matches(stored, legacyCanonicalRequest(parsed.type, parsed.row));
}

/** Creates (or finds) the intent of an API instruction and makes sure its job is enqueued. */
export async function createPayment(deps: CreateDeps, body: unknown): Promise<CreateResult> {
  const parsed = parseInstruction(body);
  if (!parsed.ok) return { status: 'invalid', issues: parsed.issues };
  const key = apiIntentKey(parsed.key ?? randomUUID().replaceAll('-', ''));
  const hash = REQUEST_HASH_VERSION + deps.hasher.digest(canonicalRequest(parsed.type, parsed.row));
  const draft = {
    ...draftFromRow(parsed.row, { key, origin: 'api' }, deps.sealer),
    requestHash: hash,
  };
  const { created, intent } = await deps.store.create(draft, deps.clock.now());
  if (!created && !sameRequest(intent.requestHash, deps.hasher, parsed))
    return { status: 'conflict', intent };
  // Enqueue (again): the job id is deterministic, so this is a no-op unless a crash lost it.
  if (intent.state === 'queued') await deps.dispatcher.submit(intent);
  return { status: created ? 'created' : 'existing', intent };
}
