/**
 * Outbound webhooks: signed like Sayswitch's (`payloadSignature` = hex HMAC-SHA512 of the raw
 * body with the secret key), optionally duplicated and shuffled, retried with backoff while the
 * receiver is down. Events raised within a short window form one batch; duplicates and the
 * shuffle apply within a batch.
 */
import http from 'node:http';
import https from 'node:https';
import type { Logger } from '../infra/logger.ts';
import { mulberry32, shuffleInPlace } from './prng.ts';
import type { TimerRegistry } from './timers.ts';

/** Delivery attempts per webhook copy before giving up (the receiver may be restarting). */
export const MAX_DELIVERY_ATTEMPTS = 5;
/** First retry delay; doubles on each attempt (200, 400, 800, 1600 ms). */
export const RETRY_BASE_MS = 200;
const REQUEST_TIMEOUT_MS = 5000;
/** Parallel deliveries when order does not matter; with shuffle on, one at a time keeps the seeded order visible. */
const CONCURRENCY = 8;

export interface WebhookDispatcherOptions {
  url: string;
  secretKey: string;
  duplicates: number;
  shuffle: boolean;
  /** Batch window when shuffling: long enough for a burst of events to be reordered together. */
  shuffleWindowMs: number;
  seed: number;
  timers: TimerRegistry;
  logger: Logger;
  sign: (rawBody: string, secretKey: string) => string;
}

interface Delivery {
  reference: string;
  rawBody: string;
  signature: string;
  attempt: number;
}

export class WebhookDispatcher {
  private window: { reference: string; payload: unknown }[] = [];
  private flushScheduled = false;
  private readonly outbox: Delivery[] = [];
  private inFlight = 0;
  private closed = false;
  private readonly random: () => number;
  private readonly agent: http.Agent;
  private readonly target: URL;
  private readonly requests = new Set<http.ClientRequest>();

  constructor(private readonly opts: WebhookDispatcherOptions) {
    this.target = new URL(opts.url);
    // A distinct stream from fault injection so turning shuffle on does not change which
    // submissions fault.
    this.random = mulberry32(opts.seed ^ 0x5eed5eed);
    const agentOpts = { keepAlive: true, maxSockets: CONCURRENCY };
    this.agent =
      this.target.protocol === 'https:' ? new https.Agent(agentOpts) : new http.Agent(agentOpts);
  }

  /** Queues one event for delivery; `payload` is serialized once and signed over those bytes. */
  enqueue(reference: string, payload: unknown): void {
    if (this.closed) return;
    this.window.push({ reference, payload });
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    this.opts.timers.after(this.opts.shuffle ? this.opts.shuffleWindowMs : 0, () => this.flush());
  }

  /** Stops all deliveries now: queued ones are dropped, in-flight requests are aborted. */
  close(): void {
    this.closed = true;
    this.window = [];
    this.outbox.length = 0;
    for (const req of this.requests) req.destroy();
    this.requests.clear();
    this.agent.destroy();
  }

  private flush(): void {
    this.flushScheduled = false;
    const batch: Delivery[] = [];
    for (const { reference, payload } of this.window) {
      const rawBody = JSON.stringify(payload);
      const signature = this.opts.sign(rawBody, this.opts.secretKey);
      for (let i = 0; i < this.opts.duplicates; i++) {
        batch.push({ reference, rawBody, signature, attempt: 1 });
      }
    }
    this.window = [];
    if (this.opts.shuffle) {
      // Sorted first so the seeded order depends only on which events are in the batch, not on
      // how concurrent requests happened to interleave (sort is stable: copies stay together).
      batch.sort((a, b) => (a.reference < b.reference ? -1 : a.reference > b.reference ? 1 : 0));
      shuffleInPlace(batch, this.random);
    }
    for (const d of batch) this.outbox.push(d);
    this.pump();
  }

  private pump(): void {
    const limit = this.opts.shuffle ? 1 : CONCURRENCY;
    while (!this.closed && this.inFlight < limit && this.outbox.length > 0) {
      const d = this.outbox.shift() as Delivery;
      this.inFlight++;
      void this.deliver(d).finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
  }

  private async deliver(d: Delivery): Promise<void> {
    let failure: string;
    try {
      const status = await this.post(d);
      if (status >= 200 && status < 300) return;
      failure = `HTTP ${status}`;
    } catch (err) {
      failure = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    }
    if (this.closed) return;
    if (d.attempt >= MAX_DELIVERY_ATTEMPTS) {
      this.opts.logger.warn(
        { reference: d.reference, attempts: d.attempt, failure },
        'sandbox webhook delivery abandoned',
      );
      return;
    }
    const delayMs = RETRY_BASE_MS * 2 ** (d.attempt - 1);
    this.opts.timers.after(delayMs, () => {
      this.outbox.push({ ...d, attempt: d.attempt + 1 });
      this.pump();
    });
  }

  private post(d: Delivery): Promise<number> {
    const transport = this.target.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const req = transport.request(
        this.target,
        {
          method: 'POST',
          agent: this.agent,
          timeout: REQUEST_TIMEOUT_MS,
          headers: {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(d.rawBody),
            payloadSignature: d.signature,
          },
        },
        (res) => {
          // Drain the body so the keep-alive socket is reused.
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
          res.on('error', reject);
        },
      );
      this.requests.add(req);
      req.on('close', () => this.requests.delete(req));
      req.on('timeout', () => req.destroy(new Error('webhook receiver timed out')));
      req.on('error', reject);
      req.end(d.rawBody);
    });
  }
}
