/**
 * Sandbox fixture: a real sandbox on port 0 with test-friendly timings, a small HTTP caller that
 * speaks the wire contract (Bearer key, optional payload encryption), and a webhook receiver.
 * Every helper returns something the caller must close in afterEach/afterAll.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  decryptJson,
  encryptJson,
  type PayloadCryptoConfig,
} from '../../src/infra/gateway/sayswitch/crypto.ts';
import { startSandbox, type Sandbox, type SandboxOptionsInput } from '../../src/sandbox/index.ts';
import { DEFAULT_UNTIL_TIMEOUT_MS } from './poll.ts';

export const TEST_SECRET_KEY = 'sk_test_sandbox';
/** Exactly 32 and 16 ASCII characters, so no PHP-style padding warning. */
export const TEST_ENCRYPTION = {
  key: 'sandbox-test-key-0123456789abcde',
  iv: 'sandbox-test-iv!',
  encoding: 'hex',
} as const;

/**
 * Starts a sandbox on a free port. Settlement is fast (50 ms) so 52/53/58 finish within a test;
 * everything else keeps the production defaults unless overridden. Close it in afterEach/afterAll.
 */
export function startTestSandbox(overrides: SandboxOptionsInput = {}): Promise<Sandbox> {
  return startSandbox({ port: 0, settleMs: 50, ...overrides });
}

export interface CallOptions {
  method?: 'GET' | 'POST';
  body?: unknown;
  /** The Bearer key; `null` sends no Authorization header. */
  secretKey?: string | null;
  /** Encrypt the request and decrypt the response, as the adapter does. */
  encryption?: PayloadCryptoConfig;
  signal?: AbortSignal;
}

/** Test assertions read response and webhook bodies loosely; the schemas are the adapter's job. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type LooseJson = any;

export interface CallResult {
  status: number;
  headers: Headers;
  /** The (decrypted) JSON body. */
  body: LooseJson;
  /** The body exactly as it came over the wire. */
  raw: string;
}

/** Calls a sandbox endpoint with node fetch. */
export async function callSandbox(
  sandbox: Pick<Sandbox, 'url'>,
  path: string,
  opts: CallOptions = {},
): Promise<CallResult> {
  const method = opts.method ?? (opts.body === undefined ? 'GET' : 'POST');
  const key = opts.secretKey === undefined ? TEST_SECRET_KEY : opts.secretKey;
  const headers: Record<string, string> = {};
  if (key !== null) headers.authorization = `Bearer ${key}`;
  let body: string | undefined;
  if (opts.body !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(
      opts.encryption ? { data: encryptJson(opts.body, opts.encryption) } : opts.body,
    );
  }
  const res = await fetch(`${sandbox.url}${path}`, {
    method,
    headers,
    body,
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  const raw = await res.text();
  let parsed: LooseJson = raw === '' ? undefined : JSON.parse(raw);
  if (opts.encryption && !path.startsWith('/__sandbox')) {
    parsed = decryptJson((parsed as { data: string }).data, opts.encryption);
  }
  return { status: res.status, headers: res.headers, body: parsed, raw };
}

/** A valid charge request body; `amount` is a major-unit string such as `"1500.52"`. */
export function chargeBody(reference: string, amount: string, currency = 'NGN') {
  return { amount, card: 'tok_opaque_card', currency, email: 'payer@example.com', reference };
}

/** A valid payout request body. */
export function payoutBody(reference: string, amount: string, currency = 'NGN') {
  return {
    account_name: 'Ada Obi',
    account_number: '0123456789',
    amount,
    bank_code: '000013',
    bank_name: 'Guaranty Trust Bank',
    currency,
    narration: 'sandbox test',
    reference,
    ...(currency === 'NGN' ? {} : { paymentMode: 'momo' }),
  };
}

export interface ReceivedWebhook {
  rawBody: string;
  signature: string | undefined;
  json: LooseJson;
}

export interface WebhookReceiver {
  url: string;
  received: ReceivedWebhook[];
  /** Every POST that reached the receiver, including the ones it refused. */
  attempts: number;
  /** HTTP status the receiver answers with (200 by default); set 503 to simulate a failing receiver. */
  status: number;
  /** Resolves once `count` webhooks arrived; rejects after `timeoutMs` (default as `until`'s). */
  waitFor(count: number, timeoutMs?: number): Promise<ReceivedWebhook[]>;
  close(): Promise<void>;
}

/** A tiny HTTP server on port 0 that records every POST (raw body and `payloadSignature`). */
export async function startWebhookReceiver(port = 0): Promise<WebhookReceiver> {
  const received: ReceivedWebhook[] = [];
  const waiters = new Set<() => void>();
  const receiver: WebhookReceiver = {
    url: '',
    received,
    attempts: 0,
    status: 200,
    waitFor(count, timeoutMs = DEFAULT_UNTIL_TIMEOUT_MS) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (received.length < count) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve(received);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(
            new Error(`expected ${count} webhooks within ${timeoutMs} ms, got ${received.length}`),
          );
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      receiver.attempts++;
      res.statusCode = receiver.status;
      res.end();
      if (receiver.status >= 300) return;
      const rawBody = Buffer.concat(chunks).toString('utf8');
      const header = req.headers.payloadsignature;
      received.push({
        rawBody,
        signature: Array.isArray(header) ? header[0] : header,
        json: JSON.parse(rawBody),
      });
      for (const w of [...waiters]) w();
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhooks/sayswitch`;
  return receiver;
}
