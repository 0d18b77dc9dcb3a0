/**
 * Prometheus metrics (`GET /metrics`, text format) on a registry owned by one app, not
 * prom-client's global default, so tests and benches can build several apps in one process.
 *
 * Counters and histograms are fed by events (BullMQ worker events, a gateway decorator); the
 * gauges that describe Redis state (intents by state, queue depths) are read on scrape, so a
 * replica that runs no worker still reports them and nothing polls Redis between scrapes.
 */
import type { Job, JobType, Queue, Worker } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { z } from 'zod';
import { BillingError } from '../kernel/errors.ts';
import type { WriteRefusal } from '../infra/redis/health.ts';
import type { IntentState } from '../kernel/intent.ts';
import {
  GATEWAY_DISCREPANCIES,
  type GatewayDiscrepancy,
  type LookupOutcome,
  type PaymentGateway,
} from '../kernel/ports.ts';
import { errorResponses } from './schemas.ts';
import { SIGN_IN_FAILURES, SIGN_IN_REALMS, type CountSignInFailure } from './sign-in.ts';

/** Queue states reported by `billing_queue_jobs`. `completed`/`failed` are bounded by retention. */
export const QUEUE_DEPTH_STATES = [
  'waiting',
  'prioritized',
  'delayed',
  'active',
  'waiting-children',
  'failed',
  'completed',
] as const satisfies readonly JobType[];

/** The `endpoint` label of gateway metrics, one per PaymentGateway method. */
export type GatewayEndpoint =
  | 'charge'
  | 'payout'
  | 'verify'
  | 'payout_lookup'
  | 'list_banks'
  | 'resolve_account'
  | 'wallet_balance'
  | 'refund'
  | 'refund_status'
  | 'refund_list';

/** Every {@link GatewayEndpoint}, for the series exported before their first call. */
const GATEWAY_ENDPOINTS: readonly GatewayEndpoint[] = [
  'charge',
  'payout',
  'verify',
  'payout_lookup',
  'list_banks',
  'resolve_account',
  'wallet_balance',
  'refund',
  'refund_status',
  'refund_list',
];

/** What a scrape reads from Redis. A queue only needs its name, counts and paused flag. */
export interface ScrapeDeps {
  store: { countByState(): Promise<Record<IntentState, number>> };
  queues: readonly Pick<Queue, 'name' | 'getJobCounts' | 'isPaused'>[];
}

/** One app's metrics. */
export interface Metrics {
  registry: Registry;
  /** Counts and times every finished attempt of `worker`'s jobs. Call once per worker. */
  observeJob(worker: Worker, queueName: string): void;
  /** Wraps a gateway so each call is timed and labelled with its endpoint and outcome. */
  instrumentGateway(gateway: PaymentGateway): PaymentGateway;
  /** Sets what the on-scrape gauges read; until called they report nothing. Last call wins. */
  collectOnScrape(deps: ScrapeDeps): void;
  /** What the Redis gauges read on every scrape (docs/operations.md, "Redis outages"). */
  watchPlatform(platform: PlatformProbe): void;
  /** Counts one Redis data loss this process detected. */
  countDataLoss(): void;
  /** Counts one worker the watchdog replaced (infra/queues/worker-watchdog.ts). */
  countWorkerReplaced(queueName: string): void;
  /** Counts one gateway answer that contradicts what we know (payments/apply-outcome.ts). */
  countDiscrepancy(kind: GatewayDiscrepancy): void;
  /** Counts one request that carried a previous API token (a rotation not finished; http/auth.ts). */
  countPreviousToken(token: 'API_TOKEN_PREVIOUS' | 'API_READ_TOKEN_PREVIOUS'): void;
  /** Counts one wrong password, or one request refused as blocked (http/sign-in.ts). */
  countSignInFailure: CountSignInFailure;
}

/**
 * The process's view of Redis, for `billing_redis_up`, `billing_redis_data_loss_unacknowledged`
 * and `billing_redis_write_refusals_total`.
 */
export interface PlatformProbe {
  redisUp(): boolean;
  dataLossUnacknowledged(): boolean;
  /** Writes Redis refused (`reason`) that this process was told of, since it started. */
  redisWriteRefusals(reason: WriteRefusal): number;
}

export interface MetricsOptions {
  /** Default process and Node.js metrics (`process_*`, `nodejs_*`). Default true. */
  defaultMetrics?: boolean;
  /**
   * A scrape gives up on Redis after this long. The app's connection is built for BullMQ
   * (`maxRetriesPerRequest: null`), so while Redis is down a command waits forever; a scrape
   * must not.
   */
  collectTimeoutMs?: number;
}

// Gateway calls: the adapter's default timeout is 15 s, so buckets reach past it.
const GATEWAY_BUCKETS_S = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30, 60];
// Jobs: from a no-op skip to the 300 s catalog timeout of a sweep.
const JOB_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

class CollectTimeout extends Error {}

interface QueueSnapshot {
  name: string;
  counts: Record<string, number>;
  paused: boolean;
}

function readQueues(queues: ScrapeDeps['queues']): Promise<QueueSnapshot[]> {
  return Promise.all(
    queues.map(async (q) => {
      const [counts, paused] = await Promise.all([
        q.getJobCounts(...QUEUE_DEPTH_STATES),
        q.isPaused(),
      ]);
      return { name: q.name, counts, paused };
    }),
  );
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new CollectTimeout(`metrics collection exceeded ${ms} ms`)),
      ms,
    );
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** The `outcome` label of a gateway call: the answer's status, or the error's kind. */
export function gatewayOutcomeLabel(
  result: { ok: true; value: unknown } | { ok: false; err: unknown },
): string {
  if (!result.ok) {
    const err = result.err;
    if (err instanceof BillingError) return err.authFailure ? 'auth_failure' : err.kind;
    return 'error';
  }
  const v = result.value as Partial<LookupOutcome> | null | undefined;
  return v !== null && typeof v === 'object' && typeof v.status === 'string' ? v.status : 'ok';
}

/** Builds a fresh registry with the service's metrics and, by default, process metrics. */
export function createMetrics(opts: MetricsOptions = {}): Metrics {
  const registry = new Registry();
  const registers = [registry];
  const collectTimeoutMs = opts.collectTimeoutMs ?? 2_000;
  if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });

  const jobs = new Counter({
    name: 'billing_jobs_total',
    help: 'Finished job attempts by queue and outcome (completed, failed = no retry left, retried)',
    labelNames: ['queue', 'outcome'] as const,
    registers,
  });
  const stalled = new Counter({
    name: 'billing_jobs_stalled_total',
    help: 'Jobs whose worker stopped renewing the lock (crashed or blocked) and were re-delivered',
    labelNames: ['queue'] as const,
    registers,
  });
  const replaced = new Counter({
    name: 'billing_workers_replaced_total',
    help: 'Workers that took no job while jobs were due for WORKER_STUCK_AFTER and were replaced',
    labelNames: ['queue'] as const,
    registers,
  });
  const jobDuration = new Histogram({
    name: 'billing_job_duration_seconds',
    help: 'Processing time of one job attempt (processedOn to finish) by queue and outcome',
    labelNames: ['queue', 'outcome'] as const,
    buckets: JOB_BUCKETS_S,
    registers,
  });
  const gatewayDuration = new Histogram({
    name: 'billing_gateway_request_duration_seconds',
    help: 'Sayswitch call latency by endpoint and outcome (a status, or an error kind)',
    labelNames: ['endpoint', 'outcome'] as const,
    buckets: GATEWAY_BUCKETS_S,
    registers,
  });
  const discrepancies = new Counter({
    name: 'billing_gateway_discrepancies_total',
    help: 'Gateway answers a person must check: a success for another amount than ours (amount_mismatch), failed for a payout it said succeeded (payout_failed_after_success)',
    labelNames: ['kind'] as const,
    registers,
  });
  const previousTokens = new Counter({
    name: 'billing_http_previous_token_requests_total',
    help: 'Requests that carried API_TOKEN_PREVIOUS or API_READ_TOKEN_PREVIOUS: a token rotation is over when this stops growing',
    labelNames: ['token'] as const,
    registers,
  });
  const signInFailures = new Counter({
    name: 'billing_sign_in_failures_total',
    help: 'Password sign-ins to the dashboard and the console refused: a wrong password (wrong_password), or an address blocked after too many (blocked)',
    labelNames: ['realm', 'failure'] as const,
    registers,
  });
  const collectErrors = new Counter({
    name: 'billing_metrics_collect_errors_total',
    help: 'Scrapes whose on-scrape collection failed or timed out (the gauge is then empty)',
    labelNames: ['collector'] as const,
    registers,
  });

  // The alerts watch these counters with `increase(…) > 0` (docs/operations.md). Prometheus sees
  // no increase in a series that first appears at 1, so each label set known in advance is
  // exported at 0 from the start: else the first failure, stall or replacement never alerts.
  for (const collector of ['intents', 'queues']) collectErrors.inc({ collector }, 0);
  for (const kind of GATEWAY_DISCREPANCIES) discrepancies.inc({ kind }, 0);
  for (const realm of SIGN_IN_REALMS)
    for (const failure of SIGN_IN_FAILURES) signInFailures.inc({ realm, failure }, 0);
  for (const endpoint of GATEWAY_ENDPOINTS) {
    gatewayDuration.zero({ endpoint, outcome: 'auth_failure' });
  }

  let scrape: ScrapeDeps | undefined;
  let platform: PlatformProbe | undefined;

  const dataLoss = new Counter({
    name: 'billing_redis_data_loss_total',
    help: 'Redis data losses this process detected (the deployment epoch vanished or changed)',
    registers,
  });
  new Gauge({
    name: 'billing_redis_up',
    help: '1 while every Redis connection of this process is ready',
    registers,
    collect() {
      this.set(platform?.redisUp() ? 1 : 0);
    },
  });
  new Counter({
    name: 'billing_redis_write_refusals_total',
    help:
      'Writes Redis refused while it answered, as this process saw them: reason out_of_memory ' +
      '(maxmemory reached, noeviction) or cannot_persist (stop-writes-on-bgsave-error)',
    labelNames: ['reason'] as const,
    registers,
    collect() {
      this.reset();
      for (const reason of ['out_of_memory', 'cannot_persist'] as const)
        this.inc({ reason }, platform?.redisWriteRefusals(reason) ?? 0);
    },
  });
  new Gauge({
    name: 'billing_redis_data_loss_unacknowledged',
    help: '1 from a detected Redis data loss until `billing redis ack-data-loss`',
    registers,
    collect() {
      this.set(platform?.dataLossUnacknowledged() ? 1 : 0);
    },
  });

  new Gauge({
    name: 'billing_intents',
    help: 'Payment intents by state (the same number on every replica: aggregate with max)',
    labelNames: ['state'] as const,
    registers,
    async collect() {
      // Reset first: a failed read must not leave the previous scrape's numbers looking current.
      this.reset();
      if (!scrape) return;
      try {
        const counts = await withTimeout(scrape.store.countByState(), collectTimeoutMs);
        for (const [state, n] of Object.entries(counts)) this.set({ state }, n);
      } catch {
        collectErrors.inc({ collector: 'intents' });
      }
    },
  });

  // One read of each queue feeds both queue gauges. prom-client starts every metric's collect in
  // registration order and each runs synchronously up to its first await, so `depth` has always
  // started the read by the time `paused` awaits it.
  let queueRead: Promise<QueueSnapshot[]> = Promise.resolve([]);
  new Gauge({
    name: 'billing_queue_jobs',
    help: 'Jobs in each BullMQ queue by state',
    labelNames: ['queue', 'state'] as const,
    registers,
    async collect() {
      this.reset();
      queueRead = scrape
        ? withTimeout(readQueues(scrape.queues), collectTimeoutMs)
        : Promise.resolve([]);
      try {
        for (const q of await queueRead) {
          for (const state of QUEUE_DEPTH_STATES)
            this.set({ queue: q.name, state }, q.counts[state] ?? 0);
        }
      } catch {
        collectErrors.inc({ collector: 'queues' });
      }
    },
  });
  new Gauge({
    name: 'billing_queue_paused',
    help: '1 when the queue is paused (e.g. after the gateway refused our credentials)',
    labelNames: ['queue'] as const,
    registers,
    async collect() {
      this.reset();
      try {
        for (const q of await queueRead) this.set({ queue: q.name }, q.paused ? 1 : 0);
      } catch {
        // Counted once, by the billing_queue_jobs collector.
      }
    },
  });

  const onFinished = (queue: string, job: Job, outcome: 'completed' | 'failed') => {
    // `finishedOn` is set only when the job leaves for good; a failed attempt that BullMQ will
    // retry has none. That is BullMQ's own decision, so no attempts arithmetic here.
    const final = typeof job.finishedOn === 'number';
    const label = outcome === 'completed' ? 'completed' : final ? 'failed' : 'retried';
    jobs.inc({ queue, outcome: label });
    if (typeof job.processedOn === 'number') {
      const end = job.finishedOn ?? Date.now();
      jobDuration.observe({ queue, outcome: label }, Math.max(0, end - job.processedOn) / 1000);
    }
  };

  const time = <T>(endpoint: GatewayEndpoint, call: () => Promise<T>): Promise<T> => {
    const end = gatewayDuration.startTimer({ endpoint });
    return call().then(
      (value) => {
        end({ outcome: gatewayOutcomeLabel({ ok: true, value }) });
        return value;
      },
      (err: unknown) => {
        end({ outcome: gatewayOutcomeLabel({ ok: false, err }) });
        throw err;
      },
    );
  };

  return {
    registry,
    observeJob(worker, queueName) {
      for (const outcome of ['completed', 'failed', 'retried'])
        jobs.inc({ queue: queueName, outcome }, 0);
      stalled.inc({ queue: queueName }, 0);
      replaced.inc({ queue: queueName }, 0);
      worker.on('completed', (job) => onFinished(queueName, job, 'completed'));
      worker.on('failed', (job) => {
        if (job) onFinished(queueName, job, 'failed');
      });
      worker.on('stalled', () => stalled.inc({ queue: queueName }));
    },
    instrumentGateway(gateway) {
      return {
        chargeCard: (r) => time('charge', () => gateway.chargeCard(r)),
        payout: (r) => time('payout', () => gateway.payout(r)),
        verifyCharge: (ref) => time('verify', () => gateway.verifyCharge(ref)),
        lookupPayout: (ref) => time('payout_lookup', () => gateway.lookupPayout(ref)),
        listBanks: (c) => time('list_banks', () => gateway.listBanks(c)),
        resolveAccountName: (q) => time('resolve_account', () => gateway.resolveAccountName(q)),
        walletBalance: (c) => time('wallet_balance', () => gateway.walletBalance(c)),
        refund: (r) => time('refund', () => gateway.refund(r)),
        refundStatus: (ref) => time('refund_status', () => gateway.refundStatus(ref)),
        refundsOf: (ref) => time('refund_list', () => gateway.refundsOf(ref)),
      };
    },
    collectOnScrape(deps) {
      scrape = deps;
    },
    watchPlatform(p) {
      platform = p;
    },
    countWorkerReplaced(queueName) {
      replaced.inc({ queue: queueName });
    },
    countDataLoss() {
      dataLoss.inc();
    },
    countDiscrepancy(kind) {
      discrepancies.inc({ kind });
    },
    countPreviousToken(token) {
      previousTokens.inc({ token });
    },
    countSignInFailure(realm, failure) {
      signInFailures.inc({ realm, failure });
    },
  };
}

/**
 * `GET /metrics` in the Prometheus text format. A `read` route of the access policy (auth.ts):
 * it needs API_READ_TOKEN or API_TOKEN as a bearer token (Prometheus: `authorization` or
 * `bearer_token_file` in the scrape config, docs/operations.md).
 */
export function registerMetricsRoute(
  app: FastifyInstance,
  metrics: Pick<Metrics, 'registry'>,
): void {
  app.get(
    '/metrics',
    {
      schema: {
        tags: ['operations'],
        summary: 'Prometheus metrics (text exposition format)',
        response: {
          200: {
            description: 'the Prometheus text format',
            content: { 'text/plain': { schema: z.string() } },
          },
          ...errorResponses(),
        },
      },
    },
    async (_req, reply) => {
      const body = await metrics.registry.metrics();
      return reply.header('content-type', metrics.registry.contentType).send(body);
    },
  );
}
