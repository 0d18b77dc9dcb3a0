/** The Redis health monitor: one log line per outage episode, one when it ends. */
import { EventEmitter } from 'node:events';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { until } from '../../support/poll.ts';
import { createLogger } from '../../../src/infra/logger.ts';
import {
  isRedisConnectionError,
  isSlotMoving,
  redisWriteRefusal,
  SLOT_MOVING_LOG_EVERY_MS,
  WRITE_REFUSAL_LOG_EVERY_MS,
  redisAddress,
  RedisHealth,
  RedisUnavailableError,
} from '../../../src/infra/redis/health.ts';
import { reconnectWhenReadOnly } from '../../../src/infra/redis/connection.ts';

class FakeConn extends EventEmitter {
  status = 'connecting';
  up() {
    this.status = 'ready';
    this.emit('ready');
  }
  down(err?: Error) {
    this.status = 'reconnecting';
    this.emit('close');
    if (err) this.emit('error', err);
  }
}

function setup(now: () => number = Date.now) {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n'))
        if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  const health = new RedisHealth(
    'redis://user:s3cret@10.0.0.5:6380/2',
    createLogger({ destination: sink }),
    now,
  );
  return { health, lines };
}

const refused = () =>
  Object.assign(new Error('connect ECONNREFUSED 10.0.0.5:6380'), { code: 'ECONNREFUSED' });

/** What ioredis rejects a write with while Redis is at maxmemory (noeviction). */
const outOfMemory = () =>
  Object.assign(
    new Error(
      "OOM command not allowed when used memory > 'maxmemory'. script: 3eab, on @user_script:18.",
    ),
    { name: 'ReplyError' },
  );

const reply = (message: string) => Object.assign(new Error(message), { name: 'ReplyError' });

describe('a server that answers but cannot take the command now', () => {
  it('counts as Redis unreachable: nothing of the command ran', () => {
    for (const message of [
      "READONLY You can't write against a read only replica.",
      'UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)',
      'LOADING Redis is loading the dataset in memory',
      "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
    ])
      expect(isRedisConnectionError(reply(message)), message).toBe(true);
    // Another reply is the command's own refusal.
    expect(isRedisConnectionError(reply('ERR wrong number of arguments'))).toBe(false);
    expect(isRedisConnectionError(new Error("READONLY You can't write"))).toBe(false);
  });

  it('a READONLY reply makes a standalone connection reconnect, without sending the command again', () => {
    expect(
      reconnectWhenReadOnly(reply("READONLY You can't write against a read only replica.")),
    ).toBe(1);
    expect(reconnectWhenReadOnly(reply('LOADING Redis is loading the dataset in memory'))).toBe(
      false,
    );
    expect(reconnectWhenReadOnly(reply('ERR unknown command'))).toBe(false);
  });
});

describe('a Redis Cluster slot being moved to another master (a resharding)', () => {
  const moving = [
    reply('TRYAGAIN Multiple keys request during rehashing of slot'),
    reply('MOVED 4260 127.0.0.1:28584'),
    reply('ASK 8922 127.0.0.1:28584'),
    new Error(
      'Too many Cluster redirections. Last error: ReplyError: TRYAGAIN Multiple keys request during rehashing of slot',
    ),
    new Error('Too many Cluster redirections. Last error: ReplyError: MOVED 8922 127.0.0.1:26066'),
  ];

  it('is answered like an unreachable Redis (a request 503, a job retried): nothing of it ran', () => {
    for (const err of moving) {
      expect(isSlotMoving(err), err.message).toBe(true);
      expect(isRedisConnectionError(err), err.message).toBe(true);
    }
    // A cluster that is down, or whose redirections ended on a closed connection: an outage.
    for (const err of [
      reply('CLUSTERDOWN The cluster is down'),
      new Error('Too many Cluster redirections. Last error: Error: Connection is closed.'),
    ]) {
      expect(isSlotMoving(err), err.message).toBe(false);
      expect(isRedisConnectionError(err), err.message).toBe(true);
    }
    expect(isSlotMoving(reply('ERR MOVED is not a command'))).toBe(false);
  });

  it('is no outage (the other groups are served meanwhile) and is logged once a minute', () => {
    let now = 1_000_000;
    const { health, lines } = setup(() => now);
    const conn = new FakeConn();
    health.watch(conn);
    conn.up();
    for (const err of moving) health.onError(err, 'worker charges');
    now += SLOT_MOVING_LOG_EVERY_MS;
    health.onError(moving[0]!, 'http');
    expect(health.isUp()).toBe(true);
    const said = lines.filter((l) => String(l.msg).startsWith('REDIS CLUSTER SLOT MOVING'));
    expect(said.map((l) => [l.level, l.refusedSinceLastLine])).toEqual([
      ['warn', 0],
      ['warn', moving.length - 1],
    ]);
    expect(lines.filter((l) => l.msg === 'redis error')).toEqual([]);
    expect(lines.filter((l) => String(l.msg).startsWith('redis unreachable'))).toEqual([]);
  });
});

const misconf = () =>
  reply(
    "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk.",
  );

describe('Redis refusing writes while it answers', () => {
  it('is told apart by kind, from a connection error and from other replies', () => {
    expect(redisWriteRefusal(outOfMemory())).toBe('out_of_memory');
    expect(redisWriteRefusal(misconf())).toBe('cannot_persist');
    expect(isRedisConnectionError(outOfMemory())).toBe(false);
    expect(isRedisConnectionError(misconf())).toBe(false);
    expect(redisWriteRefusal(reply('ERR unknown command'))).toBeUndefined();
    // The same words from anything but Redis's reply are not Redis's refusal.
    expect(redisWriteRefusal(new Error('OOM command not allowed'))).toBeUndefined();
  });

  it('is logged once a minute per kind with the refusals in between, counted all along, and is no outage', () => {
    let now = 1_000_000;
    const { health, lines } = setup(() => now);
    const conn = new FakeConn();
    health.watch(conn);
    conn.up();
    for (let i = 0; i < 5; i++) health.onError(outOfMemory(), 'worker charges');
    health.onError(misconf(), 'http');
    now += WRITE_REFUSAL_LOG_EVERY_MS - 1;
    health.onError(outOfMemory(), 'http');
    now += 1;
    health.onError(outOfMemory(), 'http');
    const said = lines.filter((l) => String(l.msg).startsWith('REDIS OUT OF MEMORY'));
    expect(said.map((l) => l.refusedSinceLastLine)).toEqual([0, 5]);
    expect(said[0]!.address).toBe('redis://10.0.0.5:6380/2');
    expect(lines.filter((l) => String(l.msg).startsWith('REDIS CANNOT PERSIST'))).toHaveLength(1);
    expect(lines.filter((l) => l.msg === 'redis error')).toEqual([]);
    expect(health.writeRefusals('out_of_memory')).toBe(7);
    expect(health.writeRefusals('cannot_persist')).toBe(1);
    expect(health.isUp()).toBe(true);
  });
});

describe('RedisHealth', () => {
  it('ends an outage started by a command error, with every connection still ready, by its probe', async () => {
    // A cluster client failing over: "Too many Cluster redirections … Connection is closed" comes
    // back from a command while the client itself stays `ready`, so no `ready` event will follow.
    const { health, lines } = setup();
    let answers = 0;
    health.recoverBy(() => Promise.resolve(++answers >= 3), 5);
    const conn = new FakeConn();
    health.watch(conn);
    conn.up();
    health.onError(
      new Error('Too many Cluster redirections. Last error: Error: Connection is closed.'),
      'worker reconcile',
    );
    expect(health.isUp()).toBe(false);
    // Waited for, not slept on: three probes 5 ms apart did not always fit in a 200 ms sleep on a
    // loaded machine (each probe is scheduled only after the last one answered).
    await until(() => health.isUp(), { what: 'the outage ended by the probe' });
    expect(answers).toBe(3);
    expect(lines.map((l) => l.msg)).toEqual([
      'redis unreachable: requests answer 503 and jobs wait until it is back',
      'redis reachable again',
    ]);
  });

  it('does not probe while a connection is lost: its own ready event ends the outage', async () => {
    const { health } = setup();
    let asked = 0;
    health.recoverBy(() => Promise.resolve(++asked > 0), 5);
    const conn = new FakeConn();
    health.watch(conn);
    conn.up();
    conn.down(refused());
    await new Promise((r) => setTimeout(r, 100));
    expect(asked).toBe(0);
    expect(health.isUp()).toBe(false);
    conn.up();
    expect(health.isUp()).toBe(true);
  });

  it('logs one line per outage and one when it ends, however many errors in between', () => {
    const { health, lines } = setup();
    const a = new FakeConn();
    const b = new FakeConn();
    health.watch(a).watch(b);
    a.up();
    expect(health.isUp()).toBe(false); // b is not ready yet
    b.up();
    expect(health.isUp()).toBe(true);
    expect(lines).toEqual([]); // the first connection is not an episode

    a.down(refused());
    b.down(refused());
    for (let i = 0; i < 50; i++) a.emit('error', refused());
    health.onError(refused(), 'worker charges');
    expect(health.isUp()).toBe(false);
    a.up();
    b.up();
    expect(lines.map((l) => l.msg)).toEqual([
      'redis unreachable: requests answer 503 and jobs wait until it is back',
      'redis reachable again',
    ]);
    expect(lines[0]).toMatchObject({ redis: 'redis://10.0.0.5:6380/2' });
    expect(lines[1]).toMatchObject({ lastError: 'connect ECONNREFUSED 10.0.0.5:6380' });
    expect(JSON.stringify(lines)).not.toContain('s3cret');
  });

  it('logs other errors as they are', () => {
    const { health, lines } = setup();
    health.onError(new Error('ERR unknown command'), 'queue');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 'error', component: 'queue', msg: 'redis error' });
  });

  it('waitUntilUp rejects naming the address and what to do', async () => {
    const { health } = setup();
    const a = new FakeConn();
    health.watch(a);
    a.emit('error', refused());
    const err = await health.waitUntilUp(20).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RedisUnavailableError);
    expect((err as Error).message).toBe(
      'cannot reach Redis at redis://10.0.0.5:6380/2 (connect ECONNREFUSED 10.0.0.5:6380): start Redis or point REDIS_URL at a running one',
    );
    const waiting = health.waitUntilUp(60_000);
    a.up();
    await waiting;
  });

  it('tells connection errors from command errors', () => {
    expect(isRedisConnectionError(refused())).toBe(true);
    expect(
      isRedisConnectionError(
        Object.assign(new Error('Reached the max retries per request limit (which is 1).'), {
          name: 'MaxRetriesPerRequestError',
        }),
      ),
    ).toBe(true);
    expect(isRedisConnectionError(new Error('Connection is closed.'))).toBe(true);
    expect(isRedisConnectionError(new Error('ERR wrong number of arguments'))).toBe(false);
    expect(redisAddress('rediss://:pw@cache.example:6390')).toBe('rediss://cache.example:6390');
  });
});

describe('closing on purpose', () => {
  it('is no outage: nothing logged when the connections go away after closing()', () => {
    const { health, lines } = setup();
    const a = new FakeConn();
    health.watch(a);
    a.up();
    health.closing();
    a.down();
    expect(lines).toEqual([]);
  });
});
