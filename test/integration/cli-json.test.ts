/**
 * `--json` over every command of the CLI, each run as a user runs it (a child process, logs at
 * `debug` so a log line on stdout would break the parse): stdout is exactly one JSON document, on
 * success and on failure (`{"error":{"code","message"}}`), and nothing else. The command tree is
 * read from commander, so a new command without a case here fails the first test.
 *
 * Commands that need Redis run against the test Redis under a unique QUEUE_PREFIX. `start` and
 * `sandbox` run until a signal: they are started, checked while they run and stopped with SIGTERM.
 * `demo` is the one command without a success case here: it runs every role until its payments
 * are final; its `--json` document is checked by test/integration/demo-continue.test.ts.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli/program.ts';
import type { IntentKey } from '../../src/kernel/ids.ts';
import type { AmountMinor } from '../../src/kernel/money.ts';
import { RedisIntentStore } from '../../src/payments/store/intent-store.ts';
import { createSubscription } from '../../src/subscriptions/record.ts';
import { RedisSubscriptionStore } from '../../src/subscriptions/store/subscription-store.ts';
import type { Sandbox } from '../../src/sandbox/index.ts';
import { FAST_ENV } from '../support/app.ts';
import {
  emptyDir,
  LISTING_CTX,
  runCliChild,
  spawnCli,
  type CliResult,
} from '../support/cli-run.ts';
import { trackChild } from '../support/leak-check.ts';
import { until } from '../support/poll.ts';
import { createTestCharge } from '../support/intents.ts';
import { cleanupPrefix, createTestRedis, getRedisUrl, uniquePrefix } from '../support/redis.ts';
import { findFreePort } from '../support/redis-server.ts';
import { startTestSandbox } from '../support/sandbox.ts';

const EXAMPLES = new URL('../../examples/', import.meta.url).pathname;
const PACKAGE = JSON.parse(
  readFileSync(new URL('../../package.json', import.meta.url), 'utf8'),
) as { version: string };

/** Every leaf command of the program, as its path (`batch submit`). */
function commandPaths(cmd: Command, prefix: string[] = []): string[] {
  return cmd.commands.flatMap((c) => {
    const path = [...prefix, c.name()];
    return c.commands.length === 0 ? [path.join(' ')] : commandPaths(c, path);
  });
}

interface Case {
  /** The arguments; a function for ones an earlier case learned (a test clock's id). */
  args: string[] | (() => string[]);
  /** The exit code; 0 means the document is a result, anything else an error document. */
  exit: number;
  /** The error document's code. */
  code?: string;
  check?: (doc: Record<string, unknown>, run: CliResult) => void;
  env?: Record<string, string>;
}

const BATCH_ID = 'clijson-b1';
/** A deployment with nothing stored, for `keys reseal` (removed after the run). */
const EMPTY_PREFIX = uniquePrefix('cjempty');
/** The test clock `subs clock create` made, for the clock cases after it. */
let clockId = '';
/** A second clock, for `subs clock delete`. */
let clockToDelete = '';
const PAYOUTS = [
  'reference,account_number,bank_code,bank_name,account_name,amount,currency,narration',
  'cj-1,0123456789,058,GTBank,Ada Okafor,1500,NGN,json test',
  'cj-2,0234567890,044,Access Bank,Bola Adeyemi,2500.50,NGN,json test',
  'cj-3,0345678901,057,Zenith Bank,Chidi Eze,99.99,NGN,json test',
].join('\n');
const INVALID = [
  'reference,account_number,bank_code,bank_name,account_name,amount,currency,narration',
  'bad-1,0123456789,058,GTBank,Ada Okafor,"1,500.00",NGN,json test',
].join('\n');

let dir: string;
const file = (name: string) => join(dir, name);

/**
 * The cases, by command path, run in this order (later ones read what earlier ones made). Each
 * path of the command tree has at least one case, or is in {@link LONG_RUNNING}.
 */
const CASES: [string, Case[]][] = [
  [
    'subs import',
    [
      {
        args: ['subs', 'import', join(EXAMPLES, 'subscriptions.csv')],
        exit: 0,
        check: (d) => expect(d.created).toBeGreaterThan(0),
      },
      { args: ['subs', 'import', '/nonexistent/subs.csv'], exit: 2, code: 'usage' },
      {
        args: () => ['subs', 'import', file('invalid-subs.csv')],
        exit: 2,
        code: 'invalid_input',
        check: (d) =>
          expect((d as { error: { details: unknown } }).error.details).toMatchObject({
            errors: [{ line: 2, column: 'amount' }],
          }),
      },
    ],
  ],
  [
    'subs list',
    [
      {
        args: ['subs', 'list', '--limit', '3'],
        exit: 0,
        check: (d) => expect(d.items).toHaveLength(3),
      },
      { args: ['subs', 'list', '--limit', 'x'], exit: 2, code: 'usage' },
    ],
  ],
  [
    'subs show',
    [
      {
        args: ['subs', 'show', 'lagos-gym-001'],
        exit: 0,
        check: (d) => expect(d.id).toBe('lagos-gym-001'),
      },
      { args: ['subs', 'show', 'no-such-sub'], exit: 2, code: 'not_found' },
    ],
  ],
  ['subs pause', [{ args: ['subs', 'pause', 'lagos-gym-001'], exit: 0 }]],
  ['subs resume', [{ args: ['subs', 'resume', 'lagos-gym-001'], exit: 0 }]],
  [
    'subs retry',
    [
      {
        args: ['subs', 'retry', 'cj-dunning'],
        exit: 0,
        check: (d) => {
          expect(d).toMatchObject({ id: 'cj-dunning', changed: true });
          const due = Date.parse((d.dunning as { retry_at: string }[])[0]!.retry_at);
          expect(due).toBeLessThanOrEqual(Date.now());
        },
      },
      { args: ['subs', 'retry', 'lagos-gym-001'], exit: 1, code: 'nothing_to_retry' },
      { args: ['subs', 'retry', 'no-such-sub'], exit: 2, code: 'not_found' },
    ],
  ],
  [
    'subs cancel',
    [
      {
        args: ['subs', 'cancel', 'lagos-gym-002'],
        exit: 0,
        check: (d) => expect(d.status).toBe('canceled'),
      },
      { args: ['subs', 'cancel', 'no-such-sub'], exit: 2, code: 'not_found' },
    ],
  ],
  [
    'subs update',
    [
      {
        args: ['subs', 'update', 'lagos-news-003', '--amount', '3000'],
        exit: 0,
        check: (d) => expect(d.id).toBe('lagos-news-003'),
      },
      { args: ['subs', 'update', 'no-such-sub', '--amount', '1'], exit: 2, code: 'not_found' },
    ],
  ],
  [
    'subs clock create',
    [
      {
        args: ['subs', 'clock', 'create', '2025-01-01T00:00:00Z', '--name', 'json'],
        exit: 0,
        check: (d) => {
          expect(typeof d.id).toBe('string');
          clockId = String(d.id);
        },
      },
      { args: ['subs', 'clock', 'create', 'not-a-time'], exit: 2, code: 'usage' },
      {
        args: ['subs', 'clock', 'create', '2025-01-01T00:00:00Z'],
        exit: 0,
        check: (d) => {
          clockToDelete = String(d.id);
        },
      },
    ],
  ],
  [
    'subs clock delete',
    [
      {
        args: () => ['subs', 'clock', 'delete', clockToDelete],
        exit: 0,
        check: (d) =>
          expect(d).toEqual({ id: clockToDelete, deleted: true, canceled_subscriptions: [] }),
      },
      { args: ['subs', 'clock', 'delete', 'no-such-clock'], exit: 2, code: 'not_found' },
    ],
  ],
  [
    'subs clock show',
    [
      {
        args: () => ['subs', 'clock', 'show', clockId],
        exit: 0,
        check: (d) => expect(d.id).toBe(clockId),
      },
      { args: ['subs', 'clock', 'show', 'no-such-clock'], exit: 2, code: 'not_found' },
    ],
  ],
  [
    'subs clock advance',
    [
      {
        args: () => ['subs', 'clock', 'advance', clockId, '2025-01-02T00:00:00Z'],
        exit: 0,
        check: (d) => expect(d.id).toBe(clockId),
      },
      { args: ['subs', 'clock', 'advance', 'no-such-clock', 'later'], exit: 2, code: 'usage' },
    ],
  ],
  [
    'batch submit',
    [
      {
        args: ['batch', 'submit', 'invalid.csv', '--type', 'payout'],
        exit: 2,
        code: 'invalid_input',
        check: (d) => {
          const details = (d.error as { details: { errors: unknown[] } }).details;
          expect(details.errors).toHaveLength(1);
        },
      },
      {
        args: ['batch', 'submit', 'payouts.csv', '--type', 'payout', '--validate-only'],
        exit: 0,
        check: (d) => expect(d.status).toBe('validated'),
      },
      {
        args: ['batch', 'submit', 'payouts.csv', '--type', 'payout', '--id', BATCH_ID],
        exit: 0,
        check: (d) => expect(d).toMatchObject({ status: 'created', batchId: BATCH_ID, valid: 3 }),
      },
      { args: ['batch', 'submit', 'missing.csv', '--type', 'payout'], exit: 2 },
    ],
  ],
  [
    'batch status',
    [
      {
        args: ['batch', 'status', BATCH_ID],
        exit: 0,
        check: (d) => expect(d).toMatchObject({ id: BATCH_ID, valid: 3 }),
      },
      { args: ['batch', 'status', 'no-such-batch'], exit: 2, code: 'not_found' },
    ],
  ],
  [
    'batch results',
    [
      {
        // Without -o and with --json: the rows as one JSON array.
        args: ['batch', 'results', BATCH_ID],
        exit: 0,
        check: (d) => {
          const rows = d as unknown as Record<string, string>[];
          expect(rows.map((r) => r.reference)).toEqual(['cj-1', 'cj-2', 'cj-3']);
          expect(rows[0]).toMatchObject({ line: '2', currency: 'NGN' });
        },
      },
      {
        args: ['batch', 'results', BATCH_ID, '-o', 'results.csv'],
        exit: 0,
        check: (d) => {
          expect(d).toEqual({ batchId: BATCH_ID, output: 'results.csv' });
          expect(readFileSync(file('results.csv'), 'utf8')).toMatch(/^line,reference,/);
        },
      },
      {
        // A path that cannot be written: the file named, no stack, exit 2.
        args: ['batch', 'results', BATCH_ID, '-o', '/nonexistent/dir/x.csv'],
        exit: 2,
        code: 'output_file',
        check: (d, run) => {
          expect((d.error as { message: string }).message).toContain('/nonexistent/dir/x.csv');
          expect(run.stderr).toContain('/nonexistent/dir/x.csv');
          expect(run.stderr).not.toMatch(/^\s+at /m);
        },
      },
    ],
  ],
  [
    'batch cancel',
    [
      {
        // A second batch (the same rows under another id), canceled: no worker runs here, so every
        // row is still queued and fails as canceled.
        args: [
          'batch',
          'submit',
          'payouts.csv',
          '--type',
          'payout',
          '--id',
          'clijson-b2',
          '--allow-reused-references',
        ],
        exit: 0,
      },
      {
        args: ['batch', 'cancel', 'clijson-b2'],
        exit: 0,
        check: (d) => expect(d).toMatchObject({ batchId: 'clijson-b2', canceledNow: 3 }),
      },
      { args: ['batch', 'cancel', 'no-such-batch'], exit: 2, code: 'not_found' },
    ],
  ],
  [
    'batch retry-failed',
    [
      {
        // Canceled rows are not retried.
        args: ['batch', 'retry-failed', 'clijson-b2'],
        exit: 0,
        check: (d) => expect(d).toMatchObject({ status: 'nothing_to_retry', rows: 0 }),
      },
      { args: ['batch', 'retry-failed', BATCH_ID], exit: 1, code: 'batch_in_progress' },
      { args: ['batch', 'retry-failed', 'no-such-batch'], exit: 2, code: 'not_found' },
    ],
  ],
  [
    'batch approve',
    [
      {
        // BATCH_APPROVAL is none here: the batch was never held.
        args: ['batch', 'approve', BATCH_ID],
        exit: 0,
        check: (d) => expect(d).toMatchObject({ batchId: BATCH_ID, status: 'not_required' }),
      },
      { args: ['batch', 'approve', 'clijson-b2'], exit: 1, code: 'batch_canceled' },
      { args: ['batch', 'approve', 'no-such-batch'], exit: 2, code: 'not_found' },
    ],
  ],
  [
    'batch list',
    [
      {
        // Newest first: the canceled second batch, then the first; one per page.
        args: ['batch', 'list', '--limit', '1'],
        exit: 0,
        check: (d) => {
          expect((d.data as { id: string }[]).map((b) => b.id)).toEqual(['clijson-b2']);
          expect(d.next_cursor).toEqual(expect.any(String));
        },
      },
      {
        // `batches` is the same command (as GET /batches).
        args: ['batches', 'list', '--status', 'queued'],
        exit: 0,
        check: (d) => {
          for (const b of d.data as { state: string }[]) expect(b.state).toBe('queued');
          expect(d.next_cursor).toBeNull();
        },
      },
      { args: ['batch', 'list', '--status', 'paid'], exit: 2, code: 'invalid_input' },
      { args: ['batch', 'list', '--cursor', 'nope'], exit: 2, code: 'invalid_input' },
    ],
  ],
  [
    'batch reindex',
    [
      {
        args: ['batch', 'reindex'],
        exit: 0,
        check: (d) => expect(d.indexed).toBeGreaterThanOrEqual(2),
      },
    ],
  ],
  [
    'payments show',
    [
      {
        args: ['payments', 'show', `bat_${BATCH_ID}_cj-1`],
        exit: 0,
        check: (d) => expect(d.key).toBe(`bat_${BATCH_ID}_cj-1`),
      },
      { args: ['payments', 'show', 'api_nothing_here'], exit: 2, code: 'not_found' },
    ],
  ],
  [
    'payments list',
    [
      {
        args: ['payments', 'list', '--batch', BATCH_ID, '--limit', '1'],
        exit: 0,
        check: (d) => {
          expect((d.data as unknown[]).length).toBe(1);
          expect(typeof d.next_cursor).toBe('string');
        },
      },
      { args: ['payments', 'list', '--state', 'paid'], exit: 2, code: 'invalid_input' },
      {
        args: ['payments', 'list', '--currency', 'NGN', '--email', 'nobody@example.com'],
        exit: 0,
        check: (d) => expect(d.data).toEqual([]),
      },
      { args: ['payments', 'list', '--currency', 'XYZ'], exit: 2, code: 'invalid_input' },
    ],
  ],
  [
    'payments reindex',
    [
      {
        args: ['payments', 'reindex'],
        exit: 0,
        check: (d) => expect(typeof d.indexed).toBe('number'),
      },
    ],
  ],
  [
    'payments refund',
    [
      {
        // A succeeded charge (set up below): part of it, with the caller's key.
        args: [
          'payments',
          'refund',
          'api_cj-paid',
          '--amount',
          '400',
          '--reason',
          'x',
          '--key',
          'r1',
        ],
        env: { SAYSWITCH_PARTIAL_REFUNDS: 'true' },
        exit: 0,
        check: (d) => {
          expect(d).toMatchObject({
            key: 'rf1_api_cj-paid',
            type: 'refund',
            state: 'queued',
            amountMinor: 400,
            chargeKey: 'api_cj-paid',
            created: true,
          });
        },
      },
      {
        // More than is left: refused (bad input, as HTTP's 422), nothing written.
        args: ['payments', 'refund', 'api_cj-paid', '--amount', '700'],
        env: { SAYSWITCH_PARTIAL_REFUNDS: 'true' },
        exit: 2,
        code: 'refund_exceeds_charge',
      },
      { args: ['payments', 'refund', 'api_cj-review'], exit: 1, code: 'not_refundable' },
      { args: ['payments', 'refund', 'api_nothing_here'], exit: 2, code: 'not_found' },
      { args: ['payments', 'refund', 'x', '--amount', '1.5'], exit: 2, code: 'invalid_refund' },
    ],
  ],
  [
    'payments refunds',
    [
      {
        args: ['payments', 'refunds', 'api_cj-paid'],
        exit: 0,
        check: (d) =>
          expect(d).toMatchObject({
            chargeKey: 'api_cj-paid',
            chargedMinor: 1000,
            inFlightMinor: 400,
            refundableMinor: 600,
            status: 'not_refunded',
          }),
      },
      { args: ['payments', 'refunds', 'api_nothing_here'], exit: 2, code: 'not_found' },
    ],
  ],
  [
    'payments resolve',
    [
      {
        args: ['payments', 'resolve', 'api_nothing_here', '--outcome', 'failed', '--note', 'x'],
        exit: 2,
        code: 'not_found',
      },
      {
        // In needs_review (set up below); Sayswitch never saw it, so only --force records it.
        args: [
          'payments',
          'resolve',
          'api_cj-review',
          '--outcome',
          'failed',
          '--note',
          'checked',
          '--force',
        ],
        exit: 0,
        check: (d) => {
          expect(d).toMatchObject({ state: 'failed', reason: 'operator_forced' });
          expect(d.resolution).toMatchObject({ forced: true });
        },
      },
      {
        // A batch row not in review: refused, naming why.
        args: ['payments', 'resolve', `bat_${BATCH_ID}_cj-1`, '--outcome', 'failed', '--note', 'x'],
        exit: 1,
        code: 'not_resolvable',
      },
      {
        args: ['payments', 'resolve', 'x', '--outcome', 'maybe', '--note', 'x'],
        exit: 2,
        code: 'usage',
      },
    ],
  ],
  [
    'reconcile',
    [
      {
        args: ['reconcile', '--older-than', '1h'],
        exit: 0,
        check: (d) => expect(typeof d.due).toBe('number'),
      },
      { args: ['reconcile', '--older-than', 'soon'], exit: 2, code: 'usage' },
    ],
  ],
  [
    'redis status',
    [{ args: ['redis', 'status'], exit: 0, check: (d) => expect(d.redis).toBeTruthy() }],
  ],
  [
    'redis ack-data-loss',
    [
      {
        args: ['redis', 'ack-data-loss'],
        exit: 0,
        check: (d) => expect(d.acknowledged).toBe(false),
      },
    ],
  ],
  [
    'keys reseal',
    [
      {
        // Without DATA_ENCRYPTION_KEY_PREVIOUS, a check that everything opens with the key: the
        // fixtures' payments carry sealed values no key opens; each is named, exit 1.
        args: ['keys', 'reseal'],
        exit: 1,
        code: 'unreadable_sealed_values',
        check: (d) => {
          expect(d).toMatchObject({ done: false, previousKeySet: false });
          expect((d.total as { unreadableAt: string[] }).unreadableAt).toContain('api_cj-review');
        },
      },
      {
        // A deployment with nothing sealed under another key.
        args: ['keys', 'reseal'],
        env: { QUEUE_PREFIX: EMPTY_PREFIX },
        exit: 0,
        check: (d) => {
          expect(d).toMatchObject({ done: true, previousKeySet: false });
          expect((d.total as { checked: number }).checked).toBe(0);
        },
      },
    ],
  ],
  [
    'health',
    [
      {
        args: ['health', '--health-file', 'no-heartbeat.json'],
        exit: 1,
        code: 'unhealthy',
        check: (d) => expect((d.error as { message: string }).message).toContain('no heartbeat'),
      },
      {
        // JSON, but not a heartbeat: named as such, not a crash.
        args: ['health', '--health-file', 'not-heartbeat.json'],
        exit: 1,
        code: 'unhealthy',
        check: (d) =>
          expect((d.error as { message: string }).message).toContain(
            'not-heartbeat.json is not a heartbeat file',
          ),
      },
    ],
  ],
  [
    'demo',
    // Its success runs every role until final: demo-continue.test.ts checks its --json document.
    [{ args: ['demo', '--timeout', 'soon'], exit: 2, code: 'usage' }],
  ],
  [
    'start',
    [
      {
        // A cron variable the scheduler would refuse: exit 2 naming it, before anything starts.
        args: ['start'],
        env: { SCHEDULER_CRON: '99 * * * *' },
        exit: 2,
        code: 'config',
        check: (d) => {
          const { problems } = (d.error as { details: { problems: { variable: string }[] } })
            .details;
          expect(problems.map((p) => p.variable)).toEqual(['SCHEDULER_CRON']);
        },
      },
      { args: ['start', '--roles', 'api,cook'], exit: 2, code: 'usage' },
    ],
  ],
  [
    'sandbox',
    [
      { args: ['sandbox', '--fault-rate', '2'], exit: 2, code: 'usage' },
      {
        // A value the sandbox's options refuse: the flag named, no ZodError.
        args: ['sandbox', '--webhook-duplicates', '0'],
        exit: 2,
        code: 'usage',
        check: (d) =>
          expect((d.error as { message: string }).message).toMatch(/^--webhook-duplicates: /),
      },
    ],
  ],
];

/** Commands that run until a signal: their success is checked in a test of their own below. */
const LONG_RUNNING = ['start', 'sandbox'];

describe('--json: exactly one JSON document on stdout for every command', () => {
  let prefix: string;
  let redis: Redis;
  let sandbox: Sandbox;
  let env: Record<string, string>;

  beforeAll(async () => {
    prefix = uniquePrefix('clijson');
    redis = await createTestRedis({}, 'cli-json test redis');
    sandbox = await startTestSandbox();
    // A payment in needs_review for `payments resolve`.
    const store = new RedisIntentStore(redis, prefix);
    const key = await createTestCharge(store, 'cj-review', Date.now());
    for (const to of ['submitting', 'unknown', 'needs_review'] as const) {
      await store.transition(key, to, Date.now());
    }
    // A succeeded charge for `payments refund` and `payments refunds`.
    const paid = 'api_cj-paid' as IntentKey;
    await store.create(
      {
        key: paid,
        type: 'charge',
        origin: 'api',
        amount: 1000 as AmountMinor,
        currency: 'NGN',
        payee: { kind: 'charge', email: 'p@example.com', cardTokenSealed: 'sealed' },
      },
      Date.now(),
    );
    for (const to of ['submitting', 'succeeded'] as const) {
      await store.transition(paid, to, Date.now());
    }
    // A subscription in dunning for `subs retry`: its first retry is a day away.
    const subs = new RedisSubscriptionStore(redis, prefix);
    const base = createSubscription(
      {
        id: 'cj-dunning',
        customerEmail: 'd@example.com',
        cardTokenSealed: 'sealed',
        amount: 1000 as AmountMinor,
        currency: 'NGN',
        schedule: {
          anchor: '2025-01-01T09:00:00Z',
          timezone: 'UTC',
          interval: 'month',
          intervalCount: 1,
        },
        metadata: {},
      },
      Date.now(),
    );
    await subs.create({
      ...base,
      status: 'past_due',
      dunning: [
        {
          key: 'sub_cj-dunning_20250101' as IntentKey,
          period: 0,
          attempt: 1,
          step: 0,
          failedAt: Date.now(),
          dueAt: Date.now() + 86_400_000,
          reason: 'Declined',
        },
      ],
    });
    dir = emptyDir('cli-json');
    writeFileSync(file('payouts.csv'), `${PAYOUTS}\n`);
    writeFileSync(file('invalid.csv'), `${INVALID}\n`);
    writeFileSync(
      file('invalid-subs.csv'),
      'id,customer_email,card_token,amount,currency,interval,interval_count,anchor,timezone\n' +
        'bad-sub-1,a@example.com,enc_card_9f3a1c0d2e7b4a61,-5,NGN,month,1,2025-01-31T09:00:00+01:00,Africa/Lagos\n',
    );
    writeFileSync(file('not-heartbeat.json'), '{}\n');
    env = {
      ...FAST_ENV,
      REDIS_URL: await getRedisUrl(),
      QUEUE_PREFIX: prefix,
      SAYSWITCH_BASE_URL: sandbox.url,
      // Chatty on purpose: a log line on stdout would break every parse below.
      LOG_LEVEL: 'debug',
    };
  });

  afterAll(async () => {
    await sandbox?.close();
    await cleanupPrefix(redis, prefix);
    await cleanupPrefix(redis, EMPTY_PREFIX);
    await redis.quit();
  });

  /** Runs a case and checks the one-document rule; returns the document. */
  async function runJson(c: Case): Promise<Record<string, unknown>> {
    const args = typeof c.args === 'function' ? c.args() : c.args;
    const run = await runCliChild([...args, '--json'], { ...env, ...c.env }, { cwd: dir });
    const what = `billing ${args.join(' ')} --json\nstdout:\n${run.stdout}\nstderr:\n${run.stderr}`;
    expect(run.code, what).toBe(c.exit);
    let doc: Record<string, unknown>;
    try {
      doc = JSON.parse(run.stdout) as Record<string, unknown>;
    } catch {
      throw new Error(`stdout is not one JSON document: ${what}`);
    }
    expect(doc, what).not.toBeNull();
    if (c.exit === 0) {
      expect(Array.isArray(doc) ? undefined : doc.error, what).toBeUndefined();
    } else {
      const error = doc.error as { code?: unknown; message?: unknown } | undefined;
      expect(typeof error?.code, what).toBe('string');
      expect(typeof error?.message, what).toBe('string');
      if (c.code !== undefined) expect(error?.code, what).toBe(c.code);
    }
    c.check?.(doc, run);
    return doc;
  }

  it('has a case for every command of the program (a new command needs one)', () => {
    const paths = commandPaths(buildProgram(LISTING_CTX)).sort();
    const covered = new Set(CASES.map(([path]) => path));
    expect(paths.filter((p) => !covered.has(p))).toEqual([]);
    expect([...covered].filter((p) => !paths.includes(p))).toEqual([]);
    for (const p of LONG_RUNNING) expect(paths).toContain(p);
    // Every command that can succeed quickly has a success case.
    const withSuccess = CASES.filter(([, cs]) => cs.some((c) => c.exit === 0)).map(([p]) => p);
    expect(paths.filter((p) => !withSuccess.includes(p)).sort()).toEqual(
      ['demo', 'health', ...LONG_RUNNING].sort(),
    );
  });

  for (const [path, cases] of CASES) {
    it(`billing ${path} --json`, async () => {
      for (const c of cases) await runJson(c);
    });
  }

  it('billing --version prints the package version; with --json as a document', async () => {
    const plain = await runCliChild(['--version'], {});
    expect(plain).toMatchObject({ code: 0, stdout: `${PACKAGE.version}\n` });
    const json = await runCliChild(['--version', '--json'], {});
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual({ version: PACKAGE.version });
  });

  it('an unknown command with --json: a usage error document, exit 2', async () => {
    await runJson({ args: ['refund', 'everything'], exit: 2, code: 'usage' });
  });

  it('billing start --json: logs on stderr, healthy while it runs, one document when stopped', async () => {
    const health = file('start-health.json');
    const child = spawnCli(
      ['start', '--roles', 'api,worker', '--health-file', health, '--json'],
      { ...env, PORT: String(await findFreePort()) },
      { cwd: dir },
    );
    trackChild(child, 'billing start');
    await child.waitForStderr('roles started');
    await until(() => existsSync(health), { what: 'the heartbeat file', timeoutMs: 20_000 });

    const healthy = await runJson({
      args: ['health', '--health-file', health],
      exit: 0,
      check: (d) => {
        expect(d).toMatchObject({ healthy: true, redis: 'up', roles: ['api', 'worker'] });
        expect((d.workers as { running: boolean }[]).length).toBeGreaterThan(0);
        expect(d.http).toEqual({ listening: true });
      },
    });
    expect(healthy.pid).toBe(child.proc.pid);

    child.kill('SIGTERM');
    expect(await child.exited, child.stderr()).toBe(0);
    expect(JSON.parse(child.stdout())).toEqual({
      roles: ['api', 'worker'],
      signal: 'SIGTERM',
      stopped: true,
    });
    // The log lines went to stderr, as JSON.
    const logs = child
      .stderr()
      .split('\n')
      .filter((l) => l.startsWith('{'));
    expect(logs.map((l) => (JSON.parse(l) as { msg: string }).msg)).toContain('roles started');
    // Stopped: the heartbeat is gone and the role unhealthy.
    expect(existsSync(health)).toBe(false);
    await runJson({ args: ['health', '--health-file', health], exit: 1, code: 'unhealthy' });
  });

  it('billing sandbox --json: "listening" on stderr, one document when stopped', async () => {
    const child = spawnCli(['sandbox', '--port', '0', '--json'], {}, { cwd: dir });
    trackChild(child, 'billing sandbox');
    await child.waitForStderr('Sayswitch sandbox listening on');
    expect(child.stdout()).toBe('');
    child.kill('SIGTERM');
    expect(await child.exited, child.stderr()).toBe(0);
    expect(JSON.parse(child.stdout())).toMatchObject({
      url: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/) as unknown,
      profile: 'default',
      stopped: true,
    });
  });
});
