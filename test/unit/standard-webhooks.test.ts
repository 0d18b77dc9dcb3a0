/**
 * Outbound notifications are signed per Standard Webhooks (docs/notifications.md): the delivery
 * handler's real request, caught by a local HTTP receiver, verifies with the `standardwebhooks`
 * package's `Webhook.verify` and with a check written here from the specification (HMAC-SHA256 of
 * `<webhook-id>.<webhook-timestamp>.<raw body>`, base64, `v1,` prefix, space-separated list),
 * against signatures computed outside this code with openssl. The legacy header still verifies.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import { afterEach, describe, expect, it } from 'vitest';
import { createDeliverHandler } from '../../src/notifications/deliver.ts';
import {
  standardWebhookSecret,
  standardWebhookSigner,
  verifyNotification,
} from '../../src/notifications/signature.ts';

/** `whsec_` + base64 of the 31 ASCII bytes "standard-webhooks-test-key-32by". */
const WHSEC = 'whsec_c3RhbmRhcmQtd2ViaG9va3MtdGVzdC1rZXktMzJieQ==';
const PLAIN = 'plain-secret-s3cret';
const BODY = '{"id":"evt_1","type":"payment.succeeded"}';
const T = 1_700_000_000;
/**
 * Computed outside this code:
 *   printf '%s' "evt_1.1700000000.$BODY" \
 *     | openssl dgst -sha256 -mac HMAC -macopt hexkey:<hex of the key bytes> -binary | base64
 * (and `-macopt key:plain-secret-s3cret` for the plain secret).
 */
const EXPECTED_WHSEC = 'v1,47Cg3KsgxrQGS39vo+DUp4U4QE2nktTogv0nKxSsLG4=';
const EXPECTED_PLAIN = 'v1,XvyqtoO12YHK6LP0TIeWjw8w5QW8fRdMSbVtG6NJb3Y=';

/** The specification's check, written independently of the package: true when one v1 matches. */
function verifyPerSpec(
  secret: string,
  headers: Record<string, string | undefined>,
  rawBody: string,
  nowSec: number,
): boolean {
  const id = headers['webhook-id'];
  const ts = headers['webhook-timestamp'];
  const sigs = headers['webhook-signature'];
  if (!id || !ts || !sigs || !/^\d+$/.test(ts)) return false;
  if (Math.abs(nowSec - Number(ts)) > 300) return false;
  // "whsec_" + base64 key; a secret without the prefix is base64 too, per the specification.
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const expected = createHmac('sha256', key).update(`${id}.${ts}.${rawBody}`).digest();
  return sigs.split(' ').some((entry) => {
    const [version, b64] = entry.split(',');
    if (version !== 'v1' || b64 === undefined) return false;
    const got = Buffer.from(b64, 'base64');
    return got.length === expected.length && timingSafeEqual(got, expected);
  });
}

interface Caught {
  headers: Record<string, string | undefined>;
  raw: string;
}

const servers: http.Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
});

async function receiver(): Promise<{ url: string; caught: Caught[] }> {
  const caught: Caught[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const headers: Record<string, string | undefined> = {};
      for (const [k, v] of Object.entries(req.headers)) headers[k] = Array.isArray(v) ? v[0] : v;
      caught.push({ headers, raw: Buffer.concat(chunks).toString('utf8') });
      res.end('ok');
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, caught };
}

/** Delivers one event through the real handler and returns what the receiver got. */
async function deliver(secret: string, times = 1): Promise<Caught[]> {
  const r = await receiver();
  const fields = {
    id: 'evt_ch_42_1_succeeded',
    type: 'payment.succeeded',
    at: String(Date.UTC(2025, 0, 2, 3, 4, 5)),
    data: JSON.stringify({ key: 'ch_42', amount: 150000, currency: 'NGN' }),
  };
  const handler = createDeliverHandler({
    events: { entry: () => Promise.resolve(fields) },
    url: r.url,
    secret,
    now: () => Date.now(),
  });
  const log = { info: () => {}, warn: () => {}, error: () => {}, debug: () => {} };
  for (let i = 0; i < times; i++) {
    await handler({ eventId: fields.id, streamId: '1-0' }, {
      job: { attemptsMade: i },
      log,
    } as never);
  }
  return r.caught;
}

describe('Standard Webhooks signatures of outbound notifications', () => {
  it('match signatures computed with openssl, for a whsec_ secret and for a plain one', () => {
    expect(standardWebhookSigner(WHSEC).headers('evt_1', BODY, T + 0.9)).toEqual({
      'webhook-id': 'evt_1',
      'webhook-timestamp': String(T),
      'webhook-signature': EXPECTED_WHSEC,
    });
    expect(standardWebhookSigner(PLAIN).headers('evt_1', BODY, T)['webhook-signature']).toBe(
      EXPECTED_PLAIN,
    );
    // A plain secret's Standard Webhooks form is whsec_ + base64 of its UTF-8 bytes.
    expect(standardWebhookSecret(PLAIN)).toBe(
      `whsec_${Buffer.from(PLAIN, 'utf8').toString('base64')}`,
    );
    expect(standardWebhookSecret(WHSEC)).toBe(WHSEC);
  });

  it.each([
    ['a whsec_ secret', WHSEC],
    ['a plain secret (verified in its whsec_ form)', PLAIN],
  ])(
    'a delivered notification verifies with the standardwebhooks package and per the spec: %s',
    async (_label, secret) => {
      const [got] = await deliver(secret);
      expect(got).toBeDefined();
      const { headers, raw } = got!;
      expect(headers['webhook-id']).toBe('evt_ch_42_1_succeeded');
      expect(headers['webhook-timestamp']).toMatch(/^\d{10}$/);
      expect(headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]{43}=$/);

      const receiverSecret = standardWebhookSecret(secret);
      const payload = new Webhook(receiverSecret).verify(raw, headers as Record<string, string>);
      expect(payload).toEqual({
        id: 'evt_ch_42_1_succeeded',
        type: 'payment.succeeded',
        at: '2025-01-02T03:04:05.000Z',
        data: { key: 'ch_42', amount: 150000, currency: 'NGN' },
      });
      expect(verifyPerSpec(receiverSecret, headers, raw, Date.now() / 1000)).toBe(true);

      // Tampering, another secret or a stale timestamp fail both checks.
      const other = `whsec_${Buffer.from('another-secret-of-some-length').toString('base64')}`;
      const tampered = raw.replace('150000', '150001');
      expect(() => new Webhook(receiverSecret).verify(tampered, headers as never)).toThrow();
      expect(verifyPerSpec(receiverSecret, headers, tampered, Date.now() / 1000)).toBe(false);
      expect(() => new Webhook(other).verify(raw, headers as never)).toThrow();
      expect(verifyPerSpec(other, headers, raw, Date.now() / 1000)).toBe(false);
      expect(
        verifyPerSpec(receiverSecret, headers, raw, Number(headers['webhook-timestamp']) + 301),
      ).toBe(false);

      // The legacy header, kept for one release, still verifies with the secret as it is.
      expect(
        verifyNotification(raw, headers['x-billing-signature'], secret, {
          nowSec: Date.now() / 1000,
        }),
      ).toBe(true);
    },
  );

  it('keeps webhook-id across retries of one event (receivers de-duplicate on it)', async () => {
    const tries = await deliver(WHSEC, 2);
    expect(tries).toHaveLength(2);
    expect(new Set(tries.map((t) => t.headers['webhook-id']))).toEqual(
      new Set(['evt_ch_42_1_succeeded']),
    );
    for (const t of tries) {
      expect(verifyPerSpec(WHSEC, t.headers, t.raw, Date.now() / 1000)).toBe(true);
    }
  });
});
