/**
 * The one place that reads configuration: `loadConfig(env)` over a zod schema. Nothing else reads
 * process.env. A bad configuration yields every problem at once, naming each variable and never
 * echoing a secret's value; an unknown variable that looks like ours is a warning, not an error
 * (unknown-variables.ts). Under 600 lines: every variable's schema, its typed field and its
 * mapping stay in this one file, the only reader of the environment; the duration bounds
 * (bounds.ts) and the limits shared with the queues (limits.ts) sit beside it.
 */
import { isIP } from 'node:net';
import { CronExpressionParser } from 'cron-parser';
import { z } from 'zod';
import {
  boundMs,
  boundProblem,
  DURATION_BOUNDS,
  SCHEDULE_BOUNDS,
  type DurationBound,
} from './bounds.ts';
import { parseDurationMs, parseScheduleMs } from './duration.ts';
import {
  MAX_GATEWAY_TIMEOUT_MS,
  minSubmitLeaseMs,
  SUBMIT_HANDLER_TIMEOUT_MS,
  SUBMIT_LEASE_MIN_MARGIN_MS,
} from './limits.ts';
import {
  clusterNodes,
  DEFAULT_RATE_LIMIT_PER_SEC,
  MAX_SHARDS,
  queuePrefix,
  shardProblems,
  shardsServed,
} from './redis-cluster.ts';
import { type ConfigWarning, unknownVariableWarnings, warnOnStderr } from './unknown-variables.ts';

export { DURATION_BOUNDS, SCHEDULE_BOUNDS } from './bounds.ts';
export {
  MAX_GATEWAY_TIMEOUT_MS,
  minSubmitLeaseMs,
  SUBMIT_HANDLER_TIMEOUT_MS,
  SUBMIT_LEASE_MIN_MARGIN_MS,
} from './limits.ts';
export type { ConfigWarning } from './unknown-variables.ts';

/** Secrets: their values never appear in an error message or a log line. */
export const SECRET_VARIABLES = [
  'SAYSWITCH_SECRET_KEY',
  'SAYSWITCH_SECRET_KEY_PREVIOUS',
  'SAYSWITCH_ENCRYPTION_KEY',
  'SAYSWITCH_ENCRYPTION_IV',
  'DATA_ENCRYPTION_KEY',
  'DATA_ENCRYPTION_KEY_PREVIOUS',
  'API_TOKEN',
  'API_READ_TOKEN',
  'API_TOKEN_PREVIOUS',
  'API_READ_TOKEN_PREVIOUS',
  'DASHBOARD_PASSWORD',
  'NOTIFY_SECRET',
  'NOTIFY_SECRET_PREVIOUS',
] as const;

/** Explicit boolean parser: `z.coerce.boolean()` would read "false" as true. */
const bool = (dflt: boolean) =>
  z
    .enum(['true', 'false', '1', '0', 'yes', 'no'], { message: 'must be true or false' })
    .optional()
    .transform((v) => (v === undefined ? dflt : v === 'true' || v === '1' || v === 'yes'));

const int = (dflt: number, min: number, max: number, why?: string) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v === '') return dflt;
      if (!/^\d+$/.test(v)) {
        ctx.addIssue({ code: 'custom', message: 'must be a whole number' });
        return z.NEVER;
      }
      const n = Number(v);
      if (n < min || n > max) {
        ctx.addIssue({
          code: 'custom',
          message: `must be between ${min} and ${max}${why ? ` (${why})` : ''}`,
        });
        return z.NEVER;
      }
      return n;
    });

/** The names proxy-addr (fastify's `trustProxy`) knows for address ranges. */
const PROXY_RANGES = new Set(['loopback', 'linklocal', 'uniquelocal']);

/** One TRUST_PROXY entry: an IP address, a CIDR range, or a range's name. */
function proxyEntryOk(entry: string): boolean {
  if (PROXY_RANGES.has(entry)) return true;
  const [address = '', bits, ...rest] = entry.split('/');
  const family = isIP(address);
  if (family === 0 || rest.length > 0) return false;
  if (bits === undefined) return true;
  // A /0 range is every address: `true` under another name.
  return /^\d{1,3}$/.test(bits) && Number(bits) > 0 && Number(bits) <= (family === 4 ? 32 : 128);
}

/**
 * TRUST_PROXY: unset, empty or `false` for none; else the proxies' addresses, CIDR ranges and
 * range names, comma-separated. Never "every proxy" (`true`, or a `/0` range, which is every
 * address): any client could then name its own address in `X-Forwarded-For` and escape the
 * sign-in throttle. Nor a hop count, which checks nothing of who sent the header (fastify 5
 * trusts no proxy for one).
 */
const trustProxy = z
  .string()
  .optional()
  .transform((v, ctx): string[] | undefined => {
    const value = v?.trim() ?? '';
    if (value === '' || value === 'false') return undefined;
    const entries = value.split(',').map((e) => e.trim());
    const bad = entries.find((e) => !proxyEntryOk(e));
    if (bad !== undefined) {
      ctx.addIssue({
        code: 'custom',
        message:
          `"${bad}" is not a proxy: give the proxies' addresses and CIDR ranges, like ` +
          '10.0.0.0/8,::1 (or loopback, linklocal, uniquelocal); not true or a /0 range, which ' +
          'would let any client choose its own address, nor a hop count, which checks nothing',
      });
      return z.NEVER;
    }
    return entries;
  });

/** A duration (`30s`), unset or empty for `dflt`, within `bound` (bounds.ts). */
const duration = (dflt: string, bound: DurationBound) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      const ms = parseDurationMs(v === undefined || v === '' ? dflt : v);
      if (ms === undefined) {
        ctx.addIssue({
          code: 'custom',
          message: 'must be a duration like 500ms, 30s, 5m, 1h or 1d',
        });
        return z.NEVER;
      }
      const problem = boundProblem(ms, bound);
      if (problem !== undefined) {
        ctx.addIssue({ code: 'custom', message: problem });
        return z.NEVER;
      }
      return ms;
    });

/** Comma-separated durations, unset or empty for `dflt`, each within `bound` (bounds.ts). */
const schedule = (dflt: string, bound: DurationBound) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      const ms = parseScheduleMs(v === undefined || v === '' ? dflt : v);
      if (ms === undefined) {
        ctx.addIssue({
          code: 'custom',
          message: 'must be comma-separated durations like 30s,2m,10m',
        });
        return z.NEVER;
      }
      const problem = ms.map((d) => boundProblem(d, bound, 'each delay must be')).find(Boolean);
      if (problem !== undefined) {
        ctx.addIssue({ code: 'custom', message: problem });
        return z.NEVER;
      }
      return ms;
    });

/**
 * Five- or six-field cron, checked at start by the parser BullMQ's job schedulers use
 * (cron-parser, the same version), so a bad field stops the process with exit 2 naming the
 * variable instead of failing when the scheduler starts.
 */
const cron = (dflt: string) =>
  z
    .string()
    .optional()
    .transform((v) => (v === undefined || v === '' ? dflt : v.trim()))
    .refine((v) => /^(\S+\s+){4,5}\S+$/.test(v), 'must be a cron expression with 5 or 6 fields')
    .superRefine((v, ctx) => {
      if (!/^(\S+\s+){4,5}\S+$/.test(v)) return;
      try {
        CronExpressionParser.parse(v);
      } catch (err) {
        ctx.addIssue({
          code: 'custom',
          message: `must be a valid cron expression (${err instanceof Error ? err.message : String(err)})`,
        });
      }
    });

/**
 * A path on SAYSWITCH_BASE_URL: unset or empty is `dflt`; it starts with `/` and holds no
 * whitespace (an empty or relative path was sent as is), and a lookup path holds `{reference}`.
 */
const gatewayPath = (dflt: string, lookup = false) =>
  z
    .string()
    .optional()
    .transform((v) => (v === undefined || v === '' ? dflt : v))
    .refine((v) => /^\/\S*$/.test(v), 'must be a path starting with / (no spaces)')
    .refine((v) => !lookup || v.includes('{reference}'), 'must contain {reference}');

const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === '' ? undefined : v));

/**
 * NOTIFY_SECRET (and NOTIFY_SECRET_PREVIOUS): any string, used as its UTF-8 bytes; or in the
 * Standard Webhooks form `whsec_<base64>` (docs/notifications.md), whose part after the prefix
 * must be standard base64.
 */
const notifySecret = optionalString.superRefine((v, ctx) => {
  if (v === undefined || !v.startsWith('whsec_')) return;
  const b64 = v.slice('whsec_'.length);
  if (b64 === '' || !/^[A-Za-z0-9+/]+={0,2}$/.test(b64) || b64.length % 4 !== 0) {
    ctx.addIssue({ code: 'custom', message: 'must be whsec_ followed by standard base64' });
  }
});

/** The signing key of a notification secret (as notifications/signature.ts reads it). */
const notifyKeyOf = (v: string) =>
  v.startsWith('whsec_') ? Buffer.from(v.slice('whsec_'.length), 'base64') : Buffer.from(v, 'utf8');

/**
 * SAYSWITCH_SECRET_KEY (and SAYSWITCH_SECRET_KEY_PREVIOUS). It goes into the Authorization header:
 * a character HTTP cannot carry there made every request fail to build (`client_config`), so every
 * first submission was refused as fatal.
 */
const sayswitchSecretKey = z
  .string({ message: 'is required' })
  .min(8, 'is too short')
  .regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces (it is sent in a header)');

/**
 * The problem with a URL variable, or undefined: it must be what `new URL` reads (ioredis, undici
 * and axios parse it so when the process starts, and a TypeError there names no variable), with
 * one of `schemes`. The value itself is never quoted: a Redis URL carries its password.
 */
function urlProblem(v: string, schemes: readonly string[]): string | undefined {
  const what = `must be a ${schemes.map((s) => `${s}//`).join(' or ')} URL`;
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    return `${what}; this one cannot be parsed (percent-encode an @, :, / or % in a password)`;
  }
  // http(s) URLs never hold whitespace (it was refused before); a Redis password may.
  if (!schemes.includes(u.protocol) || (u.protocol.startsWith('http') && /\s/.test(v))) return what;
  try {
    decodeURIComponent(u.username);
    decodeURIComponent(u.password);
  } catch {
    return `${what}; its user or password is not valid percent-encoding (write % as %25)`;
  }
  return undefined;
}

const urlOf = (schemes: readonly string[]) => (v: string | undefined, ctx: z.RefinementCtx) => {
  const problem = v === undefined ? undefined : urlProblem(v, schemes);
  if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
};

/** The shortest API_TOKEN and API_READ_TOKEN, and DASHBOARD_PASSWORD with a live key. */
const TOKEN_MIN = 16;
const DASHBOARD_PASSWORD_MIN = TOKEN_MIN;

const envSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).optional().default('development'),
  REDIS_URL: z
    .string()
    .optional()
    .default('redis://127.0.0.1:6379')
    .superRefine(urlOf(['redis:', 'rediss:']))
    .refine(
      (v) => !URL.canParse(v) || /^\/?\d*$/.test(new URL(v).pathname),
      'must end with a database number if any (redis://host:6379/0)',
    ),
  QUEUE_PREFIX: queuePrefix,
  REDIS_CLUSTER_NODES: clusterNodes,
  REDIS_SHARDS: int(1, 1, MAX_SHARDS),
  REDIS_SHARDS_SERVED: shardsServed,
  REDIS_ALLOW_EVICTION: bool(false),
  SAYSWITCH_BASE_URL: z
    .string()
    .optional()
    .default('https://backendapi.sayswitchgroup.com')
    .superRefine(urlOf(['https:', 'http:'])),
  SAYSWITCH_SECRET_KEY: sayswitchSecretKey,
  /** The key before a regeneration at Sayswitch: webhooks signed with it are still accepted. */
  SAYSWITCH_SECRET_KEY_PREVIOUS: optionalString.pipe(sayswitchSecretKey.optional()),
  SAYSWITCH_ENCRYPTION_KEY: optionalString,
  SAYSWITCH_ENCRYPTION_IV: optionalString,
  SAYSWITCH_ENCRYPTION_ENCODING: z.enum(['hex', 'base64']).optional().default('hex'),
  SAYSWITCH_CHARGE_PATH: gatewayPath('/api/s2s/transaction/initialize'),
  SAYSWITCH_VERIFY_PATH: gatewayPath('/api/v1/transaction/verify/{reference}', true),
  SAYSWITCH_PAYOUT_LOOKUP_PATH: gatewayPath('/api/v1/payout/{reference}', true),
  SAYSWITCH_SIGN_REQUESTS: bool(false),
  /** Whether Sayswitch refunds part of a transaction (undocumented; docs/refunds.md). */
  SAYSWITCH_PARTIAL_REFUNDS: bool(false),
  SAYSWITCH_TIMEOUT_MS: int(
    15_000,
    100,
    MAX_GATEWAY_TIMEOUT_MS,
    `a submission's two calls must end well inside the submit handler's ${SUBMIT_HANDLER_TIMEOUT_MS} ms`,
  ),
  SAYSWITCH_RATE_LIMIT_PER_SEC: int(DEFAULT_RATE_LIMIT_PER_SEC, 1, 10_000),
  WORKER_CONCURRENCY: int(8, 1, 1_000),
  SCHEDULER_CRON: cron('* * * * *'),
  RECONCILE_CRON: cron('* * * * *'),
  RECONCILE_SCHEDULE: schedule('30s,2m,10m,1h,6h,24h', SCHEDULE_BOUNDS.RECONCILE_SCHEDULE),
  RECONCILE_NOT_FOUND_GRACE: duration('2m', DURATION_BOUNDS.RECONCILE_NOT_FOUND_GRACE),
  MAX_UNSENT_RESUBMITS: int(3, 0, 100),
  REQUIRES_ACTION_WINDOW: duration('30m', DURATION_BOUNDS.REQUIRES_ACTION_WINDOW),
  PAYOUT_WATCH_SCHEDULE: schedule('10m,1h,24h', SCHEDULE_BOUNDS.PAYOUT_WATCH_SCHEDULE),
  ORPHAN_AFTER: duration('5m', DURATION_BOUNDS.ORPHAN_AFTER),
  /** An `unknown` payment older than this may be resolved by a person (payments/resolve.ts). */
  RESOLVE_UNKNOWN_AFTER: duration('1h', DURATION_BOUNDS.RESOLVE_UNKNOWN_AFTER),
  SUBMIT_LEASE: duration('2m', DURATION_BOUNDS.SUBMIT_LEASE),
  WORKER_LOCK_DURATION: duration('30s', DURATION_BOUNDS.WORKER_LOCK_DURATION),
  /** A worker that started no job for this long while its queue had jobs due is replaced. */
  WORKER_STUCK_AFTER: duration('1m', DURATION_BOUNDS.WORKER_STUCK_AFTER),
  DUNNING_SCHEDULE: schedule('1d,3d,5d,7d', SCHEDULE_BOUNDS.DUNNING_SCHEDULE),
  DUNNING_EXHAUSTED: z.enum(['cancel', 'past_due']).optional().default('cancel'),
  BATCH_APPROVAL: z.enum(['none', 'payouts', 'all']).optional().default('none'),
  CATCH_UP_MAX_PERIODS: int(12, 1, 1_000),
  TRIAL_WILL_END_NOTICE: duration('3d', DURATION_BOUNDS.TRIAL_WILL_END_NOTICE),
  DATA_ENCRYPTION_KEY: z
    .string({ message: 'is required' })
    .regex(/^[0-9a-fA-F]{64}$/, 'must be 64 hex characters (32 bytes)'),
  /** The key being rotated out: what it sealed still opens (docs/operations.md "Rotating secrets"). */
  DATA_ENCRYPTION_KEY_PREVIOUS: optionalString.refine(
    (v) => v === undefined || /^[0-9a-fA-F]{64}$/.test(v),
    { message: 'must be 64 hex characters (32 bytes)' },
  ),
  API_TOKEN: z
    .string({ message: 'is required' })
    .min(TOKEN_MIN, `must be at least ${TOKEN_MIN} characters`),
  API_READ_TOKEN: optionalString.refine((v) => v === undefined || v.length >= TOKEN_MIN, {
    message: `must be at least ${TOKEN_MIN} characters`,
  }),
  API_TOKEN_PREVIOUS: optionalString.refine((v) => v === undefined || v.length >= TOKEN_MIN, {
    message: `must be at least ${TOKEN_MIN} characters`,
  }),
  API_READ_TOKEN_PREVIOUS: optionalString.refine((v) => v === undefined || v.length >= TOKEN_MIN, {
    message: `must be at least ${TOKEN_MIN} characters`,
  }),
  DASHBOARD_AUTH: z.enum(['basic', 'none']).optional().default('basic'),
  DASHBOARD_USER: optionalString,
  DASHBOARD_PASSWORD: optionalString,
  DASHBOARD_READ_ONLY: bool(false),
  DASHBOARD_SIGN_IN_MAX_FAILURES: int(10, 1, 1_000),
  DASHBOARD_SIGN_IN_BLOCK: duration('15m', DURATION_BOUNDS.DASHBOARD_SIGN_IN_BLOCK),
  TRUST_PROXY: trustProxy,
  HTTP_CHECK_RESPONSES: bool(false),
  NOTIFY_URL: optionalString.superRefine(urlOf(['https:', 'http:'])),
  NOTIFY_SECRET: notifySecret,
  /** The secret being rotated out: notifications are signed with both (docs/operations.md). */
  NOTIFY_SECRET_PREVIOUS: notifySecret,
  NOTIFY_RETRY_SCHEDULE: schedule('1m,5m,30m,2h,12h,24h', SCHEDULE_BOUNDS.NOTIFY_RETRY_SCHEDULE),
  PORT: int(3000, 0, 65_535),
  METRICS_PORT: int(0, 0, 65_535),
  HOST: z
    .string()
    .optional()
    .transform((v) => (v === undefined || v === '' ? '0.0.0.0' : v)),
  LOG_LEVEL: z
    .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
    .optional()
    .default('info'),
  SHUTDOWN_TIMEOUT: duration('30s', DURATION_BOUNDS.SHUTDOWN_TIMEOUT),
  WEBHOOK_MAX_BYTES: int(65_536, 1_024, 10_485_760),
});

type Env = z.output<typeof envSchema>;

/** Every variable the service reads (for docs and the .env.example check). */
export const CONFIG_VARIABLES: readonly string[] = Object.keys(envSchema.shape);

/** Validated, typed configuration: what every role and adapter is built from. */
export interface Config {
  nodeEnv: Env['NODE_ENV'];
  redis: {
    url: string;
    prefix: string;
    allowEviction: boolean;
    /** REDIS_CLUSTER_NODES: a Redis Cluster's seed nodes; absent for one standalone server. */
    clusterNodes?: { host: string; port: number }[];
    /** REDIS_SHARDS: intent shards (hash-tag groups), default 1. */
    shards: number;
    /** REDIS_SHARDS_SERVED: shards whose queues this process consumes; empty means all. */
    shardsServed: number[];
  };
  sayswitch: {
    baseUrl: string;
    secretKey: string;
    /** SAYSWITCH_SECRET_KEY_PREVIOUS: webhooks only (their signature); API calls use secretKey. */
    previousSecretKey?: string;
    encryption?: { key: string; iv: string; encoding: 'hex' | 'base64' };
    chargePath: string;
    verifyPath: string;
    payoutLookupPath: string;
    signRequests: boolean;
    /** SAYSWITCH_PARTIAL_REFUNDS: off, only full refunds are sent (docs/refunds.md). */
    partialRefunds: boolean;
    timeoutMs: number;
    rateLimitPerSec: number;
  };
  worker: {
    concurrency: number;
    submitLeaseMs: number;
    lockDurationMs: number;
    stuckAfterMs: number;
  };
  scheduler: {
    cron: string;
    catchUpMaxPeriods: number;
    /** How long before a trial ends `subscription.trial_will_end` is due. */
    trialWillEndNoticeMs: number;
  };
  /** A `sk_test_` secret key (the sandbox's are): test clocks are available (subscriptions). */
  testMode: boolean;
  reconcile: {
    cron: string;
    scheduleMs: number[];
    notFoundGraceMs: number;
    maxUnsentResubmits: number;
    payoutWatchMs: number[];
    /** How long a 3-D Secure challenge waits for the customer before verify decides. */
    requiresActionWindowMs: number;
    orphanAfterMs: number;
    resolveUnknownAfterMs: number;
  };
  dunning: { scheduleMs: number[]; whenExhausted: 'cancel' | 'past_due' };
  /** BATCH_APPROVAL: which new batches wait for a second person's approval (docs/batches.md). */
  batchApproval: 'none' | 'payouts' | 'all';
  dataEncryptionKey: Buffer;
  /** DATA_ENCRYPTION_KEY_PREVIOUS: opens and matches what it sealed and hashed; never seals. */
  previousDataEncryptionKey?: Buffer;
  http: {
    port: number;
    host: string;
    apiToken: string;
    /** API_READ_TOKEN: GET routes only (src/http/auth.ts). */
    apiReadToken?: string;
    /** API_TOKEN_PREVIOUS / API_READ_TOKEN_PREVIOUS: still accepted during a rotation. */
    apiTokenPrevious?: string;
    apiReadTokenPrevious?: string;
    /** DASHBOARD_AUTH: `none` serves the dashboard read-only without credentials. */
    dashboardAuth: 'basic' | 'none';
    dashboard?: { user: string; password: string };
    dashboardReadOnly: boolean;
    /**
     * DASHBOARD_SIGN_IN_MAX_FAILURES / DASHBOARD_SIGN_IN_BLOCK: failed password sign-ins that block a client address,
     * and for how long (http/sign-in.ts).
     */
    signIn: { maxFailures: number; blockMs: number };
    /** TRUST_PROXY: the trusted proxies' addresses and ranges; absent: none (http/server.ts). */
    trustProxy?: string[];
    webhookMaxBytes: number;
    /**
     * METRICS_PORT: where a process without the api role serves `/metrics` (0 or unset: it
     * does not; docs/operations.md "Metrics").
     */
    metricsPort?: number;
    /**
     * HTTP_CHECK_RESPONSES: every JSON answer is checked against its route's documented schema
     * (http/openapi.ts); a mismatch answers 500 and is logged. For tests and staging.
     */
    checkResponses: boolean;
  };
  /** `previousSecret`: NOTIFY_SECRET_PREVIOUS, the second signature during a rotation. */
  notify?: { url: string; secret: string; previousSecret?: string; retryScheduleMs: number[] };
  logLevel: Env['LOG_LEVEL'];
  shutdownTimeoutMs: number;
}

export class ConfigError extends Error {
  readonly problems: { variable: string; message: string }[];
  /** The message's lines (the CLI prints them as lines, each made printable). */
  readonly lines: readonly string[];
  constructor(problems: { variable: string; message: string }[]) {
    const lines = [
      `Invalid configuration (${problems.length} problem${problems.length === 1 ? '' : 's'}):`,
      ...problems.map((p) => `  - ${p.variable}: ${p.message}`),
    ];
    super(lines.join('\n'));
    this.name = 'ConfigError';
    this.problems = problems;
    this.lines = lines;
  }
}

export interface LoadOptions {
  /**
   * Called with each unknown variable that looks like one of ours (unknown-variables.ts), before
   * the configuration is checked, so a misspelling shows next to the error it may explain.
   * Default: one line on stderr per variable, once per process.
   */
  onWarning?: (warning: ConfigWarning) => void;
}

/** Unknown variables of `env` that start like the product's own (a misspelling, probably). */
export function configWarnings(env: Record<string, string | undefined>): ConfigWarning[] {
  return unknownVariableWarnings(env, CONFIG_VARIABLES);
}

/**
 * Parses and validates the environment: takes the env object, returns a Config or throws a
 * ConfigError listing every bad variable. Its one effect: the warnings of {@link configWarnings}
 * go to `opts.onWarning` (stderr by default); they never stop the start.
 */
export function loadConfig(
  env: Record<string, string | undefined>,
  opts: LoadOptions = {},
): Config {
  for (const w of configWarnings(env)) (opts.onWarning ?? warnOnStderr)(w);
  const parsed = envSchema.safeParse(env);
  // Cross-variable rules run on the raw values too, so one start lists every problem at once.
  const problems = crossVariableProblems(env);
  if (!parsed.success) {
    problems.push(
      ...parsed.error.issues.map((i) => ({
        variable: String(i.path[0] ?? '(environment)'),
        // zod messages here are ours or generic type messages; none include the received value.
        message: i.code === 'invalid_type' && i.input === undefined ? 'is required' : i.message,
      })),
    );
  }
  if (problems.length > 0 || !parsed.success) throw new ConfigError(dedupe(problems));
  const e = parsed.data;
  return {
    nodeEnv: e.NODE_ENV,
    redis: {
      url: e.REDIS_URL,
      prefix: e.QUEUE_PREFIX,
      allowEviction: e.REDIS_ALLOW_EVICTION,
      ...(e.REDIS_CLUSTER_NODES ? { clusterNodes: e.REDIS_CLUSTER_NODES } : {}),
      shards: e.REDIS_SHARDS,
      shardsServed: e.REDIS_SHARDS_SERVED,
    },
    sayswitch: {
      baseUrl: e.SAYSWITCH_BASE_URL.replace(/\/+$/, ''),
      secretKey: e.SAYSWITCH_SECRET_KEY,
      ...(e.SAYSWITCH_SECRET_KEY_PREVIOUS !== undefined
        ? { previousSecretKey: e.SAYSWITCH_SECRET_KEY_PREVIOUS }
        : {}),
      ...(e.SAYSWITCH_ENCRYPTION_KEY !== undefined && e.SAYSWITCH_ENCRYPTION_IV !== undefined
        ? {
            encryption: {
              key: e.SAYSWITCH_ENCRYPTION_KEY,
              iv: e.SAYSWITCH_ENCRYPTION_IV,
              encoding: e.SAYSWITCH_ENCRYPTION_ENCODING,
            },
          }
        : {}),
      chargePath: e.SAYSWITCH_CHARGE_PATH,
      verifyPath: e.SAYSWITCH_VERIFY_PATH,
      payoutLookupPath: e.SAYSWITCH_PAYOUT_LOOKUP_PATH,
      signRequests: e.SAYSWITCH_SIGN_REQUESTS,
      partialRefunds: e.SAYSWITCH_PARTIAL_REFUNDS,
      timeoutMs: e.SAYSWITCH_TIMEOUT_MS,
      rateLimitPerSec: e.SAYSWITCH_RATE_LIMIT_PER_SEC,
    },
    worker: {
      concurrency: e.WORKER_CONCURRENCY,
      submitLeaseMs: e.SUBMIT_LEASE,
      lockDurationMs: e.WORKER_LOCK_DURATION,
      stuckAfterMs: e.WORKER_STUCK_AFTER,
    },
    scheduler: {
      cron: e.SCHEDULER_CRON,
      catchUpMaxPeriods: e.CATCH_UP_MAX_PERIODS,
      trialWillEndNoticeMs: e.TRIAL_WILL_END_NOTICE,
    },
    testMode: e.SAYSWITCH_SECRET_KEY.startsWith('sk_test_'),
    reconcile: {
      cron: e.RECONCILE_CRON,
      scheduleMs: e.RECONCILE_SCHEDULE,
      notFoundGraceMs: e.RECONCILE_NOT_FOUND_GRACE,
      maxUnsentResubmits: e.MAX_UNSENT_RESUBMITS,
      payoutWatchMs: e.PAYOUT_WATCH_SCHEDULE,
      requiresActionWindowMs: e.REQUIRES_ACTION_WINDOW,
      orphanAfterMs: e.ORPHAN_AFTER,
      resolveUnknownAfterMs: e.RESOLVE_UNKNOWN_AFTER,
    },
    dunning: { scheduleMs: e.DUNNING_SCHEDULE, whenExhausted: e.DUNNING_EXHAUSTED },
    batchApproval: e.BATCH_APPROVAL,
    dataEncryptionKey: Buffer.from(e.DATA_ENCRYPTION_KEY, 'hex'),
    ...(e.DATA_ENCRYPTION_KEY_PREVIOUS !== undefined
      ? { previousDataEncryptionKey: Buffer.from(e.DATA_ENCRYPTION_KEY_PREVIOUS, 'hex') }
      : {}),
    http: {
      port: e.PORT,
      host: e.HOST,
      apiToken: e.API_TOKEN,
      ...(e.API_READ_TOKEN !== undefined ? { apiReadToken: e.API_READ_TOKEN } : {}),
      ...(e.API_TOKEN_PREVIOUS !== undefined ? { apiTokenPrevious: e.API_TOKEN_PREVIOUS } : {}),
      ...(e.API_READ_TOKEN_PREVIOUS !== undefined
        ? { apiReadTokenPrevious: e.API_READ_TOKEN_PREVIOUS }
        : {}),
      dashboardAuth: e.DASHBOARD_AUTH,
      ...(e.DASHBOARD_USER !== undefined && e.DASHBOARD_PASSWORD !== undefined
        ? {
            dashboard: {
              user: e.DASHBOARD_USER,
              password: e.DASHBOARD_PASSWORD,
            },
          }
        : {}),
      dashboardReadOnly: e.DASHBOARD_READ_ONLY,
      signIn: { maxFailures: e.DASHBOARD_SIGN_IN_MAX_FAILURES, blockMs: e.DASHBOARD_SIGN_IN_BLOCK },
      ...(e.TRUST_PROXY !== undefined ? { trustProxy: e.TRUST_PROXY } : {}),
      webhookMaxBytes: e.WEBHOOK_MAX_BYTES,
      ...(e.METRICS_PORT > 0 ? { metricsPort: e.METRICS_PORT } : {}),
      checkResponses: e.HTTP_CHECK_RESPONSES,
    },
    ...(e.NOTIFY_URL !== undefined && e.NOTIFY_SECRET !== undefined
      ? {
          notify: {
            url: e.NOTIFY_URL,
            secret: e.NOTIFY_SECRET,
            ...(e.NOTIFY_SECRET_PREVIOUS !== undefined
              ? { previousSecret: e.NOTIFY_SECRET_PREVIOUS }
              : {}),
            retryScheduleMs: e.NOTIFY_RETRY_SCHEDULE,
          },
        }
      : {}),
    logLevel: e.LOG_LEVEL,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT,
  };
}

/**
 * LOG_LEVEL for a command that loads no configuration (`billing sandbox`): unset is `info`; any
 * other value than a level is a ConfigError naming the variable, as {@link loadConfig} reports it
 * (pino would otherwise refuse it with a message that names no variable, exit 1).
 */
export function logLevelOf(raw: string | undefined): Config['logLevel'] {
  const parsed = envSchema.shape.LOG_LEVEL.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError([
      { variable: 'LOG_LEVEL', message: parsed.error.issues[0]?.message ?? 'is not a log level' },
    ]);
  }
  return parsed.data;
}

/** Rules that span variables (pairs that go together). */
function crossVariableProblems(raw: Record<string, string | undefined>) {
  const set = (name: string) => raw[name] !== undefined && raw[name] !== '';
  const problems: { variable: string; message: string }[] = shardProblems(raw);
  const pair = (a: string, b: string) => {
    if (set(a) !== set(b)) {
      problems.push({ variable: set(a) ? b : a, message: `${a} and ${b} must be set together` });
    }
  };
  pair('SAYSWITCH_ENCRYPTION_KEY', 'SAYSWITCH_ENCRYPTION_IV');
  pair('DASHBOARD_USER', 'DASHBOARD_PASSWORD');
  // Every token differs from every other: a value in two roles would grant the larger one.
  const tokens = ['API_TOKEN', 'API_READ_TOKEN', 'API_TOKEN_PREVIOUS', 'API_READ_TOKEN_PREVIOUS'];
  for (const [i, name] of tokens.entries()) {
    const same = tokens.slice(0, i).find((other) => set(name) && raw[name] === raw[other]);
    if (same !== undefined) problems.push({ variable: name, message: `must differ from ${same}` });
  }
  if (set('API_READ_TOKEN_PREVIOUS') && !set('API_READ_TOKEN')) {
    problems.push({
      variable: 'API_READ_TOKEN_PREVIOUS',
      message: 'needs API_READ_TOKEN, the token callers move to (unset both to stop read tokens)',
    });
  }
  if (raw.DASHBOARD_AUTH === 'none' && (set('DASHBOARD_USER') || set('DASHBOARD_PASSWORD'))) {
    const v = set('DASHBOARD_USER') ? 'DASHBOARD_USER' : 'DASHBOARD_PASSWORD';
    problems.push({ variable: v, message: 'cannot be set with DASHBOARD_AUTH=none' });
  }
  if (set('SAYSWITCH_ENCRYPTION_IV') && (raw.SAYSWITCH_ENCRYPTION_IV ?? '').length < 16) {
    problems.push({
      variable: 'SAYSWITCH_ENCRYPTION_IV',
      message: 'must be at least 16 characters',
    });
  }
  if (set('NOTIFY_URL') && !set('NOTIFY_SECRET')) {
    problems.push({ variable: 'NOTIFY_SECRET', message: 'is required when NOTIFY_URL is set' });
  }
  problems.push(...previousSecretProblems(raw));
  const dek = valueOf(raw, 'DATA_ENCRYPTION_KEY');
  const dekPrevious = valueOf(raw, 'DATA_ENCRYPTION_KEY_PREVIOUS');
  if (
    dek !== undefined &&
    dekPrevious !== undefined &&
    dek.toLowerCase() === dekPrevious.toLowerCase()
  ) {
    problems.push({
      variable: 'DATA_ENCRYPTION_KEY_PREVIOUS',
      message: 'must differ from DATA_ENCRYPTION_KEY',
    });
  }
  problems.push(
    ...leaseProblems(raw),
    ...liveKeyProblems(raw),
    ...liveCredentialProblems(raw),
    ...resolveProblems(raw),
  );
  return problems;
}

/** A variable's value as the schema reads it, or undefined when it is invalid (listed anyway). */
function valueOf<K extends keyof typeof envSchema.shape>(
  raw: Record<string, string | undefined>,
  name: K,
): z.output<(typeof envSchema.shape)[K]> | undefined {
  const r = envSchema.shape[name].safeParse(raw[name]);
  return r.success ? (r.data as z.output<(typeof envSchema.shape)[K]>) : undefined;
}

/**
 * The secrets being rotated out (docs/operations.md "Rotating secrets"): each differs from the
 * current one; NOTIFY_SECRET_PREVIOUS only signs beside NOTIFY_SECRET; SAYSWITCH_SECRET_KEY_PREVIOUS
 * is of SAYSWITCH_SECRET_KEY's mode, since a test key's webhook signature must never be accepted
 * in live mode (nor a live one's in test mode).
 */
function previousSecretProblems(raw: Record<string, string | undefined>) {
  const set = (name: string) => raw[name] !== undefined && raw[name] !== '';
  const problems: { variable: string; message: string }[] = [];
  if (set('NOTIFY_SECRET_PREVIOUS')) {
    const variable = 'NOTIFY_SECRET_PREVIOUS';
    if (!set('NOTIFY_URL') || !set('NOTIFY_SECRET')) {
      problems.push({
        variable,
        message:
          'needs NOTIFY_URL and NOTIFY_SECRET: it is the secret being rotated out, signing ' +
          'notifications beside NOTIFY_SECRET',
      });
    } else if (notifyKeyOf(raw[variable] ?? '').equals(notifyKeyOf(raw.NOTIFY_SECRET ?? ''))) {
      problems.push({ variable, message: 'must differ from NOTIFY_SECRET (the same signing key)' });
    }
  }
  // Only between valid keys (an invalid one has its own problem listed).
  const previous = valueOf(raw, 'SAYSWITCH_SECRET_KEY_PREVIOUS');
  const current = valueOf(raw, 'SAYSWITCH_SECRET_KEY');
  if (previous !== undefined && current !== undefined) {
    const variable = 'SAYSWITCH_SECRET_KEY_PREVIOUS';
    if (previous === current) {
      problems.push({ variable, message: 'must differ from SAYSWITCH_SECRET_KEY' });
    } else if (previous.startsWith('sk_test_') !== current.startsWith('sk_test_')) {
      problems.push({
        variable,
        message:
          'must be of the same mode as SAYSWITCH_SECRET_KEY (both sk_test_, or both live): a ' +
          "test key's webhook signature must never be accepted in live mode",
      });
    }
  }
  return problems;
}

/** Whether SAYSWITCH_SECRET_KEY is a live key (set, and not `sk_test_`): real money moves. */
function isLiveKey(raw: Record<string, string | undefined>): boolean {
  const key = raw.SAYSWITCH_SECRET_KEY;
  return key !== undefined && key !== '' && !key.startsWith('sk_test_');
}

/**
 * The higher minimums of bounds.ts for a live secret key (anything but `sk_test_`): the tests and
 * the demo run the sandbox with test keys and far shorter timings; real money does not.
 */
function liveKeyProblems(raw: Record<string, string | undefined>) {
  if (!isLiveKey(raw)) return [];
  const problems: { variable: string; message: string }[] = [];
  const bounds = Object.entries(DURATION_BOUNDS) as [keyof typeof DURATION_BOUNDS, DurationBound][];
  for (const [name, { live }] of bounds) {
    if (live === undefined) continue;
    const ms = valueOf(raw, name);
    if (ms !== undefined && ms < boundMs(live.min)) {
      problems.push({
        variable: name,
        message: `must be at least ${live.min} with a live SAYSWITCH_SECRET_KEY (not sk_test_): ${live.why}`,
      });
    }
  }
  return problems;
}

/** A host that is this machine: plain http to it never crosses a network. */
const LOOPBACK_HOST = /^(?:localhost|127(?:\.\d{1,3}){3}|\[::1\])$/i;

/**
 * What else a live secret key needs, since real credentials are then at stake (the tests and the
 * demo run the sandbox with test keys over http, with short passwords):
 * - SAYSWITCH_BASE_URL is https, or http to this machine only (a TLS-originating sidecar): every
 *   request carries the secret key in its Authorization header and a charge carries the card
 *   token, which plain http would show to anyone on the path.
 * - DASHBOARD_PASSWORD is as long as API_TOKEN must be: it acts in the console (resolves payments,
 *   approves and cancels batches: the second person of BATCH_APPROVAL) and in the queue dashboard;
 *   the sign-in throttle (http/sign-in.ts) slows online guessing, it does not make a short one safe.
 */
function liveCredentialProblems(raw: Record<string, string | undefined>) {
  if (!isLiveKey(raw)) return [];
  const problems: { variable: string; message: string }[] = [];
  const base = valueOf(raw, 'SAYSWITCH_BASE_URL');
  if (base !== undefined && URL.canParse(base)) {
    const url = new URL(base);
    if (url.protocol === 'http:' && !LOOPBACK_HOST.test(url.hostname)) {
      problems.push({
        variable: 'SAYSWITCH_BASE_URL',
        message:
          'must be https:// with a live SAYSWITCH_SECRET_KEY (not sk_test_): every request carries ' +
          'the secret key and card tokens (plain http only to localhost)',
      });
    }
  }
  const password = raw.DASHBOARD_PASSWORD;
  if (password !== undefined && password !== '' && password.length < DASHBOARD_PASSWORD_MIN) {
    problems.push({
      variable: 'DASHBOARD_PASSWORD',
      message:
        `must be at least ${DASHBOARD_PASSWORD_MIN} characters with a live SAYSWITCH_SECRET_KEY ` +
        '(not sk_test_): it resolves payments and approves batches in the console',
    });
  }
  return problems;
}

/**
 * RESOLVE_UNKNOWN_AFTER against RECONCILE_NOT_FOUND_GRACE: a person may not settle an `unknown`
 * payment before the reconciler could prove it unsent; a request still landing would move money
 * on a payment recorded failed.
 */
function resolveProblems(raw: Record<string, string | undefined>) {
  const resolve = valueOf(raw, 'RESOLVE_UNKNOWN_AFTER');
  const grace = valueOf(raw, 'RECONCILE_NOT_FOUND_GRACE');
  if (resolve === undefined || grace === undefined || resolve >= grace) return [];
  return [
    {
      variable: 'RESOLVE_UNKNOWN_AFTER',
      message:
        `must be at least RECONCILE_NOT_FOUND_GRACE (${grace} ms): a person may not settle an ` +
        `unknown payment before a not-found could prove it unsent, got ${resolve} ms`,
    },
  ];
}

/**
 * SUBMIT_LEASE against SAYSWITCH_TIMEOUT_MS (both defaulted as the schema does): a lease that
 * ends before the gateway call can would let the sweep hand a live submission to the reconciler.
 * Checked only when both values are themselves valid (otherwise their own problems are listed).
 */
function leaseProblems(raw: Record<string, string | undefined>) {
  const lease = valueOf(raw, 'SUBMIT_LEASE');
  const timeout = valueOf(raw, 'SAYSWITCH_TIMEOUT_MS');
  if (lease === undefined || timeout === undefined) return [];
  const min = minSubmitLeaseMs(timeout);
  if (lease >= min) return [];
  return [
    {
      variable: 'SUBMIT_LEASE',
      message:
        `must be at least ${min} ms with SAYSWITCH_TIMEOUT_MS=${timeout} (the timeout plus a ` +
        `margin of the timeout again, at least ${SUBMIT_LEASE_MIN_MARGIN_MS} ms), got ${lease} ms`,
    },
  ];
}

function dedupe(problems: { variable: string; message: string }[]) {
  const seen = new Set<string>();
  return problems.filter((p) => {
    const k = `${p.variable}\u0000${p.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** Variables the demo fills in when they are unset. Only the demo: secrets have no defaults elsewhere. */
export function demoDefaults(): Record<string, string> {
  return {
    SAYSWITCH_SECRET_KEY: 'sk_test_demo_secret_key',
    SAYSWITCH_ENCRYPTION_KEY: 'demo-encryption-key-32-bytes-ok!',
    SAYSWITCH_ENCRYPTION_IV: 'demo-iv-16-bytes',
    DATA_ENCRYPTION_KEY: '00'.repeat(32),
    API_TOKEN: 'demo-api-token-0123456789',
    API_READ_TOKEN: 'demo-read-token-0123456789',
    DASHBOARD_AUTH: 'basic',
    DASHBOARD_USER: 'admin',
    DASHBOARD_PASSWORD: 'demo',
  };
}
