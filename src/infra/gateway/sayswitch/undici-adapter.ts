/**
 * An axios adapter on an undici `Pool`: axios stays the client interface (config, headers, the
 * AxiosResponse the transport reads, the errors the error mapping reads), undici does the HTTP.
 * The throughput profile had axios's http adapter (Node's `http` module, a request object, a
 * response stream, follow-redirects) as the largest single cost of a payment; undici's parser and
 * a handler that only collects the body chunks cost a fraction of it (docs/operations.md
 * "Performance").
 *
 * Keep-alive, no HTTP pipelining (one request at a time per connection: a gateway that answers out
 * of order or closes mid-pipeline must never make one payment's answer look like another's), and
 * a bounded number of connections per origin.
 *
 * Whether a request may have left: undici writes a request only on a connected socket (TCP, and
 * the TLS handshake for https), right after it calls the handler's `onRequestStart`. The adapter
 * records that per request config, so `requestStarted(config)` tells the error mapping whether a
 * failure is provably before sending (see transport-errors.ts `transportReady`).
 */
import type { ConnectionOptions } from 'node:tls';
import axios, {
  AxiosError,
  CanceledError,
  AxiosHeaders,
  type AxiosAdapter,
  type AxiosResponse,
  type InternalAxiosRequestConfig,
} from 'axios';
import { Pool, type Dispatcher } from 'undici';

export interface UndiciAdapterOptions {
  baseUrl: string;
  /** Headers and body timeouts (undici's idle timers) and the connect timeout. */
  timeoutMs: number;
  /** Connections to the origin at most; requests past it wait in the pool's queue. */
  connections: number;
  /** TLS options for https origins (CA, TLS floor). */
  tls?: ConnectionOptions;
}

export interface UndiciAdapter {
  adapter: AxiosAdapter;
  /** Whether the request of this config reached a connected socket (may have been written). */
  requestStarted(config: unknown): boolean;
  close(): Promise<void>;
}

const USER_AGENT = `axios/${axios.VERSION}`;

/** The request headers axios assembled, as plain strings. */
function plainHeaders(config: InternalAxiosRequestConfig): Record<string, string> {
  const out: Record<string, string> = { 'user-agent': USER_AGENT };
  const all = AxiosHeaders.from(config.headers).toJSON() as Record<string, unknown>;
  for (const [k, v] of Object.entries(all)) {
    if (typeof v === 'string' || typeof v === 'number') out[k.toLowerCase()] = String(v);
  }
  return out;
}

/** Builds the adapter and its pool; one per transport. */
export function createUndiciAdapter(opts: UndiciAdapterOptions): UndiciAdapter {
  const base = new URL(opts.baseUrl);
  const basePath = base.pathname.replace(/\/+$/, '');
  const pool = new Pool(base.origin, {
    connections: opts.connections,
    pipelining: 1,
    connectTimeout: opts.timeoutMs,
    headersTimeout: opts.timeoutMs,
    bodyTimeout: opts.timeoutMs,
    ...(opts.tls ? { connect: opts.tls } : {}),
  });
  const started = new WeakSet<object>();

  const adapter: AxiosAdapter = (config) =>
    new Promise<AxiosResponse>((resolve, reject) => {
      const signal = config.signal as AbortSignal | undefined;
      let controller: Dispatcher.DispatchController | undefined;
      let settled = false;
      let deadline: NodeJS.Timeout | undefined;
      const settle = () => {
        settled = true;
        if (deadline !== undefined) clearTimeout(deadline);
        signal?.removeEventListener('abort', onAbort);
      };
      // Settles at once; a request still waiting for a connection is aborted when it gets one,
      // before a byte is written.
      const fail = (reason: Error) => {
        if (settled) return;
        settle();
        controller?.abort(reason);
        reject(reason);
      };
      // axios turns a rejection after its signal aborted into its CanceledError (ERR_CANCELED).
      function onAbort(): void {
        const reason: unknown = signal?.reason;
        fail(reason instanceof Error ? reason : new Error('aborted'));
      }
      if (signal?.aborted) {
        onAbort();
        return;
      }
      signal?.addEventListener('abort', onAbort, { once: true });
      // `timeout` bounds the whole call (what axios documents it as), with one plain timer that is
      // cleared when the call settles: the same CanceledError an aborted signal ends in (the error
      // mapping reads ERR_CANCELED as our deadline), without an AbortSignal.timeout per request,
      // whose signal and timer live on for the whole timeout after the answer (issue 18's profile).
      if (typeof config.timeout === 'number' && config.timeout > 0) {
        deadline = setTimeout(() => fail(new CanceledError(undefined, config)), config.timeout);
      }

      let status = 0;
      let headers: Record<string, string | string[] | undefined> = {};
      const chunks: Buffer[] = [];
      const url = config.url ?? '';
      const path = /^https?:/i.test(url)
        ? url
        : `${basePath}${url.startsWith('/') ? '' : '/'}${url}`;
      const data: unknown = config.data;
      try {
        pool.dispatch(
          {
            path,
            method: (config.method ?? 'get').toUpperCase(),
            headers: plainHeaders(config),
            body: typeof data === 'string' ? data : null,
          },
          {
            onRequestStart(c) {
              if (settled) {
                c.abort(new Error('aborted'));
                return;
              }
              controller = c;
              started.add(config);
            },
            onResponseStart(_c, statusCode, h) {
              status = statusCode;
              headers = h;
            },
            onResponseData(_c, chunk) {
              chunks.push(chunk);
            },
            onResponseEnd() {
              if (settled) return;
              settle();
              resolve({
                data: (chunks.length === 1 ? chunks[0] : Buffer.concat(chunks))?.toString('utf8'),
                status,
                statusText: '',
                headers: new AxiosHeaders(headers as Record<string, string | string[]>),
                config,
                request: undefined,
              });
            },
            onResponseError(_c, err) {
              if (settled) return;
              settle();
              reject(toAxiosError(err, config));
            },
          },
        );
      } catch (err) {
        settle();
        reject(toAxiosError(err, config));
      }
    });

  return {
    adapter,
    requestStarted: (config) =>
      config !== null && typeof config === 'object' && started.has(config),
    // Like destroying the keep-alive agents: requests still in flight fail.
    close: () => pool.destroy(),
  };
}

/**
 * undici's error as an AxiosError carrying the request config (so the transport can ask whether
 * the request had started) and undici's error as its cause (so the error mapping reads its codes:
 * UND_ERR_* on undici's errors, ECONNRESET and friends on the socket errors undici passes on).
 * Never undici's message: only codes travel (transport-errors.ts).
 */
function toAxiosError(err: unknown, config: InternalAxiosRequestConfig): AxiosError {
  const code =
    err !== null && typeof err === 'object' && typeof (err as { code?: unknown }).code === 'string'
      ? (err as { code: string }).code
      : undefined;
  const wrapped = new AxiosError('gateway transport error', code, config);
  wrapped.cause = err instanceof Error ? err : undefined;
  return wrapped;
}
