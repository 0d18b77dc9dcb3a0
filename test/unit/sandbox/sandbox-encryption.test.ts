import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  decryptJson,
  encryptJson,
  type PayloadCryptoConfig,
} from '../../../src/infra/gateway/sayswitch/crypto.ts';
import { createLogger } from '../../../src/infra/logger.ts';
import { startSandbox, type Sandbox } from '../../../src/sandbox/index.ts';
import {
  TEST_ENCRYPTION,
  callSandbox,
  chargeBody,
  payoutBody,
  startTestSandbox,
} from '../../support/sandbox.ts';

const CHARGE = '/api/s2s/transaction/initialize';
const enc: PayloadCryptoConfig = { ...TEST_ENCRYPTION };

async function rawPost(sb: Sandbox, path: string, body: string, key = 'sk_test_sandbox') {
  const res = await fetch(`${sb.url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body,
  });
  return { status: res.status, json: (await res.json()) as { data: string } };
}

describe('encryption on (hex)', () => {
  let sb: Sandbox;
  beforeAll(async () => {
    sb = await startTestSandbox({ encryption: TEST_ENCRYPTION });
  });
  afterAll(async () => {
    await sb.close();
  });

  it('accepts an encrypted charge and answers with an encrypted body', async () => {
    const res = await rawPost(
      sb,
      CHARGE,
      JSON.stringify({ data: encryptJson(chargeBody('e_1', '25'), enc) }),
    );
    expect(res.status).toBe(200);
    expect(Object.keys(res.json)).toEqual(['data']);
    expect(res.json.data).toMatch(/^[0-9a-f]+$/);
    expect(decryptJson(res.json.data, enc)).toMatchObject({
      status: true,
      data: { reference: 'e_1', requested_amount: '25', status: 'success' },
    });
    expect(sb.ledger().references.e_1).toMatchObject({ moneyMoved: true, amount: 2500 });
  });

  it('encrypts GET responses and errors too (404, 409, 401)', async () => {
    const found = await callSandbox(sb, '/api/v1/transaction/verify/e_1', { encryption: enc });
    expect(found.body).toMatchObject({ success: true, data: { reference: 'e_1' } });
    expect(JSON.parse(found.raw)).toEqual({ data: expect.stringMatching(/^[0-9a-f]+$/) });

    const missing = await callSandbox(sb, '/api/v1/payout/none_1', { encryption: enc });
    expect(missing.status).toBe(404);
    expect(missing.body).toEqual({ success: false, message: 'Payout not found' });

    const dup = await callSandbox(sb, CHARGE, { body: chargeBody('e_1', '25'), encryption: enc });
    expect(dup.status).toBe(409);
    expect(dup.body).toEqual({ success: false, message: 'Duplicate reference' });

    const unauthorized = await callSandbox(sb, '/api/v1/bank_list', {
      encryption: enc,
      secretKey: 'wrong',
    });
    expect(unauthorized.status).toBe(401);
    expect(unauthorized.body).toEqual({ success: false, message: 'Unauthorized' });
  });

  it('handles payouts through the same envelope', async () => {
    const res = await callSandbox(sb, '/api/v1/bank_transfer', {
      body: payoutBody('e_2', '40.52'),
      encryption: enc,
    });
    expect(res.body).toMatchObject({
      success: true,
      data: { reference: 'e_2', status: 'pending' },
    });
  });

  it.each([
    ['not hex', '{"data":"zz-not-ciphertext"}'],
    [
      'the wrong key',
      JSON.stringify({ data: encryptJson({ a: 1 }, { ...enc, key: 'k'.repeat(32) }) }),
    ],
    ['a plaintext request', JSON.stringify(chargeBody('e_3', '10'))],
    ['a non-string data', '{"data":42}'],
  ])('refuses %s with an encrypted 400', async (_label, body) => {
    const res = await rawPost(sb, CHARGE, body);
    expect(res.status).toBe(400);
    expect(decryptJson(res.json.data, enc)).toEqual({
      success: false,
      message: 'Invalid encrypted payload',
    });
    expect(sb.ledger().references.e_3).toBeUndefined();
  });

  it('keeps the ledger endpoint plaintext', async () => {
    const res = await callSandbox(sb, '/__sandbox/ledger', { secretKey: null });
    expect(res.body.references.e_1).toMatchObject({ kind: 'charge' });
  });
});

describe('encryption on (base64)', () => {
  it('speaks base64 when configured', async () => {
    const b64: PayloadCryptoConfig = { ...TEST_ENCRYPTION, encoding: 'base64' };
    const sb = await startTestSandbox({ encryption: b64 });
    try {
      const res = await callSandbox(sb, CHARGE, { body: chargeBody('b_1', '12'), encryption: b64 });
      expect(res.status).toBe(200);
      expect(JSON.parse(res.raw).data).toMatch(/^[A-Za-z0-9+/]+=*$/);
      expect(res.body.data.reference).toBe('b_1');
    } finally {
      await sb.close();
    }
  });
});

describe('key material', () => {
  it('warns (without the key) when the key is not 32 bytes, PHP-style', async () => {
    const lines: string[] = [];
    const logger = createLogger({
      level: 'warn',
      destination: { write: (s: string) => void lines.push(s) },
    });
    const shortKey = 'short-key-for-test';
    const sb = await startSandbox(
      { port: 0, encryption: { key: shortKey, iv: TEST_ENCRYPTION.iv } },
      { logger },
    );
    try {
      expect(lines.join('')).toContain('right-padding');
      expect(lines.join('')).not.toContain(shortKey);
    } finally {
      await sb.close();
    }
  });
});
