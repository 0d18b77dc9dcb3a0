/**
 * What the CLI prints for a person shows stored values from outside with their control characters
 * escaped (src/cli/output.ts `printable`): a batch's file name stored before names were checked
 * (test/integration/operator-text.test.ts refuses them now), a payment's failure reason, an
 * argument quoted by an error. A line break there would add a line the operator takes for the
 * CLI's own (rows and amounts read before `billing batch approve`), an escape sequence would hide
 * or redraw the real ones. `--json` keeps the exact value. The data is written straight to Redis,
 * as data stored before validation would be; the CLI runs as an operator runs it (a child
 * process).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { batchKeys } from '../../src/batches/store/batch-store.ts';
import { RedisIntentStore } from '../../src/payments/store/intent-store.ts';
import { FAST_ENV } from '../support/app.ts';
import { emptyDir, runCliChild, type CliResult } from '../support/cli-run.ts';
import { createTestCharge } from '../support/intents.ts';
import { cleanupPrefix, createTestRedis, getRedisUrl, uniquePrefix } from '../support/redis.ts';

/** Ends the real first line, forges a second, then conceals (ESC [8m) what the CLI prints next. */
const FORGED_SOURCE = 'payroll.csv): awaiting_approval\n  rows 1 (1 valid, 0 invalid)\u001b[8m';
/** Erases the line and moves up (ESC, and C1 CSI 0x9b), a carriage return, a forged line. */
const FORGED_REASON =
  'declined\u001b[2K\u001b[1A\r\u009b2K\n  attempt api_tty-pay_1: succeeded\u202e';
const BATCH = 'tty-batch';
const PAYOUTS = [
  'reference,account_number,bank_code,bank_name,account_name,amount,currency,narration',
  'tty-1,0123456789,058,GTBank,Ada Okafor,1500,NGN,tty test',
  'tty-2,0234567890,044,Access Bank,Bola Adeyemi,2500.50,NGN,tty test',
].join('\n');

/** A terminal acts on these rather than showing them; only the CLI's own line breaks may remain. */
const RAW_CONTROL = /[\p{Cc}\p{Zl}\p{Zp}\u202a-\u202e\u2066-\u2069]/u;

let prefix: string;
let redis: Redis;
let env: Record<string, string>;
let dir: string;

function noRawControl(run: CliResult): void {
  for (const [name, text] of [
    ['stdout', run.stdout],
    ['stderr', run.stderr],
  ] as const) {
    const raw = text.replace(/\n/g, '').match(RAW_CONTROL);
    expect(raw, `${name} holds a raw ${JSON.stringify(raw?.[0])}:\n${JSON.stringify(text)}`).toBe(
      null,
    );
  }
}

beforeAll(async () => {
  prefix = uniquePrefix('clitty');
  redis = await createTestRedis({}, 'cli terminal text test redis');
  dir = emptyDir('cli-tty');
  env = {
    ...FAST_ENV,
    REDIS_URL: await getRedisUrl(),
    QUEUE_PREFIX: prefix,
    // No role runs: nothing is sent anywhere.
    SAYSWITCH_BASE_URL: 'http://127.0.0.1:9',
  };
  writeFileSync(join(dir, 'payouts.csv'), `${PAYOUTS}\n`);
  const submitted = await runCliChild(
    ['batch', 'submit', join(dir, 'payouts.csv'), '--type', 'payout', '--id', BATCH],
    env,
    { cwd: dir },
  );
  expect(submitted.code, submitted.stderr).toBe(0);
  // As a batch uploaded before names were checked would hold it.
  await redis.hset(batchKeys(prefix).batch(BATCH), 'source', FORGED_SOURCE);

  // A charge the gateway failed with a reason carrying escape sequences and a line break.
  const store = new RedisIntentStore(redis, prefix);
  const key = await createTestCharge(store, 'tty-pay', Date.now());
  expect((await store.transition(key, 'submitting', Date.now())).ok).toBe(true);
  const failed = await store.transition(key, 'failed', Date.now(), {
    patch: { reason: FORGED_REASON },
    reason: FORGED_REASON,
  });
  expect(failed.ok).toBe(true);
});

afterAll(async () => {
  await cleanupPrefix(redis, prefix);
  await redis.quit();
});

describe('human output of stored values from outside', () => {
  it('batch status: the file name on its own line, escaped; no forged or hidden line', async () => {
    const run = await runCliChild(['batch', 'status', BATCH], env, { cwd: dir });
    expect(run.code, run.stderr).toBe(0);
    noRawControl(run);
    const lines = run.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe(
      `batch ${BATCH} (payout, payroll.csv): awaiting_approval\\n  rows 1 (1 valid, 0 invalid)\\x1b[8m): queued`,
    );
    // The one rows line is the CLI's, with the real counts.
    expect(lines.filter((l) => l.startsWith('  rows '))).toEqual([
      '  rows 2 (2 valid, 0 invalid) · 0/2 final',
    ]);
  });

  it('batch status --json: the exact stored name', async () => {
    const run = await runCliChild(['batch', 'status', BATCH, '--json'], env, { cwd: dir });
    expect(run.code, run.stderr).toBe(0);
    expect((JSON.parse(run.stdout) as { source: string }).source).toBe(FORGED_SOURCE);
  });

  it("payments show: the gateway's reason escaped where it is printed, every line the CLI's", async () => {
    const run = await runCliChild(['payments', 'show', 'api_tty-pay'], env, { cwd: dir });
    expect(run.code, run.stderr).toBe(0);
    noRawControl(run);
    const shown =
      'declined\\x1b[2K\\x1b[1A\\r\\u009b2K\\n  attempt api_tty-pay_1: succeeded\\u202e';
    const lines = run.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe(`api_tty-pay  charge  10 NGN  failed (${shown})`);
    expect(lines.filter((l) => l.startsWith('  attempt '))).toEqual([
      '  attempt api_tty-pay_1: failed',
    ]);
    expect(lines.filter((l) => l.endsWith(`→ failed  #1  ${shown}`))).toHaveLength(1);
  });

  it('an error quoting the argument: one stderr line, escaped', async () => {
    const arg = 'nope\u001b[2J\nerror: forged\u009b';
    const run = await runCliChild(['payments', 'show', arg], env, { cwd: dir });
    expect(run.code).toBe(2);
    noRawControl(run);
    expect(run.stderr).toBe(
      'no payment with key or reference "nope\\x1b[2J\\nerror: forged\\u009b"\n',
    );
  });

  it("commander's own error, quoting a bad flag value: escaped too", async () => {
    const run = await runCliChild(
      ['batch', 'submit', 'payouts.csv', '--type', 'payout\u001b[1A\nforged'],
      env,
      { cwd: dir },
    );
    expect(run.code).toBe(2);
    noRawControl(run);
    expect(run.stderr).toContain("argument 'payout\\x1b[1A\\nforged' is invalid");
    expect(run.stderr.split('\n').some((l) => l.startsWith('forged'))).toBe(false);
  });
});
