/**
 * Subscription input on the shared input module: the import file through the streaming CSV
 * reader (line and column in every problem) and `POST /subscriptions` bodies through the JSON
 * path of the record parser (problems name fields).
 */
import { describe, expect, it } from 'vitest';
import {
  parseSubscriptionBody,
  parseSubscriptionFields,
  parseSubscriptionsCsv,
} from '../../src/subscriptions/import.ts';

const HEADER =
  'id,customer_email,card_token,amount,currency,interval,interval_count,anchor,timezone';
const row = (id: string, extra = '') =>
  `${id},ada@example.com,tok_abc,1500,NGN,month,1,2025-01-31T09:00:00+01:00,Africa/Lagos${extra}`;
const csv = (...lines: string[]) => lines.join('\n') + '\n';

async function errorsOf(text: string | Buffer) {
  const parsed = await parseSubscriptionsCsv(text);
  if (parsed.ok) throw new Error('expected errors');
  return parsed.errors;
}

describe('parseSubscriptionsCsv', () => {
  it('reads rows: values trimmed, interval_count defaulted, blank meta left out', async () => {
    const parsed = await parseSubscriptionsCsv(
      csv(
        'ID, customer_email ,card_token,amount,currency,interval,anchor,timezone,meta_plan',
        ' s-1 , ada@example.com ,tok_abc, 15.50 ,USD,week, 2025-01-31T09:00:00Z ,UTC, gold ',
        's-2,bola@example.com,tok_def,20,EUR,year,2025-02-28T00:00:00-05:00,America/New_York,',
      ),
    );
    expect(parsed).toEqual({
      ok: true,
      rows: [
        {
          line: 2,
          input: {
            id: 's-1',
            customerEmail: 'ada@example.com',
            cardToken: 'tok_abc',
            amount: 1550,
            currency: 'USD',
            schedule: {
              anchor: '2025-01-31T09:00:00Z',
              timezone: 'UTC',
              interval: 'week',
              intervalCount: 1,
            },
            metadata: { plan: 'gold' },
          },
        },
        expect.objectContaining({ line: 3, input: expect.objectContaining({ metadata: {} }) }),
      ],
    });
  });

  it('numbers rows by physical line across quoted CRLFs, blank lines and empty-cell rows', async () => {
    const text =
      `${HEADER},meta_note\r\n` +
      `${row('a')},"two\r\nlines"\r\n` +
      '\r\n' +
      ',,,,,,,,,\r\n' +
      `${row('b')},x\r\n` +
      `${row('c')}\r\n`;
    const parsed = await parseSubscriptionsCsv(text);
    expect(parsed.ok).toBe(false);
    if (parsed.ok) return;
    expect(parsed.errors).toEqual([
      { line: 7, column: 'meta_note', message: 'row has 9 fields but the header has 10' },
    ]);
  });

  it('reports header problems at line 1 in CSV words, and nothing else', async () => {
    const errors = await errorsOf(
      csv('id,customer_email,Customer_Email,amount,currency,colour,meta___proto__', row('a')),
    );
    expect(errors).toEqual([
      {
        line: 1,
        column: 'Customer_Email',
        message: 'column "Customer_Email" appears twice in the header (columns 2 and 3)',
      },
      {
        line: 1,
        column: 'colour',
        message: 'unknown column "colour"; prefix your own columns with "meta_"',
      },
      { line: 1, column: 'meta___proto__', message: 'column "meta___proto__" is a reserved name' },
      ...['card_token', 'interval', 'anchor', 'timezone'].map((column) => ({
        line: 1,
        column,
        message: `required column "${column}" is missing from the header`,
      })),
    ]);
  });

  it('reports every bad row with line and column, one problem per column', async () => {
    const errors = await errorsOf(
      csv(
        HEADER,
        row('ok-1'),
        'bad 2,nope,tok secret,10.999,XYZ,fortnight,0,2025-01-31,Mars/Base',
        row('OK-1'),
      ),
    );
    expect(errors.map((e) => [e.line, e.column])).toEqual([
      [3, 'id'],
      [3, 'customer_email'],
      [3, 'card_token'],
      [3, 'amount'],
      [3, 'currency'],
      [3, 'interval'],
      [3, 'interval_count'],
      [3, 'anchor'],
      [3, 'timezone'],
      [4, 'id'],
    ]);
    expect(errors[9]?.message).toBe(
      'id "OK-1" is already used on line 2 (ids are unique in a file, ignoring case)',
    );
    expect(JSON.stringify(errors)).not.toContain('tok secret');
  });

  it('refuses an oversized field and an oversized card token at their column', async () => {
    const errors = await errorsOf(
      csv(HEADER, `a,ada@example.com,${'t'.repeat(4097)},1,NGN,day,1,2025-01-31T09:00:00Z,UTC`),
    );
    expect(errors).toEqual([
      { line: 2, column: 'card_token', message: 'field is longer than 4096 bytes' },
    ]);
    const small = await parseSubscriptionsCsv(csv(HEADER, row('a')), { maxFieldBytes: 11 });
    expect(small).toEqual({
      ok: false,
      errors: ['customer_email', 'anchor', 'timezone'].map((column) => ({
        line: 2,
        column,
        message: 'field is longer than 11 bytes',
      })),
    });
  });

  it('ends at broken framing with the line, and the column when known', async () => {
    expect(await errorsOf(csv(HEADER, row('a'), 'b,"open'))).toEqual([
      {
        line: 3,
        column: 'customer_email',
        message: 'unbalanced quotes: a quoted field that starts in this record is never closed',
      },
    ]);
    const latin1 = Buffer.concat([
      Buffer.from(`${HEADER}\n`),
      Buffer.from([0xe9]),
      Buffer.from('\n'),
    ]);
    expect(await errorsOf(latin1)).toEqual([
      { line: 2, message: 'line is not valid UTF-8; save the file as UTF-8 (CSV UTF-8)' },
    ]);
    expect(await errorsOf('')).toEqual([
      { line: 1, message: 'the file is empty: expected a header row' },
    ]);
    expect(await errorsOf(csv('', HEADER))).toEqual([
      { line: 2, message: 'the file has a header but no subscriptions' },
    ]);
  });

  it('reads a stream of chunks', async () => {
    const text = csv(HEADER, ...Array.from({ length: 30 }, (_, i) => row(`s${i}`)));
    const chunks: string[] = [];
    for (let i = 0; i < text.length; i += 11) chunks.push(text.slice(i, i + 11));
    const parsed = await parseSubscriptionsCsv(chunks);
    expect(parsed.ok && parsed.rows.map((r) => r.line)).toEqual(
      Array.from({ length: 30 }, (_, i) => i + 2),
    );
  });
});

describe('parseSubscriptionBody', () => {
  const body = {
    id: 'h1',
    customer_email: 'ada@example.com',
    card_token: 'tok_card_secret',
    amount: '1500',
    currency: 'NGN',
    interval: 'month',
    anchor: '2025-01-31T09:00:00+01:00',
    timezone: 'Africa/Lagos',
  };

  it('takes interval_count as a number and metadata as an object and meta_ fields', () => {
    const parsed = parseSubscriptionBody({
      ...body,
      interval_count: 3,
      metadata: { plan: 'gold', tier: 'a' },
      meta_tier: 'a',
      meta_seats: '4',
    });
    expect(parsed).toMatchObject({
      ok: true,
      input: {
        schedule: { intervalCount: 3 },
        metadata: { plan: 'gold', tier: 'a', seats: '4' },
      },
    });
  });

  it('refuses a meta_ field that gives a metadata key another value, or in another case', () => {
    expect(
      parseSubscriptionBody({ ...body, metadata: { plan: 'gold', tier: 'a' }, meta_tier: 'b' }),
    ).toEqual({
      ok: false,
      issues: [
        {
          field: 'meta_tier',
          message:
            'meta_tier gives meta key "tier" again after metadata.tier (another value): give it once',
        },
      ],
    });
    expect(
      parseSubscriptionBody({ ...body, metadata: { Plan: 'gold' }, meta_plan: 'gold' }),
    ).toEqual({
      ok: false,
      issues: [
        {
          field: 'meta_plan',
          message:
            'meta_plan gives meta key "plan" again after metadata.Plan (in another case): give it once',
        },
      ],
    });
  });

  it('refuses meta_ fields that name one key in two cases, as the import file refuses the columns', async () => {
    expect(parseSubscriptionBody({ ...body, meta_Plan: 'gold', meta_plan: 'silver' })).toEqual({
      ok: false,
      issues: [{ field: 'meta_plan', message: 'field "meta_plan" repeats meta key "plan"' }],
    });
    expect(await errorsOf(csv(`${HEADER},meta_Plan,meta_plan`, row('h1', ',gold,silver')))).toEqual(
      [
        {
          line: 1,
          column: 'meta_plan',
          message: 'column "meta_plan" appears twice in the header (columns 10 and 11)',
        },
      ],
    );
  });

  it('names fields, never columns or a header', () => {
    const { card_token: _omitted, ...rest } = body;
    const parsed = parseSubscriptionBody({ ...rest, amount: 15, Currency: 'NGN' });
    expect(parsed).toEqual({
      ok: false,
      issues: [
        {
          field: 'Currency',
          message: 'unknown field "Currency"; prefix your own fields with "meta_"',
        },
        { field: 'amount', message: 'amount must be a string' },
        { field: 'card_token', message: 'card_token is required' },
      ],
    });
    expect(JSON.stringify(parsed)).not.toMatch(/column|header/);
  });

  it('refuses metadata that is not an object of short keys and strings', () => {
    for (const metadata of [['a'], { 'a b': 'x' }, { __proto__x: 1 }, { k: 'v'.repeat(1025) }]) {
      expect(parseSubscriptionBody({ ...body, metadata })).toEqual({
        ok: false,
        issues: [
          {
            field: 'metadata',
            message:
              'metadata must be an object of strings with keys of letters, digits, "_" or "-"',
          },
        ],
      });
    }
    expect(parseSubscriptionBody({ ...body, meta___proto__: 'x' })).toMatchObject({
      ok: false,
      issues: [{ field: 'meta___proto__', message: 'field "meta___proto__" is a reserved name' }],
    });
    expect(parseSubscriptionBody('{}')).toEqual({
      ok: false,
      issues: [{ field: '(body)', message: 'the body must be a JSON object' }],
    });
  });

  it('parseSubscriptionFields validates a column → value map', () => {
    expect(parseSubscriptionFields({ ...body, interval_count: '12' }, { a: 'b' })).toMatchObject({
      ok: true,
      input: { id: 'h1', schedule: { intervalCount: 12 }, metadata: { a: 'b' } },
    });
    expect(parseSubscriptionFields({ ...body, id: undefined }, {})).toEqual({
      ok: false,
      issues: [{ column: 'id', message: 'id is required' }],
    });
  });
});
