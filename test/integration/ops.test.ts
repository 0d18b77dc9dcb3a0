/**
 * Operations: `/metrics` after real payments, the bull-board dashboard behind basic auth (and
 * refused without credentials unless DASHBOARD_AUTH=none, read-only when asked), and graceful
 * shutdown of the real CLI on SIGTERM while jobs are in flight.
 */
import { Queue, UnrecoverableError, Worker } from 'bullmq';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openApp, startRoles, type App, type RunningRoles } from '../../src/app/composition.ts';
import { INTENT_STATES } from '../../src/kernel/intent.ts';
import { registerDashboard } from '../../src/http/dashboard.ts';
import { createMetrics, registerMetricsRoute, type Metrics } from '../../src/http/metrics.ts';
import { installZodCompilers } from '../../src/http/openapi.ts';
import { createPayment } from '../../src/payments/create.ts';
import { createLogger } from '../../src/infra/logger.ts';
import { QUEUES } from '../../src/infra/queues/names.ts';
import type { Sandbox } from '../../src/sandbox/index.ts';
import { createDeps, FAST_ENV, testConfig } from '../support/app.ts';
import { spawnBilling, type BillingChild } from '../support/child.ts';
import { track } from '../support/leak-check.ts';
import { until } from '../support/poll.ts';
import { cleanupPrefix, createTestRedis, getRedisUrl, uniquePrefix } from '../support/redis.ts';
import { startTestSandbox } from '../support/sandbox.ts';
import { parseMetrics, type Sample } from '../support/metrics-text.ts';

const FINAL = new Set(['succeeded', 'failed', 'reversed']);
const CARD_TOKEN = 'tok_ops_secret_card_0123456789';
const USER = 'ops';
const PASSWORD = 'correct horse battery staple';

function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

function charge(key: string, amount: string) {
  return {
    type: 'charge',
    key,
    email: 'ops@example.com',
    amount,
    currency: 'NGN',
    card_token: CARD_TOKEN,
  };
}

function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}

/** How long the metrics and shutdown waits below may take (under load, with child processes). */
const WAIT_MS = 20_000;

/**
 * The app as composition builds it, with this file's metrics attached the way composition will
 * attach them: the gateway decorated before roles start, every worker observed, scrape gauges
 * reading the store and all queues. (startTestApp cannot decorate the gateway before roles start.)
 */
async function startInstrumentedApp(sandboxUrl: string): Promise<{
  app: App;
  running: RunningRoles;
  metrics: Metrics;
  prefix: string;
  close(): Promise<void>;
}> {
  const prefix = uniquePrefix('ops');
  const config = await testConfig(prefix, { SAYSWITCH_BASE_URL: sandboxUrl });
  const app = openApp(config, createLogger({ level: config.logLevel }));
  const metrics = createMetrics();
  app.gateway = metrics.instrumentGateway(app.gateway);
  const running = await startRoles(app, ['api', 'worker', 'reconciler']);
  for (const w of running.workers) metrics.observeJob(w, w.name);
  metrics.collectOnScrape({
    store: app.store,
    queues: Object.values(QUEUES).map((q) => app.dispatcher.queue(q)),
  });
  let open = true;
  const handle = {
    app,
    running,
    metrics,
    prefix,
    isOpen: () => open,
    async close() {
      if (!open) return;
      open = false;
      await running.stop(5_000);
      await cleanupPrefix(app.redis, prefix);
      await app.close();
    },
  };
  track(handle, `instrumented app ${prefix}`);
  return handle;
}

describe('metrics and dashboard on a running app', () => {
  let sandbox: Sandbox;
  let inst: Awaited<ReturnType<typeof startInstrumentedApp>>;
  let server: FastifyInstance;
  const keys = ['ok1', 'ok2', 'ok3', 'declined', 'pending'];

  beforeAll(async () => {
    sandbox = await startTestSandbox();
    inst = await startInstrumentedApp(sandbox.url);
    server = Fastify({ logger: false });
    // The route declares zod schemas, as every route does (http/openapi.ts).
    installZodCompilers(server, { checkResponses: true });
    registerMetricsRoute(server, inst.metrics);
    await registerDashboard(server, {
      queues: Object.values(QUEUES).map((q) => inst.app.dispatcher.queue(q)),
      auth: { user: USER, password: PASSWORD },
      readOnly: false,
      authMode: 'basic',
      logger: inst.app.logger,
    });
    await server.ready();

    // 00 succeeds, 51 is declined, 52 is pending and settles (verify) as a success.
    const amounts = ['100.00', '200.00', '300.00', '400.51', '500.52'];
    const deps = createDeps(inst.app);
    for (const [i, key] of keys.entries()) {
      const r = await createPayment(deps, charge(key, amounts[i]!));
      expect(r.status).toBe('created');
    }
    await until(
      async () => {
        for (const key of keys) {
          const state = (await inst.app.store.get(`api_${key}`))?.state;
          if (state === undefined || !FINAL.has(state)) return undefined;
        }
        return true;
      },
      { what: 'every payment final', timeoutMs: WAIT_MS },
    );
  });

  afterAll(async () => {
    await server?.close();
    await inst?.close();
    await sandbox?.close();
  });

  it('exposes jobs, gateway latency, intents by state, queue depths and process metrics', async () => {
    // Job events arrive just after the transition that made the intent final.
    const samples = await until(
      async () => {
        const res = await server.inject({ method: 'GET', url: '/metrics' });
        expect(res.statusCode).toBe(200);
        expect(res.headers['content-type']).toMatch(/^text\/plain/);
        const s = parseMetrics(res.body);
        return value(s, 'billing_jobs_total', { queue: 'charges', outcome: 'completed' }) >= 5 &&
          value(s, 'billing_jobs_total', { queue: 'reconcile', outcome: 'completed' }) >= 1
          ? s
          : undefined;
      },
      { what: 'job counters', timeoutMs: WAIT_MS },
    );

    expect(value(samples, 'billing_job_duration_seconds_count', { queue: 'charges' })).toBe(
      value(samples, 'billing_jobs_total', { queue: 'charges' }),
    );
    const gw = 'billing_gateway_request_duration_seconds_count';
    expect(value(samples, gw, { endpoint: 'charge', outcome: 'succeeded' })).toBe(3);
    expect(value(samples, gw, { endpoint: 'charge', outcome: 'failed' })).toBe(1);
    expect(value(samples, gw, { endpoint: 'charge', outcome: 'pending' })).toBe(1);
    expect(value(samples, gw, { endpoint: 'verify' })).toBeGreaterThanOrEqual(1);
    expect(
      value(samples, 'billing_gateway_request_duration_seconds_bucket', {
        endpoint: 'charge',
        outcome: 'succeeded',
        le: '+Inf',
      }),
    ).toBe(3);

    expect(value(samples, 'billing_intents', { state: 'succeeded' })).toBe(4);
    expect(value(samples, 'billing_intents', { state: 'failed' })).toBe(1);
    expect(value(samples, 'billing_intents', { state: 'queued' })).toBe(0);
    expect(samples.filter((s) => s.name === 'billing_intents')).toHaveLength(INTENT_STATES.length);

    for (const q of Object.values(QUEUES)) {
      expect(samples.some((s) => s.name === 'billing_queue_jobs' && s.labels.queue === q)).toBe(
        true,
      );
      expect(value(samples, 'billing_queue_paused', { queue: q })).toBe(0);
    }
    expect(
      value(samples, 'billing_queue_jobs', { queue: 'charges', state: 'completed' }),
    ).toBeGreaterThanOrEqual(5);
    expect(value(samples, 'billing_metrics_collect_errors_total')).toBe(0);
    expect(samples.some((s) => s.name === 'process_cpu_user_seconds_total')).toBe(true);
    expect(samples.some((s) => s.name === 'nodejs_eventloop_lag_seconds')).toBe(true);
  });

  it('refuses the dashboard without credentials or with wrong ones, on every route', async () => {
    const page = await server.inject({ method: 'GET', url: '/admin/queues' });
    expect(page.statusCode).toBe(401);
    expect(page.headers['www-authenticate']).toMatch(/^Basic realm=/);
    expect(page.body).not.toContain('<html');

    for (const authorization of [
      basic(USER, 'wrong'),
      basic('admin', PASSWORD),
      basic(USER, `${PASSWORD}x`),
      `Bearer ${PASSWORD}`,
      'Basic !!!',
    ]) {
      const res = await server.inject({
        method: 'GET',
        url: '/admin/queues',
        headers: { authorization },
      });
      expect(res.statusCode, authorization).toBe(401);
    }
    for (const url of [
      '/admin/queues/',
      '/admin/queues/api/queues',
      '/admin/queues/api/redis/stats',
      '/admin/queues/queue/charges',
      '/admin/queues/static/favicon-32x32.png',
    ]) {
      const res = await server.inject({ method: 'GET', url });
      expect(res.statusCode, url).toBe(401);
    }
    const pause = await server.inject({ method: 'PUT', url: '/admin/queues/api/queues/pause' });
    expect(pause.statusCode).toBe(401);
    expect(await inst.app.dispatcher.queue(QUEUES.charges).isPaused()).toBe(false);
  });

  it('serves the dashboard, its assets and its API with the right credentials', async () => {
    const headers = { authorization: basic(USER, PASSWORD) };
    const page = await server.inject({ method: 'GET', url: '/admin/queues', headers });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toMatch(/text\/html/);
    expect(page.headers['cache-control']).toBe('no-store');
    // Every asset the page references (relative to its <base href>) needs the credentials.
    const base = new URL(/<base href="([^"]+)"/.exec(page.body)![1]!, 'http://dashboard.test');
    const assets = [...page.body.matchAll(/(?:src|href)="(static\/[^"]+)"/g)].map(
      (m) => new URL(m[1]!, base).pathname,
    );
    expect(assets.every((u) => u.startsWith('/admin/queues/static/'))).toBe(true);
    expect(assets.length).toBeGreaterThan(0);
    for (const url of assets.slice(0, 3)) {
      expect((await server.inject({ method: 'GET', url })).statusCode, url).toBe(401);
      expect((await server.inject({ method: 'GET', url, headers })).statusCode, url).toBe(200);
    }
    const api = await server.inject({ method: 'GET', url: '/admin/queues/api/queues', headers });
    expect(api.statusCode).toBe(200);
    const names = api.json<{ queues: { name: string }[] }>().queues.map((q) => q.name);
    expect(names.sort()).toEqual(Object.values(QUEUES).sort());
  });

  it('shows nothing secret: no card token, key or credential in jobs or Redis details', async () => {
    const headers = { authorization: basic(USER, PASSWORD) };
    const bodies: string[] = [];
    for (const q of [QUEUES.charges, QUEUES.reconcile]) {
      for (const status of ['completed', 'failed', 'delayed', 'latest']) {
        const res = await server.inject({
          method: 'GET',
          url: `/admin/queues/api/queues?activeQueue=${q}&status=${status}&page=1&jobsPerPage=50`,
          headers,
        });
        expect(res.statusCode).toBe(200);
        bodies.push(res.body);
      }
    }
    const charges = JSON.parse(bodies[0]!) as {
      queues: { name: string; jobs: { data: Record<string, unknown> }[] }[];
    };
    const jobs = charges.queues.find((q) => q.name === QUEUES.charges)!.jobs;
    expect(jobs.length).toBe(5);
    for (const j of jobs)
      expect(Object.keys(j.data).sort()).toEqual(['amount', 'attempt', 'currency', 'key']);
    const stats = await server.inject({
      method: 'GET',
      url: '/admin/queues/api/redis/stats',
      headers,
    });
    expect(stats.statusCode).toBe(200);
    bodies.push(stats.body);
    const cfg = inst.app.config;
    const secrets = [
      CARD_TOKEN,
      'tok_',
      cfg.sayswitch.secretKey,
      cfg.http.apiToken,
      cfg.dataEncryptionKey.toString('hex'),
      PASSWORD,
    ];
    for (const body of bodies) for (const s of secrets) expect(body).not.toContain(s);
  });

  it('refuses a cross-origin mutation even with credentials (CSRF)', async () => {
    const res = await server.inject({
      method: 'PUT',
      url: `/admin/queues/api/queues/${QUEUES.notifications}/pause`,
      headers: { authorization: basic(USER, PASSWORD), origin: 'https://evil.example' },
    });
    expect(res.statusCode).toBe(403);
    expect(await inst.app.dispatcher.queue(QUEUES.notifications).isPaused()).toBe(false);
  });
});

describe('dashboard modes', () => {
  let prefix: string;
  let redis: Redis;
  let queues: Queue[];
  let server: FastifyInstance | undefined;
  const lines: string[] = [];
  const logger = createLogger({ level: 'info', destination: { write: (l) => lines.push(l) } });

  beforeAll(async () => {
    prefix = uniquePrefix('dash');
    redis = await createTestRedis({}, 'dashboard redis');
    queues = Object.values(QUEUES).map((name) =>
      track(new Queue(name, { connection: redis, prefix }), `queue ${name}`),
    );
    await queues[0]!.add('submit', { key: 'api_x', attempt: 1, amount: 100, currency: 'NGN' });
  });

  afterEach(async () => {
    await server?.close();
    server = undefined;
    lines.length = 0;
  });

  afterAll(async () => {
    await cleanupPrefix(redis, prefix);
    await Promise.all(queues.map((q) => q.close()));
    await redis.quit();
  });

  async function build(opts: {
    auth?: { user: string; password: string };
    readOnly?: boolean;
    authMode: 'basic' | 'none';
  }) {
    server = Fastify({ logger: false });
    const mode = await registerDashboard(server, {
      queues,
      readOnly: opts.readOnly ?? false,
      authMode: opts.authMode,
      logger,
      ...(opts.auth ? { auth: opts.auth } : {}),
    });
    await server.ready();
    return { server, mode };
  }

  it('is refused without credentials (DASHBOARD_AUTH=basic), on every dashboard route', async () => {
    const { server, mode } = await build({ authMode: 'basic' });
    expect(mode).toBe('disabled');
    for (const url of [
      '/admin/queues',
      '/admin/queues/',
      '/admin/queues/api/queues',
      '/admin/queues/static/favicon-32x32.png',
    ]) {
      const res = await server.inject({ method: 'GET', url });
      expect(res.statusCode, url).toBe(404);
      expect(res.json()).toMatchObject({ error: { code: 'dashboard_disabled' } });
    }
    // Credentials cannot open a dashboard that has none configured.
    const res = await server.inject({
      method: 'GET',
      url: '/admin/queues/api/queues',
      headers: { authorization: basic('admin', 'admin') },
    });
    expect(res.statusCode).toBe(404);
    expect(lines.join('')).toContain('dashboard disabled');
  });

  it('is open read-only with DASHBOARD_AUTH=none, with a logged warning', async () => {
    const { server, mode } = await build({ authMode: 'none' });
    expect(mode).toBe('open');
    expect((await server.inject({ method: 'GET', url: '/admin/queues' })).statusCode).toBe(200);
    const clean = await server.inject({
      method: 'PUT',
      url: `/admin/queues/api/queues/${QUEUES.charges}/clean/completed`,
    });
    expect(clean.statusCode).toBe(401);
    expect(
      lines.some((l) => l.includes('"level":"warn"') && l.includes('WITHOUT authentication')),
    ).toBe(true);
  });

  it('logs wrong credentials without the password tried', async () => {
    const { server } = await build({ authMode: 'basic', auth: { user: USER, password: PASSWORD } });
    const res = await server.inject({
      method: 'GET',
      url: '/admin/queues',
      headers: { authorization: basic(USER, 'hunter2-guess') },
    });
    expect(res.statusCode).toBe(401);
    const log = lines.join('');
    expect(log).toContain('wrong credentials');
    expect(log).not.toContain('hunter2-guess');
    expect(log).not.toContain(Buffer.from(`${USER}:hunter2-guess`).toString('base64'));
  });

  it('read-only mode refuses pause, clean and retry through the API', async () => {
    const auth = { user: USER, password: PASSWORD };
    const headers = { authorization: basic(USER, PASSWORD) };
    const ro = await build({ authMode: 'basic', auth, readOnly: true });
    const list = await ro.server.inject({
      method: 'GET',
      url: '/admin/queues/api/queues',
      headers,
    });
    const listed = list.json<{ queues: { readOnlyMode: boolean }[] }>().queues;
    expect(listed.every((q) => q.readOnlyMode)).toBe(true);
    for (const [method, url] of [
      ['PUT', `/admin/queues/api/queues/${QUEUES.charges}/pause`],
      ['PUT', `/admin/queues/api/queues/${QUEUES.charges}/clean/completed`],
      ['PUT', `/admin/queues/api/queues/${QUEUES.charges}/retry/failed`],
      ['PUT', `/admin/queues/api/queues/${QUEUES.charges}/empty`],
    ] as const) {
      const res = await ro.server.inject({ method, url, headers });
      expect(res.statusCode, url).toBe(405);
    }
    expect(await queues[0]!.isPaused()).toBe(false);
    expect(await queues[0]!.getWaitingCount()).toBe(1);
    await ro.server.close();

    // The same request on a writable dashboard does pause the queue.
    const rw = await build({ authMode: 'basic', auth, readOnly: false });
    const res = await rw.server.inject({
      method: 'PUT',
      url: `/admin/queues/api/queues/${QUEUES.charges}/pause`,
      headers,
    });
    expect(res.statusCode).toBeLessThan(300);
    expect(await queues[0]!.isPaused()).toBe(true);
    await queues[0]!.resume();
  });
});

describe('job metrics', () => {
  it('labels a failed attempt that will be retried as retried, a final one as failed', async () => {
    const prefix = uniquePrefix('jobm');
    const connection = await createTestRedis({}, 'job metrics redis');
    const queue = track(new Queue('probe', { connection, prefix }), 'probe queue');
    const metrics = createMetrics({ defaultMetrics: false });
    let calls = 0;
    const worker = track(
      new Worker(
        'probe',
        (job) => {
          calls++;
          if (job.name === 'flaky' && job.attemptsMade === 0)
            return Promise.reject(new Error('transient'));
          if (job.name === 'fatal') return Promise.reject(new UnrecoverableError('no'));
          return Promise.resolve('ok');
        },
        { connection, prefix, concurrency: 2 },
      ),
      'probe worker',
    );
    metrics.observeJob(worker, 'probe');
    try {
      await queue.add('flaky', {}, { attempts: 3 });
      await queue.add('fatal', {}, { attempts: 3 });
      await queue.add('fine', {});
      const samples = await until(
        async () => {
          const s = parseMetrics(await metrics.registry.metrics());
          return value(s, 'billing_jobs_total') >= 4 ? s : undefined;
        },
        { what: 'four finished attempts', timeoutMs: WAIT_MS },
      );
      expect(calls).toBe(4);
      expect(value(samples, 'billing_jobs_total', { queue: 'probe', outcome: 'retried' })).toBe(1);
      expect(value(samples, 'billing_jobs_total', { queue: 'probe', outcome: 'failed' })).toBe(1);
      expect(value(samples, 'billing_jobs_total', { queue: 'probe', outcome: 'completed' })).toBe(
        2,
      );
      expect(value(samples, 'billing_job_duration_seconds_count', { queue: 'probe' })).toBe(4);
    } finally {
      await worker.close();
      await cleanupPrefix(connection, prefix);
      await queue.close();
      await connection.quit();
    }
  });
});

describe('graceful shutdown', () => {
  const N = 50;
  let sandbox: Sandbox;
  let app: App;
  let prefix: string;
  let env: Record<string, string>;
  let child: BillingChild | undefined;

  beforeAll(async () => {
    // 300 ms per gateway call at concurrency 4: ~4 s of work, so SIGTERM lands mid-run.
    sandbox = await startTestSandbox({ latencyMs: 300 });
    prefix = uniquePrefix('sigterm');
    env = {
      ...FAST_ENV,
      REDIS_URL: await getRedisUrl(),
      QUEUE_PREFIX: prefix,
      SAYSWITCH_BASE_URL: sandbox.url,
      SAYSWITCH_TIMEOUT_MS: '5000',
      // At least twice the timeout (config.ts): FAST_ENV's 2s lease is too short for it.
      SUBMIT_LEASE: '10s',
      WORKER_CONCURRENCY: '4',
      SHUTDOWN_TIMEOUT: '20s',
      LOG_LEVEL: 'info',
    };
    app = openApp(await testConfig(prefix, env), createLogger({ level: 'silent' }));
  });

  afterEach(async () => {
    child?.kill('SIGKILL');
    if (child) await child.exited;
    child = undefined;
  });

  afterAll(async () => {
    await cleanupPrefix(app.redis, prefix);
    await app.close();
    await sandbox.close();
  });

  async function states(): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    for (let i = 0; i < N; i++) {
      const key = `api_term${i}`;
      out.set(key, (await app.store.get(key))?.state ?? 'missing');
    }
    return out;
  }

  it('SIGTERM with jobs in flight exits 0 and loses nothing', async () => {
    child = spawnBilling(['start', '--roles', 'worker,reconciler'], env);
    await child.waitFor('roles started');

    const deps = createDeps(app);
    // Mostly successes; every fifth is declined, every seventh goes through pending + verify.
    for (let i = 0; i < N; i++) {
      const cents = i % 5 === 4 ? '51' : i % 7 === 6 ? '52' : '00';
      const r = await createPayment(deps, charge(`term${i}`, `${1000 + i}.${cents}`));
      expect(r.status).toBe('created');
    }

    const charges = app.dispatcher.queue(QUEUES.charges);
    await until(
      async () => {
        const c = await charges.getJobCounts('active', 'completed');
        return (c.active ?? 0) > 0 && (c.completed ?? 0) > 0 ? true : undefined;
      },
      { what: 'jobs in flight', timeoutMs: WAIT_MS },
    );
    child.kill('SIGTERM');
    const code = await child.exited;
    expect(code, child.output()).toBe(0);
    expect(child.output()).toContain('shutting down');

    // In-flight jobs were finished, not abandoned: no lock left behind, no claim in `submitting`,
    // and work remained (the signal really landed mid-run).
    const after = await states();
    const counts = await charges.getJobCounts('active', 'waiting', 'prioritized');
    expect(counts.active).toBe(0);
    expect([...after.values()].filter((s) => s === 'submitting')).toEqual([]);
    expect([...after.values()].filter((s) => s === 'queued').length).toBeGreaterThan(0);

    child = spawnBilling(['start', '--roles', 'worker,reconciler'], env);
    await child.waitFor('roles started');
    const final = await until(
      async () => {
        const s = await states();
        return [...s.values()].every((v) => FINAL.has(v)) ? s : undefined;
      },
      { what: 'every intent final after restart', timeoutMs: 60_000 },
    );
    child.kill('SIGTERM');
    expect(await child.exited, child.output()).toBe(0);

    const succeeded: string[] = [];
    for (const [key, state] of final) {
      const intent = (await app.store.get(key))!;
      expect(intent.attempt).toBe(1);
      if (state === 'succeeded') succeeded.push(intent.reference);
      // A graceful stop never orphans a claim or leaves an outcome unknown.
      const history = await app.store.history(key);
      expect(history.filter((h) => h.reason === 'lease_expired' || h.to === 'unknown')).toEqual([]);
    }
    const moved = Object.entries(sandbox.ledger().references)
      .filter(([, e]) => e.moneyMoved)
      .map(([ref]) => ref);
    expect(new Set(moved)).toEqual(new Set(succeeded));
    expect(moved).toHaveLength(succeeded.length);
    expect(succeeded.length).toBe(N - Math.floor(N / 5));
  }, 120_000);
});
