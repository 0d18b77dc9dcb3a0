/**
 * The two wording rules of error-mapping/wording.ts (docs/sayswitch-wire.md "Recognition by
 * wording"): what reads as "this reference exists" on a submission, and as "not found" on a
 * lookup; and, as much, what must not.
 */
import { describe, expect, it } from 'vitest';
import type { CallContext } from '../../../src/infra/gateway/sayswitch/error-mapping/call-context.ts';
import {
  DuplicateReferenceUnresolvedError,
  classifyResponse,
  duplicateLookupError,
  referenceExistsAtGateway,
} from '../../../src/infra/gateway/sayswitch/error-mapping/response-errors.ts';
import {
  saysDuplicateReference,
  saysNotFound,
} from '../../../src/infra/gateway/sayswitch/error-mapping/wording.ts';
import { FatalError, OutcomeUnknownError, RateLimitedError } from '../../../src/kernel/errors.ts';

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

describe('saysDuplicateReference', () => {
  it.each([
    // the sandbox's shapes (409, 200-failure, 400)
    { success: false, message: 'Duplicate reference' },
    { success: false, message: 'Validation failed: reference: has already been taken' },
    // Laravel's stock `unique` rule
    {
      message: 'The reference has already been taken.',
      errors: { reference: ['The reference has already been taken.'] },
    },
    // a field error on `reference` alone is enough, whatever the top message
    { message: 'The given data was invalid.', errors: { reference: ['has already been taken'] } },
    { success: false, message: 'Invalid request', error: { 'data.reference': 'already exists' } },
    // other wordings of the same thing
    { status: false, message: 'Transaction reference already exists' },
    { success: false, message: 'Reference already used' },
    { success: false, message: 'ref is not unique' },
    { success: false, error: 'DUPLICATE REFERENCE' },
    { success: false, errors: ['Reference already been taken'] },
    // one clause among others says it
    { success: false, message: 'Validation failed: amount: Too small; reference: already taken' },
  ])('%j → duplicate', (body) => {
    expect(saysDuplicateReference(body)).toBe(true);
  });

  it.each([
    // other validation failures, including other fields' uniqueness
    { success: false, message: 'Validation failed: amount: Expected number' },
    { success: false, message: 'The email has already been taken.' },
    { message: 'The given data was invalid.', errors: { email: ['has already been taken'] } },
    {
      success: false,
      message: 'Validation failed: email: has already been taken; reference: Required',
    },
    { success: false, message: 'The reference field is required.' },
    { success: false, errors: { reference: ['The reference must be a string.'] } },
    // a velocity check names no reference: not proof that ours exists
    { success: false, message: 'Duplicate transaction' },
    { success: false, message: 'Declined' },
    { success: false, message: 'Transaction not found' },
    // no words at all
    { success: false },
    null,
    'Duplicate reference',
    [],
  ])('%j → not a duplicate', (body) => {
    expect(saysDuplicateReference(body)).toBe(false);
  });
});

describe('saysNotFound', () => {
  it.each([
    // the documented bodies (the sandbox sends them with 404 or 200)
    {
      success: false,
      message: 'Transaction not found',
      error: 'No transaction found with reference: api_x_1',
    },
    { success: false, message: 'Payout not found' },
    { success: false, message: 'Refund not found' },
    { success: false, error: 'No transaction found with reference: api_x_1' },
    { status: false, message: 'Transfer does not exist' },
    { success: false, message: 'No query results for model [App\\Models\\Payout] api_x_1' },
    { success: false, errors: { reference: ['not found'] } },
    { success: false, message: 'No payout was found for this reference.' },
  ])('%j → not found', (body) => {
    expect(saysNotFound(body)).toBe(true);
  });

  it.each([
    { success: false, message: 'Merchant not found' },
    { success: false, message: 'Route not found' },
    { success: false, message: 'Verification failed' },
    { success: false, message: 'Unable to retrieve transaction at this time' },
    { success: false, message: 'Transaction lookup failed' },
    { success: false, message: 'Duplicate reference' },
    { success: false },
    null,
  ])('%j → not a not-found', (body) => {
    expect(saysNotFound(body)).toBe(false);
  });
});

const json = (body: unknown) => ({ ok: true as const, body });

describe('classifyResponse with the wording rules', () => {
  const duplicateBodies = [
    { success: false, message: 'Duplicate reference' },
    { success: false, message: 'Validation failed: reference: has already been taken' },
    {
      success: false,
      message: 'The given data was invalid.',
      errors: { reference: ['has already been taken'] },
    },
  ];

  it.each([200, 400, 409, 422])('%d on a submission in the duplicate wording → duplicate', (s) => {
    for (const body of duplicateBodies) {
      expect(classifyResponse(s, {}, json(body), submission)).toEqual({ type: 'duplicate' });
    }
  });

  it('a 4xx needs no envelope flag (Laravel sends none); a 200 needs success:false', () => {
    const laravel = {
      message: 'The reference has already been taken.',
      errors: { reference: ['The reference has already been taken.'] },
    };
    expect(classifyResponse(422, {}, json(laravel), submission)).toEqual({ type: 'duplicate' });
    expect(classifyResponse(200, {}, json(laravel), submission).type).toBe('ok');
  });

  it('a duplicate 422 naming our reference is a duplicate, not a decline', () => {
    const body = { success: false, message: 'Duplicate reference bat_b1_7_1' };
    expect(classifyResponse(422, {}, json(body), submission)).toEqual({ type: 'duplicate' });
  });

  it('other failures keep their kind: 400/422 fatal, 200 success:false outcome_unknown', () => {
    const other = { success: false, message: 'Validation failed: email: has already been taken' };
    for (const s of [400, 422]) {
      const c = classifyResponse(s, {}, json(other), submission);
      expect(c.type === 'error' && c.error).toBeInstanceOf(FatalError);
    }
    const ok = classifyResponse(200, {}, json(other), submission);
    expect(ok.type === 'error' && ok.error).toBeInstanceOf(OutcomeUnknownError);
    expect(ok.type === 'error' && ok.error.code).toBe('unrecognised_response');
  });

  it('the duplicate wording means nothing to lookups and reads', () => {
    const body = { success: false, message: 'Duplicate reference' };
    const l = classifyResponse(200, {}, json(body), lookup);
    expect(l.type === 'error' && l.error).toBeInstanceOf(OutcomeUnknownError);
    const r = classifyResponse(400, {}, json(body), read);
    expect(r.type === 'error' && r.error).toBeInstanceOf(FatalError);
  });

  it('200 success:false on a lookup in the not-found wording → not_found; other words → outcome_unknown', () => {
    for (const body of [
      { success: false, message: 'Transaction not found', error: 'No transaction found' },
      { success: false, message: 'Payout not found' },
    ]) {
      expect(classifyResponse(200, {}, json(body), lookup)).toEqual({ type: 'not_found' });
    }
    const other = classifyResponse(200, {}, json({ success: false, message: 'Try later' }), lookup);
    expect(other.type === 'error' && other.error.code).toBe('unrecognised_response');
    // a submission is never "not found", whatever it says
    const sub = classifyResponse(
      200,
      {},
      json({ success: false, message: 'Payout not found' }),
      submission,
    );
    expect(sub.type === 'error' && sub.error).toBeInstanceOf(OutcomeUnknownError);
  });
});

describe('the "reference exists" marker', () => {
  it('an unresolved duplicate is outcome_unknown, duplicate_reference_unresolved, referenceExists', () => {
    const err = new DuplicateReferenceUnresolvedError();
    expect(err).toBeInstanceOf(OutcomeUnknownError);
    expect(err).toMatchObject({
      kind: 'outcome_unknown',
      code: 'duplicate_reference_unresolved',
      referenceExists: true,
    });
    expect(referenceExistsAtGateway(err)).toBe(true);
    expect(referenceExistsAtGateway(new OutcomeUnknownError('x', 'timeout'))).toBe(false);
    expect(referenceExistsAtGateway(undefined)).toBe(false);
  });

  it("a duplicate's lookup failing in any way carries the marker; only an auth refusal passes", () => {
    const timeout = new OutcomeUnknownError('timed out', 'timeout');
    const limited = new RateLimitedError('slow down', 1000);
    const refused = new FatalError('bad request', 'gateway_rejected');
    // The duplicate proved the reference exists: no lookup failure may fail the payment or send
    // it back as unsent.
    for (const err of [timeout, limited, refused]) {
      const mapped = duplicateLookupError(err);
      expect(mapped).toBeInstanceOf(DuplicateReferenceUnresolvedError);
      expect((mapped as Error).cause).toBe(err);
    }
    const auth = new FatalError('bad key', 'unauthorized', { authFailure: true });
    expect(duplicateLookupError(auth)).toBe(auth);
  });
});
