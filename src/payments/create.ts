/**
 * Creating a payment intent from a single instruction (the HTTP `POST /payments` and tests),
 * idempotent on the caller's key: the same key and body return the same intent; the same key with
 * a different body is refused. The intent is persisted before its job is enqueued; repeating the
 * request re-adds the (deterministic) job, so a crash between the two loses nothing.
 */
import { createHmac, randomUUID } from 'node:crypto';
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
import type { Sealer } from '../kernel/ports.ts';

export interface CreateDeps {
  store: IntentStore;
  dispatcher: Dispatcher;
  sealer: Sealer;
  clock: Clock;
  /** Keys the request hash, so a stored hash reveals nothing about a card token. */
  hashKey: Buffer;
}

/** The slice of the application payments are created from (the composition root's `App` fits). */
export type CreatePaymentApp = Omit<CreateDeps, 'hashKey'> & {
  config: { dataEncryptionKey: Buffer };
};

/** The one place `createPayment`'s dependencies are built: the API, the demo, tests and benches. */
export function createPaymentDeps(app: CreatePaymentApp): CreateDeps {
  return {
    store: app.store,
    dispatcher: app.dispatcher,
    sealer: app.sealer,
    clock: app.clock,
    hashKey: app.config.dataEncryptionKey,
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
 * The stored digest of a request: every field of the row but its line, `meta` included, keyed by
 * `hashKey`. Versioned: hashes stored before `v2:` are compared by {@link legacyRequestHash}.
 */
function requestHash(hashKey: Buffer, type: string, row: ChargeRow | PayoutRow): string {
  const { line: _line, ...rest } = row;
  const digest = createHmac('sha256', hashKey)
    .update(canonicalJson({ type, ...rest }) as string) // an object: never undefined
    .digest('hex');
  return REQUEST_HASH_VERSION + digest;
}

/**
 * The digest before `v2:`. Its key list (JSON.stringify's array replacer) filtered nested objects
 * too, so `meta` counted only under keys that are also row fields: a retry that changed `meta`
 * alone matched. Kept so an intent created before `v2:` still answers its identical retry.
 */
function legacyRequestHash(hashKey: Buffer, type: string, row: ChargeRow | PayoutRow): string {
  const { line: _line, ...rest } = row;
  const canonical = JSON.stringify({ type, ...rest }, Object.keys({ type, ...rest }).sort());
  return createHmac('sha256', hashKey).update(canonical).digest('hex');
}

/** Whether a stored intent's request hash is this request's (same key and body). */
function sameRequest(
  stored: string | undefined,
  hash: string,
  hashKey: Buffer,
  parsed: { type: string; row: ChargeRow | PayoutRow },
): boolean {
  if (stored === undefined) return false;
  if (stored.startsWith(REQUEST_HASH_VERSION)) return stored === hash;
  return stored === legacyRequestHash(hashKey, parsed.type, parsed.row);
}

/** Creates (or finds) the intent of an API instruction and makes sure its job is enqueued. */
export async function createPayment(deps: CreateDeps, body: unknown): Promise<CreateResult> {
  const parsed = parseInstruction(body);
  if (!parsed.ok) return { status: 'invalid', issues: parsed.issues };
  const key = apiIntentKey(parsed.key ?? randomUUID().replaceAll('-', ''));
  const hash = requestHash(deps.hashKey, parsed.type, parsed.row);
  const draft = {
    ...draftFromRow(parsed.row, { key, origin: 'api' }, deps.sealer),
    requestHash: hash,
  };
  const { created, intent } = await deps.store.create(draft, deps.clock.now());
  if (!created && !sameRequest(intent.requestHash, hash, deps.hashKey, parsed))
    return { status: 'conflict', intent };
  // Enqueue (again): the job id is deterministic, so this is a no-op unless a crash lost it.
  if (intent.state === 'queued') await deps.dispatcher.submit(intent);
  return { status: created ? 'created' : 'existing', intent };
}
