/**
 * The submit payload's check without zod (catalog.ts `quickSubmitPayload`, the submit workers'
 * hot path) accepts exactly what the schema accepts, with the schema's output; whatever it does
 * not accept goes to the schema, which words the error.
 */
import { describe, expect, it } from 'vitest';
import { JOBS, quickSubmitPayload } from '../../src/infra/queues/catalog.ts';

const schema = JOBS['charges.submit'].schema;
const good = { key: 'api_abc', attempt: 1, amount: 150_000, currency: 'NGN' };

const cases: unknown[] = [
  good,
  { ...good, extra: 'dropped' },
  { ...good, key: 'rf1_api_abc' },
  { ...good, key: 'rf12_bat_b1_7' },
  { ...good, key: 'sub_s1_20260101' },
  { ...good, key: `api_${'a'.repeat(54)}` },
  { ...good, key: `api_${'a'.repeat(55)}` },
  { ...good, key: `rf1_api_${'a'.repeat(54)}` },
  { ...good, key: `rf1_api_${'a'.repeat(55)}` },
  { ...good, key: 'rf123_api_abc' },
  { ...good, key: 'xyz_abc' },
  { ...good, key: 'api_a.b' },
  { ...good, key: 'api_' },
  { ...good, key: 'api_abc\n' },
  { ...good, key: 7 },
  { ...good, attempt: 0 },
  { ...good, attempt: 1.5 },
  { ...good, attempt: '1' },
  { ...good, attempt: Number.MAX_SAFE_INTEGER + 1 },
  { ...good, amount: 0 },
  { ...good, amount: -1 },
  { ...good, amount: Number.NaN },
  { ...good, amount: Infinity },
  { ...good, currency: 1 },
  { ...good, currency: '' },
  { key: 'api_abc', attempt: 1, amount: 5 },
  [],
  null,
  'api_abc',
  undefined,
];

describe('quickSubmitPayload', () => {
  it.each(cases.map((c, i) => [i, c] as const))('case %i agrees with the schema', (_, data) => {
    const parsed = schema.safeParse(data);
    const quick = quickSubmitPayload(data);
    if (parsed.success) expect(quick).toEqual(parsed.data);
    else expect(quick).toBeUndefined();
  });
});
