import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { signNotification, verifyNotification } from '../../src/notifications/signature.ts';

const SECRET = 'whsec_test_secret';
const BODY = '{"id":"evt_1","type":"payment.succeeded"}';
const T = 1_700_000_000;
// Computed outside this code: printf '%s' "1700000000.$BODY" | openssl dgst -sha256 -hmac "$SECRET"
const EXPECTED_V1 = '0a731970e30844c135c2ba545c0b030783248e5151afff97d4b4cac22ffa7321';

describe('signNotification', () => {
  it('matches an independently computed HMAC-SHA256 of "<t>.<body>"', () => {
    expect(signNotification(BODY, SECRET, T)).toBe(`t=${T},v1=${EXPECTED_V1}`);
  });

  it('drops fractions of a second and signs Buffers like strings', () => {
    expect(signNotification(Buffer.from(BODY), SECRET, T + 0.999)).toBe(`t=${T},v1=${EXPECTED_V1}`);
  });
});

describe('verifyNotification', () => {
  const header = signNotification(BODY, SECRET, T);

  it('accepts its own signature, from a string or the raw bytes', () => {
    expect(verifyNotification(BODY, header, SECRET, { nowSec: T })).toBe(true);
    expect(verifyNotification(Buffer.from(BODY), header, SECRET, { nowSec: T + 10 })).toBe(true);
  });

  it.each([
    ['another body', BODY.replace('evt_1', 'evt_2'), header, SECRET],
    ['re-serialized JSON', JSON.stringify(JSON.parse(BODY), null, 2), header, SECRET],
    ['another secret', BODY, header, 'whsec_other'],
    ['an empty secret', BODY, header, ''],
    ['no header', BODY, undefined, SECRET],
    ['an empty header', BODY, '', SECRET],
    ['no timestamp', BODY, `v1=${EXPECTED_V1}`, SECRET],
    ['no v1', BODY, `t=${T}`, SECRET],
    ['a non-numeric timestamp', BODY, `t=abc,v1=${EXPECTED_V1}`, SECRET],
    ['a shortened signature', BODY, `t=${T},v1=${EXPECTED_V1.slice(0, 63)}`, SECRET],
    ['an upper-case signature', BODY, `t=${T},v1=${EXPECTED_V1.toUpperCase()}`, SECRET],
    ['another timestamp with the same v1', BODY, `t=${T + 1},v1=${EXPECTED_V1}`, SECRET],
    ['a v0 scheme only', BODY, `t=${T},v0=${EXPECTED_V1}`, SECRET],
  ])('rejects %s', (_label, body, h, secret) => {
    expect(verifyNotification(body, h, secret, { nowSec: T })).toBe(false);
  });

  it('rejects timestamps outside the tolerance, either way (default 300 s)', () => {
    expect(verifyNotification(BODY, header, SECRET, { nowSec: T + 300 })).toBe(true);
    expect(verifyNotification(BODY, header, SECRET, { nowSec: T + 301 })).toBe(false);
    expect(verifyNotification(BODY, header, SECRET, { nowSec: T - 300 })).toBe(true);
    expect(verifyNotification(BODY, header, SECRET, { nowSec: T - 301 })).toBe(false);
    expect(verifyNotification(BODY, header, SECRET, { nowSec: T + 30, toleranceSec: 10 })).toBe(
      false,
    );
  });

  it('accepts a header carrying several v1 signatures when one matches (secret rotation)', () => {
    const stale = signNotification(BODY, 'whsec_old', T).split(',')[1];
    expect(
      verifyNotification(BODY, `t=${T},${stale},v1=${EXPECTED_V1}`, SECRET, { nowSec: T }),
    ).toBe(true);
    expect(verifyNotification(BODY, `t=${T}, v1=${EXPECTED_V1}`, SECRET, { nowSec: T })).toBe(true);
  });

  it('round-trips any body, secret and time, and fails on any one-byte change', () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1 }),
        fc.string({ minLength: 1 }),
        fc.integer({ min: 0, max: 4_000_000_000 }),
        fc.nat(),
        (body, secret, t, at) => {
          const h = signNotification(body, secret, t);
          expect(verifyNotification(body, h, secret, { nowSec: t })).toBe(true);
          const bytes = Buffer.from(body);
          const i = at % bytes.length;
          bytes[i] = (bytes[i] ?? 0) ^ 0x01;
          expect(verifyNotification(bytes, h, secret, { nowSec: t })).toBe(false);
        },
      ),
    );
  });

  it('never throws on garbage headers', () => {
    fc.assert(
      fc.property(fc.string(), (h) => {
        expect(typeof verifyNotification(BODY, h, SECRET, { nowSec: T })).toBe('boolean');
      }),
    );
  });
});
