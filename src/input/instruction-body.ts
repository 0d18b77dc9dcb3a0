/**
 * The JSON body of `POST /payments`: an envelope (`type`, optional idempotency `key`) and the
 * fields of one charge or payout row (docs/product.md §6), validated by the record parser's
 * JSON path, so every problem names a field (`card_token is required`), never a CSV column or
 * header.
 */
import { z } from 'zod';
import { API_KEY_MAX, idComponentSchema } from '../kernel/ids.ts';
import {
  chargeRow,
  chargeSpec,
  payoutRow,
  payoutSpec,
  type ChargeRow,
  type PayoutRow,
} from './instructions.ts';
import { jsonBodySchema, NOT_AN_OBJECT, parseJsonRecord, type FieldIssue } from './record.ts';

/** `type` says which row the other fields are; `key` makes the request idempotent. */
export const envelopeSchema = z.object({
  type: z.enum(['charge', 'payout'], { error: 'type must be "charge" or "payout"' }),
  key: idComponentSchema('key', API_KEY_MAX).optional(),
});

/**
 * The body {@link parseInstruction} accepts, for the OpenAPI document: the envelope and the
 * charge or payout fields, from the same field schemas (the parser is the validator).
 */
export const instructionBodySchema = z.discriminatedUnion('type', [
  jsonBodySchema(chargeSpec, { ...envelopeSchema.shape, type: z.literal('charge') }, 'Charge'),
  jsonBodySchema(payoutSpec, { ...envelopeSchema.shape, type: z.literal('payout') }, 'Payout'),
]);

/** A validated instruction. A JSON row has no line: it is line 1, which no hash includes. */
export type ParsedInstruction =
  | { ok: true; type: 'charge' | 'payout'; key?: string; row: ChargeRow | PayoutRow }
  | { ok: false; issues: FieldIssue[] };

const ENVELOPE = ['type', 'key'] as const;

/** Validates a JSON instruction (`type`, the CSV fields of docs/product.md §6, optional `key`). */
export function parseInstruction(body: unknown): ParsedInstruction {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return {
      ok: false,
      issues: [NOT_AN_OBJECT],
    };
  }
  const env = envelopeSchema.safeParse(body);
  if (!env.success) {
    return {
      ok: false,
      issues: env.error.issues.map((i) => ({ field: String(i.path[0] ?? ''), message: i.message })),
    };
  }
  const { type, key } = env.data;
  const options = { reserved: ENVELOPE };
  let row: ChargeRow | PayoutRow;
  if (type === 'charge') {
    const parsed = parseJsonRecord(chargeSpec, body, options);
    if (!parsed.ok) return parsed;
    row = chargeRow(parsed.data, parsed.meta, 1);
  } else {
    const parsed = parseJsonRecord(payoutSpec, body, options);
    if (!parsed.ok) return parsed;
    row = payoutRow(parsed.data, parsed.meta, 1);
  }
  return { ok: true, type, ...(key !== undefined ? { key } : {}), row };
}
