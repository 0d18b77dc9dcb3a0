/**
 * `billing batch submit --wait` as a person sees it, in a real terminal (tmux: send-keys to type,
 * capture-pane to read the screen, `#{cursor_flag}` for the cursor): the bar shows the succeeded
 * and failed counts with their money and the rows still in flight; Ctrl-C shows the cursor again,
 * says the batch keeps running and exits 130. Without a terminal: exit 3 when rows failed (the
 * documented default), 0 with --no-fail-on-failed-rows or when every row succeeded.
 *
 * A worker role runs in a child process against a sandbox whose pending payouts (amounts ending
 * .52) settle only after an hour, so the batch stays in flight while the screen is read.
 * tmux is required (`apt-get install tmux`; .ci/run installs it when missing).
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Sandbox } from '../../src/sandbox/index.ts';
import { FAST_ENV } from '../support/app.ts';
import { BIN } from '../support/child.ts';
import { emptyDir, runCliChild, spawnCli, type CliChild } from '../support/cli-run.ts';
import { until } from '../support/poll.ts';
import { cleanupPrefix, createTestRedis, getRedisUrl, uniquePrefix } from '../support/redis.ts';
import { startTestSandbox } from '../support/sandbox.ts';

const run = promisify(execFile);

const HEADER =
  'reference,account_number,bank_code,bank_name,account_name,amount,currency,narration';
const payouts = (rows: [string, string][]) =>
  [
    HEADER,
    ...rows.map(
      ([ref, amount], i) =>
        `${ref},01234567${String(i).padStart(2, '0')},058,GTBank,Payee ${i},${amount},NGN,wait test`,
    ),
  ].join('\n') + '\n';

/** A tmux server of its own (its own socket, no user config) with panes kept after they exit. */
function tmuxServer(dir: string, env: Record<string, string>) {
  const socket = `billing-wait-${process.pid}`;
  const conf = join(dir, 'tmux.conf');
  writeFileSync(conf, 'set -g remain-on-exit on\nset -g history-limit 100\n');
  const tmux = async (...args: string[]) =>
    (await run('tmux', ['-L', socket, '-f', conf, ...args], { env })).stdout;
  return {
    tmux,
    screen: (target: string) => tmux('capture-pane', '-p', '-J', '-t', target),
    format: async (target: string, fmt: string) =>
      (await tmux('display-message', '-p', '-t', target, fmt)).trim(),
    kill: () => tmux('kill-server').catch(() => ''),
  };
}

describe('batch submit --wait', () => {
  let prefix: string;
  let redis: Redis;
  let sandbox: Sandbox;
  let worker: CliChild;
  let env: Record<string, string>;
  let dir: string;

  beforeAll(async () => {
    const tmux = await run('tmux', ['-V']).catch(() => undefined);
    if (!tmux) throw new Error('tmux is required: apt-get install -y tmux (.ci/run installs it)');
    prefix = uniquePrefix('waittty');
    redis = await createTestRedis({}, 'wait tty test redis');
    // Pending payouts (.52) settle after an hour: the batch stays in flight during the test.
    sandbox = await startTestSandbox({ settleMs: 3_600_000 });
    dir = emptyDir('cli-wait');
    env = {
      ...FAST_ENV,
      REDIS_URL: await getRedisUrl(),
      QUEUE_PREFIX: prefix,
      SAYSWITCH_BASE_URL: sandbox.url,
    };
    worker = spawnCli(['start', '--roles', 'worker'], { ...env, LOG_LEVEL: 'info' }, { cwd: dir });
    await worker.waitForStderr('roles started');
  });

  afterAll(async () => {
    if (worker) {
      worker.kill('SIGTERM');
      await worker.exited;
    }
    await sandbox?.close();
    await cleanupPrefix(redis, prefix);
    await redis?.quit();
  });

  it('on a terminal: counts and money on the bar; Ctrl-C shows the cursor and says the batch runs on', async () => {
    const file = join(dir, 'tty.csv');
    writeFileSync(
      file,
      payouts([
        ['ok-1', '1000'],
        ['ok-2', '1000'],
        ['ok-3', '1000'],
        ['no-1', '2000.51'],
        ['no-2', '2000.51'],
        ['wait-1', '3000.52'],
        ['wait-2', '3000.52'],
      ]),
    );
    const server = tmuxServer(dir, {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      TERM: 'xterm-256color',
      ...env,
    });
    try {
      // The shell keeps the pane alive after billing exits (tmux resets a dead pane's cursor
      // flag), prints billing's exit code, and lets Ctrl-C reach billing alone (its trap is a
      // handler, reset for the child, not an ignore the child would inherit).
      const billing = `'${process.execPath}' '${BIN}' batch submit '${file}' --type payout --id tty-b1 --wait`;
      const command = `trap 'true' INT; ${billing}; echo "EXIT=$?"; exec sleep 3600`;
      await server.tmux(
        'new-session',
        '-d',
        '-s',
        'wait',
        '-x',
        '160',
        '-y',
        '20',
        '-c',
        dir,
        command,
      );

      // Five rows final (three succeeded, two declined), two pending: the bar says so.
      const screen = await until(
        async () => {
          const s = await server.screen('wait');
          return /5\/7 final/.test(s) ? s : undefined;
        },
        { what: 'the bar at 5/7 final', timeoutMs: 30_000, intervalMs: 200 },
      );
      expect(screen).toContain('batch tty-b1 [');
      expect(screen).toContain('71% 5/7 final');
      expect(screen).toContain('succeeded 3 (NGN 3,000)');
      expect(screen).toContain('failed 2 (NGN 4,001.02)');
      expect(screen).toContain('in flight 2');
      expect(screen).toMatch(/ETA (--|\d+s|\d+m\d\ds|\d+h\d\dm)/);
      expect(screen).not.toMatch(/NaN|Infinity|NFs|\d60s/);
      // The cursor is hidden while the bar is drawn.
      expect(await server.format('wait', '#{cursor_flag}')).toBe('0');

      await server.tmux('send-keys', '-t', 'wait', 'C-c');
      const after = await until(
        async () => {
          const s = await server.screen('wait');
          return /EXIT=\d+/.test(s) ? s : undefined;
        },
        { what: 'billing to exit after Ctrl-C', timeoutMs: 15_000, intervalMs: 100 },
      );
      expect(after).toContain('EXIT=130');
      expect(await server.format('wait', '#{cursor_flag}'), after).toBe('1');
      expect(after).toContain('stopped waiting: batch tty-b1 keeps running in the workers');
      expect(after).toContain('billing batch status tty-b1');
    } finally {
      await server.kill();
    }
    // It does keep running: the worker still owns it, nothing was cancelled.
    const status = await runCliChild(['batch', 'status', 'tty-b1', '--json'], env, { cwd: dir });
    expect(JSON.parse(status.stdout)).toMatchObject({
      id: 'tty-b1',
      final: 5,
      counts: { succeeded: 3, failed: 2 },
    });
  });

  it('without a terminal: exit 3 when rows did not succeed, 0 with --no-fail-on-failed-rows or when all did', async () => {
    const mixed = join(dir, 'mixed.csv');
    writeFileSync(
      mixed,
      payouts([
        ['m-1', '100'],
        ['m-2', '100'],
        ['m-3', '200.51'],
      ]),
    );
    const args = ['batch', 'submit', mixed, '--type', 'payout', '--id', 'wait-mixed', '--wait'];
    const first = await runCliChild(args, env, { cwd: dir });
    expect(first.code, first.stderr).toBe(3);
    expect(first.stdout).toMatch(
      /batch wait-mixed: 3\/3 final \(completed\) · succeeded 2 .* · failed 1/,
    );
    expect(first.stdout).toContain('batch wait-mixed (payout, mixed.csv): completed');
    expect(first.stderr).toContain('1 of 3 rows did not succeed (1 failed)');
    expect(first.stderr).toContain('billing batch results wait-mixed');

    // The same file again: the batch exists and is complete; --json says so in one document.
    const json = await runCliChild([...args, '--json'], env, { cwd: dir });
    expect(json.code, json.stderr).toBe(3);
    const doc = JSON.parse(json.stdout) as {
      status: string;
      batch: { counts: Record<string, number> };
      error: { code: string; message: string };
    };
    expect(doc.status).toBe('existing');
    expect(doc.batch.counts).toMatchObject({ succeeded: 2, failed: 1 });
    expect(doc.error.code).toBe('rows_failed');

    const lenient = await runCliChild([...args, '--no-fail-on-failed-rows'], env, { cwd: dir });
    expect(lenient.code, lenient.stderr).toBe(0);

    const clean = join(dir, 'clean.csv');
    writeFileSync(
      clean,
      payouts([
        ['c-1', '100'],
        ['c-2', '250.25'],
      ]),
    );
    const ok = await runCliChild(
      ['batch', 'submit', clean, '--type', 'payout', '--id', 'wait-clean', '--wait'],
      env,
      { cwd: dir },
    );
    expect(ok.code, ok.stderr).toBe(0);
  });
});
