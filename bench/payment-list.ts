/**
 * Payment list cost against store size (issue 14): a page of GET /payments (the store's list,
 * what the route calls) among 10,000 intents against the same among 1,000,000. Lists walk one
 * index and read what they return, so a page should cost the same whatever the store holds:
 * target ratio (large / small) <= 1.5 for every query.
 *
 *   npx tsx bench/payment-list.ts [--small 10000] [--large 1000000] [--runs 30]
 *
 * Each population lives on its own throwaway redis-server (never the shared one), built with the
 * store's own batch creation (1,000 rows per batch, charges and payouts alternating by batch); 1 %
 * of intents are moved to `failed`. Queries alternate between the two populations; the first run
 * of each is a warm-up. Reported: the median time per query and the ratio.
 */
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { Redis } from 'ioredis';
import type { AmountMinor } from '../src/kernel/money.ts';
import type { IntentKey } from '../src/kernel/ids.ts';
import type { IntentFilter } from '../src/kernel/ports.ts';
import { createRedis } from '../src/infra/redis/connection.ts';
import { RedisIntentStore } from '../src/payments/store/intent-store.ts';
import { spawnRedisServer, type RedisServerHandle } from '../test/support/redis-server.ts';

const PREFIX = 'bench';
const BATCH_ROWS = 1_000;
const LIMIT = 50;

interface Population {
  label: string;
  size: number;
  server: RedisServerHandle;
  redis: Redis;
  store: RedisIntentStore;
  /** A batch id in the middle of the population. */
  batchId: string;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[m] ?? 0) : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2;
}

async function populate(label: string, size: number): Promise<Population> {
  const server = await spawnRedisServer();
  const redis = createRedis(server.url, { enableAutoPipelining: true });
  const store = new RedisIntentStore(redis, PREFIX);
  const payee = JSON.stringify({ kind: 'charge', email: 'b@example.com', cardTokenSealed: 'x' });
  const batches = Math.ceil(size / BATCH_ROWS);
  const started = performance.now();
  const now = Date.parse('2026-01-01T00:00:00Z');
  const pending: Promise<unknown>[] = [];
  for (let b = 0; b < batches; b++) {
    const batchId = `b${b}`;
    const rows = Array.from({ length: Math.min(BATCH_ROWS, size - b * BATCH_ROWS) }, (_, i) => ({
      key: `bat_${batchId}_r${i}` as IntentKey,
      line: i + 2,
      amount: 1000 as AmountMinor,
      currency: 'NGN' as const,
      payee,
      meta: '',
    }));
    pending.push(
      store.createBatchRows({
        batchId,
        type: b % 2 === 0 ? 'charge' : 'payout',
        rows,
        now: now + b * 1_000,
      }),
    );
    if (pending.length >= 8) await Promise.all(pending.splice(0));
  }
  await Promise.all(pending);
  // 1 % failed, spread over the population.
  const moves: Promise<unknown>[] = [];
  for (let n = 0; n < size; n += 100) {
    const b = Math.floor(n / BATCH_ROWS);
    const key = `bat_b${b}_r${n % BATCH_ROWS}`;
    moves.push(
      store
        .transition(key, 'submitting', now + n)
        .then(() =>
          store.transition(key, 'failed', now + n + 1, { patch: { reason: 'declined' } }),
        ),
    );
    if (moves.length >= 500) await Promise.all(moves.splice(0));
  }
  await Promise.all(moves);
  console.log(
    `${label}: ${size.toLocaleString('en-US')} intents in ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
  return { label, size, server, redis, store, batchId: `b${Math.floor(batches / 2)}` };
}

type Query = { name: string; run: (p: Population) => Promise<unknown> };

const page =
  (filter: IntentFilter, pages = 1) =>
  async (p: Population) => {
    let cursor: string | undefined;
    for (let i = 0; i < pages; i++) {
      const r = await p.store.list(filter, LIMIT, cursor);
      cursor = r.next;
      if (!cursor) break;
    }
  };

const QUERIES: Query[] = [
  { name: 'all, first page', run: page({}) },
  { name: 'all, 20 pages deep', run: page({}, 20) },
  { name: 'type=payout', run: page({ type: 'payout' }) },
  { name: 'state=failed', run: page({ state: 'failed' }) },
  { name: 'state=failed&type=payout', run: page({ state: 'failed', type: 'payout' }) },
  { name: 'batch=<id>', run: (p) => page({ batchId: p.batchId })(p) },
  {
    name: 'created_before (mid-range)',
    run: page({ createdBefore: Date.parse('2026-01-01T00:00:00Z') + 400_000 }),
  },
];

export async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      small: { type: 'string', default: '10000' },
      large: { type: 'string', default: '1000000' },
      runs: { type: 'string', default: '30' },
    },
  });
  const runs = Number(values.runs);
  const small = await populate('small', Number(values.small));
  const large = await populate('large', Number(values.large));
  try {
    console.log(
      `\n| query | ${small.size.toLocaleString('en-US')} intents (ms) | ${large.size.toLocaleString('en-US')} intents (ms) | ratio (target <= 1.5) |`,
    );
    console.log('| --- | --- | --- | --- |');
    let worst = 0;
    for (const q of QUERIES) {
      const times = new Map<Population, number[]>([
        [small, []],
        [large, []],
      ]);
      for (let r = 0; r <= runs; r++) {
        for (const p of r % 2 === 0 ? [small, large] : [large, small]) {
          const t0 = performance.now();
          await q.run(p);
          if (r > 0) times.get(p)!.push(performance.now() - t0);
        }
      }
      const a = median(times.get(small)!);
      const b = median(times.get(large)!);
      worst = Math.max(worst, b / a);
      console.log(`| ${q.name} | ${a.toFixed(2)} | ${b.toFixed(2)} | ${(b / a).toFixed(2)} |`);
    }
    console.log(
      `\nworst ratio ${worst.toFixed(2)} (target <= 1.5): ${worst <= 1.5 ? 'met' : 'NOT met'}`,
    );
  } finally {
    for (const p of [small, large]) {
      await p.redis.quit();
      await p.server.close();
    }
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await main();
}
