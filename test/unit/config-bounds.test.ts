/**
 * Every duration variable has a minimum and a maximum (src/config/bounds.ts), refused at load
 * with a message naming the variable and the bound; a live key raises some minimums; the gateway
 * timeout is bounded by the submit handler's timeout (src/config/limits.ts), which the job
 * catalog takes from there; and .env.example states each bound where it documents the variable.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  boundMs,
  DURATION_BOUNDS,
  SCHEDULE_BOUNDS,
  type DurationBound,
} from '../../src/config/bounds.ts';
import { ConfigError, loadConfig } from '../../src/config/config.ts';
import { parseDurationMs } from '../../src/config/duration.ts';
import {
  MAX_GATEWAY_TIMEOUT_MS,
  MAX_TIMER_MS,
  minSubmitLeaseMs,
  SHUTDOWN_CLOSE_RESERVE_MS,
  SUBMIT_HANDLER_RESERVE_MS,
  SUBMIT_HANDLER_TIMEOUT_MS,
} from '../../src/config/limits.ts';
import { JOBS } from '../../src/infra/queues/catalog.ts';

const VALID = {
  SAYSWITCH_SECRET_KEY: 'sk_test_abcdefgh',
  DATA_ENCRYPTION_KEY: 'ab'.repeat(32),
  API_TOKEN: 'token-0123456789abcdef',
};
const LIVE_KEY = 'sk_live_Zq8secretvalue';
const quiet = { onWarning: () => undefined };

function problemsOf(env: Record<string, string>) {
  try {
    loadConfig(env, quiet);
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
}

function refused(env: Record<string, string>) {
  try {
    loadConfig(env, quiet);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error(`expected a ConfigError for ${JSON.stringify(env)}`);
}

const durations = Object.entries(DURATION_BOUNDS) as [string, DurationBound][];
const schedules = Object.entries(SCHEDULE_BOUNDS) as [string, DurationBound][];

describe('duration bounds', () => {
  it('refuses what the audit reproduced, naming the variable and the bound', () => {
    const cases: [Record<string, string>, string, RegExp][] = [
      [{ WORKER_LOCK_DURATION: '0s' }, 'WORKER_LOCK_DURATION', /^must be at least 1s \(/],
      [{ WORKER_LOCK_DURATION: '1ms' }, 'WORKER_LOCK_DURATION', /^must be at least 1s \(/],
      [{ SHUTDOWN_TIMEOUT: '0s' }, 'SHUTDOWN_TIMEOUT', /^must be at least 4s \(/],
      [{ SHUTDOWN_TIMEOUT: '2s' }, 'SHUTDOWN_TIMEOUT', /^must be at least 4s \(/],
      [{ SHUTDOWN_TIMEOUT: '26d' }, 'SHUTDOWN_TIMEOUT', /^must be at most 1h \(/],
      [{ RECONCILE_NOT_FOUND_GRACE: '0s' }, 'RECONCILE_NOT_FOUND_GRACE', /^must be at least 100ms/],
      [{ ORPHAN_AFTER: '0s' }, 'ORPHAN_AFTER', /^must be at least 1s \(/],
      [{ RECONCILE_SCHEDULE: '0s,0ms' }, 'RECONCILE_SCHEDULE', /^each delay must be at least 10ms/],
      [
        { SAYSWITCH_TIMEOUT_MS: '300000', SUBMIT_LEASE: '10m' },
        'SAYSWITCH_TIMEOUT_MS',
        /^must be between 100 and 45000 \(.*submit handler's 120000 ms\)$/,
      ],
    ];
    for (const [env, variable, message] of cases) {
      const err = refused({ ...VALID, ...env });
      expect(err.problems, JSON.stringify(env)).toHaveLength(1);
      expect(err.problems[0]?.variable).toBe(variable);
      expect(err.problems[0]?.message).toMatch(message);
      expect(err.message).toContain(`  - ${variable}: `);
    }
  });

  it.each(durations)(
    '%s: its minimum and maximum hold, one millisecond out is refused',
    (name, b) => {
      const min = boundMs(b.min);
      const max = boundMs(b.max);
      expect(min).toBeGreaterThan(0);
      expect(max).toBeGreaterThan(min);
      expect(max).toBeLessThanOrEqual(MAX_TIMER_MS);
      const tooLow = { variable: name, message: `must be at least ${b.min} (${b.minWhy})` };
      const tooHigh = { variable: name, message: `must be at most ${b.max} (${b.maxWhy})` };
      const about = (v: string) =>
        problemsOf({ ...VALID, [name]: v }).filter((p) => p.variable === name);
      // At the bounds nothing is said of the bounds (a rule between variables may still speak).
      expect(about(`${min}ms`)).not.toContainEqual(tooLow);
      expect(about(`${max}ms`)).not.toContainEqual(tooHigh);
      expect(about(`${min - 1}ms`)).toEqual([tooLow]);
      expect(about(`${max + 1}ms`)).toEqual([tooHigh]);
    },
  );

  it.each(schedules)('%s: every delay is bounded, not only the first', (name, b) => {
    expect(boundMs(b.max)).toBeLessThanOrEqual(MAX_TIMER_MS);
    expect(problemsOf({ ...VALID, [name]: `${b.min},${b.max}` })).toEqual([]);
    expect(problemsOf({ ...VALID, [name]: `1m,0s` })).toEqual([
      { variable: name, message: `each delay must be at least ${b.min} (${b.minWhy})` },
    ]);
    expect(problemsOf({ ...VALID, [name]: `1m,${boundMs(b.max) + 1}ms` })).toEqual([
      { variable: name, message: `each delay must be at most ${b.max} (${b.maxWhy})` },
    ]);
  });

  it('the defaults are within their bounds, and an empty value means the default', () => {
    const c = loadConfig(VALID, quiet);
    expect(c.worker.lockDurationMs).toBe(30_000);
    const empty = Object.fromEntries(
      [...durations, ...schedules].map(([name]) => [name, '']),
    ) as Record<string, string>;
    expect(loadConfig({ ...VALID, ...empty }, quiet)).toEqual(c);
  });

  it('a live key raises the minimums of the not-found grace and the orphan age', () => {
    const live = { ...VALID, SAYSWITCH_SECRET_KEY: LIVE_KEY };
    for (const [name, b] of durations) {
      if (!b.live) continue;
      const at = boundMs(b.live.min);
      expect(at).toBeGreaterThan(boundMs(b.min));
      // The test key keeps the low minimum (the sandbox's fast timings).
      expect(problemsOf({ ...VALID, [name]: b.min })).toEqual([]);
      expect(problemsOf({ ...live, [name]: `${at}ms` })).toEqual([]);
      const err = refused({ ...live, [name]: `${at - 1}ms` });
      expect(err.problems).toEqual([
        {
          variable: name,
          message: `must be at least ${b.live.min} with a live SAYSWITCH_SECRET_KEY (not sk_test_): ${b.live.why}`,
        },
      ]);
      expect(err.message).not.toContain(LIVE_KEY);
    }
    expect(durations.filter(([, b]) => b.live).map(([n]) => n)).toEqual([
      'RECONCILE_NOT_FOUND_GRACE',
      'ORPHAN_AFTER',
    ]);
    // The defaults hold with a live key.
    expect(problemsOf(live)).toEqual([]);
  });

  it('a live key goes to Sayswitch over https only (plain http to this machine only)', () => {
    const live = { ...VALID, SAYSWITCH_SECRET_KEY: LIVE_KEY };
    const refusal = {
      variable: 'SAYSWITCH_BASE_URL',
      message:
        'must be https:// with a live SAYSWITCH_SECRET_KEY (not sk_test_): every request carries ' +
        'the secret key and card tokens (plain http only to localhost)',
    };
    // docker-compose.yml's default without the sandbox profile, and a gateway host mistyped.
    for (const url of ['http://sandbox:4010', 'http://backendapi.sayswitchgroup.com']) {
      const err = refused({ ...live, SAYSWITCH_BASE_URL: url });
      expect(err.problems).toEqual([refusal]);
      expect(err.message).not.toContain(LIVE_KEY);
    }
    for (const url of [
      'https://backendapi.sayswitchgroup.com',
      'http://127.0.0.1:4010',
      'http://localhost:4010',
      'http://[::1]:4010',
    ])
      expect(problemsOf({ ...live, SAYSWITCH_BASE_URL: url }), url).toEqual([]);
    // Test keys keep plain http (the sandbox in docker compose, the tests).
    expect(problemsOf({ ...VALID, SAYSWITCH_BASE_URL: 'http://sandbox:4010' })).toEqual([]);
  });

  it('a live key needs a DASHBOARD_PASSWORD as long as API_TOKEN must be', () => {
    const live = { ...VALID, SAYSWITCH_SECRET_KEY: LIVE_KEY, DASHBOARD_USER: 'ops' };
    const err = refused({ ...live, DASHBOARD_PASSWORD: 'hunter2-secret' });
    expect(err.problems).toEqual([
      {
        variable: 'DASHBOARD_PASSWORD',
        message:
          'must be at least 16 characters with a live SAYSWITCH_SECRET_KEY (not sk_test_): it ' +
          'resolves payments and approves batches in the console',
      },
    ]);
    expect(err.message).not.toContain('hunter2-secret');
    expect(problemsOf({ ...live, DASHBOARD_PASSWORD: 'correct horse battery' })).toEqual([]);
    // Test keys (the demo's `demo`, the tests') keep short passwords.
    expect(problemsOf({ ...VALID, DASHBOARD_USER: 'ops', DASHBOARD_PASSWORD: 'demo' })).toEqual([]);
  });

  it('RESOLVE_UNKNOWN_AFTER is at least RECONCILE_NOT_FOUND_GRACE', () => {
    expect(
      problemsOf({ ...VALID, RESOLVE_UNKNOWN_AFTER: '1h', RECONCILE_NOT_FOUND_GRACE: '1h' }),
    ).toEqual([]);
    expect(
      problemsOf({ ...VALID, RESOLVE_UNKNOWN_AFTER: '1m', RECONCILE_NOT_FOUND_GRACE: '2m' }),
    ).toEqual([
      {
        variable: 'RESOLVE_UNKNOWN_AFTER',
        message:
          'must be at least RECONCILE_NOT_FOUND_GRACE (120000 ms): a person may not settle an ' +
          'unknown payment before a not-found could prove it unsent, got 60000 ms',
      },
    ]);
    // Skipped when either is invalid: only its own problem is listed.
    expect(
      problemsOf({ ...VALID, RESOLVE_UNKNOWN_AFTER: '1m', RECONCILE_NOT_FOUND_GRACE: '0s' }),
    ).toHaveLength(1);
  });
});

describe('the gateway timeout and the submit handler timeout', () => {
  it('the longest SAYSWITCH_TIMEOUT_MS leaves the reserve inside the handler timeout', () => {
    expect(MAX_GATEWAY_TIMEOUT_MS).toBe(45_000);
    const budget = SUBMIT_HANDLER_TIMEOUT_MS - SUBMIT_HANDLER_RESERVE_MS;
    expect(minSubmitLeaseMs(MAX_GATEWAY_TIMEOUT_MS)).toBeLessThanOrEqual(budget);
    expect(minSubmitLeaseMs(MAX_GATEWAY_TIMEOUT_MS + 1)).toBeGreaterThan(budget);
    const c = loadConfig(
      { ...VALID, SAYSWITCH_TIMEOUT_MS: String(MAX_GATEWAY_TIMEOUT_MS), SUBMIT_LEASE: '90s' },
      quiet,
    );
    expect(c.sayswitch.timeoutMs).toBe(MAX_GATEWAY_TIMEOUT_MS);
    expect(
      problemsOf({ ...VALID, SAYSWITCH_TIMEOUT_MS: String(MAX_GATEWAY_TIMEOUT_MS + 1) }),
    ).toEqual([
      {
        variable: 'SAYSWITCH_TIMEOUT_MS',
        message:
          "must be between 100 and 45000 (a submission's two calls must end well inside the " +
          "submit handler's 120000 ms)",
      },
    ]);
  });

  it("SHUTDOWN_TIMEOUT's minimum leaves in-flight jobs at least the close reserve", () => {
    const min = boundMs(DURATION_BOUNDS.SHUTDOWN_TIMEOUT.min);
    expect(min - SHUTDOWN_CLOSE_RESERVE_MS).toBeGreaterThanOrEqual(SHUTDOWN_CLOSE_RESERVE_MS);
    expect(DURATION_BOUNDS.SHUTDOWN_TIMEOUT.minWhy).toContain(
      `${SHUTDOWN_CLOSE_RESERVE_MS / 1000}s`,
    );
  });

  it('the catalog gives the submit jobs the timeout the configuration was checked against', () => {
    expect(JOBS['charges.submit'].timeoutMs).toBe(SUBMIT_HANDLER_TIMEOUT_MS);
    expect(JOBS['payouts.submit'].timeoutMs).toBe(SUBMIT_HANDLER_TIMEOUT_MS);
  });
});

describe('.env.example', () => {
  const text = readFileSync(new URL('../../.env.example', import.meta.url), 'utf8');
  /** The comment lines right above `NAME=`. */
  function commentOf(name: string): string {
    const lines = text.split('\n');
    const at = lines.findIndex((l) => l.startsWith(`${name}=`));
    expect(at, name).toBeGreaterThan(-1);
    const out: string[] = [];
    for (let i = at - 1; i >= 0 && (lines[i] ?? '').startsWith('#'); i--) out.unshift(lines[i]!);
    return out.join(' ').replace(/#\s*/g, '');
  }

  it.each([...durations, ...schedules])('states the bounds of %s', (name, b) => {
    const comment = commentOf(name);
    expect(comment).toContain(`${b.min} to ${b.max}`);
    if (b.live) expect(comment).toContain(`at least ${b.live.min} with a live key`);
  });

  it('states the bound of SAYSWITCH_TIMEOUT_MS', () => {
    expect(commentOf('SAYSWITCH_TIMEOUT_MS')).toContain(`100 to ${MAX_GATEWAY_TIMEOUT_MS}`);
  });

  it('its own values are within their bounds', () => {
    const values = Object.fromEntries(
      [...text.matchAll(/^([A-Z][A-Z0-9_]+)='([^']*)'$/gm)].map((m) => [m[1], m[2]]),
    ) as Record<string, string>;
    for (const [name] of [...durations, ...schedules]) {
      expect(values[name], name).toBeDefined();
      expect(parseDurationMs((values[name] ?? '').split(',')[0] ?? '')).toBeDefined();
    }
    expect(problemsOf({ ...values, ...VALID })).toEqual([]);
  });
});
