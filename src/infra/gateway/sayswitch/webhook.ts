/**
 * Webhook bodies reduced to a closed union of what the receiver can act on. The body has already
 * passed the `payloadSignature` check; this only reads it. The receiver keys on `reference` and
 * re-verifies through the API before changing any state, so `status` here is a hint, never proof.
 */
import { webhookBodySchema } from './schemas.ts';

export type WebhookStatus = 'succeeded' | 'failed' | 'reversed' | 'pending';

export type WebhookEvent =
  | { kind: 'payout'; reference: string; status: WebhookStatus }
  | { kind: 'transaction'; reference: string; status: WebhookStatus }
  | { kind: 'unsupported'; reason: string };

/** `notify` values for card collections; the shape is undocumented (docs/sayswitch-wire.md). */
const TRANSACTION_NOTIFY = new Set(['transaction', 'payment', 'charge', 'collection']);

function statusWord(word: string | undefined): WebhookStatus | undefined {
  switch (word?.trim().toLowerCase()) {
    case 'success':
    case 'successful':
    case 'completed':
      return 'succeeded';
    case 'failed':
    case 'declined':
    case 'cancelled':
    case 'canceled':
      return 'failed';
    case 'reversed':
      return 'reversed';
    case 'pending':
    case 'processing':
      return 'pending';
    default:
      return undefined;
  }
}

function decodeBody(raw: Buffer | string): unknown {
  const text = typeof raw === 'string' ? raw : raw.toString('utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/**
 * Parses a signature-checked webhook body. Never throws: anything it cannot read is
 * `{ kind: 'unsupported', reason }`. `data.status` wins over `notifyType`; a word neither knows
 * reads as `pending`, which makes the receiver re-verify rather than close the payment.
 */
export function parseWebhook(rawBody: Buffer | string): WebhookEvent {
  const json = decodeBody(rawBody);
  if (json === undefined) return { kind: 'unsupported', reason: 'body is not JSON' };
  const parsed = webhookBodySchema.safeParse(json);
  if (!parsed.success) {
    return { kind: 'unsupported', reason: 'body lacks notify or data.reference' };
  }
  const { notify, notifyType, data } = parsed.data;
  const status = statusWord(data.status) ?? statusWord(notifyType) ?? 'pending';
  const kind = notify.trim().toLowerCase();
  if (kind === 'payout') return { kind: 'payout', reference: data.reference, status };
  if (TRANSACTION_NOTIFY.has(kind))
    return { kind: 'transaction', reference: data.reference, status };
  return { kind: 'unsupported', reason: `unknown notify "${notify.slice(0, 40)}"` };
}
