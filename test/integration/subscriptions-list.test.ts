/**
 * GET /subscriptions: a page at a time by id, with a status filter and `next_cursor`; unknown
 * parameters refused naming them (src/http/routes/subscriptions.ts, subscriptions/service.ts).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { body, closeOpened, setup } from '../support/subscription-http.ts';

afterEach(closeOpened);

interface Page {
  data: { id: string; status: string }[];
  next_cursor: string | null;
}

describe('GET /subscriptions', () => {
  it('pages by id, filters by status, refuses unknown parameters', async () => {
    const { call } = await setup('2025-01-15T00:00:00Z');
    const ids = ['ls-a', 'ls-b', 'ls-c', 'ls-d', 'ls-e'];
    for (const id of ids) {
      expect((await call('POST', '/subscriptions', body({ id }))).statusCode).toBe(201);
    }
    for (const id of ['ls-b', 'ls-d']) {
      expect((await call('POST', `/subscriptions/${id}/pause`, {})).statusCode).toBe(200);
    }

    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res = await call(
        'GET',
        `/subscriptions?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
      );
      expect(res.statusCode).toBe(200);
      const page = res.body as Page;
      expect(page.data.length).toBeLessThanOrEqual(2);
      seen.push(...page.data.map((s) => s.id));
      cursor = page.next_cursor;
    } while (cursor);
    expect(seen).toEqual(ids);

    const paused = (await call('GET', '/subscriptions?status=paused')).body as Page;
    expect(paused.data.map((s) => s.id)).toEqual(['ls-b', 'ls-d']);
    expect(paused.next_cursor).toBeNull();

    const bad = await call('GET', '/subscriptions?state=paused&limit=0');
    expect(bad.statusCode).toBe(422);
    expect(JSON.stringify(bad.body)).toContain('state');
    expect(JSON.stringify(bad.body)).toContain('limit');
  });
});
