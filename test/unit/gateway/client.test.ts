/**
 * The adapter against a scripted local HTTP server: shapes the sandbox does not produce (3DS links,
 * 422 declines, a reference mismatch, a bare 404, a garbled encrypted body) and what the adapter
 * puts on the wire and in its logs.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type BillingError,
  FatalError,
  OutcomeUnknownError,
  UnreadableAnswerError,
} from '../../../src/kernel/errors.ts';
import { afterSubmitError } from '../../../src/payments/resubmission.ts';
import {
  DuplicateReferenceUnresolvedError,
  referenceExistsAtGateway,
} from '../../../src/infra/gateway/sayswitch/client.ts';
import type { AttemptReference } from '../../../src/kernel/ids.ts';
import { amountMinor } from '../../../src/kernel/money.ts';
import type { ChargeRequest, PayoutRequest } from '../../../src/kernel/ports.ts';
import { createLogger } from '../../../src/infra/logger.ts';
import { SayswitchGateway } from '../../../src/infra/gateway/sayswitch/client.ts';
import {
  chargeFailureReason,
  declineReason,
} from '../../../src/infra/gateway/sayswitch/outcomes.ts';
import {
  decryptJson,
  encryptJson,
  type PayloadCryptoConfig,
} from '../../../src/infra/gateway/sayswitch/crypto.ts';

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}
type Reply = { status: number; body: unknown; raw?: string; headers?: Record<string, string> };

let server: http.Server;
let baseUrl: string;
let seen: Seen[];
let replies: ((req: Seen) => Reply)[];
let gateways: SayswitchGateway[];

beforeEach(async () => {
  seen = [];
  replies = [];
  gateways = [];
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const s: Seen = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      seen.push(s);
      const next = replies.shift();
      const reply = next ? next(s) : { status: 500, body: { success: false } };
      res.writeHead(reply.status, { 'content-type': 'application/json', ...reply.headers });
      res.end(reply.raw ?? JSON.stringify(reply.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterEach(async () => {
  for (const g of gateways) g.close();
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

function gateway(
  extra: Partial<ConstructorParameters<typeof SayswitchGateway>[0]> = {},
): SayswitchGateway {
  // No test here waits for this deadline; it only ends a call on a loaded machine, where a 2 s one
  // could end a local call before it was sent.
  const g = new SayswitchGateway({
    baseUrl,
    secretKey: 'sk_test_unit',
    timeoutMs: 10_000,
    ...extra,
  });
  gateways.push(g);
  return g;
}

const ref = 'api_unit_1' as AttemptReference;
const charge: ChargeRequest = {
  reference: ref,
  amount: amountMinor(150050),
  currency: 'NGN',
  email: 'a@example.com',
  cardToken: 'CARDTOKEN-deadbeef',
};
const payout: PayoutRequest = {
  reference: ref,
  amount: amountMinor(10000),
  currency: 'NGN',
  accountNumber: '0123456789',
  bankCode: '000013',
  bankName: 'GTBank',
  accountName: 'John Doe',
  narration: 'test',
  paymentMode: 'bank',
};

describe('requests on the wire', () => {
  it('sends Bearer auth, JSON and the amount in major units', async () => {
    replies.push(() => ({
      status: 200,
      body: {
        status: true,
        message: 'ok',
        data: {
          reference: ref,
          amount: '1518.51',
          requested_amount: '1500.50',
          fees: '18.01',
          status: 'success',
        },
      },
    }));
    const out = await gateway().chargeCard(charge);
    expect(out).toEqual({ reference: ref, status: 'succeeded', amount: 150050, fee: 1801 });
    const req = seen[0]!;
    expect(req.method).toBe('POST');
    expect(req.url).toBe('/api/s2s/transaction/initialize');
    expect(req.headers.authorization).toBe('Bearer sk_test_unit');
    expect(req.headers['content-type']).toMatch(/application\/json/);
    expect(req.headers.encryption).toBeUndefined();
    expect(JSON.parse(req.body)).toEqual({
      amount: '1500.50',
      card: 'CARDTOKEN-deadbeef',
      currency: 'NGN',
      email: 'a@example.com',
      reference: ref,
    });
  });

  it('omits paymentMode for NGN bank payouts and sends it for GHS', async () => {
    const ok = () => ({
      status: 200,
      body: { success: true, data: { reference: ref, amount: '100', fee: 10, status: 'pending' } },
    });
    replies.push(ok, ok);
    const g = gateway();
    expect(await g.payout(payout)).toEqual({ reference: ref, status: 'pending' });
    expect(JSON.parse(seen[0]!.body)).not.toHaveProperty('paymentMode');
    await g.payout({ ...payout, currency: 'GHS', paymentMode: 'momo' });
    expect(JSON.parse(seen[1]!.body)).toMatchObject({
      paymentMode: 'momo',
      amount: '100',
      currency: 'GHS',
    });
  });

  it('encrypts the body and decrypts the response when encryption is on; signs when asked', async () => {
    const encryption: PayloadCryptoConfig = {
      key: 'k'.repeat(32),
      iv: 'i'.repeat(16),
      encoding: 'hex',
    };
    replies.push((req) => {
      const payload = decryptJson((JSON.parse(req.body) as { data: string }).data, encryption) as {
        reference: string;
      };
      return {
        status: 200,
        body: {
          data: encryptJson(
            {
              success: true,
              data: { reference: payload.reference, amount: '100', fee: '10', status: 'success' },
            },
            encryption,
          ),
        },
      };
    });
    const out = await gateway({ encryption, signRequests: true }).payout(payout);
    expect(out).toEqual({ reference: ref, status: 'succeeded', amount: 10000, fee: 1000 });
    const body = JSON.parse(seen[0]!.body) as Record<string, unknown>;
    expect(Object.keys(body)).toEqual(['data']);
    expect(seen[0]!.body).not.toContain('0123456789');
    expect(seen[0]!.headers.encryption).toMatch(/^[0-9a-f]{128}$/);
  });

  it('fills {reference} in the verify path, URL-encoded', async () => {
    replies.push(() => ({
      status: 404,
      body: { success: false, message: 'Transaction not found' },
    }));
    expect(await gateway({ verifyPath: '/custom/{reference}/x' }).verifyCharge('a b')).toEqual({
      status: 'not_found',
      reference: 'a b',
    });
    expect(seen[0]!.url).toBe('/custom/a%20b/x');
  });
});

describe('reading answers', () => {
  it('a 3DS2 answer (HTML data, top-level _links) is requires_action with the link', async () => {
    replies.push(() => ({
      status: 200,
      body: {
        status: true,
        message: 'Proceed authentication 3DS2',
        data: '<script></script>',
        _links: {
          url: 'https://x.example/api/mrtyui876578a/3ds2auth',
          method: 'POST',
          payload: ['ref'],
        },
      },
    }));
    expect(await gateway().chargeCard(charge)).toEqual({
      reference: ref,
      status: 'requires_action',
      authorizationUrl: 'https://x.example/api/mrtyui876578a/3ds2auth',
      message: 'Proceed authentication 3DS2',
    });
  });

  it('an OTP answer (_links inside data) is requires_action', async () => {
    replies.push(() => ({
      status: 200,
      body: {
        status: true,
        message: 'Kindly enter the OTP',
        data: { paymentid: 1933565739, _links: { url: 'https://x.example/otp' } },
      },
    }));
    expect(await gateway().chargeCard(charge)).toEqual({
      reference: ref,
      status: 'requires_action',
      authorizationUrl: 'https://x.example/otp',
      message: 'Kindly enter the OTP',
    });
  });

  it('a link that is no http(s) URL still requires action, without a URL; HTML alone is pending', async () => {
    replies.push(() => ({
      status: 200,
      body: { status: true, data: '<script></script>', _links: { url: 'javascript:alert(1)' } },
    }));
    replies.push(() => ({ status: 200, body: { status: true, message: 'Wait', data: '<p></p>' } }));
    const g = gateway();
    expect(await g.chargeCard(charge)).toEqual({ reference: ref, status: 'requires_action' });
    expect(await g.chargeCard(charge)).toEqual({
      reference: ref,
      status: 'pending',
      message: 'Wait',
    });
  });

  it('a final status wins over a link; a pending transaction with a link requires action', async () => {
    replies.push(() => ({
      status: 200,
      body: {
        status: true,
        _links: { url: 'https://x.example/3ds' },
        data: { reference: ref, status: 'failed', gateway_response: 'Declined' },
      },
    }));
    replies.push(() => ({
      status: 200,
      body: {
        success: true,
        data: {
          reference: ref,
          status: 'pending',
          gateway_response: 'Awaiting 3DS authentication',
          _links: { url: 'https://x.example/3ds' },
        },
      },
    }));
    const g = gateway();
    expect(await g.chargeCard(charge)).toMatchObject({ status: 'failed', reason: 'declined' });
    expect(await g.verifyCharge(ref)).toEqual({
      reference: ref,
      status: 'requires_action',
      authorizationUrl: 'https://x.example/3ds',
      message: 'Awaiting 3DS authentication',
    });
  });

  it('a pending transaction with the link at the top level requires action', async () => {
    replies.push(() => ({
      status: 200,
      body: {
        status: true,
        message: 'Proceed authentication 3DS2',
        _links: { url: 'https://x.example/3ds2auth' },
        data: { reference: ref, status: 'pending' },
      },
    }));
    expect(await gateway().chargeCard(charge)).toEqual({
      reference: ref,
      status: 'requires_action',
      authorizationUrl: 'https://x.example/3ds2auth',
      message: 'Proceed authentication 3DS2',
    });
  });

  it('a decline keeps the gateway words and picks the reason from the known phrases', async () => {
    replies.push(() => ({
      status: 200,
      body: {
        status: true,
        data: { reference: ref, status: 'failed', gateway_response: 'Insufficient Funds' },
      },
    }));
    expect(await gateway().chargeCard(charge)).toEqual({
      reference: ref,
      status: 'failed',
      reason: 'insufficient_funds',
      message: 'Insufficient Funds',
    });
    expect(declineReason('Declined')).toBe('declined');
    expect(declineReason(undefined, 'Not sufficient funds')).toBe('insufficient_funds');
  });

  it('a charge whose challenge was not completed fails with authentication_required; payouts never', async () => {
    for (const words of ['Authentication failed', 'Abandoned', 'Authentication expired']) {
      replies.push(() => ({
        status: 200,
        body: {
          success: true,
          data: { reference: ref, status: 'failed', gateway_response: words },
        },
      }));
    }
    replies.push(() => ({
      status: 200,
      body: {
        success: true,
        data: { reference: ref, status: 'failed', gateway_response: 'Abandoned' },
      },
    }));
    const g = gateway();
    for (const words of ['Authentication failed', 'Abandoned', 'Authentication expired']) {
      expect(await g.verifyCharge(ref)).toEqual({
        reference: ref,
        status: 'failed',
        reason: 'authentication_required',
        message: words,
      });
    }
    expect(await g.lookupPayout(ref)).toMatchObject({ status: 'failed', reason: 'declined' });
    expect(chargeFailureReason('Declined')).toBe('declined');
    expect(chargeFailureReason('Abandoned: insufficient funds')).toBe('insufficient_funds');
    expect(chargeFailureReason(undefined, '3DS authentication successful')).toBe('declined');
  });

  it('a 422 that names the reference is a decline result', async () => {
    replies.push(() => ({
      status: 422,
      body: { success: false, message: 'Do not honour', data: { reference: ref } },
    }));
    expect(await gateway().payout(payout)).toEqual({
      reference: ref,
      status: 'failed',
      reason: 'declined',
      message: 'Do not honour',
    });
  });

  it('unknown status words are pending; completed is succeeded; numbers are amounts', async () => {
    replies.push(() => ({
      status: 200,
      body: { success: true, data: { reference: ref, status: 'on_hold', amount: 100 } },
    }));
    replies.push(() => ({
      status: 200,
      body: { success: true, data: { reference: ref, status: 'completed', amount: 100.5, fee: 1 } },
    }));
    const g = gateway();
    expect((await g.lookupPayout(ref)).status).toBe('pending');
    expect(await g.lookupPayout(ref)).toEqual({
      reference: ref,
      status: 'succeeded',
      amount: 10050,
      fee: 100,
    });
  });

  it('cancelled (either spelling) is a failure with reason canceled; a reversed charge stays pending', async () => {
    replies.push(() => ({
      status: 200,
      body: { success: true, data: { reference: ref, status: 'Cancelled', fee: 1 } },
    }));
    replies.push(() => ({
      status: 200,
      body: {
        success: true,
        data: { reference: ref, status: 'canceled', gateway_response: 'Customer cancelled' },
      },
    }));
    replies.push(() => ({
      status: 200,
      body: { success: true, data: { reference: ref, status: 'reversed' } },
    }));
    const g = gateway();
    expect(await g.lookupPayout(ref)).toEqual({
      reference: ref,
      status: 'failed',
      reason: 'canceled',
    });
    expect(await g.verifyCharge(ref)).toEqual({
      reference: ref,
      status: 'failed',
      reason: 'canceled',
      message: 'Customer cancelled',
    });
    expect(await g.verifyCharge(ref)).toEqual({ reference: ref, status: 'pending' });
  });

  it('an answer about another reference is outcome_unknown', async () => {
    replies.push(() => ({
      status: 200,
      body: { success: true, data: { reference: 'someone_else_1', status: 'success' } },
    }));
    await expect(gateway().lookupPayout(ref)).rejects.toMatchObject({
      kind: 'outcome_unknown',
      code: 'reference_mismatch',
    });
  });

  it('a bare 404 (no envelope) on a lookup is outcome_unknown, not not_found', async () => {
    replies.push(() => ({ status: 404, body: null, raw: '<html>Not Found</html>' }));
    await expect(gateway().verifyCharge(ref)).rejects.toBeInstanceOf(OutcomeUnknownError);
  });

  it('a 200 with a body of the wrong shape is outcome_unknown', async () => {
    replies.push(() => ({ status: 200, body: { status: true, data: { reference: ref } } }));
    await expect(gateway().chargeCard(charge)).rejects.toMatchObject({
      kind: 'outcome_unknown',
      code: 'unexpected_body',
    });
  });

  it('a transaction with a link whose amounts do not parse is outcome_unknown, never read unparsed', async () => {
    // A status word, a link and a fee with three decimals: not the OTP continuation (no status).
    replies.push(() => ({
      status: 200,
      body: {
        success: true,
        data: {
          reference: ref,
          status: 'success',
          amount: '10.626',
          requested_amount: '10.50',
          fees: '0.126',
          _links: { url: 'https://acs.example/3ds' },
        },
      },
    }));
    await expect(gateway().chargeCard(charge)).rejects.toMatchObject({
      kind: 'outcome_unknown',
      code: 'unexpected_body',
    });
    // The OTP continuation (a link, no status) still reads as one.
    replies.push(() => ({
      status: 200,
      body: { success: true, data: { _links: { url: 'https://x.example/otp' }, paymentid: 7 } },
    }));
    expect(await gateway().chargeCard(charge)).toMatchObject({ status: 'requires_action' });
  });

  it('an answer we cannot read is UnreadableAnswerError; a gateway we cannot reach is not', async () => {
    replies.push(() => ({ status: 200, body: { status: true, data: { reference: ref } } }));
    replies.push(() => ({ status: 404, body: { message: 'Not Found' } }));
    replies.push(() => ({
      status: 200,
      body: { success: true, data: { reference: 'someone_else_1', status: 'success' } },
    }));
    replies.push(() => ({ status: 200, body: null, raw: '<html>Hello</html>' }));
    const g = gateway();
    for (const code of [
      'unexpected_body',
      'unrecognised_not_found',
      'reference_mismatch',
      'unparsable_body',
    ])
      await expect(g.verifyCharge(ref)).rejects.toSatisfy(
        (e) => e instanceof UnreadableAnswerError && e.code === code,
      );
    replies.push(() => ({ status: 503, body: { success: false } }));
    const unreachable = g.verifyCharge(ref);
    await expect(unreachable).rejects.toMatchObject({ kind: 'outcome_unknown' });
    await expect(unreachable).rejects.not.toBeInstanceOf(UnreadableAnswerError);
  });

  it('an undecryptable body is outcome_unknown', async () => {
    replies.push(() => ({ status: 200, body: { data: 'ab'.repeat(16) } }));
    await expect(
      gateway({ encryption: { key: 'k'.repeat(32), iv: 'i'.repeat(16), encoding: 'hex' } }).payout(
        payout,
      ),
    ).rejects.toMatchObject({ kind: 'outcome_unknown', code: 'undecryptable_body' });
  });

  it('409 then a lookup that finds nothing → duplicate_reference_unresolved', async () => {
    replies.push(() => ({ status: 409, body: { success: false, message: 'Duplicate reference' } }));
    replies.push(() => ({ status: 404, body: { success: false, message: 'Payout not found' } }));
    await expect(gateway().payout(payout)).rejects.toMatchObject({
      kind: 'outcome_unknown',
      code: 'duplicate_reference_unresolved',
    });
    expect(seen.map((s) => `${s.method} ${s.url}`)).toEqual([
      'POST /api/v1/bank_transfer',
      `GET /api/v1/payout/${ref}`,
    ]);
  });

  it('a duplicate in every shape is looked up and adopted; an echo is read as it is', async () => {
    const found = () => ({
      status: 200,
      body: {
        success: true,
        data: { reference: ref, status: 'success', amount: '100', fee: '10' },
      },
    });
    const adopted = { reference: ref, status: 'succeeded', amount: 10000, fee: 1000 };
    const shapes: Reply[] = [
      { status: 409, body: { success: false, message: 'Duplicate reference' } },
      {
        status: 400,
        body: { success: false, message: 'Validation failed: reference: has already been taken' },
      },
      {
        status: 422,
        body: {
          message: 'The reference has already been taken.',
          errors: { reference: ['The reference has already been taken.'] },
        },
      },
      { status: 200, body: { success: false, message: 'Duplicate reference' } },
    ];
    const g = gateway();
    for (const shape of shapes) {
      seen = [];
      replies.push(() => shape, found);
      expect(await g.payout(payout)).toEqual(adopted);
      expect(seen.map((x) => `${x.method} ${x.url}`)).toEqual([
        'POST /api/v1/bank_transfer',
        `GET /api/v1/payout/${ref}`,
      ]);
    }
    // 200-echo: the original transaction, no lookup needed
    seen = [];
    replies.push(found);
    expect(await g.payout(payout)).toEqual(adopted);
    expect(seen).toHaveLength(1);
    // an echo about another reference is not about ours
    replies.push(() => ({
      status: 200,
      body: { success: true, data: { reference: 'api_other_1', status: 'success' } },
    }));
    await expect(g.payout(payout)).rejects.toMatchObject({ code: 'reference_mismatch' });
  });

  it('other validation failures stay fatal and are not looked up', async () => {
    replies.push(() => ({
      status: 400,
      body: { success: false, message: 'Validation failed: email: has already been taken' },
    }));
    replies.push(() => ({
      status: 200,
      body: { success: false, message: 'Duplicate transaction' },
    }));
    const g = gateway();
    await expect(g.chargeCard(charge)).rejects.toMatchObject({
      kind: 'fatal',
      code: 'bad_request',
    });
    await expect(g.chargeCard(charge)).rejects.toMatchObject({
      kind: 'outcome_unknown',
      code: 'unrecognised_response',
    });
    expect(seen.map((x) => x.method)).toEqual(['POST', 'POST']);
  });

  // A redirect answering a POST does not say the gateway refused it: 303 See Other is how an HTTP
  // server says "processed; the result is over there" (Post/Redirect/Get), and a 301/302 from a
  // front end may sit behind a backend that already acted. `fatal` on a first submission makes
  // the payment `failed` (payments/resubmission.ts), a failure inferred, never said: a dunning
  // retry would then charge again under a new reference.
  it.each([301, 302, 303, 307, 308])(
    'a %d answer to a submission is outcome_unknown (verified), never a refusal',
    async (status) => {
      const location = `${baseUrl}/result/${ref}`;
      replies.push(() => ({ status, body: { success: true }, headers: { location } }));
      replies.push(() => ({ status, body: { success: true }, headers: { location } }));
      const g = gateway();
      for (const submit of [() => g.chargeCard(charge), () => g.payout(payout)]) {
        const err: unknown = await submit().catch((e: unknown) => e);
        expect(err).toBeInstanceOf(OutcomeUnknownError);
        expect(err).toMatchObject({ kind: 'outcome_unknown', code: 'unexpected_redirect' });
        const first = { unsentResubmits: 0, seenAtGateway: undefined, afterDataLoss: undefined };
        expect(afterSubmitError(err as BillingError, first)).toEqual({
          to: 'unknown',
          seen: false,
        });
      }
      // Never followed: a redirected POST could be replayed somewhere else.
      expect(seen.map((x) => x.url)).toEqual([
        '/api/s2s/transaction/initialize',
        '/api/v1/bank_transfer',
      ]);
    },
  );

  it('a redirect answering a lookup is unreadable (a check that learned nothing); a read stays fatal', async () => {
    replies.push(() => ({ status: 301, body: {}, headers: { location: `${baseUrl}/x` } }));
    replies.push(() => ({ status: 302, body: {}, headers: { location: `${baseUrl}/x` } }));
    const g = gateway();
    const lookup = await g.verifyCharge(ref).catch((e: unknown) => e);
    expect(lookup).toBeInstanceOf(UnreadableAnswerError);
    expect(lookup).toMatchObject({ kind: 'outcome_unknown', code: 'unexpected_redirect' });
    await expect(g.listBanks('NGN')).rejects.toMatchObject({
      kind: 'fatal',
      code: 'unexpected_redirect',
    });
  });

  it('a duplicate whose lookup is blind (200 not found) or fails → unresolved, referenceExists', async () => {
    replies.push(() => ({ status: 200, body: { success: false, message: 'Duplicate reference' } }));
    replies.push(() => ({
      status: 200,
      body: {
        success: false,
        message: 'Transaction not found',
        error: `No transaction found with reference: ${ref}`,
      },
    }));
    replies.push(() => ({ status: 409, body: { success: false, message: 'Duplicate reference' } }));
    replies.push(() => ({ status: 503, body: { success: false } }));
    const g = gateway();
    const blind = await g.chargeCard(charge).catch((e: unknown) => e);
    expect(blind).toBeInstanceOf(DuplicateReferenceUnresolvedError);
    expect(blind).toMatchObject({
      kind: 'outcome_unknown',
      code: 'duplicate_reference_unresolved',
      referenceExists: true,
    });
    expect(referenceExistsAtGateway(blind)).toBe(true);
    const failing = await g.chargeCard(charge).catch((e: unknown) => e);
    expect(failing).toMatchObject({
      code: 'duplicate_reference_unresolved',
      referenceExists: true,
    });
    expect((failing as Error).cause).toMatchObject({ code: 'server_error' });
  });

  it('a lookup answered 200 success:false in the not-found wording is not_found', async () => {
    replies.push(() => ({
      status: 200,
      body: { success: false, message: 'Transaction not found', error: 'No transaction found' },
    }));
    replies.push(() => ({ status: 200, body: { success: false, message: 'Payout not found' } }));
    replies.push(() => ({ status: 200, body: { success: false, message: 'Service busy' } }));
    const g = gateway();
    expect(await g.verifyCharge(ref)).toEqual({ status: 'not_found', reference: ref });
    expect(await g.lookupPayout(ref)).toEqual({ status: 'not_found', reference: ref });
    await expect(g.lookupPayout(ref)).rejects.toMatchObject({
      kind: 'outcome_unknown',
      code: 'unrecognised_response',
    });
  });

  it('a verified success carries the reusable authorization: code first, else the card token', async () => {
    const data = { reference: ref, status: 'success', requested_amount: '10', fees: '0.12' };
    replies.push(() => ({
      status: 200,
      body: {
        success: true,
        data,
        authorization: { authorization_code: 'AUTH_abc123', reusable: true, last4: '2449' },
        card: { token: 'ss-tkn-ignored' },
      },
    }));
    replies.push(() => ({
      status: 200,
      body: {
        success: true,
        data,
        authorization: { authorization_code: 'AUTH_once', reusable: false },
        card: { token: 'ss-tkn-fin1refv13noydilm77dhske', last4Digits: '2449' },
      },
    }));
    replies.push(() => ({
      status: 200,
      body: {
        success: true,
        data: { ...data, authorization: { authorization_code: 'AUTH_in_data' } },
      },
    }));
    replies.push(() => ({ status: 200, body: { success: true, data, card: { token: null } } }));
    replies.push(() => ({ status: 200, body: { success: true, data, authorization: 'garbled' } }));
    replies.push(() => ({
      status: 200,
      body: {
        success: true,
        data: { ...data, status: 'failed' },
        authorization: { authorization_code: 'AUTH_failed' },
      },
    }));
    const g = gateway();
    const base = { reference: ref, status: 'succeeded', amount: 1000, fee: 12 };
    expect(await g.verifyCharge(ref)).toEqual({ ...base, authorization: 'AUTH_abc123' });
    expect(await g.verifyCharge(ref)).toEqual({
      ...base,
      authorization: 'ss-tkn-fin1refv13noydilm77dhske',
    });
    expect(await g.verifyCharge(ref)).toEqual({ ...base, authorization: 'AUTH_in_data' });
    expect(await g.verifyCharge(ref)).toEqual(base);
    expect(await g.verifyCharge(ref)).toEqual(base);
    expect(await g.verifyCharge(ref)).not.toHaveProperty('authorization');
  });

  it('reads banks, account names and wallet balances', async () => {
    replies.push(() => ({
      status: 200,
      body: {
        success: true,
        currency: 'NGN',
        data: [{ bankName: 'GTBank', bankCode: '000013', logo: 'x' }],
      },
    }));
    replies.push(() => ({
      status: 200,
      body: { success: true, data: [{ bankName: 'MTN', bankCode: 'MTNGH' }] },
    }));
    replies.push(() => ({
      status: 200,
      body: { success: true, message: 'Account name retrieved.', data: 'John Doe' },
    }));
    replies.push(() => ({
      status: 200,
      body: { success: true, data: { currency: 'NGN', balance: '1154.2', pending: '-10.12' } },
    }));
    replies.push(() => ({ status: 400, body: { success: false, message: 'Name query failed' } }));
    const g = gateway();
    expect(await g.listBanks('NGN')).toEqual([{ name: 'GTBank', code: '000013' }]);
    expect(await g.listBanks('GHS')).toEqual([{ name: 'MTN', code: 'MTNGH' }]);
    expect(
      await g.resolveAccountName({
        bankCode: '000013',
        accountNumber: '0123456789',
        currency: 'NGN',
      }),
    ).toBe('John Doe');
    expect(await g.walletBalance('NGN')).toEqual({ currency: 'NGN', balance: 115420, pending: 0 });
    await expect(
      g.resolveAccountName({ bankCode: '1', accountNumber: '2', currency: 'NGN' }),
    ).rejects.toBeInstanceOf(FatalError);
    expect(seen.map((s) => s.url)).toEqual([
      '/api/v1/bank_list',
      '/api/v1/bank_list/GHS',
      '/api/v1/account_name_verify',
      '/api/v1/wallet_balance/NGN',
      '/api/v1/account_name_verify',
    ]);
  });
});

describe('logging', () => {
  it('logs one debug line per call, without key, card or body', async () => {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(chunk.toString('utf8'));
        cb();
      },
    });
    const logger = createLogger({ level: 'debug', destination });
    replies.push(() => ({
      status: 200,
      body: {
        status: true,
        data: { reference: ref, status: 'success', requested_amount: '1500.50' },
      },
    }));
    replies.push(() => ({ status: 503, body: { success: false } }));
    const g = gateway({ logger });
    await g.chargeCard(charge);
    await expect(g.chargeCard(charge)).rejects.toBeInstanceOf(OutcomeUnknownError);
    expect(lines).toHaveLength(2);
    const first = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(first).toMatchObject({
      endpoint: 'POST /api/s2s/transaction/initialize',
      reference: ref,
      httpStatus: 200,
      result: 'ok',
    });
    expect(typeof first.durationMs).toBe('number');
    expect(JSON.parse(lines[1]!)).toMatchObject({
      httpStatus: 503,
      errorKind: 'outcome_unknown',
      errorCode: 'server_error',
    });
    const all = lines.join('\n');
    expect(all).not.toContain('sk_test_unit');
    expect(all).not.toContain('CARDTOKEN');
    expect(all).not.toContain('a@example.com');
  });

  it('never logs the reusable authorization, also when a duplicate adopts it', async () => {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(chunk.toString('utf8'));
        cb();
      },
    });
    const logger = createLogger({ level: 'debug', destination });
    replies.push(() => ({ status: 409, body: { success: false, message: 'Duplicate reference' } }));
    replies.push(() => ({
      status: 200,
      body: {
        success: true,
        data: { reference: ref, status: 'success' },
        authorization: { authorization_code: 'AUTH_secret_xyz' },
        card: { token: 'ss-tkn-secret' },
      },
    }));
    const out = await gateway({ logger }).chargeCard(charge);
    expect(out).toMatchObject({ status: 'succeeded', authorization: 'AUTH_secret_xyz' });
    expect(lines.length).toBeGreaterThan(0);
    const all = lines.join('\n');
    expect(all).not.toContain('AUTH_secret');
    expect(all).not.toContain('ss-tkn');
    // and were it ever logged under the port's field name, redaction would take it
    lines.length = 0;
    logger.info({ outcome: out }, 'probe');
    expect(lines.join('\n')).not.toContain('AUTH_secret');
  });
});

describe('the whole-call deadline', () => {
  // Headers at once, then a byte every 50 ms: no idle timer (undici's body timeout, axios's
  // socket timeout) ever fires, only the deadline on the whole call does.
  it.each(['undici', 'http'] as const)(
    'a trickling answer ends as outcome_unknown at timeoutMs (%s adapter)',
    async (httpAdapter) => {
      const drip = http.createServer((_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write('{"success":true,');
        const timer = setInterval(() => res.write(' '), 50);
        res.on('close', () => clearInterval(timer));
      });
      await new Promise<void>((resolve) => drip.listen(0, '127.0.0.1', resolve));
      // Long enough to connect and send on a loaded machine: a deadline that fires before the
      // request is out is "nothing was sent" (connect_failed), which 400 ms was under load.
      const g = gateway({
        baseUrl: `http://127.0.0.1:${(drip.address() as AddressInfo).port}`,
        timeoutMs: 2_000,
        httpAdapter,
      });
      try {
        const err: unknown = await g.chargeCard(charge).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(OutcomeUnknownError);
        expect(err).toMatchObject({ kind: 'outcome_unknown', code: 'timeout' });
      } finally {
        drip.closeAllConnections();
        await new Promise<void>((resolve) => drip.close(() => resolve()));
      }
    },
  );
});
