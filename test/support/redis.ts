/**
 * The Redis harness for integration tests. One Redis per test process, chosen in this order:
 *
 * 1. `REDIS_URL` when set (CI services, a developer's own Redis);
 * 2. a testcontainers `redis:7` when a Docker engine answers (probed in a few hundred ms, and
 *    testcontainers — slow to import — is loaded only then);
 * 3. `127.0.0.1:6379` when it answers PING within 500 ms;
 * 4. a throwaway `redis-server` spawned on a free port, killed when the process exits.
 *
 * Tests share that Redis and isolate themselves by key prefix ({@link uniquePrefix}); nothing
 * here ever runs FLUSHALL/FLUSHDB.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { homedir, userInfo } from 'node:os';
import { join } from 'node:path';
import { Redis, type RedisOptions } from 'ioredis';
import { track } from './leak-check.ts';
import { spawnRedisServer } from './redis-server.ts';

/** Where the harness Redis came from. */
export type RedisSource = 'env' | 'testcontainers' | 'local' | 'spawned';

/** The Redis the harness chose. */
export interface RedisTarget {
  url: string;
  source: RedisSource;
  /** One line for logs, e.g. `testcontainers redis:7 on port 32771`. */
  detail: string;
  /** Stops what the harness started (container or spawned server); absent for env/local. */
  stop?: () => Promise<void>;
}

/** Seams of {@link resolveRedisTarget}, so its fallback order can be tested on real servers. */
export interface ResolveRedisTargetOptions {
  env?: Record<string, string | undefined>;
  /** Default: {@link isDockerAvailable}. */
  dockerAvailable?: () => Promise<boolean>;
  /** Default `redis://127.0.0.1:6379`. */
  localUrl?: string;
  /** Default 500 ms. */
  localPingTimeoutMs?: number;
}

const LOCAL_URL = 'redis://127.0.0.1:6379';
const DOCKER_PING_TIMEOUT_MS = 300;
const TESTCONTAINERS_PROBE_TIMEOUT_MS = 3_000;
const READY_TIMEOUT_MS = 10_000;

/**
 * Picks a Redis in the harness order (see module docs) without memoizing. `getRedisUrl` is the
 * memoized entry point; this is exported for the harness's own tests.
 */
export async function resolveRedisTarget(
  options: ResolveRedisTargetOptions = {},
): Promise<RedisTarget> {
  const env = options.env ?? process.env;
  const fromEnv = env.REDIS_URL;
  if (fromEnv !== undefined && fromEnv !== '') {
    return { url: fromEnv, source: 'env', detail: `REDIS_URL (${redactUrl(fromEnv)})` };
  }

  const dockerAvailable = options.dockerAvailable ?? (() => isDockerAvailable(env));
  if (await dockerAvailable()) {
    try {
      return await startRedisContainer();
    } catch (err) {
      // A Docker that answers but cannot run redis:7 (offline pull, no permission) should not
      // sink the whole suite when a local Redis is right there.
      process.stderr.write(`redis harness: testcontainers failed, falling back: ${String(err)}\n`);
    }
  }

  const localUrl = options.localUrl ?? LOCAL_URL;
  const local = new URL(localUrl);
  if (
    await pingRedis(local.hostname, Number(local.port || 6379), options.localPingTimeoutMs ?? 500)
  ) {
    return { url: localUrl, source: 'local', detail: `local Redis at ${local.host}` };
  }

  const server = await spawnRedisServer();
  return {
    url: server.url,
    source: 'spawned',
    detail: `spawned redis-server on port ${server.port}`,
    stop: () => server.close(),
  };
}

async function startRedisContainer(): Promise<RedisTarget> {
  const { RedisContainer } = await import('@testcontainers/redis');
  const container = await new RedisContainer('redis:7')
    .withCommand([
      'redis-server',
      '--save',
      '',
      '--appendonly',
      'no',
      '--maxmemory-policy',
      'noeviction',
    ])
    .start();
  return {
    url: container.getConnectionUrl(),
    source: 'testcontainers',
    detail: `testcontainers redis:7 on port ${container.getPort()}`,
    stop: async () => {
      await container.stop();
    },
  };
}

const HARNESS_KEY = Symbol.for('sayswitch-billing.test.redis-target');
type HarnessGlobal = typeof globalThis & { [HARNESS_KEY]?: Promise<RedisTarget> };

/**
 * The harness Redis for this process, chosen once (memoized on `globalThis`, so it survives
 * vitest re-evaluating modules per file). A container or spawned server lives until exit:
 * testcontainers' reaper removes the container, the spawner kills the server.
 */
export function getRedisTarget(): Promise<RedisTarget> {
  const g = globalThis as HarnessGlobal;
  let target = g[HARNESS_KEY];
  if (!target) {
    target = resolveRedisTarget();
    g[HARNESS_KEY] = target;
    // A failed choice is not cached: the next caller tries again.
    target.catch(() => {
      if (g[HARNESS_KEY] === target) delete g[HARNESS_KEY];
    });
  }
  return target;
}

/** URL of the harness Redis (see {@link getRedisTarget}). */
export async function getRedisUrl(): Promise<string> {
  return (await getRedisTarget()).url;
}

const issuedPrefixes = new Set<string>();

/**
 * A key prefix no other test in any process uses: `t<pid>_<label>_<12 hex>`. It contains no `:`,
 * so it is valid as a BullMQ `prefix` and in job ids, and the random tail has a fixed length, so
 * no issued prefix is a prefix of another (which keeps {@link cleanupPrefix} from overreaching).
 * `label` is reduced to `[a-z0-9-]`, at most 24 characters.
 */
export function uniquePrefix(label?: string): string {
  const cleanLabel = (label ?? '')
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 24);
  for (;;) {
    const prefix = `t${process.pid}${cleanLabel ? `_${cleanLabel}` : ''}_${randomBytes(6).toString('hex')}`;
    if (!issuedPrefixes.has(prefix)) {
      issuedPrefixes.add(prefix);
      return prefix;
    }
  }
}

/**
 * An ioredis client on the harness Redis with `maxRetriesPerRequest: null` (what BullMQ
 * requires of connections it is given), registered with the leak check and connected.
 */
export async function createTestRedis(
  options: RedisOptions = {},
  label = 'createTestRedis()',
): Promise<Redis> {
  const client = track(
    new Redis(await getRedisUrl(), { maxRetriesPerRequest: null, ...options }),
    label,
  );
  if (options.lazyConnect !== true) await waitUntilReady(client, READY_TIMEOUT_MS);
  return client;
}

/** Resolves when `client` is ready; rejects (and disconnects it) after `timeoutMs`. */
export async function waitUntilReady(client: Redis, timeoutMs: number): Promise<void> {
  if (client.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off('ready', onReady);
      client.disconnect();
      reject(new Error(`Redis not ready after ${timeoutMs} ms (status ${client.status})`));
    }, timeoutMs);
    function onReady(): void {
      clearTimeout(timer);
      resolve();
    }
    client.once('ready', onReady);
  });
}

/**
 * Deletes every key starting with `prefix` (SCAN + UNLINK, in batches) and returns how many.
 * Only ever that prefix: refuses an empty one, and escapes glob characters in it.
 */
export async function cleanupPrefix(redis: Redis, prefix: string): Promise<number> {
  if (prefix.length < 3) throw new Error(`cleanupPrefix refuses the prefix "${prefix}"`);
  const match = `${prefix.replace(/[\\*?[\]^-]/g, '\\$&')}*`;
  let cursor = '0';
  let deleted = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', match, 'COUNT', 1000);
    cursor = next;
    // SCAN may return a key twice across iterations; UNLINK counts only what it removed.
    if (keys.length > 0) deleted += await redis.unlink(...keys);
  } while (cursor !== '0');
  return deleted;
}

/** Answers whether a Redis at host:port replies PONG within `timeoutMs`; never throws. */
export function pingRedis(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    let reply = '';
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString('utf8');
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
  });
}

/**
 * Whether a Docker engine answers, in well under a second when there is none: `GET /_ping` on
 * every Unix socket testcontainers would look at, in parallel, with a 300 ms timeout. Only when
 * Docker is configured some other way (a tcp `DOCKER_HOST`, `~/.testcontainers.properties`,
 * `TESTCONTAINERS_HOST_OVERRIDE`) is testcontainers' own probe loaded, bounded to 3 s.
 */
export async function isDockerAvailable(
  env: Record<string, string | undefined> = process.env,
): Promise<boolean> {
  const dockerHost = env.DOCKER_HOST;
  const sockets = new Set<string>();
  if (dockerHost?.startsWith('unix://')) sockets.add(dockerHost.slice('unix://'.length));
  if (dockerHost === undefined || dockerHost === '') {
    sockets.add('/var/run/docker.sock');
    if (env.XDG_RUNTIME_DIR) sockets.add(join(env.XDG_RUNTIME_DIR, 'docker.sock'));
    sockets.add(join(homedir(), '.docker', 'run', 'docker.sock'));
    sockets.add(join(homedir(), '.docker', 'desktop', 'docker.sock'));
    sockets.add(join('/run', 'user', String(userInfo().uid), 'docker.sock'));
  }
  const existing = [...sockets].filter((s) => existsSync(s));
  const answers = await Promise.all(
    existing.map((s) => pingDockerSocket(s, DOCKER_PING_TIMEOUT_MS)),
  );
  if (answers.some(Boolean)) return true;

  const configuredElsewhere =
    (dockerHost !== undefined && dockerHost !== '' && !dockerHost.startsWith('unix://')) ||
    env.TESTCONTAINERS_HOST_OVERRIDE !== undefined ||
    existsSync(join(homedir(), '.testcontainers.properties'));
  if (!configuredElsewhere) return false;
  try {
    const { getContainerRuntimeClient } = await import('testcontainers');
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), TESTCONTAINERS_PROBE_TIMEOUT_MS);
    });
    const probe = getContainerRuntimeClient().then(
      () => true,
      () => false,
    );
    return await Promise.race([probe, timeout]).finally(() => clearTimeout(timer));
  } catch {
    return false;
  }
}

function pingDockerSocket(socketPath: string, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(
      { socketPath, path: '/_ping', method: 'GET', timeout: timeoutMs },
      (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      },
    );
    req.once('timeout', () => {
      req.destroy();
      resolve(false);
    });
    req.once('error', () => resolve(false));
    req.end();
  });
}

function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return 'unparseable URL';
  }
}
