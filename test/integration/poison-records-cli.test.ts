/**
 * The passes of the CLI over every record (docs/operations.md "A record this version cannot
 * read"): `billing keys reseal` and `billing payments reindex` skip a record they cannot read,
 * name it in their result (`unreadableRecords`, `unreadableRecordsAt`), leave it as it is, go on
 * with the others, and exit 1 (`unreadable_records`), never showing its content. The poison records
 * are written straight into Redis next to healthy ones made through the stores. Real Redis, a
 * sandbox, no roles; the commands run in process with `--json`.
 */
import { describe, expect, it } from 'vitest';
import { submitBatch } from '../../src/batches/ingest.ts';
import { batchKeys } from '../../src/batches/store/batch-store.ts';
import { storeKeys } from '../../src/infra/redis/keys.ts';
import { createSealer } from '../../src/infra/sealing.ts';
import type { IntentKey } from '../../src/kernel/ids.ts';
import type { AmountMinor } from '../../src/kernel/money.ts';
import { subscriptionKeys } from '../../src/subscriptions/store/subscription-store.ts';
import { appWithoutRoles, FAST_ENV, testConfig } from '../support/app.ts';
import { runCliInProcess } from '../support/cli-run.ts';
import { createMonthlySubscription } from '../support/subscriptions.ts';

const OLD_KEY = FAST_ENV.DATA_ENCRYPTION_KEY!;
const NEW_KEY = '22'.repeat(32);

const fixture = appWithoutRoles();

/** `billing --json <args>` on this test's deployment, with `env` over its configuration. */
async function cli(args: string[], env: Record<string, string> = {}) {
  const config = await testConfig(fixture.t.prefix, {
    SAYSWITCH_BASE_URL: fixture.sandbox.url,
    ...env,
  });
  const res = await runCliInProcess(config, ['--json', ...args]);
  return { ...res, doc: JSON.parse(res.out) as Record<string, unknown> };
}

/** Creates charge `api_<name>` with a card token sealed under the app's key, created `at`. */
async function charge(name: string, at: number): Promise<IntentKey> {
  const key = `api_${name}` as IntentKey;
  const payee = {
    kind: 'charge' as const,
    email: 'p@example.com',
    cardTokenSealed: fixture.t.app.sealer.seal('tok_ok'),
  };
  await fixture.t.app.store.create(
    { key, type: 'charge', origin: 'api', amount: 1000 as AmountMinor, currency: 'NGN', payee },
    at,
  );
  return key;
}

describe('billing keys reseal', () => {
  it('names and skips a record that does not parse, and reseals the others', async () => {
    // Healthy: a subscription, a row held for approval, two charges (all under the old key).
    expect((await createMonthlySubscription(fixture.t.app, 'rs-ok')).status).toBe('created');
    const held = await submitBatch(fixture.t.app, {
      input:
        'reference,email,amount,currency,card_token\nrs-row1,ada@example.com,12.00,NGN,tok_held_0123\n',
      type: 'charge',
      id: 'rs-held',
      approval: 'all',
    });
    expect(held.batch?.state).toBe('awaiting_approval');
    const healthy = [await charge('rs-ok-1', 1_000), await charge('rs-ok-2', 2_000)];

    // Half-written: a subscription's doc, a charge's payee, a held row.
    const sk = subscriptionKeys(fixture.t.prefix);
    const halfSub = '{"id":"rs-0-half","cardTokenSealed":"tok_secret_4111';
    await fixture.t.app.redis.hset(sk.sub('rs-0-half'), 'doc', halfSub, 'version', 1);
    await fixture.t.app.redis.zadd(sk.all(), 0, 'rs-0-half');
    const ik = storeKeys(fixture.t.prefix);
    const halfPayee = '{"kind":"charge","cardTokenSealed":"tok_secret_4111';
    await fixture.t.app.redis.hset(ik.intent('api_rs-0-payee'), {
      ...(await fixture.t.app.redis.hgetall(ik.intent(healthy[0]!))),
      key: 'api_rs-0-payee',
      payee: halfPayee,
    });
    const halfRow = '{"line":7,"payee":"tok_secret_4111';
    await fixture.t.app.redis.zadd(batchKeys(fixture.t.prefix).held('rs-held'), 7, halfRow);

    const res = await cli(['keys', 'reseal'], {
      DATA_ENCRYPTION_KEY: NEW_KEY,
      DATA_ENCRYPTION_KEY_PREVIOUS: OLD_KEY,
    });
    expect(res.code, res.out).toBe(1);
    const { doc } = res;
    expect(doc.error).toMatchObject({ code: 'unreadable_records' });
    expect(doc.subscriptions).toMatchObject({
      resealed: 1,
      unreadable: 0,
      unreadableRecords: 1,
      unreadableRecordsAt: ['rs-0-half'],
    });
    expect(doc.heldRows).toMatchObject({
      resealed: 1,
      unreadableRecords: 1,
      unreadableRecordsAt: ['rs-held:7'],
    });
    expect(doc.payments).toMatchObject({
      resealed: 2,
      unreadable: 0,
      unreadableRecords: 1,
      unreadableRecordsAt: ['api_rs-0-payee'],
    });
    expect(doc.total).toMatchObject({ unreadableRecords: 3 });
    expect(doc.done).toBe(false);
    expect(res.out + res.err).not.toContain('tok_secret_4111');

    // The others moved to the new key; the poison records are as they were.
    const onlyNew = createSealer(Buffer.from(NEW_KEY, 'hex'));
    const p = (await fixture.t.app.redis.hget(ik.intent(healthy[1]!), 'payee'))!;
    const sealed = (JSON.parse(p) as { cardTokenSealed: string }).cardTokenSealed;
    expect(onlyNew.unseal(sealed)).toBe('tok_ok');
    expect(await fixture.t.app.redis.hget(sk.sub('rs-0-half'), 'doc')).toBe(halfSub);
    expect(await fixture.t.app.redis.hget(ik.intent('api_rs-0-payee'), 'payee')).toBe(halfPayee);
    expect(
      await fixture.t.app.redis.zscore(batchKeys(fixture.t.prefix).held('rs-held'), halfRow),
    ).toBe('7');
  });
});

describe('billing payments reindex', () => {
  it('names and skips an intent without a type or creation time it can index, and indexes the others', async () => {
    const ik = storeKeys(fixture.t.prefix);
    const healthy = [await charge('ri-ok-1', 5_000), await charge('ri-ok-2', 6_000)];
    // As stored before the created indexes existed.
    for (const key of healthy) {
      await fixture.t.app.redis.zrem(ik.byCreated(), key);
      await fixture.t.app.redis.zrem(ik.byCreated('charge'), key);
    }
    const h = await fixture.t.app.redis.hgetall(ik.intent(healthy[0]!));
    const poison: [string, Record<string, string>][] = [
      ['api_ri-0-word', { createdAt: 'yesterday' }],
      ['api_ri-0-nan', { createdAt: 'nan' }],
      ['api_ri-0-type', { type: 'dispute' }],
      ['api_ri-0-nokey', {}],
    ];
    for (const [key, change] of poison)
      await fixture.t.app.redis.hset(ik.intent(key), { ...h, key, ...change });
    await fixture.t.app.redis.hdel(ik.intent('api_ri-0-nokey'), 'key', 'createdAt');

    const res = await cli(['payments', 'reindex']);
    expect(res.code, res.out).toBe(1);
    expect(res.doc.error).toMatchObject({ code: 'unreadable_records' });
    expect(res.doc.unreadableRecords).toBe(poison.length);
    expect([...(res.doc.unreadableRecordsAt as string[])].sort()).toEqual(
      poison.map(([key]) => key).sort(),
    );
    for (const [key, at] of [
      [healthy[0]!, '5000'],
      [healthy[1]!, '6000'],
    ]) {
      expect(await fixture.t.app.redis.zscore(ik.byCreated(), key!)).toBe(at);
      expect(await fixture.t.app.redis.zscore(ik.byCreated('charge'), key!)).toBe(at);
    }
    for (const [key] of poison)
      expect(await fixture.t.app.redis.zscore(ik.byCreated(), key)).toBeNull();
    // Every other intent of the deployment is indexed.
    expect(res.doc.indexed).toBe(await fixture.t.app.redis.zcard(ik.byCreated()));
  });
});

describe('a key under the intents that is not a hash', () => {
  it('is named and skipped by both passes; the others are done', async () => {
    const ik = storeKeys(fixture.t.prefix);
    const ok = await charge('rx-ok', 7_000);
    await fixture.t.app.redis.set(ik.intent('api_rx-0-string'), 'tok_secret_4111 hand-made');
    await fixture.t.app.redis.zrem(ik.byCreated(), ok);

    const reindexed = await cli(['payments', 'reindex']);
    expect(reindexed.code, reindexed.out).toBe(1);
    expect(reindexed.doc.unreadableRecordsAt).toContain('api_rx-0-string');
    expect(await fixture.t.app.redis.zscore(ik.byCreated(), ok)).toBe('7000');

    const resealed = await cli(['keys', 'reseal'], {
      DATA_ENCRYPTION_KEY: NEW_KEY,
      DATA_ENCRYPTION_KEY_PREVIOUS: OLD_KEY,
    });
    expect(resealed.code, resealed.out).toBe(1);
    expect(
      (resealed.doc.payments as { unreadableRecordsAt: string[] }).unreadableRecordsAt,
    ).toContain('api_rx-0-string');
    const sealed = (
      JSON.parse((await fixture.t.app.redis.hget(ik.intent(ok), 'payee'))!) as {
        cardTokenSealed: string;
      }
    ).cardTokenSealed;
    expect(createSealer(Buffer.from(NEW_KEY, 'hex')).unseal(sealed)).toBe('tok_ok');
    expect(reindexed.out + resealed.out).not.toContain('tok_secret_4111');
  });
});
