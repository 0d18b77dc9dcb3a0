/**
 * The HTTP side of the adapter: keep-alive agents with the TLS 1.2 floor, one request with the
 * bearer key, optional payload encryption and request signature, the response body decoded
 * (decrypted first when encryption is on), classified by error-mapping/ and parsed with the
 * endpoint's schema. Callers get an understood answer or a `BillingError`; never a raw axios error.
 * axios is the client interface; the HTTP under it is an undici Pool by default (undici-adapter.ts),
 * axios's own http adapter on request (`httpAdapter`).
 */
import http from 'node:http';
import https from 'node:https';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import axios, { type AxiosAdapter, type AxiosInstance, type AxiosResponse } from 'axios';
import type { z } from 'zod';
import type { BillingError } from '../../../kernel/errors.ts';
import type { Logger } from '../../logger.ts';
import { decryptJson, encryptJson, signRequest, type PayloadCryptoConfig } from './crypto.ts';
import type { CallContext, Operation } from './error-mapping/call-context.ts';
import {
  classifyResponse,
  unexpectedBodyError,
  type DecodedBody,
} from './error-mapping/response-errors.ts';
import { mapTransportError } from './error-mapping/transport-errors.ts';
import { createUndiciAdapter, type UndiciAdapter } from './undici-adapter.ts';

/** How to reach Sayswitch and what goes with every request. */
export interface TransportOptions {
  baseUrl: string;
  secretKey: string;
  /** Whole-request deadline; past it the outcome of a submission is unknown. */
  timeoutMs: number;
  /** Payload encryption, when the merchant has it switched on. */
  encryption?: PayloadCryptoConfig;
  /**
   * Send the unverified `Encryption` request-signature header (docs/sayswitch-wire.md "Request
   * signature header"). Off by default.
   */
  signRequests?: boolean;
  logger?: Logger;
  /** Extra TLS options (tests pass a CA). `minVersion` is never lowered below TLS 1.2. */
  httpsAgentOptions?: https.AgentOptions;
  /** Connections to the gateway at most (per process); {@link DEFAULT_MAX_SOCKETS} when omitted. */
  maxSockets?: number;
  /**
   * The HTTP engine under axios: `undici` (the default, an undici Pool), `http` (axios's Node http
   * adapter, what ran before) or `fetch` (axios's fetch adapter on Node's global fetch; it ignores
   * `httpsAgentOptions` and `maxSockets`, so it is for the benchmark's comparison only).
   */
  httpAdapter?: HttpAdapterName;
}

export type HttpAdapterName = 'undici' | 'http' | 'fetch';

/** Connections per process to the gateway when `maxSockets` is not given. */
export const DEFAULT_MAX_SOCKETS = 64;

/** One call as the capability modules describe it. */
interface CallSpec<S extends z.ZodType> {
  method: 'GET' | 'POST';
  /** The path template, used in logs and error messages. */
  template: string;
  /** The filled path. */
  path: string;
  operation: Operation;
  reference?: string;
  payload?: Record<string, unknown>;
  schema: S;
}

/** An understood answer; every other response has been thrown as a `BillingError`. */
type CallResult<T> =
  | { type: 'ok'; data: T }
  | { type: 'not_found' }
  | { type: 'duplicate' }
  | { type: 'declined'; message: string | undefined };

/**
 * The ciphertext of an encrypted body, `{ "data": "<ciphertext>" }` exactly (an object with that
 * one key, a string): what `encryptedEnvelopeSchema` (schemas.ts) accepts, checked without zod on
 * the path every gateway answer takes (test/unit/sayswitch-envelope.test.ts compares the two).
 */
export function envelopeCiphertext(json: unknown): string | undefined {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) return undefined;
  const data = (json as { data?: unknown }).data;
  if (typeof data !== 'string' || !Object.hasOwn(json, 'data')) return undefined;
  for (const k in json) if (k !== 'data') return undefined;
  return data;
}

/** Marks each socket it creates once TCP is connected (the request can only be written after). */
class ReadyTrackingHttpAgent extends http.Agent {
  constructor(
    private readonly ready: WeakSet<object>,
    options: http.AgentOptions,
  ) {
    super(options);
  }
  override createConnection(
    options: http.ClientRequestArgs,
    callback?: (err: Error | null, stream: Duplex) => void,
  ): Duplex | null | undefined {
    const socket = super.createConnection(options, callback);
    socket?.once('connect', () => this.ready.add(socket));
    return socket;
  }
}

/** Marks each socket it creates once the TLS handshake is done (the request waits for it). */
class ReadyTrackingHttpsAgent extends https.Agent {
  constructor(
    private readonly ready: WeakSet<object>,
    options: https.AgentOptions,
  ) {
    super(options);
  }
  override createConnection(
    options: https.RequestOptions,
    callback?: (err: Error | null, stream: Duplex) => void,
  ): Duplex | null | undefined {
    const socket = super.createConnection(options, callback);
    socket?.once('secureConnect', () => this.ready.add(socket));
    return socket;
  }
}

/** Requests to Sayswitch over keep-alive sockets; one instance per gateway. */
export class SayswitchTransport {
  private readonly http: AxiosInstance;
  private readonly httpAgent: http.Agent | undefined;
  private readonly httpsAgent: https.Agent | undefined;
  private readonly undici: UndiciAdapter | undefined;
  private readonly secretKey: string;
  private readonly encryption: PayloadCryptoConfig | undefined;
  private readonly signRequests: boolean;
  private readonly logger: Logger | undefined;
  private readonly timeoutMs: number;
  /** Sockets that finished connecting (TCP, and the TLS handshake for https). */
  private readonly readySockets = new WeakSet<object>();

  constructor(opts: TransportOptions) {
    this.timeoutMs = opts.timeoutMs;
    this.secretKey = opts.secretKey;
    this.encryption = opts.encryption;
    this.signRequests = opts.signRequests ?? false;
    this.logger = opts.logger;
    const maxSockets = opts.maxSockets ?? DEFAULT_MAX_SOCKETS;
    const requested = opts.httpsAgentOptions?.minVersion;
    // docs/sayswitch-wire.md "Transport": outbound gateway calls need TLS 1.2 or newer; a caller
    // may raise the floor, never lower it.
    const tls = {
      ...opts.httpsAgentOptions,
      minVersion: requested === 'TLSv1.3' ? ('TLSv1.3' as const) : ('TLSv1.2' as const),
    };
    const adapterName = opts.httpAdapter ?? 'undici';
    let adapter: AxiosAdapter | 'fetch' | 'http' = adapterName === 'fetch' ? 'fetch' : 'http';
    if (adapterName === 'undici') {
      this.undici = createUndiciAdapter({
        baseUrl: opts.baseUrl,
        timeoutMs: opts.timeoutMs,
        connections: maxSockets,
        tls,
      });
      adapter = this.undici.adapter;
    } else if (adapterName === 'http') {
      this.httpAgent = new ReadyTrackingHttpAgent(this.readySockets, {
        keepAlive: true,
        maxSockets,
      });
      this.httpsAgent = new ReadyTrackingHttpsAgent(this.readySockets, {
        ...tls,
        keepAlive: true,
        maxSockets,
      });
    }
    this.http = axios.create({
      baseURL: opts.baseUrl,
      timeout: opts.timeoutMs,
      adapter,
      ...(this.httpAgent ? { httpAgent: this.httpAgent, httpsAgent: this.httpsAgent } : {}),
      // Statuses are mapped in error-mapping/, never by axios throwing.
      validateStatus: () => true,
      // A redirected POST could be replayed somewhere else; a redirect is a configuration error.
      maxRedirects: 0,
      // Bodies are decoded here (decrypting first when encryption is on).
      responseType: 'text',
      transformResponse: [(data: unknown) => data],
      // Bodies go out as the JSON string call() built. axios's default transform would JSON.parse
      // that string again to check it (and trim it) on every request: a cost per payment for
      // nothing (issue 18's profile).
      transformRequest: [(data: unknown) => data],
      // An environment proxy must not silently sit between us and the money.
      proxy: false,
      transitional: { clarifyTimeoutError: true },
    });
    // What every request carries, set once: axios would otherwise merge its default header groups
    // (common and one per method) with ours on every request (issue 18's profile).
    this.http.defaults.headers = {
      Authorization: `Bearer ${this.secretKey}`,
      'Content-Type': 'application/json',
      Accept: 'application/json',
    } as unknown as AxiosInstance['defaults']['headers'];
  }

  /** Closes the keep-alive sockets. Call on shutdown; the instance is unusable afterwards. */
  close(): void {
    this.httpAgent?.destroy();
    this.httpsAgent?.destroy();
    void this.undici?.close();
  }

  /**
   * Sends one request and returns the understood answer.
   * @throws BillingError for every transport failure and every response error-mapping/ does not
   * classify as an answer, and (outcome_unknown) for a 2xx body that does not fit `spec.schema`.
   */
  async call<S extends z.ZodType>(spec: CallSpec<S>): Promise<CallResult<z.output<S>>> {
    const ctx: CallContext = {
      endpoint: `${spec.method} ${spec.template}`,
      operation: spec.operation,
      ...(spec.reference !== undefined ? { reference: spec.reference } : {}),
    };
    // The constant headers are the instance's defaults (constructor); only a signature is per call.
    let headers: Record<string, string> | undefined;
    let data: string | undefined;
    if (spec.payload !== undefined) {
      if (this.signRequests) headers = { Encryption: signRequest(spec.payload, this.secretKey) };
      data = JSON.stringify(
        this.encryption ? { data: encryptJson(spec.payload, this.encryption) } : spec.payload,
      );
    }
    const started = performance.now();
    let response: AxiosResponse<unknown>;
    try {
      response = await this.http.request<unknown>({
        method: spec.method,
        url: spec.path,
        data,
        ...(headers ? { headers } : {}),
        // The undici adapter bounds the whole call by `timeout` itself (one timer, cleared with
        // the answer); axios's own adapters read `timeout` as a socket-idle timer, so they get a
        // signal that bounds the whole call.
        ...(this.undici ? {} : { signal: AbortSignal.timeout(this.timeoutMs) }),
      });
    } catch (err) {
      const error = mapTransportError(err, ctx, { transportReady: this.transportReady(err) });
      this.logCall(ctx, undefined, started, error);
      throw error;
    }
    const decoded = this.decode(response.data);
    const cls = classifyResponse(response.status, response.headers, decoded, ctx);
    if (cls.type === 'error') {
      this.logCall(ctx, response.status, started, cls.error);
      throw cls.error;
    }
    if (cls.type !== 'ok') {
      this.logCall(ctx, response.status, started, undefined, cls.type);
      return cls;
    }
    const parsed = spec.schema.safeParse(cls.body);
    if (!parsed.success) {
      const error = unexpectedBodyError(response.status, ctx);
      this.logCall(ctx, response.status, started, error);
      throw error;
    }
    this.logCall(ctx, response.status, started, undefined, 'ok');
    return { type: 'ok', data: parsed.data };
  }

  /**
   * Whether the failed request's socket ever finished connecting. Request bytes are written only
   * after that point, so `false` proves nothing was sent (a timeout or reset during the TLS
   * handshake is then retryable, not outcome_unknown). Undefined when it cannot be told.
   */
  private transportReady(err: unknown): boolean | undefined {
    if (err === null || typeof err !== 'object') return undefined;
    if (this.undici) {
      const config = (err as { config?: unknown }).config;
      return config === undefined ? undefined : this.undici.requestStarted(config);
    }
    const req = (err as { request?: unknown }).request;
    if (!(req instanceof http.ClientRequest)) return undefined;
    const socket = req.socket;
    if (!socket) return false;
    return this.readySockets.has(socket);
  }

  /** Decodes a raw body: JSON, decrypted when it is the encrypted `{ data }` form. */
  private decode(raw: unknown): DecodedBody {
    if (typeof raw !== 'string' || raw.trim() === '') return { ok: false, reason: 'empty' };
    let json: unknown;
    try {
      json = JSON.parse(raw) as unknown;
    } catch {
      return { ok: false, reason: 'unparsable' };
    }
    if (this.encryption === undefined) return { ok: true, body: json };
    // Only the exact `{ data: "<ciphertext>" }` form is decrypted; a plaintext envelope (an error
    // page the gateway did not encrypt) is read as it is.
    const ciphertext = envelopeCiphertext(json);
    if (ciphertext === undefined) return { ok: true, body: json };
    try {
      return { ok: true, body: decryptJson(ciphertext, this.encryption) };
    } catch {
      return { ok: false, reason: 'undecryptable' };
    }
  }

  /** One debug line per call: endpoint, reference, status, duration. Never a body, key or card. */
  private logCall(
    ctx: CallContext,
    httpStatus: number | undefined,
    started: number,
    error: BillingError | undefined,
    result?: string,
  ): void {
    this.logger?.debug(
      {
        endpoint: ctx.endpoint,
        reference: ctx.reference,
        httpStatus,
        durationMs: Math.round(performance.now() - started),
        ...(error ? { errorKind: error.kind, errorCode: error.code } : { result }),
      },
      'sayswitch call',
    );
  }
}
