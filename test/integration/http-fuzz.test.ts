/**
 * Property-based fuzzing of the whole HTTP surface: every operation of `GET /openapi.json`, the
 * webhook and the console, with generated malformed input (wrong JSON types, missing and extra
 * fields, huge strings, deep nesting, control characters and NUL, numbers as strings and the other
 * way round, odd amounts and dates, duplicated and unknown query parameters, wrong or missing
 * Content-Type, invalid JSON, hostile path parameters) and valid bodies with one field wrong.
 *
 * The product rule it guards: bad input gets a clear 4xx in the one error shape (never a 5xx, a
 * hang, a stack trace or an internal message), and a rejected request changes nothing: the keys
 * under the app's prefix (their DUMP) are the same before and after every answer of 400 or more.
 *
 * A rejected console action (a 303 whose flash says `error`) is held to the same rule; console
 * pages are HTML, so only their status and the absence of internals are checked.
 *
 * Deterministic (fixed seed, `fc.sample`) and bounded: FUZZ_RUNS cases per operation (default
 * 40, a few seconds), four times that for the CSV upload, the webhook and each half of the
 * console. Locally: FUZZ_RUNS=250 FUZZ_SEED=<n> fuzzes longer, FUZZ_OUT=<file> writes every
 * failure there, and FUZZ_EXHAUSTIVE=1 runs every curated value in every body field and query
 * parameter of every operation (about ten minutes). Every failure is listed with its request.
 */
import { createHash, createHmac } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Sandbox } from '../../src/sandbox/index.ts';
import { CHARGE_COLUMNS, PAYOUT_COLUMNS } from '../../src/input/instructions.ts';
import { startTestApp, TEST_API_TOKEN, type TestApp } from '../support/app.ts';
import { startTestSandbox, TEST_SECRET_KEY } from '../support/sandbox.ts';

const RUNS = Number(process.env.FUZZ_RUNS ?? 40);
const SEED = Number(process.env.FUZZ_SEED ?? 20_260_101);
const DASH_USER = 'ops';
const DASH_PASSWORD = 'dashboard-password-1';

interface Param {
  name: string;
  in: 'path' | 'query' | 'header';
  required?: boolean;
  schema?: JsonSchema;
}
interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  enum?: unknown[];
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  $ref?: string;
}
interface Operation {
  method: string;
  path: string;
  parameters: Param[];
  body?: { contentType: string; schema?: JsonSchema };
}

interface Sent {
  method: string;
  path: string;
  headers: Record<string, string | string[]>;
  body?: string | Buffer;
  /** For the report: what kind of malformed input this is. */
  label: string;
}
interface Answer {
  status: number;
  contentType: string;
  text: string;
  /** The console's redirect after a refused action (its flash says `kind: error`). */
  refusedFlash?: boolean;
}

let sandbox: Sandbox;
let t: TestApp;
const ops: Operation[] = [];
/** Ids of things that exist, so path parameters sometimes name something real. */
const real: Record<string, string[]> = {};
const failures: string[] = [];

const AUTH = { authorization: `Bearer ${TEST_API_TOKEN}` };

function send(req: Sent, timeoutMs = 10_000): Promise<Answer> {
  const url = new URL(t.url!);
  return new Promise((resolve, reject) => {
    const r = request(
      {
        host: url.hostname,
        port: url.port,
        method: req.method,
        path: req.path,
        headers: {
          ...(req.body !== undefined ? { 'content-length': Buffer.byteLength(req.body) } : {}),
          ...req.headers,
        },
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            contentType: String(res.headers['content-type'] ?? ''),
            text: Buffer.concat(chunks).toString('utf8'),
            refusedFlash: flashIsError(res.headers['set-cookie']),
          }),
        );
        res.on('error', reject);
      },
    );
    r.on('timeout', () => r.destroy(new Error(`no answer within ${timeoutMs} ms (a hang)`)));
    r.on('error', reject);
    if (req.body !== undefined) r.write(req.body);
    r.end();
  });
}

function flashIsError(cookies: string[] | undefined): boolean {
  for (const c of cookies ?? []) {
    const value = /^[^=]+=([^;]*)/.exec(c)?.[1];
    if (!value) continue;
    try {
      const flash = JSON.parse(Buffer.from(value, 'base64url').toString('utf8')) as {
        kind?: string;
      };
      if (flash.kind === 'error') return true;
    } catch {
      // not a flash
    }
  }
  return false;
}

/** A digest of every key under the app's prefix and its value (DUMP), sorted. */
async function stateDigest(): Promise<{ digest: string; keys: string[] }> {
  const redis = t.app.redis;
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${t.prefix}*`, 'COUNT', 1000);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  const unique = [...new Set(keys)].filter((k) => !NOISE.test(k)).sort();
  const hash = createHash('sha256');
  const pipeline = redis.pipeline();
  for (const k of unique) pipeline.dumpBuffer(k);
  const dumps = unique.length > 0 ? ((await pipeline.exec()) ?? []) : [];
  unique.forEach((k, i) => {
    hash.update(k);
    hash.update('\0');
    const d = dumps[i]?.[1];
    if (Buffer.isBuffer(d)) hash.update(d);
    hash.update('\0');
  });
  return { digest: hash.digest('hex'), keys: unique };
}
/** Keys that change without any request (heartbeats, the sign-in counter of the right password). */
const NOISE = /:(heartbeat|epoch|signin)(:|$)|:readyz$/;

const STACK =
  /\n\s+at |\bat [\w.<>]+ \(|node_modules|\.ts:\d+|FST_ERR|TypeError|ReferenceError|RangeError|SyntaxError|Cannot read prop|is not a function|undefined is not|Maximum call stack/;

function describeReq(req: Sent): string {
  const body =
    req.body === undefined
      ? ''
      : ` body(${Buffer.byteLength(req.body)}B)=${String(req.body).slice(0, 400)}`;
  const ct = req.headers['content-type'];
  return `[${req.label}] ${req.method} ${req.path.slice(0, 200)}${ct !== undefined ? ` ct=${String(ct)}` : ''}${body}`;
}

/** Sends `req` and records every broken rule. */
async function check(req: Sent, opts: { html?: boolean } = {}): Promise<Answer | undefined> {
  const before = await stateDigest();
  let ans: Answer;
  try {
    ans = await send(req);
  } catch (err) {
    failures.push(`${describeReq(req)} -> ${(err as Error).message}`);
    return undefined;
  }
  const what = `${describeReq(req)} -> ${ans.status} ${ans.text.slice(0, 300)}`;
  if (ans.status >= 500 || ans.status === 0) failures.push(`5xx: ${what}`);
  if (STACK.test(ans.text)) failures.push(`internal text: ${what}`);
  if (ans.status >= 400 && !opts.html) {
    let ok: boolean;
    try {
      const j = JSON.parse(ans.text) as { error?: { code?: unknown; message?: unknown } };
      ok =
        Object.keys(j).length === 1 &&
        typeof j.error?.code === 'string' &&
        typeof j.error.message === 'string';
    } catch {
      ok = false;
    }
    if (!ok || !ans.contentType.startsWith('application/json')) {
      failures.push(`not the error shape: ${what}`);
    }
  }
  if (ans.status >= 400 || ans.refusedFlash) {
    const after = await stateDigest();
    if (after.digest !== before.digest) {
      const added = after.keys.filter((k) => !before.keys.includes(k));
      const removed = before.keys.filter((k) => !after.keys.includes(k));
      failures.push(
        `rejected but changed state (+${added.join(',')} -${removed.join(',')}): ${what}`,
      );
    }
  }
  return ans;
}

// ---- generators ------------------------------------------------------------------------------

/** Percent-encodes `s` (a lone surrogate as U+FFFD; encodeURIComponent would throw). */
const enc = (s: string): string =>
  Buffer.from(s, 'utf8')
    .toString('binary')
    .replace(/[^A-Za-z0-9_.~-]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`);

const HUGE = 'x'.repeat(1 << 20);
const BIG = 'y'.repeat(200_000);

const weirdString = fc.oneof(
  fc.constantFrom(
    '',
    ' ',
    '\u0000',
    'a\u0000b',
    '\u202e\u200b',
    '\r\n',
    '\t',
    '\u001b[31m',
    '\ud800',
    '😀',
    '%00',
    '..',
    '../../etc/passwd',
    '__proto__',
    'constructor',
    'NaN',
    'Infinity',
    '-Infinity',
    '1e3',
    '1E400',
    '-1',
    '-0',
    '0',
    '0.001',
    '0x10',
    '1_000',
    '١٢٣',
    ' 12 ',
    '12.345',
    '99999999999999999999999',
    '2025-02-30T00:00:00Z',
    '2025-13-01T00:00:00Z',
    '+275760-09-13T00:00:00.001Z',
    '0000-01-01T00:00:00Z',
    '2025-01-01T00:00:00+25:00',
    '2025-01-01',
    '9999-12-31T23:59:59Z',
    '0001-01-01T00:00:00Z',
    '1970-01-01T00:00:00Z',
    '+010000-01-01T00:00:00Z',
    '-000001-01-01T00:00:00Z',
    '2025-01-01T24:00:00Z',
    '2025-01-01T00:00:00.123456789Z',
    '2025-W01-1',
    'P1D',
    'Etc/GMT+14',
    'Factory',
    'EST5EDT',
    'now',
    'true',
    'null',
    '[]',
    '{}',
    'a'.repeat(101),
    'b'.repeat(5_000),
    BIG,
  ),
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 20 }),
);

const weirdNumber = fc.oneof(
  fc.constantFrom(
    -1,
    0,
    -0,
    0.5,
    1.005,
    1e21,
    1e308,
    -1e308,
    2 ** 53 + 1,
    Number.MAX_SAFE_INTEGER,
    5e-324,
  ),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
);

/** Nested `depth` times in arrays or objects. */
function nested(depth: number, obj: boolean): unknown {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = obj ? { a: v } : [v];
  return v;
}

const weirdJson: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: weirdString },
  { weight: 3, arbitrary: weirdNumber },
  {
    weight: 2,
    arbitrary: fc.constantFrom<unknown>(null, true, false, [], {}, [1], ['a'], { a: 1 }),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom(nested(50, true), nested(50, false), nested(3000, false)),
  },
  { weight: 1, arbitrary: fc.array(weirdString, { maxLength: 3 }) },
  { weight: 1, arbitrary: fc.dictionary(weirdString, weirdString, { maxKeys: 3 }) },
);

const weirdKey = fc.oneof(
  fc.constantFrom(
    '__proto__',
    'constructor',
    'prototype',
    '',
    '\u0000',
    'meta_',
    'meta_x',
    'k'.repeat(5_000),
  ),
  fc.string({ maxLength: 10 }),
);

/** Path parameter values, as they go into the URL (already encoded where they need to be). */
const weirdPathSegment = fc.oneof(
  fc.constantFrom(
    '%00',
    'a%00b',
    '..',
    '%2e%2e',
    '%2E%2E%2F%2E%2E',
    '.',
    '%zz',
    '%E0%A4%A',
    '%',
    '%C0%AF',
    '%FF%FE',
    'a'.repeat(101),
    'a'.repeat(100),
    'b'.repeat(5_000),
    '%20',
    '%0A',
    '%1B%5B31m',
    enc('😀'),
    enc('\u202e'),
    '__proto__',
    'constructor',
    'toString',
    'null',
    'undefined',
    '*',
    '%2A',
    'a%2Fb',
    '4111111111111111',
  ),
  fc.string({ maxLength: 30 }).map((s) => enc(s)),
  fc.string({ unit: 'binary', maxLength: 10 }).map((s) => enc(s)),
);

/** Query strings for an operation: valid names with bad values, duplicates, unknown names. */
function queryArb(op: Operation): fc.Arbitrary<string> {
  const names = op.parameters.filter((p) => p.in === 'query').map((p) => p.name);
  const name = names.length > 0 ? fc.constantFrom(...names) : fc.constant('x');
  const value = fc.oneof(
    weirdString.map((s) => enc(s)),
    fc.constantFrom('%zz', '%', '%00', '+', '%E0%A4%A', '1&', '=', '%26'),
  );
  const pair = fc.oneof(
    fc.tuple(name, value).map(([n, v]) => `${n}=${v}`),
    name.map((n) => n), // no "="
    fc.tuple(name, value, value).map(([n, a, b]) => `${n}=${a}&${n}=${b}`),
    fc.tuple(name, value).map(([n, v]) => `${n}[]=${v}`),
    fc.tuple(name, value).map(([n, v]) => `${n}[a]=${v}`),
    fc.tuple(weirdKey, value).map(([n, v]) => `${enc(n)}=${v}`),
  );
  return fc.array(pair, { minLength: 1, maxLength: 3 }).map((ps) => `?${ps.join('&')}`);
}

let bodyCounter = 0;
/** A valid body for the operation, when one is known. */
function validBody(op: Operation): Record<string, unknown> | undefined {
  const n = ++bodyCounter;
  switch (`${op.method} ${op.path}`) {
    case 'POST /payments':
      return {
        type: 'charge',
        key: `fz-${n}`,
        email: 'ada@example.com',
        amount: '25.00',
        currency: 'NGN',
        card_token: 'tok_card_fuzz',
      };
    case 'POST /subscriptions':
      return subscriptionBody(`fzsub${n}`);
    case 'PATCH /subscriptions/{id}':
      return { amount: '2000', metadata: { plan: 'gold' } };
    case 'POST /subscriptions/{id}/pause':
      return { resume_at: '2030-01-01T00:00:00Z' };
    case 'POST /subscriptions/{id}/cancel':
      return { at_period_end: true };
    case 'POST /payments/{reference}/refunds':
      return { amount: 100, reason: 'fuzz', key: `rf${n}` };
    case 'POST /payments/{reference}/resolve':
      return { outcome: 'succeeded', note: 'checked', force: false };
    case 'POST /test-clocks':
      return { frozen_time: '2025-01-01T00:00:00Z', name: 'fuzz' };
    case 'POST /test-clocks/{id}/advance':
      return { to: '2025-02-01T00:00:00Z' };
    default:
      return op.body ? {} : undefined;
  }
}

function subscriptionBody(id: string): Record<string, unknown> {
  return {
    id,
    customer_email: 'ada@example.com',
    card_token: 'tok_card_fuzz',
    amount: '1500',
    currency: 'NGN',
    interval: 'month',
    interval_count: 1,
    anchor: '2025-01-31T09:00:00+01:00',
    timezone: 'Africa/Lagos',
  };
}

/** Field names of the operation's body (from the document, else the valid body's). */
function bodyFields(op: Operation): string[] {
  const fields = new Set<string>(Object.keys(validBody(op) ?? {}));
  const s = op.body?.schema;
  for (const variant of [s, ...(s?.anyOf ?? []), ...(s?.oneOf ?? [])]) {
    for (const k of Object.keys(variant?.properties ?? {})) fields.add(k);
  }
  return [...fields];
}

type BodyCase = { label: string; contentType?: string; body?: string };

const WRONG_TYPES = [
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/xml',
  'application/json; charset=latin1',
  'APPLICATION/JSON',
  'application/json-patch+json',
  'application/vnd.api+json',
  'text/csv',
  '',
  'application/json, text/plain',
  ';',
];

const RAW_BODIES = [
  '',
  '{',
  '{"a":1,}',
  '\ufeff{}',
  'nul',
  'null',
  '"string"',
  '42',
  '[]',
  '{"__proto__":{"polluted":1}}',
  '{"constructor":{"prototype":{"polluted":1}}}',
  `${'['.repeat(100_000)}${']'.repeat(100_000)}`,
  `{"a":${'{"a":'.repeat(20_000)}1${'}'.repeat(20_000)}}`,
  `"${HUGE}"`,
  '{"a":"\\ud800"}',
  '{"a":1e999999}',
  '\u0000',
];

function bodyArb(op: Operation): fc.Arbitrary<BodyCase> {
  const json = (label: string) => (v: unknown) => ({
    label,
    contentType: 'application/json',
    body: JSON.stringify(v),
  });
  const base = () => validBody(op) ?? {};
  const fields = bodyFields(op);
  const field = fields.length > 0 ? fc.constantFrom(...fields) : fc.constant('x');
  return fc.oneof(
    // valid-looking with one field wrong
    fc
      .tuple(field, weirdJson)
      .map(([f, v]) => json(`one field wrong: ${f}`)({ ...base(), [f]: v })),
    // missing a field
    field.map((f) => {
      const b = base();
      delete b[f];
      return json(`missing ${f}`)(b);
    }),
    // an extra field
    fc.tuple(weirdKey, weirdJson).map(([k, v]) => json(`extra field`)({ ...base(), [k]: v })),
    // two fields wrong
    fc
      .tuple(field, weirdJson, field, weirdJson)
      .map(([f1, v1, f2, v2]) => json('two fields wrong')({ ...base(), [f1]: v1, [f2]: v2 })),
    // the whole body of the wrong type
    weirdJson.map(json('body of the wrong type')),
    // raw bodies: invalid JSON, empty, deep nesting, huge
    fc.constantFrom(...RAW_BODIES).map((b) => ({
      label: 'raw body',
      contentType: 'application/json',
      body: b,
    })),
    // wrong or missing Content-Type with a valid body
    fc.constantFrom(...WRONG_TYPES, undefined).map((ct) => ({
      label: 'wrong content-type',
      ...(ct !== undefined ? { contentType: ct } : {}),
      body: JSON.stringify(base()),
    })),
    // a content type but no body
    fc.constant({ label: 'json content-type, no body', contentType: 'application/json' }),
    // duplicated keys in the JSON text
    field.map((f) => ({
      label: 'duplicated key',
      contentType: 'application/json',
      body: `${JSON.stringify(base()).slice(0, -1)}${Object.keys(base()).length > 0 ? ',' : ''}"${f}":[1]}`,
    })),
  );
}

function pathArb(op: Operation): fc.Arbitrary<{ path: string; label: string }> {
  const names = op.parameters.filter((p) => p.in === 'path').map((p) => p.name);
  if (names.length === 0) return fc.constant({ path: op.path, label: '' });
  const area = op.path.split('/')[1] ?? '';
  const realIds = real[area === 'inbox' ? 'payments' : area] ?? [];
  const segment = fc.oneof(
    { weight: 3, arbitrary: weirdPathSegment.map((s) => ({ s, label: 'bad path param' })) },
    {
      weight: realIds.length > 0 ? 3 : 0,
      arbitrary: fc.constantFrom(...(realIds.length > 0 ? realIds : ['x'])).map((s) => ({
        s: enc(s),
        label: 'real id',
      })),
    },
  );
  return fc.tuple(...names.map(() => segment)).map((segs) => {
    let p = op.path;
    names.forEach((n, i) => (p = p.replace(`{${n}}`, segs[i]!.s)));
    return { path: p, label: segs.map((s) => s.label).join(',') };
  });
}

function requestArb(op: Operation): fc.Arbitrary<Sent> {
  const hasQuery = op.parameters.some((p) => p.in === 'query');
  return fc
    .tuple(
      pathArb(op),
      hasQuery || op.method === 'GET'
        ? fc.option(queryArb(op), { freq: 2 })
        : fc.option(queryArb(op), { freq: 5 }),
      op.method === 'GET' || op.method === 'DELETE'
        ? fc.constant<BodyCase | undefined>(undefined)
        : bodyArb(op),
    )
    .map(([p, q, b]) => ({
      method: op.method,
      path: `${p.path}${q ?? ''}`,
      headers: {
        ...AUTH,
        ...(b?.contentType !== undefined ? { 'content-type': b.contentType } : {}),
      },
      ...(b?.body !== undefined ? { body: b.body } : {}),
      label: [p.label, q ? 'query' : '', b?.label ?? ''].filter(Boolean).join('; '),
    }));
}

// ---- setup -----------------------------------------------------------------------------------

async function json(method: string, path: string, body?: unknown) {
  const ans = await send({
    method,
    path,
    headers: { ...AUTH, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    label: 'setup',
  });
  return { status: ans.status, body: JSON.parse(ans.text || '{}') as Record<string, unknown> };
}

beforeAll(async () => {
  sandbox = await startTestSandbox();
  t = await startTestApp({
    sandboxUrl: sandbox.url,
    roles: ['api'],
    env: { DASHBOARD_USER: DASH_USER, DASHBOARD_PASSWORD: DASH_PASSWORD },
  });
  const doc = JSON.parse(
    (await send({ method: 'GET', path: '/openapi.json', headers: {}, label: 'doc' })).text,
  ) as {
    paths: Record<
      string,
      Record<
        string,
        {
          parameters?: Param[];
          requestBody?: { content?: Record<string, { schema?: JsonSchema }> };
        }
      >
    >;
  };
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const content = Object.entries(op.requestBody?.content ?? {})[0];
      ops.push({
        method: method.toUpperCase(),
        path,
        parameters: op.parameters ?? [],
        ...(content ? { body: { contentType: content[0], schema: content[1].schema } } : {}),
      });
    }
  }
  // Things that exist, so some requests name them.
  const pay = await json(
    'POST',
    '/payments',
    validBody(ops.find((o) => o.path === '/payments' && o.method === 'POST')!),
  );
  const sub = await json('POST', '/subscriptions', subscriptionBody('fzseed'));
  const clock = await json('POST', '/test-clocks', { frozen_time: '2025-01-01T00:00:00Z' });
  const batch = await send({
    method: 'POST',
    path: '/batches?type=charge',
    headers: { ...AUTH, 'content-type': 'text/csv' },
    body: 'reference,email,amount,currency,card_token\nc1,ada@example.com,10,NGN,tok_x\n',
    label: 'setup',
  });
  real.payments = [String(pay.body.key), `${String(pay.body.key)}_1`];
  real.subscriptions = [String(sub.body.id)];
  real['test-clocks'] = [String(clock.body.id)];
  real.batches = [String((JSON.parse(batch.text) as { batchId: string }).batchId)];
  expect([pay.status, sub.status, clock.status, batch.status]).toEqual([201, 201, 201, 201]);
}, 60_000);

afterAll(async () => {
  await t?.close();
  await sandbox?.close();
});

describe('HTTP fuzz: every documented operation', () => {
  it('every documented operation answers malformed input with a 4xx and changes nothing', async () => {
    expect(ops.length).toBeGreaterThanOrEqual(25);
    let i = 0;
    for (const op of ops) {
      const cases = fc.sample(requestArb(op), { seed: SEED + i++, numRuns: RUNS });
      for (const c of cases) await check(c);
    }
    if (process.env.FUZZ_OUT) writeFileSync(process.env.FUZZ_OUT, failures.join('\n'));
    expect(failures).toEqual([]);
  }, 600_000);
});

// ---- batches: CSV bodies -----------------------------------------------------------------------

const VALID_CELLS: Record<string, string> = {
  reference: 'r1',
  email: 'ada@example.com',
  amount: '10.50',
  currency: 'NGN',
  card_token: 'tok_x',
  narration: 'fuzz',
  account_number: '0123456789',
  bank_code: '058',
  bank_name: 'GTBank',
  account_name: 'Ada Lovelace',
  payment_mode: 'bank',
};

/** A CSV cell as written: quoted when it must be, or raw (a broken quote) on purpose. */
const csvCell = fc.oneof(
  weirdString.map((v) => (/[",\r\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v)),
  fc.constantFrom('"unclosed', 'a"b', '"a""', '""', '"a"b', '=1+1', '@SUM(A1)', '\ufeff10'),
);

const csvArb: fc.Arbitrary<{ type: string; csv: string; label: string }> = fc
  .tuple(
    fc.constantFrom('charge', 'payout'),
    fc.nat({ max: 3 }),
    fc.array(fc.tuple(fc.nat({ max: 9 }), csvCell), { minLength: 1, maxLength: 3 }),
    fc.constantFrom<'none' | 'drop' | 'extra' | 'dup' | 'weird' | 'meta' | 'bom' | 'empty'>(
      'none',
      'drop',
      'extra',
      'dup',
      'weird',
      'meta',
      'bom',
      'empty',
    ),
    fc.constantFrom('\n', '\r\n', '\r'),
    weirdKey,
  )
  .map(([type, rows, mutations, header, eol, odd]) => {
    const cols: string[] = [...(type === 'charge' ? CHARGE_COLUMNS : PAYOUT_COLUMNS)];
    if (header === 'drop') cols.splice(1, 1);
    if (header === 'extra') cols.push(odd.replace(/[",\r\n]/g, '') || 'x');
    if (header === 'dup') cols.push('amount');
    if (header === 'weird') cols[0] = odd.replace(/[",\r\n]/g, '');
    if (header === 'meta') cols.push(`meta_${odd.replace(/[",\r\n]/g, '')}`);
    const lines = [cols.join(',')];
    for (let r = 0; r <= rows; r++) {
      const cells = cols.map((c) => (c === 'reference' ? `r${r}` : (VALID_CELLS[c] ?? 'v')));
      for (const [at, cell] of mutations) cells[at % cells.length] = cell;
      lines.push(cells.join(','));
    }
    const csv =
      header === 'empty' ? '' : `${header === 'bom' ? '\ufeff' : ''}${lines.join(eol)}${eol}`;
    return { type, csv, label: `csv ${header}` };
  });

// ---- the webhook -------------------------------------------------------------------------------

const sign = (raw: string | Buffer) =>
  createHmac('sha512', TEST_SECRET_KEY).update(raw).digest('hex');

const webhookArb: fc.Arbitrary<Sent> = fc
  .tuple(
    fc.oneof(
      weirdJson.map((v) => JSON.stringify(v)),
      fc
        .tuple(fc.constantFrom('reference', 'event', 'data', 'status', 'amount'), weirdJson)
        .map(([f, v]) =>
          JSON.stringify({
            event: 'charge.success',
            data: { reference: real.payments?.[1] ?? 'x_1', status: 'success', amount: 25 },
            [f]: v,
          }),
        ),
      weirdJson.map((v) =>
        JSON.stringify({ event: 'charge.success', data: { reference: v, status: v } }),
      ),
      fc.constantFrom(...RAW_BODIES),
    ),
    fc.constantFrom<'good' | 'none' | 'bad' | 'twice' | 'short' | 'upper'>(
      'good',
      'good',
      'good',
      'none',
      'bad',
      'twice',
      'short',
      'upper',
    ),
    fc.constantFrom('application/json', 'text/plain', '', 'application/x-www-form-urlencoded'),
  )
  .map(([body, sig, ct]) => {
    const good = sign(body);
    const signature: Record<string, string | string[]> =
      sig === 'good'
        ? { payloadsignature: good }
        : sig === 'bad'
          ? { payloadsignature: 'ab'.repeat(64) }
          : sig === 'twice'
            ? { payloadsignature: [good, good] }
            : sig === 'short'
              ? { payloadsignature: good.slice(0, 10) }
              : sig === 'upper'
                ? { payloadsignature: good.toUpperCase() }
                : {};
    return {
      method: 'POST',
      path: '/webhooks/sayswitch',
      headers: { ...(ct ? { 'content-type': ct } : {}), ...signature },
      body,
      label: `webhook signature ${sig}`,
    };
  });

// ---- the console -------------------------------------------------------------------------------

const CONSOLE_GETS = [
  '/console',
  '/console/payments',
  '/console/payments/{key}',
  '/console/inbox',
  '/console/inbox/{key}',
  '/console/batches',
  '/console/batches/{id}',
  '/console/batches/{id}/results.csv',
  '/console/subscriptions',
  '/console/subscriptions/{id}',
];
const CONSOLE_POSTS = [
  '/console/payments/{key}/resolve',
  '/console/batches/{id}/cancel',
  '/console/batches/{id}/approve',
  '/console/batches/{id}/retry-failed',
  '/console/subscriptions/{id}/end-trial',
  '/console/subscriptions/{id}/pause',
  '/console/subscriptions/{id}/resume',
  '/console/subscriptions/{id}/cancel',
  '/console/subscriptions/{id}/retry',
];
const CONSOLE_QUERY = [
  'q',
  'state',
  'type',
  'currency',
  'batch',
  'subscription',
  'from',
  'to',
  'cursor',
  'id',
  'status',
  'email',
];
const CONSOLE_FORM = ['outcome', 'note', 'force', 'resume_at', 'at_period_end', '_csrf'];

function consoleArb(paths: string[], method: 'GET' | 'POST'): fc.Arbitrary<Sent> {
  const op = (path: string): Operation => ({
    method,
    path,
    parameters: [
      ...[...path.matchAll(/\{(\w+)\}/g)].map((m) => ({ name: m[1]!, in: 'path' as const })),
      ...CONSOLE_QUERY.map((name) => ({ name, in: 'query' as const })),
    ],
  });
  const form = fc
    .array(
      fc.tuple(
        fc.oneof(fc.constantFrom(...CONSOLE_FORM), weirdKey),
        fc.oneof(weirdString, fc.constantFrom('succeeded', 'failed', 'true', 'false')),
      ),
      { maxLength: 4 },
    )
    .map((pairs) =>
      new URLSearchParams(
        pairs.map(([k, v]): [string, string] => [k, v.slice(0, 5_000)]),
      ).toString(),
    );
  const auth = fc.constantFrom(AUTH, {
    authorization: `Basic ${Buffer.from(`${DASH_USER}:${DASH_PASSWORD}`).toString('base64')}`,
  });
  return fc
    .tuple(
      fc
        .constantFrom(...paths)
        .chain((p) => pathArb({ ...op(p), path: p.replace('/console', '') })),
      fc.option(queryArb(op('/x')), { freq: 2 }),
      method === 'POST'
        ? fc.oneof(
            form.map((b) => ({ ct: 'application/x-www-form-urlencoded', b })),
            bodyArb(op('/x')).map((b) => ({ ct: b.contentType, b: b.body })),
          )
        : fc.constant(undefined),
      auth,
    )
    .map(([p, q, b, a]) => ({
      method,
      path: `/console${p.path}${q ?? ''}`,
      headers: {
        ...a,
        ...(b?.ct !== undefined ? { 'content-type': b.ct } : {}),
        // a form from the console itself: same origin
        origin: t.url!,
      },
      ...(b?.b !== undefined ? { body: b.b } : {}),
      label: `console ${p.label}${q ? '; query' : ''}`,
    }));
}

/** What the fuzzing found, kept as plain examples (each answered 5xx or an odd shape before). */
describe('HTTP fuzz: findings', () => {
  it('PATCH /subscriptions/:id with a field named like an Object.prototype member: 422 naming it', async () => {
    failures.length = 0;
    for (const name of ['constructor', 'toString', 'valueOf', 'hasOwnProperty']) {
      const ans = await check({
        method: 'PATCH',
        path: `/subscriptions/${real.subscriptions![0]!}`,
        headers: { ...AUTH, 'content-type': 'application/json' },
        body: JSON.stringify({ amount: '2000', [name]: 'x' }),
        label: 'finding',
      });
      expect(ans?.status).toBe(422);
      expect(JSON.parse(ans!.text)).toMatchObject({
        error: { code: 'invalid_subscription', details: [{ field: name }] },
      });
    }
    expect(failures).toEqual([]);
  });

  it('an instant beyond four-digit years is refused naming its field, and nothing is stored', async () => {
    failures.length = 0;
    const sub = real.subscriptions![0]!;
    const clock = real['test-clocks']![0]!;
    for (const at of [
      '+010000-01-01T00:00:00Z',
      '-000001-01-01T00:00:00Z',
      '9999-12-31T23:59:59Z',
    ]) {
      const cases: [string, string, Record<string, unknown>, string][] = [
        ['POST', '/subscriptions', { ...subscriptionBody('fzfar'), anchor: at }, 'anchor'],
        [
          'POST',
          '/subscriptions',
          { ...subscriptionBody('fzfar'), anchor: undefined, trial_end: at },
          'trial_end',
        ],
        ['PATCH', `/subscriptions/${sub}`, { anchor: at }, 'anchor'],
        ['POST', `/subscriptions/${sub}/pause`, { resume_at: at }, 'resume_at'],
        ['POST', '/test-clocks', { frozen_time: at }, 'frozen_time'],
        ['POST', `/test-clocks/${clock}/advance`, { to: at }, 'to'],
      ];
      for (const [method, path, body, field] of cases) {
        const ans = await check({
          method,
          path,
          headers: { ...AUTH, 'content-type': 'application/json' },
          body: JSON.stringify(body),
          label: 'finding',
        });
        expect(ans?.status, `${method} ${path} ${field}=${at}`).toBe(422);
        expect(JSON.parse(ans!.text)).toMatchObject({
          error: { details: expect.arrayContaining([expect.objectContaining({ field })]) },
        });
      }
    }
    expect(failures).toEqual([]);
  });

  it('a URL over 16 KiB: 431 in the error shape', async () => {
    failures.length = 0;
    const ans = await check({
      method: 'GET',
      path: `/payments?cursor=${'y'.repeat(20_000)}`,
      headers: AUTH,
      label: 'finding',
    });
    expect(ans?.status).toBe(431);
    expect(JSON.parse(ans!.text)).toMatchObject({ error: { code: 'headers_too_large' } });
    expect(failures).toEqual([]);
  });
  it('bytes that are not HTTP: 400 in the error shape', async () => {
    const url = new URL(t.url!);
    const raw = await new Promise<string>((resolve, reject) => {
      const socket = connect({ host: url.hostname, port: Number(url.port) }, () =>
        socket.end('GET /payments HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n'),
      );
      let text = '';
      socket.on('data', (c: Buffer) => (text += c.toString()));
      socket.on('close', () => resolve(text));
      socket.on('error', reject);
    });
    expect(raw).toMatch(/^HTTP\/1\.1 400 /);
    expect(JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4))).toEqual({
      error: { code: 'bad_request', message: 'the request is not valid HTTP' },
    });
  });
});

describe('HTTP fuzz: bodies the document does not describe', () => {
  it('POST /batches: malformed CSV files and queries answer 4xx and store nothing', async () => {
    const cases = fc.sample(
      fc.tuple(
        csvArb,
        fc.option(
          queryArb({
            method: 'POST',
            path: '/batches',
            parameters: ['id', 'name', 'skipInvalid', 'validateOnly', 'skip_invalid'].map(
              (name) => ({ name, in: 'query' as const }),
            ),
          }),
          { freq: 3 },
        ),
      ),
      { seed: SEED, numRuns: RUNS * 4 },
    );
    failures.length = 0;
    for (const [c, q] of cases) {
      await check({
        method: 'POST',
        path: `/batches?type=${c.type}${q ? `&${q.slice(1)}` : ''}`,
        headers: { ...AUTH, 'content-type': 'text/csv' },
        body: c.csv,
        label: c.label,
      });
    }
    if (process.env.FUZZ_OUT) writeFileSync(`${process.env.FUZZ_OUT}.csv`, failures.join('\n'));
    expect(failures).toEqual([]);
  }, 600_000);

  it('POST /webhooks/sayswitch: malformed, signed or not, answers 4xx or 200', async () => {
    failures.length = 0;
    for (const c of fc.sample(webhookArb, { seed: SEED, numRuns: RUNS * 4 })) {
      await check(c);
    }
    if (process.env.FUZZ_OUT) writeFileSync(`${process.env.FUZZ_OUT}.webhook`, failures.join('\n'));
    expect(failures).toEqual([]);
  }, 600_000);

  it('the console: malformed pages and forms answer below 500, refused actions change nothing', async () => {
    const cases = [
      ...fc.sample(consoleArb(CONSOLE_GETS, 'GET'), { seed: SEED, numRuns: RUNS * 4 }),
      ...fc.sample(consoleArb(CONSOLE_POSTS, 'POST'), { seed: SEED + 1, numRuns: RUNS * 4 }),
    ];
    failures.length = 0;
    for (const c of cases) await check(c, { html: true });
    if (process.env.FUZZ_OUT) writeFileSync(`${process.env.FUZZ_OUT}.console`, failures.join('\n'));
    expect(failures).toEqual([]);
  }, 600_000);
});

/** Every curated value in every field, query parameter and path parameter (local use: slow). */
describe.runIf(process.env.FUZZ_EXHAUSTIVE)('HTTP fuzz: exhaustive table', () => {
  it('every field x every curated value', async () => {
    failures.length = 0;
    const strings = fc.sample(weirdString, { seed: SEED, numRuns: 400 });
    const values: unknown[] = [
      ...new Set<unknown>([
        ...strings,
        -1,
        0,
        0.5,
        1e21,
        1e308,
        2 ** 53 + 1,
        null,
        true,
        [],
        {},
        ['a'],
        { a: 1 },
        nested(3000, false),
      ]),
    ];
    for (const op of ops) {
      const base = validBody(op);
      const path =
        fc.sample(pathArb(op), { seed: SEED, numRuns: 10 }).find((p) => p.label.includes('real'))
          ?.path ?? op.path;
      if (base && op.body) {
        for (const f of bodyFields(op)) {
          for (const v of values) {
            await check({
              method: op.method,
              path,
              headers: { ...AUTH, 'content-type': 'application/json' },
              body: JSON.stringify({ ...validBody(op), [f]: v }),
              label: `table ${f}`,
            });
          }
        }
      }
      for (const q of op.parameters.filter((p) => p.in === 'query')) {
        for (const v of values.filter((x): x is string => typeof x === 'string')) {
          if (v.length > 5_000) continue;
          await check({
            method: op.method,
            path: `${path}?${q.name}=${enc(v)}&${q.name}=${enc(v)}`,
            headers: { ...AUTH, ...(op.body ? { 'content-type': 'application/json' } : {}) },
            ...(op.body ? { body: JSON.stringify(validBody(op) ?? {}) } : {}),
            label: `table query ${q.name}`,
          });
          await check({
            method: op.method,
            path: `${path}?${q.name}=${enc(v)}`,
            headers: { ...AUTH, ...(op.body ? { 'content-type': 'application/json' } : {}) },
            ...(op.body ? { body: JSON.stringify(validBody(op) ?? {}) } : {}),
            label: `table query ${q.name}`,
          });
        }
      }
    }
    if (process.env.FUZZ_OUT) writeFileSync(`${process.env.FUZZ_OUT}.table`, failures.join('\n'));
    expect(failures).toEqual([]);
  }, 3_600_000);
});
