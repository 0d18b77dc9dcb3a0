/**
 * The operator console without a browser (docs/console.md): who may open it and act in it, the
 * CSRF check of its forms, escaping of everything it renders, and that no card token, sealed
 * field or full account number reaches a page. Real app (api role), real Redis, real sandbox.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { submitBatch } from '../../src/batches/ingest.ts';
import { csrfTokens } from '../../src/console/access.ts';
import { createPayment } from '../../src/payments/create.ts';
import type { IntentKey } from '../../src/kernel/ids.ts';
import type { Sandbox } from '../../src/sandbox/index.ts';
import { createDeps, startTestApp, TEST_API_TOKEN, type TestApp } from '../support/app.ts';
import { startTestSandbox } from '../support/sandbox.ts';
import { createMonthlySubscription } from '../support/subscriptions.ts';

const READ_TOKEN = 'test-read-token-0123456789';
const USER = 'ops';
const PASSWORD = 'console pass';
const BASIC = { authorization: `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}` };
const WRITE = { authorization: `Bearer ${TEST_API_TOKEN}` };
const READ = { authorization: `Bearer ${READ_TOKEN}` };
const SCRIPT = '<script>window.__xss = 1</script>';
const CARD_TOKEN = 'tok_console_secret_0123456789abcdef';

let sandbox: Sandbox;
let t: TestApp;
let http: FastifyInstance;

beforeAll(async () => {
  sandbox = await startTestSandbox();
  t = await startTestApp({
    sandboxUrl: sandbox.url,
    roles: ['api'],
    env: { API_READ_TOKEN: READ_TOKEN, DASHBOARD_USER: USER, DASHBOARD_PASSWORD: PASSWORD },
  });
  http = t.running.http!;
  const created = await createPayment(createDeps(t.app), {
    type: 'charge',
    key: 'xss-1',
    email: 'ada@example.com',
    amount: '1500.50',
    currency: 'NGN',
    card_token: CARD_TOKEN,
    narration: SCRIPT,
  });
  expect(created.status).toBe('created');
  const batch = await submitBatch(t.app, {
    input:
      'reference,account_number,bank_code,bank_name,account_name,amount,currency,narration,meta_note\n' +
      `x1,0123456789,058,GTBank,Ada Obi,2500,NGN,"${SCRIPT.replace(/"/g, '""')}","<img src=x onerror=alert(1)>"\n`,
    type: 'payout',
    id: 'console-xss',
    sourceName: '<b>evil</b>.csv',
  });
  expect(batch.status).toBe('created');
});

afterAll(async () => {
  await t?.close();
  await sandbox?.close();
});

const get = (url: string, headers: Record<string, string> = BASIC) =>
  http.inject({ method: 'GET', url, headers });
const post = (url: string, form: Record<string, string>, headers: Record<string, string> = BASIC) =>
  http.inject({
    method: 'POST',
    url,
    headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams(form).toString(),
  });

/** The CSRF token the console put in a page's forms. */
async function csrfOf(url: string): Promise<string> {
  const page = await get(url);
  const m = /name="_csrf" value="([^"]+)"/.exec(page.body);
  expect(m, `a form with a CSRF token on ${url}`).not.toBeNull();
  return m![1]!;
}

describe('console access', () => {
  it('answers 401 without credentials or with wrong ones, and reads with either credential', async () => {
    for (const url of ['/console', '/console/payments', '/console/inbox', '/console/batches']) {
      const none = await get(url, {});
      expect(none.statusCode, url).toBe(401);
      expect(none.headers['www-authenticate']).toMatch(/^Basic /);
      const wrong = `Basic ${Buffer.from(`${USER}:nope`).toString('base64')}`;
      expect((await get(url, { authorization: wrong })).statusCode, url).toBe(401);
      expect((await get(url, { authorization: 'Bearer nope' })).statusCode, url).toBe(401);
    }
    for (const headers of [BASIC, READ, WRITE]) {
      const res = await get('/console/payments', headers);
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toMatch(/^text\/html/);
      expect(res.headers['content-security-policy']).toContain("script-src 'self'");
    }
  });

  it('refuses actions from the read token, across sites, and without the form token', async () => {
    const url = '/console/batches/console-xss/cancel';
    const read = await post(url, {}, READ);
    expect(read.statusCode).toBe(403);
    const token = await csrfOf('/console/batches/console-xss');
    const noToken = await post(url, {});
    expect(noToken.statusCode).toBe(403);
    const wrongToken = await post(url, { _csrf: `${token}x` });
    expect(wrongToken.statusCode).toBe(403);
    const crossSite = await post(
      url,
      { _csrf: token },
      { ...BASIC, 'sec-fetch-site': 'cross-site' },
    );
    expect(crossSite.statusCode).toBe(403);
    const foreign = await post(url, { _csrf: token }, { ...BASIC, origin: 'https://evil.example' });
    expect(foreign.statusCode).toBe(403);
    // Same-site is another site for the console (a sibling subdomain); an unparsable Origin is foreign.
    const sameSite = await post(url, { _csrf: token }, { ...BASIC, 'sec-fetch-site': 'same-site' });
    expect(sameSite.statusCode).toBe(403);
    const garbled = await post(url, { _csrf: token }, { ...BASIC, origin: 'not a url' });
    expect(garbled.statusCode).toBe(403);
    // The form token is asked of every basic-auth action, whatever the body's type.
    const json = await http.inject({
      method: 'POST',
      url,
      headers: { ...BASIC, 'content-type': 'application/json' },
      payload: '{}',
    });
    expect(json.statusCode).toBe(403);
    // Nothing was canceled by any of them.
    expect((await t.app.batches.get('console-xss'))?.canceledAt).toBeUndefined();
  });

  it('resolving needs a note: refused with the reason, the payment unchanged', async () => {
    const token = await csrfOf('/console/batches/console-xss');
    const res = await post('/console/payments/api_xss-1/resolve', {
      _csrf: token,
      outcome: 'failed',
      note: '   ',
    });
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe('/console/inbox/api_xss-1');
    const cookie = String(res.headers['set-cookie']).split(';')[0]!;
    const next = await get('/console/inbox/api_xss-1', { ...BASIC, cookie });
    expect(next.body).toContain('note is required');
    expect((await t.app.store.get('api_xss-1'))?.state).toBe('queued');
  });
});

describe('console access with DASHBOARD_READ_ONLY', () => {
  it('the dashboard credentials read the console but do not act in it', async () => {
    const ro = await startTestApp({
      sandboxUrl: sandbox.url,
      roles: ['api'],
      env: { DASHBOARD_USER: USER, DASHBOARD_PASSWORD: PASSWORD, DASHBOARD_READ_ONLY: 'true' },
    });
    try {
      const roHttp = ro.running.http!;
      const page = await roHttp.inject({ method: 'GET', url: '/console/batches', headers: BASIC });
      expect(page.statusCode).toBe(200);
      expect(page.body).not.toContain('name="_csrf"');
      // Even with a token a writable console would accept (the key is the deployment's).
      const _csrf = csrfTokens(ro.app.config.dataEncryptionKey).tokenFor(`console:${USER}`);
      const res = await roHttp.inject({
        method: 'POST',
        url: '/console/batches/none/cancel',
        headers: { ...BASIC, 'content-type': 'application/x-www-form-urlencoded' },
        payload: new URLSearchParams({ _csrf }).toString(),
      });
      expect(res.statusCode).toBe(403);
      expect(res.body).toContain('Read-only');
    } finally {
      await ro.close();
    }
  });
});

describe('console actions', () => {
  /** POSTs a console form as a browser would and follows the redirect: the page's flash text. */
  let token: string | undefined;
  async function act(url: string, form: Record<string, string> = {}) {
    // The token is the operator's (one per identity): read once, while the batch page has forms.
    token ??= await csrfOf('/console/batches/console-xss');
    const res = await post(url, { _csrf: token, ...form });
    expect(res.statusCode, url).toBe(303);
    const cookie = String(res.headers['set-cookie']).split(';')[0]!;
    const next = await get(String(res.headers.location), { ...BASIC, cookie });
    return /class="flash (ok|error)"[^>]*>\s*([^<]*)/.exec(next.body)?.slice(1) ?? [];
  }

  it('pause, resume and cancel a subscription through the subscription service', async () => {
    const created = await createMonthlySubscription(t.app, 'console-sub');
    expect(created.status).toBe('created');
    const base = '/console/subscriptions/console-sub';
    const bad = await act(`${base}/pause`, { resume_at: 'tomorrow' });
    expect(bad[0]).toBe('error');
    expect(bad[1]).toContain('resume_at');
    // Not in dunning: no retry form, and a posted retry is refused with the API's words.
    expect((await get(base)).body).not.toContain(`${base}/retry`);
    const retry = await act(`${base}/retry`);
    expect(retry[0]).toBe('error');
    expect(retry[1]?.trim()).toBe(
      'Subscription console-sub has no failed renewal to retry (it is in no dunning).',
    );
    expect((await act(`${base}/pause`))[0]).toBe('ok');
    expect((await t.app.subscriptions.get('console-sub'))?.sub.status).toBe('paused');
    expect((await act(`${base}/resume`))[0]).toBe('ok');
    expect((await t.app.subscriptions.get('console-sub'))?.sub.status).toBe('active');
    expect((await act(`${base}/cancel`, { at_period_end: 'true' }))[0]).toBe('ok');
    const sub = (await t.app.subscriptions.get('console-sub'))?.sub;
    expect(sub?.cancelAtPeriodEnd).toBe(true);
    const page = await get(base);
    expect(page.body).toContain('49.99');
    expect(page.body).not.toContain('tok_console_sub_0123456789');
  });

  it('ends a trial now from its page; the form is gone once the trial has ended', async () => {
    // The anchor of a trial is its end (given here as the same instant).
    const end = new Date(Math.floor(Date.now() / 1000) * 1000 + 7 * 86_400_000).toISOString();
    const created = await createMonthlySubscription(t.app, 'console-trial', {
      anchor: end,
      trial_end: end,
    });
    expect(created.status).toBe('created');
    const base = '/console/subscriptions/console-trial';
    expect((await get(base)).body).toContain(`${base}/end-trial`);
    const ended = await act(`${base}/end-trial`);
    expect(ended[0]).toBe('ok');
    expect(ended[1]).toContain('the trial ended');
    const sub = (await t.app.subscriptions.get('console-trial'))?.sub;
    expect(sub?.trial?.end).toBeLessThanOrEqual(Date.now());
    expect(sub?.nextPeriodStart).toBe(sub?.trial?.end);
    expect((await get(base)).body).not.toContain(`${base}/end-trial`);
    const again = await act(`${base}/end-trial`);
    expect(again[0]).toBe('error');
    expect(again[1]).toContain('the trial ended at');
  });

  it("finds a customer's subscriptions by email; a bad address says so", async () => {
    for (const [id, email] of [
      ['console-em-1', 'Grace@Example.com'],
      ['console-em-2', 'other@example.com'],
    ] as const)
      expect((await createMonthlySubscription(t.app, id, { customer_email: email })).status).toBe(
        'created',
      );
    const found = await get('/console/subscriptions?email=grace%40example.com');
    expect(found.statusCode).toBe(200);
    expect(found.body).toContain('console-em-1');
    expect(found.body).not.toContain('console-em-2');
    expect(found.body).toContain('value="grace@example.com"');
    const bad = await get('/console/subscriptions?email=grace');
    expect(bad.statusCode).toBe(200);
    expect(bad.body).toMatch(
      /class="flash error"[^>]*>\s*email (&quot;|&#34;)grace\1 is not valid/,
    );
    expect(bad.body).toContain('No subscriptions.');
  });

  it('retry now: the form shows while in dunning and not paused; the flash says what it did', async () => {
    expect((await createMonthlySubscription(t.app, 'console-dun')).status).toBe('created');
    await t.app.subscriptions.mutate('console-dun', (cur) => ({
      decision: {
        next: {
          ...cur,
          status: 'past_due' as const,
          dunning: [
            {
              key: 'sub_console-dun_20300131' as IntentKey,
              period: 0,
              attempt: 1,
              step: 0,
              failedAt: Date.parse('2030-01-31T08:00:00Z'),
              dueAt: Date.parse('2030-02-01T08:00:00Z'),
              reason: 'Declined',
            },
          ],
        },
        events: [],
      },
      value: undefined,
    }));
    const base = '/console/subscriptions/console-dun';
    expect((await get(base)).body).toContain(`${base}/retry`);
    expect(await act(`${base}/retry`)).toEqual([
      'ok',
      expect.stringContaining('Subscription console-dun retried; status past_due.'),
    ]);
    expect(await act(`${base}/retry`)).toEqual([
      'ok',
      expect.stringContaining('unchanged (its retry is already due)'),
    ]);
    expect((await act(`${base}/pause`))[0]).toBe('ok');
    expect((await get(base)).body).not.toContain(`${base}/retry`);
    const paused = await act(`${base}/retry`);
    expect(paused[0]).toBe('error');
    expect(paused[1]?.trim()).toBe(
      'Subscription console-dun is paused: resume it first (a paused subscription runs no retries).',
    );
  });

  it("an email search's next page keeps the email", async () => {
    for (let i = 0; i <= 50; i++)
      expect(
        (
          await createMonthlySubscription(t.app, `console-pg-${String(i).padStart(2, '0')}`, {
            customer_email: 'pager@example.com',
          })
        ).status,
      ).toBe('created');
    expect(
      (
        await createMonthlySubscription(t.app, 'console-pg-zz', {
          customer_email: 'zz@example.com',
        })
      ).status,
    ).toBe('created');
    const first = await get('/console/subscriptions?email=pager%40example.com');
    expect(first.body).toContain('console-pg-49');
    const link = /href="([^"]+)"[^>]*>Next page/.exec(first.body)?.[1]?.replace(/&amp;/g, '&');
    expect(link).toContain('email=pager%40example.com');
    const second = await get(link!);
    expect(second.body).toContain('console-pg-50');
    expect(second.body).not.toContain('console-pg-zz');
  });

  it('a JSON cancel with at_period_end true (a bearer-token client) cancels at period end', async () => {
    const created = await createMonthlySubscription(t.app, 'console-sub-json');
    expect(created.status).toBe('created');
    const res = await http.inject({
      method: 'POST',
      url: '/console/subscriptions/console-sub-json/cancel',
      headers: { ...WRITE, 'content-type': 'application/json' },
      payload: JSON.stringify({ at_period_end: true }),
    });
    expect(res.statusCode).toBe(303);
    const sub = (await t.app.subscriptions.get('console-sub-json'))?.sub;
    expect(sub?.status).toBe('active');
    expect(sub?.cancelAtPeriodEnd).toBe(true);
  });

  it("cancels a batch's unsent rows through the batch service, as the operator", async () => {
    const [kind, text] = await act('/console/batches/console-xss/cancel');
    expect(kind).toBe('ok');
    expect(text).toContain('1 unsent rows failed as canceled');
    expect((await t.app.batches.get('console-xss'))?.canceledBy).toBe(`console:${USER}`);
    // Nothing to retry: canceled rows are not failed by the gateway's word.
    const retry = await act('/console/batches/console-xss/retry-failed');
    expect(retry[1]).toMatch(/no failed rows to retry|not final yet/);
    expect((await act('/console/batches/no%20such/approve'))[0]).toBe('error');
  });
});

describe('the review inbox', () => {
  it('lists unknown payments older than RESOLVE_UNKNOWN_AFTER and counts the younger ones', async () => {
    const deps = createDeps(t.app);
    const hourMs = 3_600_000;
    for (const [key, at] of [
      ['old-unknown', Date.now() - 2 * hourMs],
      ['young-unknown', Date.now()],
    ] as const) {
      const r = await createPayment(deps, {
        type: 'charge',
        key,
        email: 'inbox@example.com',
        amount: '10.00',
        currency: 'NGN',
        card_token: 'tok_inbox_0123456789',
      });
      if (r.status !== 'created') throw new Error(r.status);
      expect((await t.app.store.transition(r.intent.key, 'submitting', at)).ok).toBe(true);
      expect((await t.app.store.transition(r.intent.key, 'unknown', at)).ok).toBe(true);
    }
    const inbox = await get('/console/inbox');
    const unknown = /<section id="unknown">([\s\S]*?)<\/section>/.exec(inbox.body)?.[1] ?? '';
    expect(unknown).toContain('data-key="api_old-unknown"');
    expect(unknown).not.toContain('api_young-unknown');
    expect(unknown).toContain('1 younger unknown payments');
  });
});

describe('console rendering', () => {
  it('escapes a narration, a meta_* column and a file name; no card token or sealed field', async () => {
    const charge = await get('/console/payments/api_xss-1');
    expect(charge.statusCode).toBe(200);
    expect(charge.body).not.toContain(SCRIPT);
    expect(charge.body).toContain('&lt;script&gt;window.__xss = 1&lt;/script&gt;');
    expect(charge.body).toContain('1,500.50');
    expect(charge.body).not.toContain(CARD_TOKEN);
    const intent = await t.app.store.get('api_xss-1');
    if (intent?.payee.kind !== 'charge') throw new Error('expected a charge');
    expect(charge.body).not.toContain(intent.payee.cardTokenSealed);

    const row = await get('/console/payments/bat_console-xss_x1');
    expect(row.statusCode).toBe(200);
    expect(row.body).not.toContain('<img src=x');
    expect(row.body).toContain('&lt;img src=x onerror=alert(1)&gt;');
    expect(row.body).toContain('&lt;script&gt;');
    // The account number is shown by its last four digits only.
    expect(row.body).not.toContain('0123456789');
    expect(row.body).toContain('••••6789');

    const list = await get('/console/batches');
    expect(list.body).toContain('href="/console/batches/console-xss"');
    expect(list.body).not.toContain('<b>evil</b>');
    // The list is the operator API's (GET /batches): a cursor it refuses is said, not a 500.
    const stale = await get('/console/batches?cursor=not-a-cursor');
    expect(stale.statusCode).toBe(200);
    expect(stale.body).toContain('That page link is no longer valid.');
    const batch = await get('/console/batches/console-xss');
    expect(batch.body).not.toContain('<b>evil</b>');
    expect(batch.body).toContain('&lt;b&gt;evil&lt;/b&gt;.csv');
  });

  it('a search echoes the query escaped; an email finds its payments; a key opens the payment', async () => {
    const q = encodeURIComponent('"><script>x</script>');
    const res = await get(`/console/payments?q=${q}`);
    expect(res.body).not.toContain('<script>x</script>');
    expect(res.body).toContain('&quot;&gt;&lt;script&gt;x&lt;/script&gt;');

    const byEmail = await get('/console/payments?q=ADA%40example.com');
    expect(byEmail.body).toContain('data-key="api_xss-1"');
    const byKey = await get('/console/payments?q=xss-1');
    expect(byKey.statusCode).toBe(303);
    expect(byKey.headers.location).toBe('/console/payments/api_xss-1');
    const byCurrency = await get('/console/payments?currency=USD');
    expect(byCurrency.body).not.toContain('data-key="api_xss-1"');
  });

  it('odd input gets a page or a 404, never a 500: a long search, a key of another kind, repeats', async () => {
    const long = await get(`/console/payments?q=${'a'.repeat(321)}`);
    expect(long.statusCode).toBe(200);
    expect(long.body).toContain('longer than 320 characters');
    // `<key>:history` names the payment's history list in Redis, not a payment.
    const history = encodeURIComponent('api_xss-1:history');
    expect((await get(`/console/payments/${history}`)).statusCode).toBe(404);
    const search = await get(`/console/payments?q=${history}`);
    expect(search.statusCode).toBe(200);
    expect(search.body).toContain('No payment with key or reference');
    expect(
      (await http.inject({ method: 'GET', url: `/payments/${history}`, headers: READ })).statusCode,
    ).toBe(404);
    expect((await get('/console/batches?id=a&id=b')).statusCode).toBe(200);
    expect((await get('/console/batches?cursor=a&cursor=b')).statusCode).toBe(200);
  });
});
