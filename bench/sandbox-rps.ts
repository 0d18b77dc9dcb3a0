/**
 * Sandbox throughput: how many charge submissions per second the sandbox answers, plaintext and
 * encrypted, against two baselines measured in the same run: a bare node:http server and a bare
 * fastify route, each parsing the JSON body and answering a fixed JSON. The ratios say what the
 * framework costs and what the sandbox's own logic costs on top of it.
 *
 *   npx tsx bench/sandbox-rps.ts [--requests 20000] [--concurrency 64] [--duration-ms 10000]
 *
 * Each server runs in its own child process so the load generator does not share its event loop.
 * Every request is a fresh reference with an ordinary amount (remainder 00: success).
 */
import { spawn } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import Fastify from 'fastify';
import { encryptJson, type PayloadCryptoConfig } from '../src/infra/gateway/sayswitch/crypto.ts';
import { startSandbox } from '../src/sandbox/index.ts';
import { dieWithThisProcess } from '../test/support/watchdog.ts';

type Mode = 'baseline' | 'fastify' | 'plaintext' | 'encrypted';

const SECRET_KEY = 'sk_test_bench';
const ENCRYPTION: PayloadCryptoConfig = {
  key: 'bench-key-0123456789abcdefghijkl',
  iv: 'bench-iv-0123456',
  encoding: 'hex',
};
const CHARGE_PATH = '/api/s2s/transaction/initialize';
const WARMUP_REQUESTS = 1000;

const { values: args } = parseArgs({
  options: {
    requests: { type: 'string', default: '20000' },
    concurrency: { type: 'string', default: '64' },
    'duration-ms': { type: 'string', default: '10000' },
    serve: { type: 'string' },
  },
});

/** Child mode: start one server, print its URL, run until SIGTERM. */
async function serve(mode: Mode): Promise<void> {
  let url: string;
  let close: () => Promise<void>;
  const fixed = {
    status: true,
    message: 'Charge successful',
    data: { reference: 'x', amount: '1518', status: 'success' },
  };
  if (mode === 'baseline') {
    const body = JSON.stringify(fixed);
    const server = http.createServer((req, res) => {
      let raw = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => (raw += c));
      req.on('end', () => {
        JSON.parse(raw);
        res.writeHead(200, { 'content-type': 'application/json' }).end(body);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    close = () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      });
  } else if (mode === 'fastify') {
    const app = Fastify({ logger: false, forceCloseConnections: true });
    app.post(CHARGE_PATH, (_req, reply) => reply.send(fixed));
    await app.listen({ port: 0, host: '127.0.0.1' });
    url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    close = () => app.close();
  } else {
    const sb = await startSandbox({
      port: 0,
      secretKey: SECRET_KEY,
      ...(mode === 'encrypted' ? { encryption: ENCRYPTION } : {}),
    });
    url = sb.url;
    close = () => sb.close();
  }
  process.stdout.write(`${JSON.stringify({ url })}\n`);
  process.once('SIGTERM', () => {
    void close().then(() => process.exit(0));
  });
}

interface ServerChild {
  url: string;
  stop(): Promise<void>;
}

function startChild(mode: Mode): Promise<ServerChild> {
  const child = spawn(
    process.execPath,
    // tsx resolved here, not by the child, so the bench works from any working directory.
    ['--import', import.meta.resolve('tsx'), fileURLToPath(import.meta.url), '--serve', mode],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  // Killed if this process dies without stopping it.
  dieWithThisProcess(child);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${mode} server did not start`)), 30_000);
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      out += chunk;
      const line = out.split('\n')[0];
      if (!out.includes('\n') || line === undefined) return;
      clearTimeout(timer);
      const { url } = JSON.parse(line) as { url: string };
      resolve({
        url,
        stop: async () => {
          child.kill('SIGTERM');
          await exited;
        },
      });
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${mode} server exited with ${code}`));
    });
  });
}

function post(agent: http.Agent, url: URL, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method: 'POST',
        agent,
        headers: {
          authorization: `Bearer ${SECRET_KEY}`,
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
        },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

function bodies(mode: Mode, prefix: string, n: number): string[] {
  const out: string[] = new Array<string>(n);
  for (let i = 0; i < n; i++) {
    const payload = {
      amount: '1500',
      card: 'tok_bench',
      currency: 'NGN',
      email: 'bench@example.com',
      reference: `${prefix}_${i}`,
    };
    out[i] = JSON.stringify(
      mode === 'encrypted' ? { data: encryptJson(payload, ENCRYPTION) } : payload,
    );
  }
  return out;
}

interface PhaseResult {
  sent: number;
  ok: number;
  seconds: number;
  latenciesMs: number[];
}

async function drive(
  url: URL,
  payloads: string[],
  concurrency: number,
  durationMs: number,
): Promise<PhaseResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const latenciesMs: number[] = [];
  let next = 0;
  let ok = 0;
  const started = performance.now();
  const deadline = started + durationMs;
  const worker = async () => {
    while (next < payloads.length && performance.now() < deadline) {
      const body = payloads[next++] as string;
      const t = performance.now();
      const status = await post(agent, url, body);
      latenciesMs.push(performance.now() - t);
      if (status === 200) ok++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - started) / 1000;
  agent.destroy();
  return { sent: latenciesMs.length, ok, seconds, latenciesMs };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

async function ledgerCount(baseUrl: string): Promise<number> {
  const res = await fetch(`${baseUrl}/__sandbox/ledger`);
  const ledger = (await res.json()) as { references: Record<string, unknown> };
  return Object.keys(ledger.references).length;
}

async function main(): Promise<void> {
  const requests = Number(args.requests);
  const concurrency = Number(args.concurrency);
  const durationMs = Number(args['duration-ms']);
  console.log(
    `sandbox-rps: up to ${requests} charges per mode, concurrency ${concurrency}, ` +
      `at most ${durationMs} ms per mode, keep-alive; server in a child process`,
  );
  const rps: Partial<Record<Mode, number>> = {};
  for (const mode of ['baseline', 'fastify', 'plaintext', 'encrypted'] as const) {
    const child = await startChild(mode);
    try {
      const url = new URL(CHARGE_PATH, child.url);
      await drive(url, bodies(mode, `warm_${mode}`, WARMUP_REQUESTS), concurrency, durationMs);
      const result = await drive(
        url,
        bodies(mode, `bench_${mode}`, requests),
        concurrency,
        durationMs,
      );
      const sorted = result.latenciesMs.sort((a, b) => a - b);
      rps[mode] = result.sent / result.seconds;
      const recorded =
        mode === 'baseline' || mode === 'fastify' ? '' : `, ledger ${await ledgerCount(child.url)}`;
      console.log(
        `${mode.padEnd(9)} ${result.sent} requests (${result.ok} × 200) in ${result.seconds.toFixed(2)} s: ` +
          `${Math.round(rps[mode])} req/s, p50 ${percentile(sorted, 50).toFixed(1)} ms, ` +
          `p99 ${percentile(sorted, 99).toFixed(1)} ms${recorded}`,
      );
    } finally {
      await child.stop();
    }
  }
  const ratio = (a: Mode, b: Mode) => ((rps[a] ?? 0) / (rps[b] ?? 1)).toFixed(2);
  console.log(
    `ratios: plaintext/node:http ${ratio('plaintext', 'baseline')}, ` +
      `plaintext/fastify ${ratio('plaintext', 'fastify')}, ` +
      `encrypted/plaintext ${ratio('encrypted', 'plaintext')}`,
  );
}

if (args.serve !== undefined) {
  await serve(args.serve as Mode);
} else {
  await main();
}
