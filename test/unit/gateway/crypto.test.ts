import { execFileSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CryptoError } from '../../../src/kernel/errors.ts';
import {
  decryptJson,
  decryptText,
  encryptJson,
  encryptText,
  signRequest,
  signWebhook,
  verifyWebhookSignature,
  type PayloadCryptoConfig,
} from '../../../src/infra/gateway/sayswitch/crypto.ts';

/** What PHP's openssl_encrypt does to a key: NUL-pad or truncate to 32 bytes. */
function phpKeyHex(key: string): string {
  const b = Buffer.from(key, 'utf8');
  const out = Buffer.alloc(32);
  b.copy(out, 0, 0, Math.min(32, b.length));
  return out.toString('hex');
}

function phpIvHex(iv: string): string {
  const out = Buffer.alloc(16);
  Buffer.from(iv, 'utf8').copy(out, 0, 0, 16);
  return out.toString('hex');
}

/** The reference implementation: the openssl CLI, run at test time. */
function opensslEncryptHex(plaintext: string, key: string, iv: string): string {
  const out = execFileSync(
    'openssl',
    ['enc', '-aes-256-cbc', '-K', phpKeyHex(key), '-iv', phpIvHex(iv)],
    { input: Buffer.from(plaintext, 'utf8') },
  );
  return out.toString('hex');
}

const cfg = (key: string, iv: string, encoding: 'hex' | 'base64' = 'hex'): PayloadCryptoConfig => ({
  key,
  iv,
  encoding,
});

const KEY32 = 'abcdefghijklmnopqrstuvwxyz012345';
const IV16 = 'ABCDEFGHIJKLMNOP';

describe('payload encryption known answers (openssl CLI)', () => {
  const cases: { name: string; key: string; iv: string; plaintext: string }[] = [
    {
      name: '32-byte key',
      key: KEY32,
      iv: IV16,
      plaintext: '{"amount":"1500","reference":"sub_a_20250101_1"}',
    },
    { name: 'another 32-byte key', key: 'Z'.repeat(32), iv: '0123456789abcdef', plaintext: '{}' },
    { name: 'short key (NUL-padded)', key: 'short-key', iv: IV16, plaintext: '{"a":1}' },
    {
      name: 'long key (truncated)',
      key: `${KEY32}-and-then-some-more`,
      iv: IV16,
      plaintext: '[1,2,3]',
    },
    { name: 'long IV (first 16 used)', key: KEY32, iv: `${IV16}QRSTUV`, plaintext: '"x"' },
    { name: 'exactly one block of plaintext', key: KEY32, iv: IV16, plaintext: '{"k":"0123456"}' },
    { name: 'unicode payload', key: KEY32, iv: IV16, plaintext: '{"name":"Adébáyọ̀ 🙂"}' },
  ];

  for (const c of cases) {
    it(`matches openssl byte for byte: ${c.name}`, () => {
      const expected = opensslEncryptHex(c.plaintext, c.key, c.iv);
      const config = cfg(c.key, c.iv);
      expect(encryptText(c.plaintext, config)).toBe(expected);
      expect(decryptText(expected, config)).toBe(c.plaintext);
      const b64 = cfg(c.key, c.iv, 'base64');
      expect(encryptText(c.plaintext, b64)).toBe(Buffer.from(expected, 'hex').toString('base64'));
    });
  }

  it('encryptJson encrypts JSON.stringify of the value, in lowercase hex', () => {
    const payload = { amount: '10.50', currency: 'NGN', reference: 'api_x_1' };
    const out = encryptJson(payload, cfg(KEY32, IV16));
    expect(out).toMatch(/^[0-9a-f]+$/);
    expect(out).toBe(opensslEncryptHex(JSON.stringify(payload), KEY32, IV16));
  });
});

describe('key length warnings', () => {
  it('warns once per config for a short or long key, never with the key in the text', () => {
    const warnings: string[] = [];
    const short: PayloadCryptoConfig = {
      ...cfg('tiny-secret', IV16),
      onWarning: (m) => warnings.push(m),
    };
    encryptJson({ a: 1 }, short);
    encryptJson({ a: 2 }, short);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/11 bytes.*right-padding/);
    expect(warnings[0]).not.toContain('tiny-secret');

    const long: PayloadCryptoConfig = {
      ...cfg(`${KEY32}EXTRA`, IV16),
      onWarning: (m) => warnings.push(m),
    };
    encryptJson({ a: 1 }, long);
    expect(warnings[1]).toMatch(/37 bytes.*truncating/);
  });

  it('does not warn for an exact 32-byte key', () => {
    const warnings: string[] = [];
    encryptJson({ a: 1 }, { ...cfg(KEY32, IV16), onWarning: (m) => warnings.push(m) });
    expect(warnings).toEqual([]);
  });
});

describe('round trip properties', () => {
  const keyArb = fc.string({ minLength: 1, maxLength: 48 });
  const ivArb = fc.string({ minLength: 16, maxLength: 24 });

  for (const encoding of ['hex', 'base64'] as const) {
    it(`decryptJson(encryptJson(v)) deep-equals v for any JSON value (${encoding})`, () => {
      fc.assert(
        fc.property(fc.jsonValue(), keyArb, ivArb, (value, key, iv) => {
          const config = cfg(key, iv, encoding);
          // JSON.stringify turns -0 into 0; compare against the JSON image of the value.
          expect(decryptJson(encryptJson(value, config), config)).toEqual(
            JSON.parse(JSON.stringify(value)),
          );
        }),
        { numRuns: 200 },
      );
    });
  }
});

describe('undecryptable input throws CryptoError, never a crash or half-parsed value', () => {
  const config = cfg(KEY32, IV16);
  const good = encryptJson({ amount: '1500', status: 'success' }, config);

  const bad: [string, string][] = [
    ['empty', ''],
    ['not hex', 'zz'.repeat(16)],
    ['odd length', `${good}0`],
    ['not a whole block', good.slice(0, 30)],
    ['plain JSON', '{"success":true}'],
    ['whitespace', ' '.repeat(32)],
  ];
  for (const [name, text] of bad) {
    it(`rejects ${name}`, () => {
      expect(() => decryptJson(text, config)).toThrow(CryptoError);
    });
  }

  it('rejects a wrong key', () => {
    // A wrong key yields garbage that occasionally has valid padding; then it fails as JSON or UTF-8.
    for (let i = 0; i < 20; i++) {
      expect(() => decryptJson(good, cfg(`${i}`.padEnd(32, 'q'), IV16))).toThrow(CryptoError);
    }
  });

  it('rejects tampered ciphertext (any flipped byte in the last block)', () => {
    const bytes = Buffer.from(good, 'hex');
    for (let i = bytes.length - 16; i < bytes.length; i++) {
      const t = Buffer.from(bytes);
      t[i] = (t[i]! ^ 0x5a) & 0xff;
      expect(() => decryptJson(t.toString('hex'), config)).toThrow(CryptoError);
    }
  });

  it('rejects valid ciphertext of non-JSON text', () => {
    expect(() => decryptJson(encryptText('not json {', config), config)).toThrow(CryptoError);
  });

  it('rejects bad base64', () => {
    const b64 = cfg(KEY32, IV16, 'base64');
    expect(() => decryptJson('!!!!', b64)).toThrow(CryptoError);
    expect(() => decryptJson('QUJD', b64)).toThrow(CryptoError);
  });

  it('property: arbitrary strings either decrypt to JSON or throw CryptoError', () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        try {
          decryptJson(s, config);
        } catch (e) {
          expect(e).toBeInstanceOf(CryptoError);
        }
      }),
    );
  });

  it('encryptJson refuses values with no JSON form', () => {
    expect(() => encryptJson(undefined, config)).toThrow(CryptoError);
    expect(() => encryptJson(10n, config)).toThrow(CryptoError);
  });
});

describe('webhook signatures', () => {
  const secret = 'sk_test_abc123';
  const body = Buffer.from(
    '{"notify":"payout","notifyType":"successful","data":{"reference":"r1"}}',
  );
  const sig = createHmac('sha512', secret).update(body).digest('hex');

  it('signWebhook is lowercase hex HMAC-SHA512 of the raw bytes', () => {
    expect(signWebhook(body, secret)).toBe(sig);
    expect(signWebhook(body.toString('utf8'), secret)).toBe(sig);
  });

  it('accepts a good signature (either case)', () => {
    expect(verifyWebhookSignature(body, sig, secret)).toBe(true);
    expect(verifyWebhookSignature(body, sig.toUpperCase(), secret)).toBe(true);
  });

  it('rejects a tampered body', () => {
    const tampered = Buffer.from(body.toString('utf8').replace('successful', 'failed'));
    expect(verifyWebhookSignature(tampered, sig, secret)).toBe(false);
  });

  it('rejects a wrong key', () => {
    expect(verifyWebhookSignature(body, sig, 'sk_test_other')).toBe(false);
  });

  it('rejects missing, empty, repeated, wrong-length and non-hex headers without throwing', () => {
    expect(verifyWebhookSignature(body, undefined, secret)).toBe(false);
    expect(verifyWebhookSignature(body, '', secret)).toBe(false);
    expect(verifyWebhookSignature(body, [sig, sig], secret)).toBe(false);
    expect(verifyWebhookSignature(body, sig.slice(0, 64), secret)).toBe(false);
    expect(verifyWebhookSignature(body, `${sig}00`, secret)).toBe(false);
    expect(verifyWebhookSignature(body, 'z'.repeat(128), secret)).toBe(false);
  });
});

describe('request signature', () => {
  it('is HMAC-SHA512 of the key-sorted JSON, independent of key order', () => {
    const secret = 'sk_test_abc';
    const a = signRequest({ reference: 'r', amount: '10', nested: { b: 1, a: 2 } }, secret);
    const b = signRequest({ nested: { a: 2, b: 1 }, amount: '10', reference: 'r' }, secret);
    expect(a).toBe(b);
    expect(a).toBe(
      createHmac('sha512', secret)
        .update('{"amount":"10","nested":{"a":2,"b":1},"reference":"r"}')
        .digest('hex'),
    );
  });
});
