/**
 * The one reading of Sayswitch's transaction and payout status words, shared by the client (verify,
 * payout lookup, submission answers) and the webhook reader, so the two cannot drift apart.
 * Table and reasons: docs/sayswitch-wire.md "Status words".
 */

/**
 * What a status word means to us. `canceled` is kept apart from `failed` because the client records
 * it as a failure with reason `canceled`; the webhook reader folds it into `failed`.
 */
export type SayswitchStatus = 'succeeded' | 'failed' | 'canceled' | 'reversed' | 'pending';

/**
 * Every word seen in the docs, the samples or production, in both spellings where Sayswitch uses
 * two (`success`/`successful`, `cancelled`/`canceled`). A Map, not an object literal, so that a
 * word like `constructor` cannot resolve to an inherited property.
 */
const STATUS_WORDS: ReadonlyMap<string, SayswitchStatus> = new Map<string, SayswitchStatus>([
  ['success', 'succeeded'],
  ['successful', 'succeeded'],
  ['completed', 'succeeded'],
  ['failed', 'failed'],
  ['declined', 'failed'],
  ['cancelled', 'canceled'],
  ['canceled', 'canceled'],
  ['reversed', 'reversed'],
  ['pending', 'pending'],
  ['processing', 'pending'],
]);

/**
 * Reads a status word, ignoring case and surrounding space. Undefined for a missing word or one
 * not in the table: the caller decides what an unknown word means (the client reads it as
 * `pending`, so a payment is never closed on a word we do not know; the webhook reader falls back
 * to `notifyType` first).
 */
export function readStatusWord(word: string | undefined): SayswitchStatus | undefined {
  if (word === undefined) return undefined;
  return STATUS_WORDS.get(word.trim().toLowerCase());
}
