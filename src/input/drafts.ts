/**
 * From a validated instruction to an intent draft: shared by `POST /payments` (payments/create.ts)
 * and batch ingest (batches/ingest-validate.ts), which must store a row exactly alike. The card
 * token is sealed here and only here.
 */
import type { IntentDraft } from '../kernel/payment.ts';
import type { Sealer } from '../kernel/ports.ts';
import type { ChargeRow, PayoutRow } from './instructions.ts';

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
