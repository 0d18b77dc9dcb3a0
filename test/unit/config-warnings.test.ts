/**
 * A misspelled variable (SUBMIT_LEASES, WORKER_CONCURENCY) was silently ignored. Config loading
 * now reports each unknown variable that starts like one of the product's own, naming it and the
 * closest known variable, as a warning (one stderr line by default): never a refusal, never a
 * value, and nothing for the environment's unrelated variables.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  CONFIG_VARIABLES,
  type ConfigWarning,
  ConfigError,
  loadConfig,
} from '../../src/config/config.ts';
import { PRODUCT_PREFIXES, unknownVariableWarnings } from '../../src/config/unknown-variables.ts';

const VALID = {
  SAYSWITCH_SECRET_KEY: 'sk_test_abcdefgh',
  DATA_ENCRYPTION_KEY: 'ab'.repeat(32),
  API_TOKEN: 'token-0123456789abcdef',
};

/** loadConfig's warnings (and its result, or its error). */
function load(env: Record<string, string | undefined>) {
  const warnings: ConfigWarning[] = [];
  try {
    const config = loadConfig(env, { onWarning: (w) => warnings.push(w) });
    return { warnings, config };
  } catch (err) {
    if (err instanceof ConfigError) return { warnings, error: err };
    throw err;
  }
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('unknown variables', () => {
  it("warns of the audit's misspellings, naming the closest variable, and still starts", () => {
    const { warnings, config } = load({
      ...VALID,
      SUBMIT_LEASES: '1s',
      WORKER_CONCURENCY: '64',
    });
    expect(config?.worker.concurrency).toBe(8);
    expect(warnings).toEqual([
      {
        variable: 'SUBMIT_LEASES',
        closest: 'SUBMIT_LEASE',
        message:
          'SUBMIT_LEASES is not a configuration variable and is ignored; did you mean SUBMIT_LEASE?',
      },
      {
        variable: 'WORKER_CONCURENCY',
        closest: 'WORKER_CONCURRENCY',
        message:
          'WORKER_CONCURENCY is not a configuration variable and is ignored; did you mean ' +
          'WORKER_CONCURRENCY?',
      },
    ]);
  });

  it('finds the closest name for swaps, missing words and the wrong case', () => {
    const closest = (name: string) => load({ ...VALID, [name]: 'x' }).warnings[0]?.closest;
    expect(closest('RECONCILE_NOT_FOUND_GARCE')).toBe('RECONCILE_NOT_FOUND_GRACE');
    expect(closest('SAYSWITCH_TIMEOUT')).toBe('SAYSWITCH_TIMEOUT_MS');
    expect(closest('REDIS_URI')).toBe('REDIS_URL');
    expect(closest('DASHBOARD_PASS')).toBe('DASHBOARD_PASSWORD');
    expect(closest('worker_concurrency')).toBe('WORKER_CONCURRENCY');
  });

  it('warns of another tool sharing a prefix, but never refuses it', () => {
    const { warnings, config } = load({ ...VALID, REDIS_HOST: 'cache', REDIS_PASSWORD: 'pw' });
    expect(config).toBeDefined();
    expect(warnings.map((w) => w.variable)).toEqual(['REDIS_HOST', 'REDIS_PASSWORD']);
  });

  it("says nothing of the environment's unrelated variables, known ones or empty ones", () => {
    const { warnings } = load({
      ...VALID,
      PATH: '/usr/bin',
      HOME: '/root',
      HOSTNAME: 'box',
      NODE_OPTIONS: '--max-old-space-size=512',
      NODE_EXTRA_CA_CERTS: '/etc/ca.pem',
      API_KEY: 'other-tool',
      DATA_DIR: '/data',
      LOG_FORMAT: 'json',
      MAX_CONNECTIONS: '10',
      BILLING_REDIS_URL: 'redis://redis:6379',
      WORKER_CONCURRENCY: '4',
      SUBMIT_LEASES: '',
      WORKER_LOCK: undefined,
    });
    expect(warnings).toEqual([]);
  });

  it('warns before the configuration is checked, and never echoes a value', () => {
    const secret = 'sk_live_0123456789SECRET';
    const { warnings, error } = load({
      DATA_ENCRYPTION_KEY: VALID.DATA_ENCRYPTION_KEY,
      API_TOKEN: VALID.API_TOKEN,
      SAYSWITCH_SECRET_KY: secret,
    });
    // The misspelling explains the error next to it.
    expect(error?.problems).toEqual([{ variable: 'SAYSWITCH_SECRET_KEY', message: 'is required' }]);
    expect(warnings.map((w) => [w.variable, w.closest])).toEqual([
      ['SAYSWITCH_SECRET_KY', 'SAYSWITCH_SECRET_KEY'],
    ]);
    expect(JSON.stringify(warnings)).not.toContain(secret);
    expect(error?.message).not.toContain(secret);
  });

  it('by default writes one line per variable on stderr, once per process', () => {
    const write = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const env = { ...VALID, WORKER_CONCURENCY_ONCE: '64', DUNNING_SCHEDUEL: '1d' };
    loadConfig(env);
    loadConfig(env);
    const lines = write.mock.calls.map((c) => String(c[0]));
    expect(lines).toEqual([
      'warning: DUNNING_SCHEDUEL is not a configuration variable and is ignored; did you mean ' +
        'DUNNING_SCHEDULE?\n',
      'warning: WORKER_CONCURENCY_ONCE is not a configuration variable and is ignored; did you ' +
        'mean WORKER_CONCURRENCY?\n',
    ]);
  });

  it('shows a name with control characters escaped, so the warning line cannot be rewritten', () => {
    const name = 'WORKER_\u001b[2J\u202eX\n';
    const warnings = unknownVariableWarnings({ [name]: '1' }, ['WORKER_CONCURRENCY']);
    expect(warnings).toEqual([
      {
        variable: name,
        closest: 'WORKER_CONCURRENCY',
        message:
          'WORKER_\\u001b[2J\\u202eX\\u000a is not a configuration variable and is ignored; did ' +
          'you mean WORKER_CONCURRENCY?',
      },
    ]);
  });

  it('every prefix is one of ours, and every variable a prefix leaves out is listed here', () => {
    for (const p of PRODUCT_PREFIXES) {
      expect(
        CONFIG_VARIABLES.some((v) => v.startsWith(p)),
        p,
      ).toBe(true);
    }
    // Left out on purpose: their prefixes (NODE_, API_, LOG_, HTTP_ — HTTP_PROXY —, METRICS_, TRUST_, none) belong
    // to every other tool. A new variable lands here only by decision.
    const uncovered = CONFIG_VARIABLES.filter(
      (v) => !PRODUCT_PREFIXES.some((p) => v.startsWith(p)),
    );
    expect(uncovered.sort()).toEqual([
      'API_TOKEN',
      'API_TOKEN_PREVIOUS',
      'HOST',
      'HTTP_CHECK_RESPONSES',
      'LOG_LEVEL',
      'METRICS_PORT',
      'NODE_ENV',
      'PORT',
      'TRUST_PROXY',
    ]);
  });
});
