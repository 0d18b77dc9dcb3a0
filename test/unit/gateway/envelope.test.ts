import { describe, expect, it } from 'vitest';
import { encryptedEnvelopeSchema } from '../../../src/infra/gateway/sayswitch/schemas.ts';
import { envelopeCiphertext } from '../../../src/infra/gateway/sayswitch/transport.ts';

// The transport reads the encrypted envelope without zod on the hot path; it must accept exactly
// what the schema accepts.
describe('envelopeCiphertext', () => {
  const bodies = [
    '{"data":"ab12"}',
    '{"data":""}',
    '{"data":1}',
    '{"data":null}',
    '{"data":"x","extra":1}',
    '{"extra":"x"}',
    '{}',
    '[]',
    '["data"]',
    'null',
    '"data"',
    '42',
    '{"__proto__":"x"}',
    '{"data":"x","__proto__":{"y":1}}',
    '{"data":{"nested":"x"}}',
    '{"DATA":"x"}',
  ];
  it.each(bodies)('%s', (text) => {
    const json: unknown = JSON.parse(text);
    const parsed = encryptedEnvelopeSchema.safeParse(json);
    expect(envelopeCiphertext(json)).toBe(parsed.success ? parsed.data.data : undefined);
  });
});
