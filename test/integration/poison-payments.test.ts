/**
 * An intent this version cannot read (another version's state, a hand edit, half-written fields)
 * never fails a payments list: `GET /payments`, the console's payments page and inbox, and
 * `billing payments list` leave it out of the rows, name its key and what is wrong in
 * `unreadable` (or a note above the table), and log one error line by key, never its content.
 * Paging over it neither loses nor repeats a payment, on one shard and on three (whose pages are
 * merged). The poison records are written straight into Redis over payments made through the API
 * code. Real Redis, real HTTP to the api role.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storeKeys } from '../../src/infra/redis/keys.ts';
import { createPayment } from '../../src/payments/create.ts';
import { subscriptionKeys } from '../../src/subscriptions/store/subscription-store.ts';
import type { PaymentList } from '../../src/payments/list.ts';
import type { Sandbox } from '../../src/sandbox/index.ts';
import { apiCall } from '../support/api-call.ts';
import { createDeps, startTestApp, type TestApp } from '../support/app.ts';
import { runCliInProcess } from '../support/cli-run.ts';
import { startTestSandbox } from '../support/sandbox.ts';

const USER = 'ops';
const PASSWORD = 'console pass';
const BASIC = { authorization: `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}` };
const CARD_TOKEN = 'tok_poison_secret_0123456789abcdef';
const COUNT = 9;

let sandbox: Sandbox;
beforeAll(async () => {
  sandbox = await startTestSandbox();
});
afterAll(async () => {
  await sandbox?.close();
});

describe.each([1, 3])(
  'a payments list holding intents this version cannot read (%i shard(s))',
  (shards) => {
    let t: TestApp;
    const lines: Record<string, unknown>[] = [];
    const keys: string[] = [];
    let poisonState: string;
    let poisonHalf: string;
    let sealedPayee: string;

    beforeAll(async () => {
      t = await startTestApp({
        sandboxUrl: sandbox.url,
        roles: ['api'],
        env: {
          LOG_LEVEL: 'info',
          REDIS_SHARDS: String(shards),
          DASHBOARD_USER: USER,
          DASHBOARD_PASSWORD: PASSWORD,
        },
        logDestination: {
          write: (line) => void lines.push(JSON.parse(line) as Record<string, unknown>),
        },
      });
      for (let i = 0; i < COUNT; i++) {
        const res = await createPayment(createDeps(t.app), {
          type: 'charge',
          key: `poison-list-${i}`,
          email: 'ada@example.com',
          amount: `${100 + i}.00`,
          currency: 'NGN',
          card_token: CARD_TOKEN,
        });
        if (res.status !== 'created') throw new Error(`payment ${i}: ${res.status}`);
        keys.push(res.intent.key);
      }
      // In place, so every index still holds them: a state of a newer version; a half-written hash.
      poisonState = keys[2]!;
      poisonHalf = keys[6]!;
      const { layout } = t.app;
      const hashOf = (key: string) => storeKeys(layout.shard(layout.shardOf(key))).intent(key);
      await t.app.redis.hset(hashOf(poisonState), 'state', 'disputed');
      await t.app.redis.hdel(hashOf(poisonHalf), 'amount', 'currency');
      sealedPayee = (await t.app.redis.hget(hashOf(poisonHalf), 'payee'))!;
      expect(sealedPayee).toContain('cardTokenSealed');
    });
    afterAll(async () => {
      await t?.close();
    });

    const errorsNaming = (key: string) => lines.filter((l) => l.level === 'error' && l.key === key);

    it('GET /payments answers the readable ones and names the others', async () => {
      lines.length = 0;
      const res = await apiCall<PaymentList>(t, 'GET', '/payments?limit=50');
      expect(res.status).toBe(200);
      expect(res.body.data.map((p) => p.key).sort()).toEqual(
        keys.filter((k) => k !== poisonState && k !== poisonHalf).sort(),
      );
      expect(res.body.next_cursor).toBeNull();
      const unreadable = Object.fromEntries((res.body.unreadable ?? []).map((u) => [u.key, u.why]));
      expect(Object.keys(unreadable).sort()).toEqual([poisonHalf, poisonState].sort());
      expect(unreadable[poisonState]).toContain('state');
      expect(unreadable[poisonHalf]).toContain('amount');
      expect(errorsNaming(poisonState)).toHaveLength(1);
      expect(errorsNaming(poisonHalf)).toHaveLength(1);
      const said = JSON.stringify([res.body, lines]);
      expect(said).not.toContain(CARD_TOKEN);
      expect(said).not.toContain(JSON.parse(sealedPayee).cardTokenSealed as string);

      // The payment itself: which record and what is wrong, never its content.
      const one = await apiCall(t, 'GET', `/payments/${poisonState}`);
      expect(one.status).toBe(500);
      expect(one.body).toEqual({
        error: {
          code: 'record_unreadable',
          message: `intent ${poisonState} cannot be read: invalid fields (state: invalid_value)`,
        },
      });
      // A list without them answers as before: no `unreadable` at all.
      const clean = await apiCall<PaymentList>(t, 'GET', '/payments?state=succeeded');
      expect(clean.status).toBe(200);
      expect(clean.body).toEqual({ data: [], next_cursor: null });
    });

    it('GET /subscriptions/:id of a subscription it cannot read names it', async () => {
      const k = subscriptionKeys(t.app.layout.group);
      await t.app.redis.hset(
        k.sub('psub-half'),
        'doc',
        `{"id":"psub-half","cardTokenSealed":"${CARD_TOKEN}`,
      );
      const res = await apiCall(t, 'GET', '/subscriptions/psub-half');
      expect(res.status).toBe(500);
      expect(res.body).toEqual({
        error: {
          code: 'record_unreadable',
          message: 'subscription psub-half cannot be read: not JSON',
        },
      });
      expect(JSON.stringify(lines)).not.toContain(CARD_TOKEN);
    });

    it('pages over them without losing or repeating a payment', async () => {
      for (const filter of ['', '&state=queued', '&type=charge']) {
        const seen: string[] = [];
        const named: string[] = [];
        let cursor: string | null = null;
        for (let page = 0; page < 20; page++) {
          const q: string = `/payments?limit=2${filter}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
          const res = await apiCall<PaymentList>(t, 'GET', q);
          expect(res.status, q).toBe(200);
          seen.push(...res.body.data.map((p) => p.key));
          named.push(...(res.body.unreadable ?? []).map((u) => u.key));
          cursor = res.body.next_cursor;
          if (cursor === null) break;
        }
        expect(cursor, filter).toBeNull();
        expect([...seen, ...named].sort(), filter).toEqual([...keys].sort());
        expect(named.sort(), filter).toEqual([poisonHalf, poisonState].sort());
      }
    });

    it('the console names them above the table; the inbox still opens', async () => {
      const http = t.running.http!;
      const list = await http.inject({ method: 'GET', url: '/console/payments', headers: BASIC });
      expect(list.statusCode).toBe(200);
      expect(list.body).toContain('data-unreadable');
      expect(list.body).toContain(poisonState);
      expect(list.body).toContain(poisonHalf);
      expect(list.body).toContain(`data-key="${keys[0]!}"`);
      expect(list.body).not.toContain(`data-key="${poisonState}"`);
      // Unknown for long, as the inbox reads it (by the state index, each intent on its own).
      const { layout } = t.app;
      const shard = storeKeys(layout.shard(layout.shardOf(poisonHalf)));
      await t.app.redis.zadd(shard.byState('unknown'), 1, poisonHalf);
      const inbox = await http.inject({ method: 'GET', url: '/console/inbox', headers: BASIC });
      await t.app.redis.zrem(shard.byState('unknown'), poisonHalf);
      expect(inbox.statusCode).toBe(200);
      expect(inbox.body).toContain('data-unreadable');
      expect(inbox.body).toContain(poisonHalf);
      const one = await http.inject({
        method: 'GET',
        url: `/console/payments/${poisonHalf}`,
        headers: BASIC,
      });
      expect(one.statusCode).toBe(500);
      expect(one.body).toContain(`intent ${poisonHalf} cannot be read: `);
    });

    it('billing payments list prints the readable ones and names the others', async () => {
      const json = await runCliInProcess(t.app.config, ['payments', 'list', '--json']);
      expect(json.code, json.err).toBe(0);
      const body = JSON.parse(json.out) as PaymentList;
      expect(body.data).toHaveLength(COUNT - 2);
      expect((body.unreadable ?? []).map((u) => u.key).sort()).toEqual(
        [poisonHalf, poisonState].sort(),
      );
      const human = await runCliInProcess(t.app.config, ['payments', 'list']);
      expect(human.code, human.err).toBe(0);
      expect(human.out).toContain(`cannot be read by this version (left out): ${poisonState}: `);
    });
  },
);
