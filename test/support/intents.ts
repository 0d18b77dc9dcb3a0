/** Intents for store-level tests: written straight to the store, as an API charge would be. */
import type { IntentKey } from '../../src/kernel/ids.ts';
import type { AmountMinor } from '../../src/kernel/money.ts';
import type { IntentStore } from '../../src/kernel/ports.ts';

/**
 * Creates `api_<name>`: a queued NGN charge of `amount` (10.00 by default) on attempt 1, created
 * `at` (1 by default).
 */
export async function createTestCharge(
  store: IntentStore,
  name: string,
  at = 1,
  amount = 1000 as AmountMinor,
): Promise<IntentKey> {
  const key = `api_${name}` as IntentKey;
  await store.create(
    {
      key,
      type: 'charge',
      origin: 'api',
      amount,
      currency: 'NGN',
      payee: { kind: 'charge', email: 'p@example.com', cardTokenSealed: 'sealed' },
    },
    at,
  );
  return key;
}
