/**
 * Webhook bodies reduced to a closed union of what the receiver can act on. The body has already
 * passed the `payloadSignature` check; this only reads it. The receiver keys on `reference` and
 * re-verifies through the API before changing any state, so `kind` and `status` here are hints,
 * never proof. Two shapes are known (docs/sayswitch-wire.md "Webhooks"): the payout one,
 * `{ notify, notifyType, data }`, and the docs' only collection sample, `{ id, type:
 * "payment.success", created, data }`. Any other signed body that names a reference still yields
 * it (kind `unclassified`), so that a shape we have not seen leads to a verify, not to silence.
 */
import { parseAttemptReference } from '../../../kernel/ids.ts';
import { webhookBodySchema } from './schemas.ts';
import { readStatusWord, type SayswitchStatus } from './status.ts';

/** The receiver re-verifies before acting, so a webhook needs no `canceled` apart from `failed`. */
type WebhookStatus = Exclude<SayswitchStatus, 'canceled'>;

export type WebhookEvent =
  | { kind: 'payout'; reference: string; status: WebhookStatus }
  | { kind: 'transaction'; reference: string; status: WebhookStatus }
  /** Names a reference in a shape we do not know (a new `notify`, a refund event, …). */
  | { kind: 'unclassified'; reference: string; status: WebhookStatus }
  | { kind: 'unsupported'; reason: string };

/** `notify` values, and `type` / `event` prefixes (`payment.success`), for card collections. */
const TRANSACTION_WORDS = new Set(['transaction', 'payment', 'charge', 'collection']);
/** The same for payouts (`notify: "payout"`; the old template's `transfer.success`). */
const PAYOUT_WORDS = new Set(['payout', 'transfer']);

/** Keys that may hold a reference: `reference`, `ref`, `tx_ref`, `transaction_reference`, … */
const REFERENCE_KEY = /^(?:[a-z]+[_-]?)?ref(?:erence)?$/i;
const MAX_REFERENCE_LENGTH = 128;
/** How deep the reference is looked for: `data.reference` is depth 2. */
const MAX_DEPTH = 3;

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

const isRecord = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * Every string under a reference-like key, `data.reference` first, then breadth first to
 * {@link MAX_DEPTH}. Of those, the first that is one of our attempt references (kernel/ids.ts)
 * is the event's: a refund event naming its own `RF_…` and our transaction's reference leads to
 * ours. When none is ours, the first candidate (the receiver then ignores it as not ours).
 */
function findReference(body: Record<string, unknown>): string | undefined {
  const candidates: string[] = [];
  const add = (v: unknown) => {
    if (typeof v === 'string' && v !== '' && v.length <= MAX_REFERENCE_LENGTH) candidates.push(v);
  };
  if (isRecord(body.data)) add(body.data.reference);
  let level: Record<string, unknown>[] = [body];
  for (let depth = 1; depth <= MAX_DEPTH && level.length > 0; depth++) {
    const next: Record<string, unknown>[] = [];
    for (const node of level) {
      for (const [key, value] of Object.entries(node)) {
        if (REFERENCE_KEY.test(key)) add(value);
        else if (isRecord(value)) next.push(value);
      }
    }
    level = next;
  }
  return candidates.find((c) => parseAttemptReference(c) !== undefined) ?? candidates[0];
}

/** `payout`, `transaction` or undefined from a `notify` value or a `type` prefix. */
function kindOf(word: string | undefined): 'payout' | 'transaction' | undefined {
  if (word === undefined) return undefined;
  const head = word.trim().toLowerCase().split('.')[0] ?? '';
  if (PAYOUT_WORDS.has(head)) return 'payout';
  if (TRANSACTION_WORDS.has(head)) return 'transaction';
  return undefined;
}

/** The status a `type` names after its dot (`payment.success`, `payment.failed`). */
function typeStatus(type: string | undefined): WebhookStatus | undefined {
  const dot = type?.lastIndexOf('.') ?? -1;
  return type !== undefined && dot >= 0 ? statusWord(type.slice(dot + 1)) : undefined;
}

/**
 * Parses a signature-checked webhook body. Never throws: a body that is not a JSON object or
 * names no reference is `{ kind: 'unsupported', reason }`. The kind comes from `notify`, else
 * from `type` / `event` (`payment.success` → transaction); a reference in any other shape is
 * `unclassified`. The status: `data.status`, else `notifyType`, else the `type`'s suffix, else
 * `pending` (a word none knows makes the receiver re-verify rather than close the payment).
 */
export function parseWebhook(rawBody: Buffer | string): WebhookEvent {
  const json = decodeBody(rawBody);
  if (!isRecord(json)) return { kind: 'unsupported', reason: 'body is not a JSON object' };
  const parsed = webhookBodySchema.safeParse(json);
  if (!parsed.success) return { kind: 'unsupported', reason: 'body is not a JSON object' };
  const reference = findReference(json);
  if (reference === undefined) return { kind: 'unsupported', reason: 'body names no reference' };
  const { notify, notifyType, type, event, data } = parsed.data;
  const named = type ?? event;
  const status =
    statusWord(data?.status) ?? statusWord(notifyType) ?? typeStatus(named) ?? 'pending';
  const kind = kindOf(notify) ?? kindOf(named) ?? 'unclassified';
  return { kind, reference, status };
}
