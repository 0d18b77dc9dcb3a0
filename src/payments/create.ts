/**
 * Creating a payment intent from a single instruction (the HTTP `POST /payments` and tests),
 * idempotent on the caller's key: the same key and body return the same intent; the same key with
 * a different body is refused. The intent is persisted before its job is enqueued; repeating the
 * request re-adds the (deterministic) job, so a crash between the two loses nothing.
 */
import { createHmac, randomUUID } from 'node:crypto';
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

function requestHash(hashKey: Buffer, type: string, row: ChargeRow | PayoutRow): string {
  const { line: _line, ...rest } = row;
  const canonical = JSON.stringify({ type, ...rest }, Object.keys({ type, ...rest }).sort());
  return createHmac('sha256', hashKey).update(canonical).digest('hex');
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
  if (!created && intent.requestHash !== hash) return { status: 'conflict', intent };
  // Enqueue (again): the job id is deterministic, so this is a no-op unless a crash lost it.
  if (intent.state === 'queued') await deps.dispatcher.submit(intent);
  return { status: created ? 'created' : 'existing', intent };
}
