/**
 * Webhook bodies reduced to a closed union of what the receiver can act on. The body has already
 * passed the `payloadSignature` check; this only reads it. The receiver keys on `reference` and
 * re-verifies through the API before changing any state, so `status` here is a hint, never proof.
 */
import { webhookBodySchema } from './schemas.ts';
import { readStatusWord, type SayswitchStatus } from './status.ts';

/** The receiver re-verifies before acting, so a webhook needs no `canceled` apart from `failed`. */
type WebhookStatus = Exclude<SayswitchStatus, 'canceled'>;

export type WebhookEvent =
  | { kind: 'payout'; reference: string; status: WebhookStatus }
  | { kind: 'transaction'; reference: string; status: WebhookStatus }
  | { kind: 'unsupported'; reason: string };

/** `notify` values for card collections; the shape is undocumented (docs/sayswitch-wire.md). */
const TRANSACTION_NOTIFY = new Set(['transaction', 'payment', 'charge', 'collection']);

/**
 * A status word through the shared table (status.ts), with `canceled` folded into `failed`: the
 * status is only a hint, and the verify that follows gives the reason. Undefined when unknown.
 */
function statusWord(word: string | undefined): WebhookStatus | undefined {
  const status = readStatusWord(word);
  return status === 'canceled' ? 'failed' : status;
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
