/**
 * Creating a payment intent from a single instruction (the HTTP `POST /payments` and tests),
 * idempotent on the caller's key: the same key and body return the same intent; the same key with
 * a different body is refused. The intent is persisted before its job is enqueued; repeating the
 * request re-adds the (deterministic) job, so a crash between the two loses nothing.
 */
import { createHmac, randomUUID } from 'node:crypto';
import { z } from 'zod';
import { apiIntentKey, API_KEY_MAX, idComponentSchema } from '../kernel/ids.ts';
import type { Clock } from '../kernel/clock.ts';
import type { Intent, IntentDraft } from '../kernel/payment.ts';
import {
  parseChargeRecord,
  parsePayoutRecord,
  resolveHeader,
  type ChargeRow,
  type PayoutRow,
  type RowIssue,
} from '../input/instructions.ts';
import type { Dispatcher } from '../infra/queues/dispatcher.ts';
import type { RedisIntentStore } from './store/intent-store.ts';
import type { Sealer } from '../kernel/ports.ts';

export interface CreateDeps {
  store: RedisIntentStore;
  dispatcher: Dispatcher;
  sealer: Sealer;
  clock: Clock;
  /** Keys the request hash, so a stored hash reveals nothing about a card token. */
  hashKey: Buffer;
}

export type CreateResult =
  | { status: 'created' | 'existing'; intent: Intent }
  | { status: 'conflict'; intent: Intent }
  | { status: 'invalid'; issues: RowIssue[] };

const envelopeSchema = z.object({
  type: z.enum(['charge', 'payout'], { error: 'type must be "charge" or "payout"' }),
  key: idComponentSchema('key', API_KEY_MAX).optional(),
});

/** Builds the intent draft of a validated row; the card token is sealed here and only here. */
export function draftFromRow(
  row: ChargeRow | PayoutRow,
  base: Pick<IntentDraft, 'key' | 'origin'> & Partial<IntentDraft>,
  sealer: Sealer,
): IntentDraft {
  const common = { ...base, amount: row.amount, currency: row.currency, meta: row.meta };
  if ('cardToken' in row) {
    return {
      ...common,
      type: 'charge',
      payee: {
        kind: 'charge',
        email: row.email,
        cardTokenSealed: sealer.seal(row.cardToken),
        ...(row.narration !== undefined ? { narration: row.narration } : {}),
      },
    };
  }
  return {
    ...common,
    type: 'payout',
    payee: {
      kind: 'payout',
      accountNumber: row.accountNumber,
      bankCode: row.bankCode,
      bankName: row.bankName,
      accountName: row.accountName,
      narration: row.narration,
      paymentMode: row.paymentMode,
    },
  };
}

/** Validates a JSON instruction (`type`, the CSV fields of PRODUCT.md section 6, optional `key`). */
export function parseInstruction(
  body: unknown,
):
  | { ok: true; type: 'charge' | 'payout'; key?: string; row: ChargeRow | PayoutRow }
  | { ok: false; issues: RowIssue[] } {
  const env = envelopeSchema.safeParse(body);
  if (!env.success) {
    return {
      ok: false,
      issues: env.error.issues.map((i) => ({
        column: String(i.path[0] ?? ''),
        message: i.message,
      })),
    };
  }
  const fields: [string, string][] = [];
  for (const [k, v] of Object.entries(body as Record<string, unknown>)) {
    if (k === 'type' || k === 'key') continue;
    if (typeof v !== 'string')
      return { ok: false, issues: [{ column: k, message: `${k} must be a string` }] };
    fields.push([k, v]);
  }
  const header = resolveHeader(
    env.data.type,
    fields.map(([k]) => k),
  );
  if (!header.ok) return { ok: false, issues: header.issues };
  const values = fields.map(([, v]) => v);
  const rec =
    env.data.type === 'charge'
      ? parseChargeRecord(header.layout, values, 1)
      : parsePayoutRecord(header.layout, values, 1);
  if (!rec.ok) return { ok: false, issues: rec.issues };
  return {
    ok: true,
    type: env.data.type,
    ...(env.data.key !== undefined ? { key: env.data.key } : {}),
    row: rec.row,
  };
}

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
