/**
 * The dispatcher over several shards (REDIS_SHARDS > 1, infra/redis/shards.ts): shard 0 is the
 * shard-less group, with every queue (subscriptions, notifications, the schedulers, and the
 * submit and reconcile jobs of shard 0's intents); shard n≥1 has its own charges, payouts and
 * reconcile queues under its prefix, so a payment's jobs sit in the slot of its intent. Jobs that
 * name an intent go to its shard's queue; everything else to the group.
 */
import type { Queue } from 'bullmq';
import type { KeyLayout } from '../redis/shards.ts';
import { JOBS } from './catalog.ts';
import type { QueueDispatcher } from './dispatcher.ts';
import { QUEUES, type QueueName } from './names.ts';

/** The queues every shard has: the jobs of one intent. */
export const SHARD_QUEUES: readonly QueueName[] = [
  QUEUES.charges,
  QUEUES.payouts,
  QUEUES.reconcile,
];

/** `shards[0]` is the group's dispatcher; `shards[n]` the dispatcher of shard n's prefix. */
export function shardedDispatcher(
  shards: readonly QueueDispatcher[],
  layout: Pick<KeyLayout, 'shardOf'>,
): QueueDispatcher {
  const group = shards[0];
  if (!group || shards.length < 2) throw new RangeError('a sharded dispatcher needs two shards');
  const of = (key: string) => shards[layout.shardOf(key)] ?? group;
  const inShards = (name: QueueName) => SHARD_QUEUES.includes(name);
  return {
    submit: (intent) => of(intent.key).submit(intent),
    async submitMany(intents) {
      const byShard = new Map<QueueDispatcher, (typeof intents)[number][]>();
      for (const intent of intents) {
        const d = of(intent.key);
        let list = byShard.get(d);
        if (!list) byShard.set(d, (list = []));
        list.push(intent);
      }
      await Promise.all([...byShard].map(([d, list]) => d.submitMany(list)));
    },
    submitJobState: (intent) => of(intent.key).submitJobState(intent),
    rerunSubmit: (intent, state) => of(intent.key).rerunSubmit(intent, state),
    reconcile: (intent, opts) => of(intent.key).reconcile(intent, opts),
    reconcileEarly: (key, reference) => of(key).reconcileEarly(key, reference),
    async addMany(name, jobs) {
      if (!inShards(JOBS[name].queue)) return group.addMany(name, jobs);
      const byShard = new Map<QueueDispatcher, typeof jobs>();
      for (const job of jobs) {
        const data = job.data as { key?: unknown };
        const d = typeof data.key === 'string' ? of(data.key) : group;
        byShard.set(d, [...(byShard.get(d) ?? []), job]);
      }
      await Promise.all([...byShard].map(([d, list]) => d.addMany(name, list)));
    },
    async failedJobs(name, opts) {
      if (!inShards(JOBS[name].queue)) return group.failedJobs(name, opts);
      const each = await Promise.all(shards.map((d) => d.failedJobs(name, opts)));
      return each.flat().sort((a, b) => b.failedAt - a.failedAt);
    },
    schedule: (id, name, pattern, data, opts) => group.schedule(id, name, pattern, data, opts),
    ensureSchedules: () => group.ensureSchedules(),
    async pause(name) {
      await Promise.all((inShards(name) ? shards : [group]).map((d) => d.pause(name)));
    },
    queue: (name) => group.queue(name),
    queuesOf: (name) => (inShards(name) ? shards : [group]).map((d) => d.queue(name)),
    async close() {
      await Promise.all(shards.map((d) => d.close()));
    },
  };
}

/** What metrics read of a queue. */
export type QueueGauge = Pick<Queue, 'name' | 'getJobCounts' | 'isPaused'>;

/** One queue name over its shards' queues, for metrics: counts added up, paused if any is. */
export function summedQueue(queues: readonly Queue[]): QueueGauge {
  const first = queues[0];
  if (!first) throw new RangeError('no queue to sum');
  if (queues.length === 1) return first;
  return {
    name: first.name,
    async getJobCounts(...types: Parameters<Queue['getJobCounts']>) {
      const all = await Promise.all(queues.map((q) => q.getJobCounts(...types)));
      const out: Record<string, number> = {};
      for (const counts of all) {
        for (const [k, n] of Object.entries(counts)) out[k] = (out[k] ?? 0) + n;
      }
      return out;
    },
    async isPaused() {
      return (await Promise.all(queues.map((q) => q.isPaused()))).some(Boolean);
    },
  };
}
