import { AxiosError } from 'axios';
import { errors } from 'undici';
import { describe, expect, it } from 'vitest';
import {
  FatalError,
  OutcomeUnknownError,
  RateLimitedError,
  RetryableError,
  UnreadableAnswerError,
  type ErrorKind,
} from '../../../src/kernel/errors.ts';
import type { CallContext } from '../../../src/infra/gateway/sayswitch/error-mapping/call-context.ts';
import {
  classifyResponse,
  DEFAULT_RETRY_AFTER_MS,
  parseRetryAfterMs,
  type DecodedBody,
} from '../../../src/infra/gateway/sayswitch/error-mapping/response-errors.ts';
import { mapTransportError } from '../../../src/infra/gateway/sayswitch/error-mapping/transport-errors.ts';

const submission: CallContext = {
  endpoint: 'POST /api/v1/bank_transfer',
  operation: 'submission',
  reference: 'bat_b1_7_1',
};
const lookup: CallContext = {
  endpoint: 'GET /api/v1/payout/{reference}',
  operation: 'lookup',
  reference: 'bat_b1_7_1',
};
const read: CallContext = { endpoint: 'GET /api/v1/bank_list', operation: 'read' };

/** An error shaped like the ones axios and Node throw: the message is deliberately misleading. */
function codeErr(code: string, extra: Record<string, unknown> = {}): Error {
  return Object.assign(new Error('ECONNREFUSED timeout 500 misleading message'), { code }, extra);
}

describe('mapTransportError', () => {
  const table: [string, ErrorKind, string][] = [
    ['ECONNREFUSED', 'retryable', 'connection_refused'],
    ['ENOTFOUND', 'retryable', 'dns_or_network'],
    ['EAI_AGAIN', 'retryable', 'dns_or_network'],
    ['EHOSTUNREACH', 'retryable', 'dns_or_network'],
    ['ECONNABORTED', 'outcome_unknown', 'timeout'],
    ['ETIMEDOUT', 'outcome_unknown', 'timeout'],
    ['ERR_CANCELED', 'outcome_unknown', 'timeout'],
    ['ECONNRESET', 'outcome_unknown', 'connection_lost'],
    ['EPIPE', 'outcome_unknown', 'connection_lost'],
    ['ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION', 'fatal', 'tls_version'],
    ['ERR_SSL_UNSUPPORTED_PROTOCOL', 'fatal', 'tls_version'],
    ['DEPTH_ZERO_SELF_SIGNED_CERT', 'retryable', 'tls_handshake'],
    ['ERR_TLS_CERT_ALTNAME_INVALID', 'retryable', 'tls_handshake'],
    ['ERR_INVALID_URL', 'fatal', 'client_config'],
    ['ESOMETHINGNEW', 'outcome_unknown', 'transport_error'],
  ];
  for (const [code, kind, mapped] of table) {
    it(`${code} → ${kind} (${mapped})`, () => {
      const e = mapTransportError(codeErr(code), submission);
      expect(e.kind).toBe(kind);
      expect(e.code).toBe(mapped);
      expect(e.authFailure).toBe(false);
    });
  }

  it('uses whether the connection was ever ready: before it, nothing was sent', () => {
    const before = { transportReady: false };
    const after = { transportReady: true };
    expect(mapTransportError(codeErr('EPROTO'), submission, before)).toMatchObject({
      kind: 'fatal',
      code: 'tls_version',
    });
    expect(mapTransportError(codeErr('EPROTO'), submission, after)).toMatchObject({
      kind: 'outcome_unknown',
    });
    expect(mapTransportError(codeErr('EPROTO'), submission)).toMatchObject({
      kind: 'outcome_unknown',
    });
    expect(mapTransportError(codeErr('ETIMEDOUT'), submission, before)).toMatchObject({
      kind: 'retryable',
      code: 'connect_failed',
    });
    expect(mapTransportError(codeErr('ECONNRESET'), submission, before)).toMatchObject({
      kind: 'retryable',
    });
    expect(mapTransportError(codeErr('ERR_CANCELED'), submission, after)).toMatchObject({
      kind: 'outcome_unknown',
      code: 'timeout',
    });
    expect(mapTransportError(codeErr('ERR_INVALID_URL'), submission, before)).toMatchObject({
      kind: 'fatal',
    });
  });

  it('a "could not connect" code once the connection was ready is outcome_unknown', () => {
    // The client saw the socket ready, so the request may have been written: a code that would
    // otherwise mean "no connection" (from a wrapped cause, another address tried) is no proof.
    const after = { transportReady: true };
    for (const code of ['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'UND_ERR_CONNECT_TIMEOUT']) {
      expect(mapTransportError(codeErr(code), submission, after), code).toMatchObject({
        kind: 'outcome_unknown',
      });
    }
  });

  it('a TLS error once the connection was ready is outcome_unknown, whatever its code', () => {
    // The request may have been written: a TLS error then (a corrupted record of the reply, an
    // alert mid-stream) breaks a stream that may have carried it, e.g. the http adapter's
    // ERR_SSL_DECRYPTION_FAILED_OR_BAD_RECORD_MAC after the gateway processed the payout.
    const after = { transportReady: true };
    for (const code of [
      'ERR_SSL_DECRYPTION_FAILED_OR_BAD_RECORD_MAC',
      'ERR_SSL_SSLV3_ALERT_BAD_RECORD_MAC',
      'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION',
      'ERR_SSL_UNSUPPORTED_PROTOCOL',
      'ERR_SSL_WRONG_VERSION_NUMBER',
      'DEPTH_ZERO_SELF_SIGNED_CERT',
      'CERT_HAS_EXPIRED',
      'ERR_TLS_CERT_ALTNAME_INVALID',
      'ERR_TLS_HANDSHAKE_TIMEOUT',
    ]) {
      const e = mapTransportError(codeErr(code), submission, after);
      expect(e, code).toBeInstanceOf(OutcomeUnknownError);
      expect(e, code).toMatchObject({ kind: 'outcome_unknown', code: 'connection_lost' });
      expect(e.message, code).not.toContain('nothing was sent');
      // Wrapped by axios as the cause, as the http adapter throws it.
      const wrapped = Object.assign(new Error('x'), { cause: codeErr(code) });
      expect(mapTransportError(wrapped, submission, after).kind, code).toBe('outcome_unknown');
    }
  });

  it('a TLS error before the connection was ready keeps its kind; an unlisted one needs that proof', () => {
    const before = { transportReady: false };
    expect(
      mapTransportError(codeErr('ERR_SSL_DECRYPTION_FAILED_OR_BAD_RECORD_MAC'), submission, before),
    ).toMatchObject({ kind: 'retryable', code: 'tls_handshake' });
    expect(
      mapTransportError(codeErr('DEPTH_ZERO_SELF_SIGNED_CERT'), submission, before),
    ).toMatchObject({ kind: 'retryable', code: 'tls_handshake' });
    expect(
      mapTransportError(codeErr('ERR_SSL_UNSUPPORTED_PROTOCOL'), submission, before),
    ).toMatchObject({ kind: 'fatal', code: 'tls_version' });
    // The client cannot tell (fetch): handshake-only codes keep their kind, but a record error
    // that can come after the request was written is not proof that nothing was sent.
    expect(
      mapTransportError(codeErr('ERR_SSL_DECRYPTION_FAILED_OR_BAD_RECORD_MAC'), submission),
    ).toMatchObject({ kind: 'outcome_unknown' });
  });

  it('reads the code from a wrapped cause and from AggregateError members', () => {
    const wrapped = Object.assign(new Error('x'), { cause: codeErr('ECONNREFUSED') });
    expect(mapTransportError(wrapped, submission)).toBeInstanceOf(RetryableError);
    const agg = Object.assign(
      new AggregateError([codeErr('ECONNREFUSED'), codeErr('ECONNREFUSED')]),
      {},
    );
    expect(mapTransportError(agg, submission)).toBeInstanceOf(RetryableError);
  });

  it('an error without a code is outcome_unknown (the safe assumption for money)', () => {
    expect(mapTransportError(new Error('boom'), submission)).toBeInstanceOf(OutcomeUnknownError);
    expect(mapTransportError('string thrown', submission)).toBeInstanceOf(OutcomeUnknownError);
    expect(mapTransportError(null, submission)).toBeInstanceOf(OutcomeUnknownError);
  });

  it('never copies the message, config or body of the cause', () => {
    const secretish = Object.assign(new Error('Bearer sk_live_SECRET card=4111111111111111'), {
      code: 'ECONNRESET',
      config: { headers: { Authorization: 'Bearer sk_live_SECRET' }, data: '{"card":"abc"}' },
    });
    const e = mapTransportError(secretish, submission);
    const dump = JSON.stringify({ m: e.message, c: String(e.cause), s: e.stack });
    expect(dump).not.toContain('sk_live_SECRET');
    expect(dump).not.toContain('4111');
    expect(dump).not.toContain('card');
  });
});

describe('mapTransportError: undici (the default transport) maps to the same kinds', () => {
  /** undici's own error classes, wrapped the way undici-adapter.ts hands them to axios. */
  const wrap = (err: Error & { code?: string }) => {
    const e = new AxiosError('gateway transport error', err.code, undefined);
    e.cause = err;
    return e;
  };
  const table: [string, () => Error, ErrorKind, string][] = [
    [
      'UND_ERR_HEADERS_TIMEOUT',
      () => new errors.HeadersTimeoutError(),
      'outcome_unknown',
      'timeout',
    ],
    ['UND_ERR_BODY_TIMEOUT', () => new errors.BodyTimeoutError(), 'outcome_unknown', 'timeout'],
    ['UND_ERR_ABORTED', () => new errors.RequestAbortedError(), 'outcome_unknown', 'timeout'],
    [
      'UND_ERR_SOCKET',
      () => new errors.SocketError('other side closed'),
      'outcome_unknown',
      'connection_lost',
    ],
    ['UND_ERR_CLOSED', () => new errors.ClientClosedError(), 'outcome_unknown', 'connection_lost'],
    [
      'UND_ERR_DESTROYED',
      () => new errors.ClientDestroyedError(),
      'outcome_unknown',
      'connection_lost',
    ],
    [
      'UND_ERR_INFO',
      () => new errors.InformationalError('x'),
      'outcome_unknown',
      'connection_lost',
    ],
    [
      'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
      () => new errors.ResponseContentLengthMismatchError(),
      'outcome_unknown',
      'connection_lost',
    ],
    [
      'HPE_INVALID_STATUS',
      () => codeErr('HPE_INVALID_STATUS'),
      'outcome_unknown',
      'connection_lost',
    ],
    [
      'UND_ERR_CONNECT_TIMEOUT',
      () => new errors.ConnectTimeoutError(),
      'retryable',
      'connect_failed',
    ],
    ['UND_ERR_INVALID_ARG', () => new errors.InvalidArgumentError('bad'), 'fatal', 'client_config'],
    [
      'ECONNREFUSED (socket error passed on)',
      () => codeErr('ECONNREFUSED'),
      'retryable',
      'connection_refused',
    ],
    [
      'ECONNRESET (socket error passed on)',
      () => codeErr('ECONNRESET'),
      'outcome_unknown',
      'connection_lost',
    ],
  ];
  for (const [name, make, kind, mapped] of table) {
    it(`${name} → ${kind} (${mapped}), bare and wrapped in the AxiosError the adapter throws`, () => {
      for (const err of [make(), wrap(make())]) {
        const e = mapTransportError(err, submission);
        expect(e.kind).toBe(kind);
        expect(e.code).toBe(mapped);
      }
    });
  }

  it('a request that never reached a connected socket was never sent, whatever the code', () => {
    for (const make of [() => new errors.HeadersTimeoutError(), () => codeErr('ERR_CANCELED')]) {
      expect(mapTransportError(wrap(make()), submission, { transportReady: false })).toMatchObject({
        kind: 'retryable',
        code: 'connect_failed',
      });
    }
  });

  it('a request on the wire is never failed by inference: ambiguous codes stay outcome_unknown', () => {
    for (const make of [
      () => new errors.HeadersTimeoutError(),
      () => new errors.SocketError('closed'),
      () => new errors.ClientDestroyedError(),
    ]) {
      expect(mapTransportError(wrap(make()), submission, { transportReady: true }).kind).toBe(
        'outcome_unknown',
      );
    }
  });
});

describe('parseRetryAfterMs', () => {
  const now = Date.parse('2025-01-01T00:00:00Z');
  it.each([
    ['1', 1000],
    ['2.5', 2500],
    ['0', 0],
    [' 3 ', 3000],
    [undefined, DEFAULT_RETRY_AFTER_MS],
    ['soon', DEFAULT_RETRY_AFTER_MS],
    ['-4', DEFAULT_RETRY_AFTER_MS],
    [['2'], 2000],
    ['Wed, 01 Jan 2025 00:00:05 GMT', 5000],
    ['Tue, 31 Dec 2024 00:00:05 GMT', 0],
  ])('%j → %d ms', (header, ms) => {
    expect(parseRetryAfterMs(header, now)).toBe(ms);
  });
});

const json = (body: unknown): DecodedBody => ({ ok: true, body });

describe('classifyResponse', () => {
  it('2xx with a body → ok', () => {
    expect(classifyResponse(200, {}, json({ success: true, data: {} }), submission)).toEqual({
      type: 'ok',
      body: { success: true, data: {} },
    });
    expect(classifyResponse(201, {}, json({ status: true }), submission).type).toBe('ok');
  });

  it('2xx with an unreadable body → outcome_unknown', () => {
    for (const reason of ['undecryptable', 'unparsable', 'empty'] as const) {
      const c = classifyResponse(200, {}, { ok: false, reason }, submission);
      expect(c.type === 'error' && c.error).toBeInstanceOf(OutcomeUnknownError);
      expect(c.type === 'error' && c.error.code).toBe(`${reason}_body`);
    }
  });

  it('2xx with a false envelope → outcome_unknown for submissions, fatal for reads', () => {
    const sub = classifyResponse(200, {}, json({ status: false, message: 'x' }), submission);
    expect(sub.type === 'error' && sub.error).toBeInstanceOf(OutcomeUnknownError);
    const r = classifyResponse(200, {}, json({ success: false }), read);
    expect(r.type === 'error' && r.error).toBeInstanceOf(FatalError);
  });

  it('429 → rate_limited with Retry-After, default 1000 ms', () => {
    const a = classifyResponse(429, { 'retry-after': '1' }, json({}), submission);
    expect(a.type === 'error' && a.error).toBeInstanceOf(RateLimitedError);
    expect(a.type === 'error' && a.error.retryAfterMs).toBe(1000);
    const b = classifyResponse(
      429,
      { 'retry-after': '7' },
      { ok: false, reason: 'unparsable' },
      submission,
    );
    expect(b.type === 'error' && b.error.retryAfterMs).toBe(7000);
    const c = classifyResponse(429, {}, json({}), read);
    expect(c.type === 'error' && c.error.retryAfterMs).toBe(1000);
  });

  it.each([500, 502, 503, 504, 599, 408])('%d → outcome_unknown whatever the body', (status) => {
    for (const ctx of [submission, lookup, read]) {
      const c = classifyResponse(status, {}, { ok: false, reason: 'unparsable' }, ctx);
      expect(c.type === 'error' && c.error).toBeInstanceOf(OutcomeUnknownError);
    }
  });

  it.each([
    [401, 'unauthorized'],
    [403, 'forbidden'],
  ])('%d → fatal with authFailure', (status, code) => {
    for (const ctx of [submission, lookup, read]) {
      const c = classifyResponse(
        status,
        {},
        json({ success: false, message: 'Unauthorized' }),
        ctx,
      );
      expect(c.type).toBe('error');
      if (c.type !== 'error') return;
      expect(c.error).toBeInstanceOf(FatalError);
      expect(c.error.authFailure).toBe(true);
      expect(c.error.code).toBe(code);
    }
  });

  it.each([
    [400, 'bad_request'],
    [404, 'not_found'],
    [405, 'method_not_allowed'],
    [415, 'unsupported_media_type'],
    [422, 'unprocessable'],
    [418, 'http_418'],
  ])('%d on a submission → fatal %s (no authFailure)', (status, code) => {
    const c = classifyResponse(status, {}, json({ success: false, message: 'nope' }), submission);
    expect(c.type).toBe('error');
    if (c.type !== 'error') return;
    expect(c.error).toBeInstanceOf(FatalError);
    expect(c.error.code).toBe(code);
    expect(c.error.authFailure).toBe(false);
  });

  it('a 3xx on a submission → outcome_unknown (a redirect is no refusal); on a lookup → unreadable; on a read → fatal', () => {
    for (const status of [301, 302, 303, 307, 308]) {
      const body = json({ success: true });
      const c = classifyResponse(status, {}, body, submission);
      expect(c.type === 'error' && c.error).toBeInstanceOf(OutcomeUnknownError);
      expect(c.type === 'error' && c.error.code).toBe('unexpected_redirect');
      const l = classifyResponse(status, {}, body, lookup);
      expect(l.type === 'error' && l.error).toBeInstanceOf(UnreadableAnswerError);
      expect(l.type === 'error' && l.error.code).toBe('unexpected_redirect');
      const f = classifyResponse(status, {}, body, read);
      expect(f.type === 'error' && f.error).toBeInstanceOf(FatalError);
      expect(f.type === 'error' && f.error.code).toBe('unexpected_redirect');
    }
  });

  it.each([
    [400, 'bad_request'],
    [405, 'method_not_allowed'],
    [409, 'http_409'],
    [415, 'unsupported_media_type'],
    [422, 'unprocessable'],
    [418, 'http_418'],
  ])(
    '%d on a lookup → unreadable %s: a check that learned nothing, never fatal',
    (status, code) => {
      const c = classifyResponse(status, {}, json({ success: false, message: 'nope' }), lookup);
      expect(c.type === 'error' && c.error).toBeInstanceOf(UnreadableAnswerError);
      expect(c.type === 'error' && c.error.code).toBe(code);
      expect(c.type === 'error' && c.error.authFailure).toBe(false);
    },
  );

  it('409 on a submission → duplicate (look it up); on a lookup → an error', () => {
    expect(
      classifyResponse(
        409,
        {},
        json({ success: false, message: 'Duplicate reference' }),
        submission,
      ),
    ).toEqual({
      type: 'duplicate',
    });
    expect(classifyResponse(409, {}, json({}), lookup).type).toBe('error');
  });

  it('404 on a lookup with a gateway envelope → not_found', () => {
    expect(
      classifyResponse(404, {}, json({ success: false, message: 'Payout not found' }), lookup),
    ).toEqual({
      type: 'not_found',
    });
  });

  it('404 on a lookup without a gateway envelope → outcome_unknown (wrong path must not read as unsent)', () => {
    const html = classifyResponse(404, {}, { ok: false, reason: 'unparsable' }, lookup);
    expect(html.type === 'error' && html.error).toBeInstanceOf(OutcomeUnknownError);
    const other = classifyResponse(404, {}, json({ error: 'Not Found' }), lookup);
    expect(other.type === 'error' && other.error.code).toBe('unrecognised_not_found');
  });

  it('422 naming the reference → declined; without it → fatal', () => {
    const named = classifyResponse(
      422,
      {},
      json({ success: false, message: 'Insufficient funds', data: { reference: 'bat_b1_7_1' } }),
      submission,
    );
    expect(named).toEqual({ type: 'declined', message: 'Insufficient funds' });
    const inText = classifyResponse(
      422,
      {},
      json({ success: false, message: 'Declined: bat_b1_7_1' }),
      submission,
    );
    expect(inText.type).toBe('declined');
    const anon = classifyResponse(
      422,
      {},
      json({ success: false, message: 'amount invalid' }),
      submission,
    );
    expect(anon.type === 'error' && anon.error).toBeInstanceOf(FatalError);
  });

  it('messages never contain the body', () => {
    const c = classifyResponse(
      400,
      {},
      json({ success: false, message: 'card 4111111111111111 bad' }),
      submission,
    );
    expect(c.type === 'error' && c.error.message).not.toContain('4111');
  });
});
