/**
 * The JSON path of the record parser, through `POST /payments`' body: problems name fields
 * (`{ field, message }`), never CSV columns, headers or lines.
 */
import { describe, expect, it } from 'vitest';
import { parseInstruction } from '../../../src/input/instruction-body.ts';

const TOKEN = 'tok_0123456789abcdef';
const charge = {
  type: 'charge',
  key: 'k1',
  email: 'ada@example.com',
  amount: '25.00',
  currency: 'NGN',
  card_token: TOKEN,
};
const payout = {
  type: 'payout',
  account_number: '0123456789',
  bank_code: '058',
  bank_name: 'GTBank',
  account_name: 'Ada Obi',
  amount: '100',
  currency: 'NGN',
  narration: 'March salary',
};

function issuesOf(body: unknown) {
  const parsed = parseInstruction(body);
  if (parsed.ok) throw new Error('expected issues');
  return parsed.issues;
}

function noCsvWording(issues: readonly object[]) {
  const text = JSON.stringify(issues);
  expect(text).not.toMatch(/column|header|line/);
  for (const issue of issues) expect(issue).not.toHaveProperty('column');
}

describe('parseInstruction: valid bodies', () => {
  it('reads a charge into the same row a batch file gives (line 1)', () => {
    expect(parseInstruction({ ...charge, narration: 'Rent', meta_customer_id: 'c-42' })).toEqual({
      ok: true,
      type: 'charge',
      key: 'k1',
      row: {
        line: 1,
        reference: undefined,
        email: 'ada@example.com',
        amount: 2500,
        currency: 'NGN',
        cardToken: TOKEN,
        narration: 'Rent',
        meta: { customer_id: 'c-42' },
      },
    });
  });

  it('reads a payout, defaulting payment_mode to bank, without a key', () => {
    const parsed = parseInstruction(payout);
    expect(parsed).toMatchObject({ ok: true, type: 'payout', row: { paymentMode: 'bank' } });
    expect(parsed).not.toHaveProperty('key');
  });
});

describe('parseInstruction: problems name fields', () => {
  it('a body without card_token: "card_token is required", not a missing header column', () => {
    const { card_token: _omitted, ...body } = charge;
    const issues = issuesOf(body);
    expect(issues).toEqual([{ field: 'card_token', message: 'card_token is required' }]);
    noCsvWording(issues);
  });

  it('reports every missing and invalid field at once', () => {
    const issues = issuesOf({ type: 'payout', amount: '-5', currency: 'NGN' });
    expect(issues.map((i) => i.field)).toEqual([
      'account_number',
      'bank_code',
      'bank_name',
      'account_name',
      'amount',
      'narration',
    ]);
    expect(issues).toContainEqual({ field: 'bank_name', message: 'bank_name is required' });
    noCsvWording(issues);
  });

  it('a value that is not a string is that, and not also "required"', () => {
    const issues = issuesOf({ ...charge, amount: 25, email: null });
    expect(issues).toEqual([
      { field: 'email', message: 'email must be a string' },
      { field: 'amount', message: 'amount must be a string' },
    ]);
  });

  it('an unknown field is named as a field, with a hint when it belongs to the other type', () => {
    const issues = issuesOf({ ...charge, colour: 'red', bank_code: '058' });
    expect(issues).toEqual([
      {
        field: 'colour',
        message: 'unknown field "colour"; prefix your own fields with "meta_"',
      },
      {
        field: 'bank_code',
        message:
          'unknown field "bank_code" ("bank_code" is a payout field); prefix your own fields with "meta_"',
      },
    ]);
    noCsvWording(issues);
  });

  it('field names are exact: "Email" is not email', () => {
    const { email, ...rest } = charge;
    const issues = issuesOf({ ...rest, Email: email });
    expect(issues.map((i) => i.field)).toEqual(['Email', 'email']);
    expect(issues[1]?.message).toBe('email is required');
  });

  it('checks payout rules that span fields', () => {
    const issues = issuesOf({ ...payout, currency: 'KES' });
    expect(issues).toEqual([
      {
        field: 'payment_mode',
        message: 'payment_mode is required for KES payouts ("bank" or "momo")',
      },
    ]);
  });

  it('refuses a meta key that is not a short label, and a meta value that is too long', () => {
    const issues = issuesOf({ ...charge, 'meta_a b': 'x', meta_long: 'v'.repeat(1025) });
    expect(issues).toEqual([
      {
        field: 'meta_a b',
        message: 'field "meta_a b" may contain only letters, digits, "_" and "-" after "meta_"',
      },
      { field: 'meta_long', message: 'meta_long is longer than 1024 characters' },
    ]);
  });

  it('refuses meta___proto__: a metadata object would take it as its prototype', () => {
    expect(issuesOf({ ...charge, meta___proto__: 'x' })).toEqual([
      { field: 'meta___proto__', message: 'field "meta___proto__" is a reserved name' },
    ]);
  });

  it('refuses a card_token longer than 4096 characters without quoting it', () => {
    const issues = issuesOf({ ...charge, card_token: 'x'.repeat(4097) });
    expect(issues).toEqual([
      { field: 'card_token', message: 'card_token is longer than 4096 characters' },
    ]);
  });

  it('names the envelope field, and refuses a body that is not an object', () => {
    expect(issuesOf({ ...charge, type: 'refund' })).toEqual([
      { field: 'type', message: 'type must be "charge" or "payout"' },
    ]);
    expect(issuesOf({ ...charge, key: 'a b' })).toEqual([
      { field: 'key', message: 'key may contain only letters, digits, "_" and "-"' },
    ]);
    for (const body of [null, 'charge', [charge], 42]) {
      expect(issuesOf(body)).toEqual([
        { field: '(body)', message: 'the body must be a JSON object' },
      ]);
    }
  });
});

describe('parseInstruction: meta keys read as a CSV header reads them', () => {
  it('refuses meta_ fields that name one key in two cases (a CSV header refuses them as one column twice)', () => {
    expect(issuesOf({ ...charge, meta_Region: 'north', meta_region: 'south' })).toEqual([
      { field: 'meta_region', message: 'field "meta_region" repeats meta key "region"' },
    ]);
    expect(issuesOf({ ...payout, META_Region: 'north', meta_region: 'south' })).toEqual([
      { field: 'meta_region', message: 'field "meta_region" repeats meta key "region"' },
    ]);
  });
});
