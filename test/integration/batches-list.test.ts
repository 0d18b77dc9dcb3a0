/**
 * GET /batches?status= and `billing batch list` (docs/batches.md "Listing batches"): newest
 * first, cursor pagination over one creation-time index (every batch, or one state's), a cursor
 * that survives its batch leaving the state between two pages, a cursor refused on another
 * status, and `billing batch reindex` for batches claimed before the index of every batch existed.
 *
 * Batches are made through the store's own claim and finish (the states a batch goes through),
 * with creation times chosen so that the expected order is known.
 */
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BatchInit } from '../../src/batches/ports.ts';
import type { Sandbox } from '../../src/sandbox/index.ts';
import { startTestApp, TEST_API_TOKEN, type TestApp } from '../support/app.ts';
import { startTestSandbox } from '../support/sandbox.ts';

const AUTH = { authorization: `Bearer ${TEST_API_TOKEN}` };
const LEASE_MS = 60_000;

let sandbox: Sandbox;
let t: TestApp;
let http: FastifyInstance;

function init(id: string, valid: number): BatchInit {
  return {
    id,
    type: 'payout',
    source: `${id}.csv`,
    contentHash: id.padEnd(64, '0'),
    rows: valid,
    valid,
    invalid: 0,
    skipInvalid: false,
    metaKeys: [],
    totals: valid > 0 ? { NGN: { rows: valid, amount: 1000 * valid } } : {},
  } as BatchInit;
}

/** Claims `id` created at `at`; `then` moves it on: left ingesting, queued, or completed. */
async function make(id: string, at: number, then: 'ingesting' | 'queued' | 'completed') {
  const created = await t.app.batches.claim(
    init(id, then === 'completed' ? 0 : 2),
    'test',
    at,
    LEASE_MS,
  );
  expect(created).toEqual({ created: true });
  if (then !== 'ingesting') expect(await t.app.batches.finishIngest(id, at + 1)).toBe(then);
}

interface Page {
  data: { id: string; state: string }[];
  next_cursor: string | null;
}

async function page(query: string): Promise<Page> {
  const res = await http.inject({ url: `/batches?${query}`, headers: AUTH });
  expect(res.statusCode, res.body).toBe(200);
  return res.json<Page>();
}

/** Every page of a list, following next_cursor. */
async function walk(query: string): Promise<{ ids: string[]; pages: number }> {
  const ids: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const p = await page(`${query}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    ids.push(...p.data.map((b) => b.id));
    cursor = p.next_cursor;
    pages++;
  } while (cursor !== null && pages < 20);
  return { ids, pages };
}

beforeAll(async () => {
  sandbox = await startTestSandbox();
  t = await startTestApp({ sandboxUrl: sandbox.url, roles: ['api'] });
  http = t.running.http!;
  // Oldest first: l1 … l7. Two share a creation time (l4, l5): the order among equal scores is
  // by id, descending, and pagination must neither skip nor repeat one of them.
  await make('l1', 1_000, 'completed');
  await make('l2', 2_000, 'queued');
  await make('l3', 3_000, 'ingesting');
  await make('l4', 4_000, 'queued');
  await make('l5', 4_000, 'queued');
  await make('l6', 6_000, 'ingesting');
  await make('l7', 7_000, 'queued');
});
afterAll(async () => {
  await t?.close();
  await sandbox?.close();
});

describe('GET /batches', () => {
  it('lists every batch newest first, page by page, each as GET /batches/:id shows it', async () => {
    const first = await page('limit=3');
    expect(first.data.map((b) => b.id)).toEqual(['l7', 'l6', 'l5']);
    expect(first.next_cursor).not.toBeNull();
    const one = await http.inject({ url: '/batches/l7', headers: AUTH });
    expect(first.data[0]).toEqual(one.json());
    const all = await walk('limit=2');
    expect(all).toEqual({ ids: ['l7', 'l6', 'l5', 'l4', 'l3', 'l2', 'l1'], pages: 4 });
  });

  it('filters by status, across pages', async () => {
    expect(await walk('status=queued&limit=2')).toEqual({
      ids: ['l7', 'l5', 'l4', 'l2'],
      pages: 2,
    });
    expect((await walk('status=completed')).ids).toEqual(['l1']);
    expect((await walk('status=awaiting_approval')).ids).toEqual([]);
    const ingesting = await page('status=ingesting');
    expect(ingesting).toEqual({
      data: [
        expect.objectContaining({ id: 'l6', state: 'ingesting' }),
        expect.objectContaining({ id: 'l3' }),
      ],
      next_cursor: null,
    });
  });

  it('goes on after a batch that left the state between two pages', async () => {
    await make('m1', 10_000, 'ingesting');
    await make('m2', 11_000, 'ingesting');
    await make('m3', 12_000, 'ingesting');
    const first = await page('status=ingesting&limit=2');
    expect(first.data.map((b) => b.id)).toEqual(['m3', 'm2']);
    // m2, the page's last batch, is enqueued before the next page is asked for.
    expect(await t.app.batches.finishIngest('m2', 13_000)).toBe('queued');
    const rest = await page(`status=ingesting&limit=10&cursor=${first.next_cursor!}`);
    expect(rest.data.map((b) => b.id)).toEqual(['m1', 'l6', 'l3']);
    expect(rest.next_cursor).toBeNull();
  });

  it('refuses a bad status, limit or cursor naming it, in the one error shape', async () => {
    for (const [query, field] of [
      ['status=paid', 'status'],
      ['limit=0', 'limit'],
      ['limit=201', 'limit'],
      ['colour=red', 'colour'],
      ['cursor=not-a-cursor', 'cursor'],
    ] as const) {
      const res = await http.inject({ url: `/batches?${query}`, headers: AUTH });
      expect(res.statusCode, query).toBe(422);
      const body = res.json<{ error: { code: string; details: { field: string }[] } }>();
      expect(body.error.code, query).toBe('invalid_query');
      expect(
        body.error.details.map((d) => d.field),
        query,
      ).toEqual([field]);
    }
    // A cursor of the queued list is not one of the completed list.
    const queued = await page('status=queued&limit=1');
    const res = await http.inject({
      url: `/batches?status=completed&cursor=${queued.next_cursor!}`,
      headers: AUTH,
    });
    expect(res.statusCode).toBe(422);
    expect(res.json()).toMatchObject({ error: { details: [{ field: 'cursor' }] } });
  });

  it('reindex: batches claimed before the index of every batch are listed again', async () => {
    const before = (await walk('limit=50')).ids;
    // As a deployment from before the index: it does not exist.
    await t.app.redis.del(`${t.prefix}:idx:batch-created`);
    expect((await walk('limit=50')).ids).toEqual([]);
    // Status lists never needed it.
    expect((await walk('status=completed')).ids).toEqual(['l1']);
    expect(await t.app.batches.reindexCreated()).toBe(before.length);
    expect((await walk('limit=50')).ids).toEqual(before);
    // Idempotent.
    expect(await t.app.batches.reindexCreated()).toBe(before.length);
  });
});
