/**
 * The OpenAPI document (src/http/openapi.ts): served by the running api role at /openapi.json, a
 * valid OpenAPI 3.1 document by a real validator, with every route fastify registered (but the
 * hidden ones: the docs page's and the dashboard's) and each operation described (tags, summary,
 * a success response with a schema, the error shape). The docs page answers HTML from local
 * assets. A request the zod schemas refuse answers in the product's error shape, naming the field.
 */
import { Validator } from '@seriousme/openapi-schema-validator';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registeredRoutes } from '../../src/http/openapi.ts';
import type { Sandbox } from '../../src/sandbox/index.ts';
import { startTestApp, TEST_API_TOKEN, type TestApp } from '../support/app.ts';
import { startTestSandbox } from '../support/sandbox.ts';

interface Operation {
  tags?: string[];
  summary?: string;
  security?: unknown[];
  responses?: Record<string, { content?: Record<string, { schema?: unknown }> }>;
}
interface Document {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
  components: { securitySchemes: Record<string, unknown>; schemas: Record<string, unknown> };
}

const AUTH = { authorization: `Bearer ${TEST_API_TOKEN}` };
/** `/payments/:reference` as OpenAPI writes it: `/payments/{reference}`. */
const openapiPath = (url: string) => url.replace(/:([A-Za-z_]+)/g, '{$1}');

let sandbox: Sandbox;
let t: TestApp;
let http: FastifyInstance;
let doc: Document;

beforeAll(async () => {
  sandbox = await startTestSandbox();
  t = await startTestApp({
    sandboxUrl: sandbox.url,
    roles: ['api'],
    env: { DASHBOARD_USER: 'ops', DASHBOARD_PASSWORD: 'dashboard-password-1' },
  });
  http = t.running.http!;
  // Public: no token (auth.ts classifies it), like a browser opening the docs page.
  const res = await fetch(`${t.url}/openapi.json`);
  expect(res.status).toBe(200);
  doc = (await res.json()) as Document;
});
afterAll(async () => {
  await t?.close();
  await sandbox?.close();
});

describe('GET /openapi.json', () => {
  it('is a valid OpenAPI 3.1 document', async () => {
    const validator = new Validator();
    const res = await validator.validate(
      structuredClone(doc) as unknown as Parameters<Validator['validate']>[0],
    );
    expect(res.errors ?? []).toEqual([]);
    expect(res.valid).toBe(true);
    expect(validator.version).toBe('3.1');
    expect(doc.openapi).toBe('3.1.0');
  });

  it('has every route fastify registered, but the hidden ones, with its method', () => {
    const routes = registeredRoutes(http).filter(
      (r) => !r.hidden && r.method !== 'HEAD' && r.method !== 'OPTIONS',
    );
    // The routes of every route file are there (a sanity floor: the hook saw the registrations).
    expect(routes.length).toBeGreaterThanOrEqual(25);
    const missing = routes.filter(
      (r) => doc.paths[openapiPath(r.url)]?.[r.method.toLowerCase()] === undefined,
    );
    expect(missing).toEqual([]);
    // Nothing hidden leaks in: not the dashboard, not the docs page, not the document itself.
    expect(Object.keys(doc.paths).filter((p) => /^\/(admin|docs)|openapi/.test(p))).toEqual([]);
  });

  it('describes every operation: tags, summary, a success schema, the error shape, security', () => {
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        const where = `${method.toUpperCase()} ${path}`;
        expect(op.tags?.length, `${where} tags`).toBeGreaterThan(0);
        expect(op.summary, `${where} summary`).toBeTruthy();
        const codes = Object.keys(op.responses ?? {});
        const success = codes.filter((c) => /^2\d\d$/.test(c));
        expect(success.length, `${where} success response`).toBeGreaterThan(0);
        for (const c of success) {
          const content = op.responses?.[c]?.content ?? {};
          expect(Object.keys(content).length, `${where} ${c} content`).toBeGreaterThan(0);
        }
        expect(op.security, `${where} security`).toBeDefined();
        if (op.security!.length > 0) {
          // A guarded route documents its 401 in the one error shape.
          const unauthorized = op.responses?.['401']?.content?.['application/json']?.schema;
          expect(unauthorized, `${where} 401`).toEqual({ $ref: '#/components/schemas/Error' });
        }
      }
    }
  });

  it('states the access policy: bearer tokens, the webhook signature, public probes', () => {
    expect(Object.keys(doc.components.securitySchemes).sort()).toEqual([
      'apiToken',
      'dashboardBasic',
      'payloadSignature',
      'readToken',
    ]);
    expect(doc.paths['/payments']?.post?.security).toEqual([{ apiToken: [] }]);
    expect(doc.paths['/payments']?.get?.security).toEqual([{ apiToken: [] }, { readToken: [] }]);
    expect(doc.paths['/webhooks/sayswitch']?.post?.security).toEqual([{ payloadSignature: [] }]);
    expect(doc.paths['/healthz']?.get?.security).toEqual([]);
  });

  it('describes bodies truthfully: the payment body from the field rules, the CSV upload', () => {
    const body = JSON.stringify(doc.paths['/payments']?.post?.['requestBody' as 'responses']);
    expect(body).toContain('#/components/schemas/ChargeInput');
    expect(body).toContain('#/components/schemas/PayoutInput');
    // The charge and payout fields of input/instructions.ts, meta_* fields, nothing else.
    const charge = doc.components.schemas.ChargeInput as Record<string, unknown>;
    const payout = doc.components.schemas.PayoutInput as Record<string, unknown>;
    expect(Object.keys(charge.properties as object)).toContain('card_token');
    expect(Object.keys(payout.properties as object)).toEqual(
      expect.arrayContaining(['account_number', 'bank_code', 'payment_mode']),
    );
    for (const kind of [charge, payout]) {
      expect(kind.additionalProperties).toBe(false);
      expect(kind.patternProperties).toEqual({ '^meta_': { type: 'string' } });
    }
    // A subscription needs an anchor or a trial (whose end is its anchor): the parser's cross-check.
    const subscription = doc.components.schemas.SubscriptionCreate as Record<string, unknown>;
    expect(subscription.anyOf).toEqual([{ required: ['anchor'] }, { required: ['trial_end'] }]);
    expect(subscription.required).not.toContain('anchor');
    // A pause may come without a body; a change may not.
    const bodyOf = (path: string, m: string) =>
      (doc.paths[path]?.[m] as { requestBody?: { required?: boolean } }).requestBody;
    expect(bodyOf('/subscriptions/{id}/pause', 'post')?.required).toBe(false);
    expect(bodyOf('/subscriptions/{id}', 'patch')?.required).toBe(true);
    const upload = doc.paths['/batches']?.post as { requestBody?: { content?: object } };
    expect(Object.keys(upload.requestBody?.content ?? {})).toEqual(['text/csv']);
    const results = doc.paths['/batches/{id}/results']?.get?.responses?.['200']?.content;
    expect(Object.keys(results ?? {})).toEqual(['text/csv']);
  });
});

describe('the docs page', () => {
  it('answers HTML, its assets served locally', async () => {
    const page = await fetch(`${t.url}/docs`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
    const css = await fetch(`${t.url}/docs/static/swagger-ui.css`);
    expect(css.status).toBe(200);
    // Scripts from the server only; nothing that breaks the page over plain HTTP.
    const csp = css.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('upgrade-insecure-requests');
  });
});

describe('requests the zod schemas refuse answer in the one error shape, naming the field', () => {
  it('a query parameter (GET /batches?status=)', async () => {
    const res = await http.inject({ url: '/batches?status=paid&limit=2', headers: AUTH });
    expect(res.statusCode).toBe(422);
    expect(res.json()).toEqual({
      error: {
        code: 'invalid_query',
        message: expect.any(String) as string,
        details: [{ field: 'status', message: expect.stringContaining('queued') as string }],
      },
    });
  });

  it('an unknown query parameter is named', async () => {
    const res = await http.inject({ url: '/payments?colour=red', headers: AUTH });
    expect(res.statusCode).toBe(422);
    const body = res.json<{ error: { code: string; details: { field: string }[] } }>();
    expect(body.error.code).toBe('invalid_query');
    expect(body.error.details.map((d) => d.field)).toEqual(['colour']);
  });

  it('a body field (POST /test-clocks)', async () => {
    const res = await http.inject({
      method: 'POST',
      url: '/test-clocks',
      headers: AUTH,
      payload: { frozen_time: 'yesterday', colour: 'red' },
    });
    expect(res.statusCode).toBe(422);
    const body = res.json<{ error: { code: string; details: { field: string }[] } }>();
    expect(body.error.code).toBe('invalid_test_clock');
    expect(body.error.details.map((d) => d.field).sort()).toEqual(['colour', 'frozen_time']);
    expect(res.body).not.toContain('FST_');
  });

  it('a file upload with no body at all is 415, not a 500 (POST /batches)', async () => {
    const res = await http.inject({ method: 'POST', url: '/batches?type=charge', headers: AUTH });
    expect(res.statusCode).toBe(415);
    expect(res.json<{ error: { code: string } }>().error.code).toBe('unsupported_media_type');
  });

  it('a body the document says is optional may be left out (POST …/refunds)', async () => {
    // Not a charge this deployment made: the refusal is about the payment, not the missing body.
    const res = await http.inject({
      method: 'POST',
      url: '/payments/api_no-such-charge/refunds',
      headers: AUTH,
    });
    expect(res.statusCode).toBe(404);
  });
});

describe('what fastify answers before a route runs is in the document, route by route', () => {
  /** Every key under the app's prefix, to show a refused request wrote nothing. */
  async function keysOfApp(): Promise<string[]> {
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await t.app.redis.scan(cursor, 'MATCH', `${t.prefix}:*`, 'COUNT', 1000);
      cursor = next;
      keys.push(...batch);
    } while (cursor !== '0');
    return keys.sort();
  }

  it('a wrong media type, malformed JSON, a body over the limit, a bad path parameter: documented, refused, nothing written', async () => {
    const before = await keysOfApp();
    const undocumented: string[] = [];
    const wrongShape: string[] = [];
    /** What each probe answered, per status, on the routes that read a JSON body. */
    const statuses: Record<string, Set<number>> = {};
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        const where = `${method.toUpperCase()} ${path}`;
        const documented = Object.keys(op.responses ?? {});
        const url = path.replace(/\{[^}]+\}/g, 'x');
        const probes: { what: string; url: string; type?: string; payload?: string }[] = [];
        if (method !== 'get') {
          probes.push(
            { what: 'text/plain', url, type: 'text/plain', payload: 'hello' },
            { what: 'malformed JSON', url, type: 'application/json', payload: '{"a":' },
            {
              what: 'over the limit',
              url,
              type: 'application/json',
              payload: `{"a":"${'x'.repeat(1_100_000)}"}`,
            },
          );
        }
        if (path.includes('{')) {
          probes.push(
            { what: 'over-long parameter', url: path.replace(/\{[^}]+\}/g, 'x'.repeat(101)) },
            { what: 'undecodable parameter', url: path.replace(/\{[^}]+\}/g, '%E0%A4%A') },
          );
        }
        for (const p of probes) {
          const res = await http.inject({
            method: method.toUpperCase() as 'GET',
            url: p.url,
            headers: { ...AUTH, ...(p.type ? { 'content-type': p.type } : {}) },
            ...(p.payload !== undefined ? { payload: p.payload } : {}),
          });
          if (path !== '/webhooks/sayswitch') (statuses[p.what] ??= new Set()).add(res.statusCode);
          if (!documented.includes(String(res.statusCode)))
            undocumented.push(
              `${where}, ${p.what}: ${res.statusCode} (documented ${documented.join(' ')})`,
            );
          const error = res.json<{ error?: { code?: unknown; message?: unknown } }>().error;
          if (typeof error?.code !== 'string' || typeof error.message !== 'string')
            wrongShape.push(`${where}, ${p.what}: ${res.statusCode} ${res.body.slice(0, 120)}`);
        }
      }
    }
    expect(undocumented).toEqual([]);
    expect(wrongShape).toEqual([]);
    // Each is the framework's answer on every route that reads JSON: nothing reached a handler.
    expect(statuses).toEqual({
      'text/plain': new Set([415]),
      'malformed JSON': new Set([400]),
      'over the limit': new Set([413]),
      'over-long parameter': new Set([414]),
      'undecodable parameter': new Set([400]),
    });
    expect(await keysOfApp()).toEqual(before);
    // A route with a path parameter and a body says both of its 400s.
    const resolve400 = doc.paths['/payments/{reference}/resolve']?.post?.responses?.['400'] as {
      description?: string;
    };
    expect(resolve400.description).toMatch(/URL is malformed.*or the body is not valid JSON/);
  });
});
