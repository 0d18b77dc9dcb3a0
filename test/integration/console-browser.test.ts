/**
 * The operator console in a real browser (docs/console.md): headless Chromium driven by
 * playwright-core against the real app (api, worker, reconciler roles), real Redis and the
 * sandbox. An operator searches a payment and opens its timeline, resolves a needs_review payment
 * from the inbox (the form refuses without a note), watches a batch's failed count rise while it
 * runs (the page is never reloaded: its script refreshes the numbers), sees a `<script>` in a
 * narration and a `meta_*` column as text, and reads every list with JavaScript disabled.
 *
 * Skipped, with a visible warning, only where no Chromium is installed (test/support/browser.ts).
 */
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { submitBatch } from '../../src/batches/ingest.ts';
import { createPayment } from '../../src/payments/create.ts';
import type { Sandbox } from '../../src/sandbox/index.ts';
import { createDeps, startTestApp, type TestApp } from '../support/app.ts';
import { launchBrowser, noBrowser } from '../support/browser.ts';
import { until } from '../support/poll.ts';
import { findFreePort } from '../support/redis-server.ts';
import { startTestSandbox } from '../support/sandbox.ts';
import { createMonthlySubscription } from '../support/subscriptions.ts';

const USER = 'ops';
const PASSWORD = 'browser pass';
const SCRIPT = '<script>window.__xss = 1; alert("xss")</script>';
const META = '<img src=x onerror="window.__xss = 2">';

let sandbox: Sandbox;
let t: TestApp;
let browser: Browser;
let operator: BrowserContext;

const payments = () => createDeps(t.app);

/** Every dialog any page opened (an executed `alert`): none may. */
const dialogs: string[] = [];

/** A page of the operator's context that records (and dismisses) any dialog. */
async function openPage(ctx: BrowserContext = operator): Promise<Page> {
  const page = await ctx.newPage();
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });
  return page;
}

describe.skipIf(noBrowser !== undefined)('the operator console in a browser', () => {
  beforeAll(async () => {
    const port = await findFreePort();
    // 3-D Secure cards (a charge nobody authenticates ends in needs_review), synchronous payouts.
    sandbox = await startTestSandbox({ cardFlow: '3ds2', threeDsExpiryMs: 600_000 });
    t = await startTestApp({
      sandboxUrl: sandbox.url,
      roles: ['api', 'worker', 'reconciler'],
      env: {
        PORT: String(port),
        DASHBOARD_USER: USER,
        DASHBOARD_PASSWORD: PASSWORD,
        REQUIRES_ACTION_WINDOW: '300ms',
        RESOLVE_UNKNOWN_AFTER: '1h',
        BATCH_APPROVAL: 'payouts',
        // Slow enough that a batch of 40 rows takes a few seconds to run.
        SAYSWITCH_RATE_LIMIT_PER_SEC: '10',
      },
    });
    browser = await launchBrowser();
    operator = await browser.newContext({
      httpCredentials: { username: USER, password: PASSWORD },
      viewport: { width: 1280, height: 800 },
    });
  }, 60_000);

  afterAll(async () => {
    await operator?.close();
    await browser?.close();
    await t?.close();
    await sandbox?.close();
  });

  it('searches a payment by the customer email and opens its timeline', async () => {
    const r = await createPayment(payments(), {
      type: 'charge',
      key: 'find-me',
      email: 'grace@example.com',
      amount: '1250.75',
      currency: 'USD',
      card_token: 'tok_browser_0123456789abcdef',
      narration: 'annual plan',
    });
    expect(r.status).toBe('created');
    const page = await openPage();
    await page.goto(`${t.url}/console/payments`);
    await page.getByRole('searchbox').fill('grace@example.com');
    await page.getByRole('button', { name: 'Search' }).click();
    const row = page.locator('tr[data-key="api_find-me"]');
    await row.waitFor();
    expect(await row.textContent()).toContain('1,250.75');
    await row.getByRole('link', { name: 'api_find-me' }).click();
    await page.waitForURL(/\/console\/payments\/api_find-me$/);
    expect(await page.locator('h1').textContent()).toBe('Payment api_find-me');
    const timeline = page.locator('#timeline li');
    expect(await timeline.count()).toBeGreaterThan(0);
    expect(await page.locator('#timeline').textContent()).toContain('created');
    expect(await page.content()).not.toContain('tok_browser_0123456789abcdef');
    await page.close();
  });

  it('resolves a needs_review payment from the inbox; the form refuses without a note', async () => {
    const r = await createPayment(payments(), {
      type: 'charge',
      key: 'review-me',
      email: 'review@example.com',
      amount: '75.00',
      currency: 'NGN',
      card_token: 'tok_review_0123456789',
    });
    expect(r.status).toBe('created');
    const intent = await until(() => t.app.store.get('api_review-me'), {
      done: (i) => i?.state === 'needs_review',
      what: 'api_review-me in needs_review',
      timeoutMs: 30_000,
    });
    // The payer completes the challenge after all: Sayswitch now says succeeded.
    expect(sandbox.authenticate(intent!.reference, 'complete').status).toBe(200);

    const page = await openPage();
    await page.goto(`${t.url}/console/inbox`);
    const row = page.locator('#needs-review tr[data-key="api_review-me"]');
    await row.getByRole('link', { name: 'Review', exact: true }).click();
    await page.waitForURL(/\/console\/inbox\/api_review-me$/);
    expect(await page.locator('.gateway-word').textContent()).toBe('succeeded');

    // No note: the browser refuses to send the form; nothing changes.
    await page.getByRole('button', { name: 'Resolve' }).click();
    expect(await page.locator('textarea[name="note"]:invalid').count()).toBe(1);
    expect(page.url()).toMatch(/\/console\/inbox\/api_review-me$/);
    expect((await t.app.store.get('api_review-me'))?.state).toBe('needs_review');

    await page.locator('textarea[name="note"]').fill('payer completed 3DS; Sayswitch shows paid');
    await page.getByRole('button', { name: 'Resolve' }).click();
    await page.waitForURL(/\/console\/payments\/api_review-me$/);
    expect(await page.locator('.flash.ok').textContent()).toContain('resolved as succeeded');
    expect(await page.locator('.resolution').textContent()).toContain(`console:${USER}`);
    const stored = await t.app.store.get('api_review-me');
    expect(stored?.state).toBe('succeeded');
    const last = (await t.app.store.history('api_review-me')).at(-1);
    expect(last?.resolution).toMatchObject({
      by: `console:${USER}`,
      gateway: 'succeeded',
      forced: false,
    });
    await page.close();
  });

  it("watches a batch's failed count rise while it runs, without reloading the page", async () => {
    // 40 payouts, every fourth declined by the sandbox (amounts ending in .51).
    const lines = Array.from({ length: 40 }, (_, i) => {
      const amount = i % 4 === 0 ? '100.51' : '100.00';
      return `w${i + 1},0123456789,058,GTBank,Ada Obi,${amount},NGN,watch ${i + 1}`;
    });
    const csv = `reference,account_number,bank_code,bank_name,account_name,amount,currency,narration\n${lines.join('\n')}\n`;
    const submitted = await submitBatch(t.app, {
      input: csv,
      type: 'payout',
      id: 'watch-1',
      sourceName: 'watch.csv',
      submittedBy: 'API_TOKEN',
    });
    expect(submitted.batch?.state).toBe('awaiting_approval');

    const watcher = await openPage();
    await watcher.goto(`${t.url}/console/batches/watch-1`);
    const failed = watcher.locator('[data-count="failed"]');
    expect(await failed.textContent()).toBe('0');
    // Marks this document: a reload would lose it.
    await watcher.evaluate(() => {
      (globalThis as unknown as { __same: boolean }).__same = true;
    });

    // Another tab approves it (the operator is not the submitter, so the service allows it).
    const approver = await openPage();
    await approver.goto(`${t.url}/console/batches/watch-1`);
    await approver.getByRole('button', { name: 'Approve', exact: true }).click();
    await approver.waitForURL(/\/console\/batches\/watch-1$/);
    expect(await approver.locator('.flash.ok').textContent()).toContain('approved');
    await approver.close();

    // The watcher's numbers change by themselves: failed rises to the 10 declined rows.
    await until(
      async () =>
        (await watcher.locator('#progress').getAttribute('data-refresh')) === 'done' &&
        (await failed.textContent()) === '10',
      { what: 'the watched page showing the batch completed with 10 failed', timeoutMs: 60_000 },
    );
    expect(
      await watcher.evaluate(() => (globalThis as unknown as { __same?: boolean }).__same),
    ).toBe(true);
    expect(await watcher.locator('[data-count="succeeded"]').textContent()).toBe('30');
    expect(await watcher.locator('#failed-rows tbody tr').count()).toBe(10);
    expect(await watcher.locator('#failed-rows').textContent()).toContain('declined');
    await watcher.close();
  });

  it('shows a <script> in a narration and in a meta_* column as text; nothing runs', async () => {
    const r = await createPayment(payments(), {
      type: 'charge',
      key: 'xss-browser',
      email: 'xss@example.com',
      amount: '10.00',
      currency: 'NGN',
      card_token: 'tok_xss_0123456789abcdef',
      narration: SCRIPT,
    });
    expect(r.status).toBe('created');
    const quoted = (s: string) => `"${s.replace(/"/g, '""')}"`;
    const b = await submitBatch(t.app, {
      input:
        'reference,account_number,bank_code,bank_name,account_name,amount,currency,narration,meta_note\n' +
        `x1,0123456789,058,GTBank,Ada Obi,20,NGN,${quoted(SCRIPT)},${quoted(META)}\n`,
      type: 'payout',
      id: 'xss-browser',
      sourceName: 'xss.csv',
      submittedBy: 'API_TOKEN',
      approval: 'none',
    });
    expect(b.status).toBe('created');

    const page = await openPage();
    for (const key of ['api_xss-browser', 'bat_xss-browser_x1']) {
      await page.goto(`${t.url}/console/payments/${key}`);
      expect(await page.locator('.narration').textContent()).toBe(SCRIPT);
      expect(await page.locator('.narration').isVisible()).toBe(true);
      expect(await page.evaluate(() => (globalThis as unknown as { __xss?: number }).__xss)).toBe(
        undefined,
      );
    }
    expect(await page.locator('.meta').textContent()).toBe(META);
    expect(await page.locator('main img').count()).toBe(0);
    expect(await page.locator('main script').count()).toBe(0);
    expect(dialogs).toEqual([]);
    await page.close();
  });

  it('reads every list with JavaScript disabled', async () => {
    const sub = await createMonthlySubscription(t.app, 'nojs-sub', {
      customer_email: 'nojs@example.com',
      card_token: 'tok_nojs_0123456789abcdef',
    });
    expect(sub.status).toBe('created');
    const nojs = await browser.newContext({
      javaScriptEnabled: false,
      httpCredentials: { username: USER, password: PASSWORD },
    });
    const page = await nojs.newPage();
    const lists: [string, string][] = [
      ['/console/payments', 'table.payments tbody tr'],
      ['/console/inbox', 'h2'],
      ['/console/batches', 'table.batches tbody tr'],
      ['/console/subscriptions', 'table.subscriptions tbody tr'],
      ['/console/batches/watch-1', '[data-count="failed"]'],
      ['/console/subscriptions/nojs-sub', 'dl.facts'],
    ];
    for (const [path, selector] of lists) {
      const res = await page.goto(`${t.url}${path}`);
      expect(res?.status(), path).toBe(200);
      expect(await page.locator(selector).count(), path).toBeGreaterThan(0);
    }
    expect(await page.locator('body').textContent()).toContain('49.99');
    await nojs.close();
  });
});

// Where no browser exists, the reason is a skipped test's name: visible in the run's output (and
// only then: with a browser the run shows no skipped test at all).
const skipReason = noBrowser;
if (skipReason !== undefined) {
  describe('the operator console in a browser (no browser)', () => {
    it.skip(skipReason, () => {});
  });
}
