/**
 * Subscription tick cost against population (issue 6): one tick billing 1,000 due subscriptions
 * among 10,000, against the same among 1,000,000. The tick reads the due index by score, so its
 * cost should follow the due ones, not the total: target ratio (large / small) <= 1.5.
 *
 *   npx tsx bench/subscription-tick.ts [--due 1000] [--small 10000] [--large 1000000] [--rounds 5]
 *
 * Each population lives on its own throwaway redis-server (never the shared one). A tick does
 * everything a production tick does: reads the due index, claims, creates the period intents,
 * enqueues the charges with `addBulk`, commits. Rounds alternate between the two populations (so
 * background load hits both alike) and each round bills a fresh cohort of `due` subscriptions
 * (yearly plans anchored an hour apart); the first round of each is a warm-up. Reported: the
 * median tick time of each, and their ratio.
 */
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { Redis } from 'ioredis';
import { amountMinor } from '../src/kernel/money.ts';
import { createSubscription, type Subscription } from '../src/subscriptions/record.ts';
import { createLogger } from '../src/infra/logger.ts';
import { createRedis } from '../src/infra/redis/connection.ts';
import { createDispatcher, type QueueDispatcher } from '../src/infra/queues/dispatcher.ts';
import { runTick, type TickDeps } from '../src/subscriptions/tick.ts';
import { RedisIntentStore } from '../src/payments/store/intent-store.ts';
import { createSealer } from '../src/infra/sealing.ts';
import { RedisSubscriptionStore } from '../src/subscriptions/store/subscription-store.ts';
import { spawnRedisServer, type RedisServerHandle } from '../test/support/redis-server.ts';

const T0 = Date.parse('2025-03-01T00:00:00Z');
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const PREFIX = 'bench';
const ZONES = ['Africa/Lagos', 'America/New_York', 'Europe/London', 'Asia/Kolkata'];
/** Distinct schedules the idle population is built from (records are cloned per id). */
const TEMPLATES = 2_000;

interface Population {
  label: string;
  size: number;
  server: RedisServerHandle;
  redis: Redis;
  dispatcher: QueueDispatcher;
  deps: TickDeps;
  timesMs: number[];
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[m] ?? 0) : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2;
}

function template(id: string, anchorMs: number, zone: string, sealed: string): Subscription {
  return createSubscription(
    {
      id,
      customerEmail: `${id}@example.com`,
      cardTokenSealed: sealed,
      amount: amountMinor(150_000),
      currency: 'NGN',
      schedule: {
        anchor: new Date(anchorMs).toISOString(),
        timezone: zone,
        interval: 'year',
        intervalCount: 1,
      },
      metadata: { plan: 'bench' },
    },
    T0 - DAY,
  );
}

/** `size` subscriptions: `cohorts` cohorts of `due` due an hour apart, the rest later. */
async function populate(
  label: string,
  size: number,
  due: number,
  cohorts: number,
): Promise<Population> {
  const server = await spawnRedisServer();
  const redis = createRedis(server.url);
  const subs = new RedisSubscriptionStore(redis, PREFIX);
  const dispatcher = createDispatcher(redis, PREFIX);
  const sealed = createSealer(Buffer.alloc(32, 7)).seal('enc_card_bench_token');
  const started = performance.now();

  const batch: Subscription[] = [];
  const flush = async () => {
    await subs.createMany(batch);
    batch.length = 0;
  };
  for (let c = 0; c < cohorts; c++) {
    for (let i = 0; i < due; i++) {
      batch.push(template(`due-${c}-${i}`, T0 + c * HOUR, ZONES[i % ZONES.length]!, sealed));
      if (batch.length === 5_000) await flush();
    }
  }
  // The idle rest: anchored from 30 days to a year out, never due during the bench.
  const idle = size - cohorts * due;
  const templates = Array.from({ length: TEMPLATES }, (_, t) =>
    template(
      `tpl-${t}`,
      T0 + 30 * DAY + Math.floor((t / TEMPLATES) * 330 * DAY),
      ZONES[t % ZONES.length]!,
      sealed,
    ),
  );
  for (let i = 0; i < idle; i++) {
    const t = templates[i % TEMPLATES]!;
    const id = `idle-${i}`;
    batch.push({ ...t, id, customerEmail: `${id}@example.com` });
    if (batch.length === 5_000) await flush();
  }
  await flush();
  const count = await subs.count();
  if (count !== size) throw new Error(`${label}: ${count} subscriptions stored, expected ${size}`);
  console.log(
    `${label}: ${size.toLocaleString('en')} subscriptions stored in ` +
      `${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
  return {
    label,
    size,
    server,
    redis,
    dispatcher,
    deps: {
      subs,
      intents: new RedisIntentStore(redis, PREFIX),
      dispatcher,
      logger: createLogger({ level: 'silent' }),
      catchUpMaxPeriods: 12,
    },
    timesMs: [],
  };
}

async function tickOnce(p: Population, cohort: number, due: number): Promise<number> {
  const now = T0 + cohort * HOUR + 60_000;
  const started = performance.now();
  const r = await runTick(p.deps, now);
  const ms = performance.now() - started;
  if (r.due !== due || r.created !== due) {
    throw new Error(`${p.label}: tick at cohort ${cohort} saw ${r.due} due, created ${r.created}`);
  }
  return ms;
}

async function close(p: Population): Promise<void> {
  await p.dispatcher.close();
  await p.redis.quit().catch(() => p.redis.disconnect());
  await p.server.close();
}

/** Runs the bench and prints its numbers; resolves to them. */
export async function main(
  argv: string[] = process.argv.slice(2),
): Promise<{ smallMs: number; largeMs: number; ratio: number }> {
  const { values } = parseArgs({
    args: argv,
    options: {
      due: { type: 'string', default: '1000' },
      small: { type: 'string', default: '10000' },
      large: { type: 'string', default: '1000000' },
      rounds: { type: 'string', default: '5' },
    },
  });
  const due = Number(values.due);
  const rounds = Number(values.rounds);
  const cohorts = rounds + 1;
  console.log(
    `subscription-tick: ${due} due per tick, ${rounds} measured rounds after a warm-up, ` +
      'each population on its own redis-server',
  );
  const small = await populate('small', Number(values.small), due, cohorts);
  let large: Population | undefined;
  try {
    large = await populate('large', Number(values.large), due, cohorts);
    for (let c = 0; c < cohorts; c++) {
      // Alternate which goes first, so neither always follows the other's garbage collection.
      const order = c % 2 === 0 ? [small, large] : [large, small];
      for (const p of order) {
        const ms = await tickOnce(p, c, due);
        if (c > 0) p.timesMs.push(ms);
      }
    }
  } finally {
    await close(small);
    if (large) await close(large);
  }
  if (!large) throw new Error('unreachable: the large population failed to build');
  const smallMs = median(small.timesMs);
  const largeMs = median(large.timesMs);
  const ratio = largeMs / smallMs;
  const fmt = (p: Population) =>
    `${due.toLocaleString('en')} due among ${p.size.toLocaleString('en')}: median ` +
    `${median(p.timesMs).toFixed(1)} ms per tick (rounds ${p.timesMs.map((t) => t.toFixed(0)).join(', ')} ms)`;
  console.log(fmt(small));
  console.log(fmt(large));
  console.log(`ratio large/small: ${ratio.toFixed(2)} (target <= 1.5)`);
  return { smallMs, largeMs, ratio };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await main();
}
