/**
 * Redis full (docs/operations.md, "Redis is full"): `maxmemory` reached with `noeviction`, the only
 * policy the service runs on, so Redis refuses every write (`OOM command not allowed`) while it
 * still answers reads. On a `redis-server` this test owns, while payments are in flight at a slow
 * sandbox: the API answers 503 `redis_out_of_memory` and writes nothing, reads still answer,
 * readiness says why, a CLI command exits with that code, the log says it once (not once per
 * refused job); once memory is freed every payment ends final, each reference moved money at most
 * once, and no reference is declared failed by inference.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storeKeys } from '../../src/infra/redis/keys.ts';
import type { Sandbox } from '../../src/sandbox/index.ts';
import { alternatingPaymentBody, apiCall } from '../support/api-call.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { analyse } from '../support/chaos.ts';
import { runCliInProcess } from '../support/cli-run.ts';
import { parseMetrics } from '../support/metrics-text.ts';
import { until } from '../support/poll.ts';
import { spawnRedisServer, type RedisServerHandle } from '../support/redis-server.ts';
import { startTestSandbox } from '../support/sandbox.ts';

const PAYMENTS = 20;
/** Long enough for every in-flight job to meet a refusal and be retried at least once. */
const FULL_FOR_MS = 3_000;
const FINAL = ['succeeded', 'failed', 'reversed', 'needs_review'];

let server: RedisServerHandle;
let admin: Redis;
let sandbox: Sandbox;
let t: TestApp;
let dir: string;
const lines: Record<string, unknown>[] = [];

beforeAll(async () => {
  server = await spawnRedisServer();
  admin = new Redis(server.url);
  // Slow answers, so payments are between their claim and their outcome when Redis fills up.
  sandbox = await startTestSandbox({ latencyMs: 1_000 });
  t = await startTestApp({
    sandboxUrl: sandbox.url,
    roles: ['api', 'worker', 'reconciler'],
    env: {
      REDIS_URL: server.url,
      LOG_LEVEL: 'info',
      SAYSWITCH_TIMEOUT_MS: '2500',
      SUBMIT_LEASE: '5s',
    },
    logDestination: {
      write: (line) => void lines.push(JSON.parse(line) as Record<string, unknown>),
    },
  });
  dir = await mkdtemp(join(tmpdir(), 'redis-full-'));
});
afterAll(async () => {
  await admin?.config('SET', 'maxmemory', '0').catch(() => undefined);
  await t?.close();
  await sandbox?.close();
  admin?.disconnect();
  await server?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const body = (i: number) => alternatingPaymentBody(i, 'full-', 'redis full');

describe('Redis full (maxmemory reached, noeviction)', () => {
  it('refuses new writes by name, loses nothing, and settles every payment once memory is freed', async () => {
    const keys: string[] = [];
    for (let i = 0; i < PAYMENTS; i++) {
      const r = await apiCall(t, 'POST', '/payments', body(i));
      expect(r.status).toBe(201);
      keys.push(r.body.key as string);
    }
    // Full while gateway calls are in flight: their outcomes meet the refusal.
    await until(async () => (await t.app.store.countByState()).submitting > 0);
    await admin.config('SET', 'maxmemory', '1');
    const fullSince = Date.now();

    // A new payment: refused by name, nothing written.
    const refused = await apiCall(t, 'POST', '/payments', body(99));
    expect(refused.status).toBe(503);
    expect(refused.body).toMatchObject({ error: { code: 'redis_out_of_memory' } });
    expect((refused.body.error as { message: string }).message).toContain('maxmemory');
    expect(await admin.exists(storeKeys(t.prefix).intent('api_full-99'))).toBe(0);
    // Reads still answer.
    expect((await apiCall(t, 'GET', `/payments/${keys[0]!}`)).status).toBe(200);
    // Readiness says why (the api role's probe writes).
    const ready = await fetch(`${t.url!}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toEqual({ status: 'not_ready', reason: 'redis_out_of_memory' });
    // A CLI command that writes: one line naming it, its own exit code.
    const csv = join(dir, 'payouts.csv');
    await writeFile(
      csv,
      'reference,account_number,bank_code,bank_name,account_name,amount,currency,narration\n' +
        'rf-1,0123456789,058,GTBank,Ada Obi,2500,NGN,full\n',
    );
    const cli = await runCliInProcess(t.app.config, [
      'batch',
      'submit',
      csv,
      '--type',
      'payout',
      '--json',
    ]);
    expect(cli.code).toBe(1);
    expect(JSON.parse(cli.out)).toMatchObject({
      error: { code: 'redis_out_of_memory' },
    });

    await sleep(Math.max(0, FULL_FOR_MS - (Date.now() - fullSince)));
    await admin.config('SET', 'maxmemory', '0');

    // Once memory is freed: ready again, the refused payment goes through with the same key.
    await until(async () => (await fetch(`${t.url!}/readyz`)).status === 200);
    const again = await apiCall(t, 'POST', '/payments', body(99));
    expect(again.status).toBe(201);
    keys.push(again.body.key as string);

    const intents = await until(
      async () => {
        const all = await Promise.all(keys.map((k) => t.app.store.get(k)));
        return all.every((i) => i && FINAL.includes(i.state)) ? all.map((i) => i!) : undefined;
      },
      { timeoutMs: 60_000 },
    ).catch(async (e: unknown) => {
      // What was left, for whoever reads a failure: each payment, then the last warnings.
      const all = await Promise.all(keys.map((k) => t.app.store.get(k)));
      const left = all.map((i) => `${i?.key} ${i?.state} attempt ${i?.attempt}`).join('\n');
      const warned = lines.filter((l) => l.level === 'error' || l.level === 'warn').slice(-6);
      throw new Error(`${String(e)}\n${left}\n${JSON.stringify(warned)}`);
    });
    const a = analyse(intents, sandbox.ledger(), keys);
    expect(a.checks.filter((c) => c.count > 0)).toEqual([]);
    // The sandbox's default outcome for these amounts is success: nothing failed by inference.
    expect(intents.map((i) => i.state)).toEqual(keys.map(() => 'succeeded'));

    // Said once (one line a minute at most), with how to fix it; no line per refused command.
    const said = lines.filter((l) => String(l.msg).startsWith('REDIS OUT OF MEMORY'));
    expect(said).toHaveLength(1);
    expect(lines.filter((l) => l.msg === 'redis error')).toEqual([]);
    // And the workers did meet it (this test ran what it means to).
    const refusedJobs = lines.filter(
      (l) =>
        l.msg === 'job failed' && String((l.err as { message?: string }).message).startsWith('OOM'),
    );
    expect(refusedJobs.length).toBeGreaterThan(0);
    // Counted for an alert, every refusal the line folded in included.
    const refusals = parseMetrics(await t.app.metrics.registry.metrics()).find(
      (m) => m.name === 'billing_redis_write_refusals_total' && m.labels.reason === 'out_of_memory',
    );
    expect(refusals?.value).toBeGreaterThan(1);
    expect(said[0]!.refusedSinceLastLine).toBe(0);
  }, 120_000);
});

describe('Redis that cannot save to disk (stop-writes-on-bgsave-error)', () => {
  let disk: RedisServerHandle;
  let diskAdmin: Redis;
  let u: TestApp;
  beforeAll(async () => {
    // A snapshot it cannot write: its dir is one no file can be created in.
    disk = await spawnRedisServer({ dir: '/proc', extraArgs: ['--save', '3600 1'] });
    diskAdmin = new Redis(disk.url);
    u = await startTestApp({
      sandboxUrl: sandbox.url,
      roles: ['api', 'worker', 'reconciler'],
      // The sandbox answers in a second (above): calls must not time out.
      env: { REDIS_URL: disk.url, SAYSWITCH_TIMEOUT_MS: '2500', SUBMIT_LEASE: '5s' },
    });
  });
  afterAll(async () => {
    await diskAdmin?.config('SET', 'stop-writes-on-bgsave-error', 'no').catch(() => undefined);
    await u?.close();
    diskAdmin?.disconnect();
    await disk?.close();
  });

  it('refuses new writes by name until writes are allowed again', async () => {
    const first = await apiCall(u, 'POST', '/payments', body(200));
    expect(first.status).toBe(201);
    await diskAdmin.bgsave();
    await until(async () => /rdb_last_bgsave_status:err/.test(await diskAdmin.info('persistence')));

    const refused = await apiCall(u, 'POST', '/payments', body(201));
    expect(refused.status).toBe(503);
    expect(refused.body).toMatchObject({ error: { code: 'redis_cannot_persist' } });
    const ready = await fetch(`${u.url!}/readyz`);
    expect(await ready.json()).toEqual({ status: 'not_ready', reason: 'redis_cannot_persist' });

    // What an operator may do while the disk is fixed (or the save succeeds again).
    await diskAdmin.config('SET', 'stop-writes-on-bgsave-error', 'no');
    const again = await apiCall(u, 'POST', '/payments', body(201));
    expect(again.status).toBe(201);
    for (const key of [first.body.key as string, again.body.key as string])
      await until(async () => (await u.app.store.get(key))?.state === 'succeeded');
  });
});
