/**
 * Exit codes and messages of refused input, run in-process: a bad `billing sandbox` flag value is
 * a usage error naming the flag (never a ZodError); an InvalidArgumentError thrown inside an action
 * still prints its message; a heartbeat file that is JSON but not a heartbeat is named as such;
 * refund refusals caused by what was asked exit 2 with the HTTP error's code, a subscription
 * refused in its state exits 1 with the HTTP error's code; a missing
 * subscription or test clock answers `not_found` like `payments show`.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InvalidArgumentError } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CommandRegistrar } from '../../src/cli/program.ts';
import type { Config } from '../../src/config/config.ts';
import type { IntentKey } from '../../src/kernel/ids.ts';
import { MAX_REFUNDS_PER_CHARGE } from '../../src/kernel/ids.ts';
import type { AmountMinor } from '../../src/kernel/money.ts';
import { createRefund, refundDeps } from '../../src/payments/refunds/create.ts';
import { startTestApp, testConfig, type TestApp } from '../support/app.ts';
import { runCliInProcess } from '../support/cli-run.ts';
import { createTestCharge } from '../support/intents.ts';
import { createMonthlySubscription } from '../support/subscriptions.ts';

/** runCliInProcess with extra commands registered and no config (no Redis needed). */
const runWith = (registrars: CommandRegistrar[], args: readonly string[]) =>
  runCliInProcess(undefined, args, {}, registrars);

describe('billing sandbox: a flag value its options refuse', () => {
  it.each([
    [['--webhook-duplicates', '0'], '--webhook-duplicates'],
    [['--port', '70000'], '--port'],
    [['--webhook-url', 'ftp://x'], '--webhook-url'],
  ])('%j exits 2 naming %s, no ZodError', async (args, flag) => {
    const human = await runWith([], ['sandbox', ...args]);
    expect(human.code, human.err).toBe(2);
    expect(human.err).toMatch(new RegExp(`^${flag}: `, 'm'));
    expect(human.err).not.toMatch(/ZodError|"code":|^\s+at /m);
    const json = await runWith([], ['sandbox', ...args, '--json']);
    expect(json.code).toBe(2);
    const doc = JSON.parse(json.out) as { error: { code: string; message: string } };
    expect(doc.error.code).toBe('usage');
    expect(doc.error.message).toContain(flag);
  });

  it('an unknown is a choice: --status-words takes documented or extended only', async () => {
    const r = await runWith([], ['sandbox', '--status-words', 'paystack']);
    expect(r.code).toBe(2);
    expect(r.err).toContain('Allowed choices are documented, extended');
  });
});

describe('an InvalidArgumentError thrown inside an action', () => {
  it('prints its message (commander printed only the ones its flag parsers threw)', async () => {
    const boom: CommandRegistrar = (program) => {
      program.command('boom').action(() => {
        throw new InvalidArgumentError('--thing must be a thing');
      });
    };
    const r = await runWith([boom], ['boom']);
    expect(r.code).toBe(2);
    expect(r.err).toContain('--thing must be a thing');
  });

  it.each([
    [['sandbox', '--encryption-key', 'k'], '--encryption-key and --encryption-iv go together'],
    [['sandbox', '--encryption-encoding', 'rot13'], '--encryption-encoding must be hex or base64'],
    [['subs', 'clock', 'create', 'not-a-time'], 'frozen_time "not-a-time" must be an ISO 8601'],
    [['subs', 'clock', 'advance', 'clk_x', 'later'], 'to "later" must be an ISO 8601'],
  ])('%j exits 2 with its message', async (args, message) => {
    const r = await runWith([], args);
    expect(r.code).toBe(2);
    expect(r.err).toContain(message);
  });
});

describe('billing health: a file that is JSON but not a heartbeat', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cli-health-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it.each([
    ['{}', 'pid'],
    ['null', 'expected object'],
    ['[]', 'expected object'],
    ['{"pid":1,"at":"2020-01-01T00:00:00Z","redis":"up"}', 'roles'],
    ['{"pid":1,"roles":[],"startedAt":"x","at":"x","redis":"up","workers":{}}', 'workers'],
    ['not json', 'unreadable JSON'],
  ])('%s: exit 1, unhealthy, the file named', async (text, why) => {
    const file = join(dir, 'hb.json');
    await writeFile(file, text);
    const human = await runWith([], ['health', '--health-file', file]);
    expect(human.code).toBe(1);
    expect(human.err).toContain(`${file} is not a heartbeat file`);
    expect(human.err).toContain(why);
    expect(human.err).not.toContain('is not iterable');
    const json = await runWith([], ['health', '--health-file', file, '--json']);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.out)).toMatchObject({
      error: { code: 'unhealthy', details: { healthFile: file } },
    });
  });
});

describe('payments refund and subs: refusals of what was asked', () => {
  let t: TestApp;
  let partial: Config;
  let whole: Config;

  /** A succeeded NGN charge `api_<name>` of `amount` minor units. */
  async function paidCharge(name: string, amount: number): Promise<IntentKey> {
    const key = await createTestCharge(t.app.store, name, Date.now(), amount as AmountMinor);
    for (const to of ['submitting', 'succeeded'] as const) {
      await t.app.store.transition(key, to, Date.now());
    }
    return key;
  }

  beforeAll(async () => {
    // No roles: refunds stay queued; nothing talks to Sayswitch.
    t = await startTestApp({ sandboxUrl: 'http://127.0.0.1:9', roles: [] });
    whole = t.app.config;
    partial = await testConfig(t.prefix, {
      SAYSWITCH_BASE_URL: 'http://127.0.0.1:9',
      SAYSWITCH_PARTIAL_REFUNDS: 'true',
    });
  });
  afterAll(async () => {
    await t.close();
  });

  const refundError = async (config: Config, args: string[]) => {
    const r = await runCliInProcess(config, ['payments', 'refund', ...args, '--json']);
    const doc = JSON.parse(r.out) as { error?: { code: string; message: string } };
    return { code: r.code, error: doc.error };
  };

  it('partial_refund_not_supported, refund_exceeds_charge, key_reused: exit 2, their codes', async () => {
    const key = await paidCharge('ue-refund', 1000);
    expect(await refundError(whole, [key, '--amount', '400'])).toMatchObject({
      code: 2,
      error: { code: 'partial_refund_not_supported' },
    });
    const first = await runCliInProcess(partial, ['payments', 'refund', key, '--amount', '400']);
    expect(first.code, first.err).toBe(0);
    expect(await refundError(partial, [key, '--amount', '700'])).toMatchObject({
      code: 2,
      error: { code: 'refund_exceeds_charge' },
    });
    const keyed = await runCliInProcess(partial, [
      'payments',
      'refund',
      key,
      '--amount',
      '100',
      '--key',
      'ue-k1',
    ]);
    expect(keyed.code, keyed.err).toBe(0);
    expect(await refundError(partial, [key, '--amount', '200', '--key', 'ue-k1'])).toMatchObject({
      code: 2,
      error: { code: 'key_reused' },
    });
    // In human mode the message is printed without a stack.
    const human = await runCliInProcess(partial, ['payments', 'refund', key, '--amount', '9999']);
    expect(human.code).toBe(2);
    expect(human.err).toContain('exceeds what is left to refund');
  });

  it('too_many_refunds: exit 2', async () => {
    const key = await paidCharge('ue-many', 10_000);
    const deps = refundDeps(t.app);
    for (let i = 0; i < MAX_REFUNDS_PER_CHARGE; i++) {
      const res = await createRefund({ ...deps, partialRefunds: true }, key, {
        amount: 1 as AmountMinor,
        requestedBy: 'test',
      });
      expect(res.status).toBe('created');
    }
    expect(await refundError(partial, [key, '--amount', '1'])).toMatchObject({
      code: 2,
      error: { code: 'too_many_refunds' },
    });
  });

  it('a charge not refundable in its state stays a runtime refusal (exit 1)', async () => {
    const key = 'api_ue-queued' as IntentKey;
    await createTestCharge(t.app.store, 'ue-queued', Date.now());
    expect(await refundError(whole, [key])).toMatchObject({
      code: 1,
      error: { code: 'not_refundable' },
    });
  });

  it("a subscription refused in its state: exit 1 with the HTTP API's code, not a usage error", async () => {
    const created = await createMonthlySubscription(t.app, 'ue-canceled');
    expect(created.status).toBe('created');
    const canceled = await runCliInProcess(whole, ['subs', 'cancel', 'ue-canceled']);
    expect(canceled.code, canceled.err).toBe(0);
    for (const args of [
      ['subs', 'pause', 'ue-canceled'],
      ['subs', 'update', 'ue-canceled', '--amount', '10'],
    ]) {
      const r = await runCliInProcess(whole, [...args, '--json']);
      expect(r.code, args.join(' ')).toBe(1);
      expect(JSON.parse(r.out)).toMatchObject({
        error: { code: 'subscription_canceled', message: expect.stringContaining('is canceled') },
      });
    }
    const human = await runCliInProcess(whole, ['subs', 'pause', 'ue-canceled']);
    expect(human.code).toBe(1);
    expect(human.err).toContain('subscription "ue-canceled" is canceled; it cannot be paused');
  });

  it.each([
    [['subs', 'show', 'no-such-sub']],
    [['subs', 'update', 'no-such-sub', '--amount', '10']],
    [['subs', 'pause', 'no-such-sub']],
    [['subs', 'resume', 'no-such-sub']],
    [['subs', 'cancel', 'no-such-sub']],
    [['subs', 'clock', 'show', 'no-such-clock']],
    [['subs', 'clock', 'advance', 'no-such-clock', '2030-01-01T00:00:00Z']],
    [['payments', 'show', 'api_no-such-payment']],
  ])('%j: not_found, exit 2 like payments show', async (args) => {
    const r = await runCliInProcess(whole, [...args, '--json']);
    expect(r.code, r.err).toBe(2);
    expect(JSON.parse(r.out)).toMatchObject({ error: { code: 'not_found' } });
  });
});
