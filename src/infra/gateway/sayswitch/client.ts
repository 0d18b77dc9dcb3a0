/**
 * The Sayswitch adapter: implements the PaymentGateway port over axios, speaking the wire contract
 * of docs/sayswitch-wire.md. Every status code and transport failure goes through
 * error-mapping.ts; this file only builds requests and reads understood responses.
 */
import http from 'node:http';
import https from 'node:https';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import axios, { type AxiosInstance, type AxiosResponse } from 'axios';
import type { z } from 'zod';
import { formatMajor, type Currency, type PayoutCurrency } from '../../../kernel/money.ts';
import { OutcomeUnknownError, type BillingError } from '../../../kernel/errors.ts';
import type { FailureReason } from '../../../kernel/intent.ts';
import type {
  Bank,
  ChargeRequest,
  GatewayOutcome,
  LookupOutcome,
  PaymentGateway,
  PayoutRequest,
  WalletBalance,
} from '../../../kernel/ports.ts';
import type { Logger } from '../../logger.ts';
import { decryptJson, encryptJson, signRequest, type PayloadCryptoConfig } from './crypto.ts';
import {
  classifyResponse,
  mapTransportError,
  unexpectedBodyError,
  type CallContext,
  type DecodedBody,
  type Operation,
} from './error-mapping.ts';
import {
  accountNameResponseSchema,
  bankListResponseSchema,
  chargeResponseSchema,
  encryptedEnvelopeSchema,
  payoutResponseSchema,
  verifyResponseSchema,
  walletBalanceResponseSchema,
  type ChargeResponse,
  type PayoutData,
  type TransactionData,
} from './schemas.ts';

/** Paths of the endpoints; `{reference}` and `{currency}` are filled in per call. */
export const defaultSayswitchPaths = {
  chargePath: '/api/s2s/transaction/initialize',
  verifyPath: '/api/v1/transaction/verify/{reference}',
  payoutPath: '/api/v1/bank_transfer',
  payoutLookupPath: '/api/v1/payout/{reference}',
  bankListPath: '/api/v1/bank_list',
  bankListByCurrencyPath: '/api/v1/bank_list/{currency}',
  accountNamePath: '/api/v1/account_name_verify',
  walletBalancePath: '/api/v1/wallet_balance/{currency}',
} as const;

export interface SayswitchOptions {
  baseUrl: string;
  secretKey: string;
  /** Whole-request deadline; past it the outcome of a submission is unknown. */
  timeoutMs: number;
  /** Payload encryption, when the merchant has it switched on. */
  encryption?: PayloadCryptoConfig;
  chargePath?: string;
  /** Template with `{reference}`. */
  verifyPath?: string;
  /** Template with `{reference}`. */
  payoutLookupPath?: string;
  /** Send the unverified `Encryption` request-signature header (sayswitch-api.md 1.4). Off by default. */
  signRequests?: boolean;
  logger?: Logger;
  /** Extra TLS options (tests pass a CA). `minVersion` is never lowered below TLS 1.2. */
  httpsAgentOptions?: https.AgentOptions;
  /** Per-origin socket cap of the keep-alive agents; Node's default (unbounded) when omitted. */
  maxSockets?: number;
}

/**
 * Gateway phrases that mean "insufficient funds", matched case-insensitively as substrings of
 * `gateway_response` or `message`. Every other decline reads as `declined`. Sayswitch publishes no
 * decline codes, so this list is the whole of what we distinguish; extend it when a new phrase is
 * seen in production (the raw text is always kept in `message`).
 */
export const INSUFFICIENT_FUNDS_PHRASES: readonly string[] = [
  'insufficient fund',
  'insufficient balance',
  'not sufficient funds',
  'no sufficient funds',
  'insufficient wallet balance',
];

/** Decides the failure reason of a decline from the gateway's own words. */
export function declineReason(...texts: (string | undefined)[]): FailureReason {
  for (const text of texts) {
    if (text === undefined) continue;
    const lower = text.toLowerCase();
    if (INSUFFICIENT_FUNDS_PHRASES.some((p) => lower.includes(p))) return 'insufficient_funds';
  }
  return 'declined';
}

/** A transaction body with a status and no continuation link (3DS / OTP still to come). */
function isSettledTransaction(data: ChargeResponse['data']): data is TransactionData {
  return typeof data === 'object' && typeof data.status === 'string' && data._links === undefined;
}

type NormalisedStatus = 'succeeded' | 'failed' | 'pending' | 'reversed' | 'canceled';

/**
 * Gateway status words. Anything not listed is non-final (`pending`) so that the reconciler keeps
 * asking rather than closing a payment on a word we do not know.
 */
function normaliseStatus(raw: string): NormalisedStatus {
  switch (raw.trim().toLowerCase()) {
    case 'success':
    case 'successful':
    case 'completed':
      return 'succeeded';
    case 'failed':
    case 'declined':
      return 'failed';
    case 'cancelled':
    case 'canceled':
      return 'canceled';
    case 'reversed':
      return 'reversed';
    default:
      return 'pending';
  }
}

function fillTemplate(template: string, values: Record<string, string>): string {
  return template.replace(/\{(\w+)\}/g, (whole, name: string) => {
    const v = values[name];
    return v === undefined ? whole : encodeURIComponent(v);
  });
}

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

type CallResult<T> =
  | { type: 'ok'; data: T }
  | { type: 'not_found' }
  | { type: 'duplicate' }
  | { type: 'declined'; message: string | undefined };

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

/** Sayswitch S2S card charges and payouts behind the PaymentGateway port. */
export class SayswitchGateway implements PaymentGateway {
  private readonly http: AxiosInstance;
  private readonly httpAgent: http.Agent;
  private readonly httpsAgent: https.Agent;
  private readonly paths: Record<keyof typeof defaultSayswitchPaths, string>;
  private readonly secretKey: string;
  private readonly encryption: PayloadCryptoConfig | undefined;
  private readonly signRequests: boolean;
  private readonly logger: Logger | undefined;
  private readonly timeoutMs: number;
  /** Sockets that finished connecting (TCP, and the TLS handshake for https). */
  private readonly readySockets = new WeakSet<object>();

  constructor(opts: SayswitchOptions) {
    this.timeoutMs = opts.timeoutMs;
    this.secretKey = opts.secretKey;
    this.encryption = opts.encryption;
    this.signRequests = opts.signRequests ?? false;
    this.logger = opts.logger;
    this.paths = {
      ...defaultSayswitchPaths,
      chargePath: opts.chargePath ?? defaultSayswitchPaths.chargePath,
      verifyPath: opts.verifyPath ?? defaultSayswitchPaths.verifyPath,
      payoutLookupPath: opts.payoutLookupPath ?? defaultSayswitchPaths.payoutLookupPath,
    };
    const maxSockets = opts.maxSockets ?? Infinity;
    this.httpAgent = new ReadyTrackingHttpAgent(this.readySockets, { keepAlive: true, maxSockets });
    const requested = opts.httpsAgentOptions?.minVersion;
    this.httpsAgent = new ReadyTrackingHttpsAgent(this.readySockets, {
      ...opts.httpsAgentOptions,
      keepAlive: true,
      maxSockets,
      // PRODUCT.md section 10: outbound gateway calls need TLS 1.2 or newer; a caller may raise it.
      minVersion: requested === 'TLSv1.3' ? 'TLSv1.3' : 'TLSv1.2',
    });
    this.http = axios.create({
      baseURL: opts.baseUrl,
      timeout: opts.timeoutMs,
      httpAgent: this.httpAgent,
      httpsAgent: this.httpsAgent,
      // Statuses are mapped in error-mapping.ts, never by axios throwing.
      validateStatus: () => true,
      // A redirected POST could be replayed somewhere else; a redirect is a configuration error.
      maxRedirects: 0,
      // Bodies are decoded here (decrypting first when encryption is on).
      responseType: 'text',
      transformResponse: [(data: unknown) => data],
      // An environment proxy must not silently sit between us and the money.
      proxy: false,
      transitional: { clarifyTimeoutError: true },
    });
  }

  /** Closes the keep-alive sockets. Call on shutdown; the instance is unusable afterwards. */
  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }

  /** Charges an encrypted card token. A decline is a `failed` result; a 409 adopts the existing reference. */
  async chargeCard(req: ChargeRequest): Promise<GatewayOutcome> {
    const payload: Record<string, unknown> = {
      amount: formatMajor(req.amount),
      card: req.cardToken,
      currency: req.currency,
      email: req.email,
      reference: req.reference,
    };
    if (req.narration !== undefined) payload.narration = req.narration;
    const path = this.paths.chargePath;
    return this.submit('charge', req.reference, path, payload, chargeResponseSchema, {
      lookup: () => this.verifyCharge(req.reference),
      ok: (body) => {
        const message = body.message;
        // 3DS2: `data` is an HTML string and `_links` is top level; older OTP flow: `_links` in data.
        const data = body.data;
        if (typeof data === 'string' || body._links !== undefined || !isSettledTransaction(data)) {
          return { reference: req.reference, status: 'pending', ...(message ? { message } : {}) };
        }
        return this.transactionOutcome(req.reference, data, message, path);
      },
    });
  }

  /** Sends a payout. Sayswitch processes payouts asynchronously, so `pending` is the usual answer. */
  async payout(req: PayoutRequest): Promise<GatewayOutcome> {
    const payload: Record<string, unknown> = {
      account_name: req.accountName,
      account_number: req.accountNumber,
      amount: formatMajor(req.amount),
      bank_code: req.bankCode,
      bank_name: req.bankName,
      currency: req.currency,
      narration: req.narration,
      reference: req.reference,
    };
    // Required for KES/GHS; the NGN examples omit it, so NGN bank payouts keep to the examples.
    if (req.currency !== 'NGN' || req.paymentMode !== 'bank') payload.paymentMode = req.paymentMode;
    const path = this.paths.payoutPath;
    return this.submit('payout', req.reference, path, payload, payoutResponseSchema, {
      lookup: () => this.lookupPayout(req.reference),
      ok: (body) => this.payoutOutcome(req.reference, body.data, body.message, path),
    });
  }

  /**
   * Sends a submission and reads what charges and payouts answer alike: a duplicate adopts the
   * existing reference's state (looked up), a decline is a `failed` result; `ok` is the caller's.
   */
  private async submit<S extends z.ZodType>(
    what: 'charge' | 'payout',
    reference: string,
    path: string,
    payload: Record<string, unknown>,
    schema: S,
    read: { lookup: () => Promise<LookupOutcome>; ok: (body: z.output<S>) => GatewayOutcome },
  ): Promise<GatewayOutcome> {
    const result = await this.call({
      method: 'POST',
      template: path,
      path,
      operation: 'submission',
      reference,
      payload,
      schema,
    });
    switch (result.type) {
      case 'duplicate':
        return this.adoptDuplicate(reference, await read.lookup());
      case 'declined':
        return {
          reference,
          status: 'failed',
          reason: declineReason(result.message),
          ...(result.message !== undefined ? { message: result.message } : {}),
        };
      case 'not_found':
        // Not produced for submissions; kept for exhaustiveness.
        throw new OutcomeUnknownError(
          `${what} answered not found; the outcome is unknown`,
          'unexpected_body',
        );
      case 'ok':
        return read.ok(result.data);
    }
  }

  /** Looks a charge up by reference; `not_found` when Sayswitch has never seen it. */
  async verifyCharge(reference: string): Promise<LookupOutcome> {
    const template = this.paths.verifyPath;
    const result = await this.call({
      method: 'GET',
      template,
      path: fillTemplate(template, { reference }),
      operation: 'lookup',
      reference,
      schema: verifyResponseSchema,
    });
    if (result.type === 'not_found') return { status: 'not_found', reference };
    if (result.type !== 'ok') {
      throw new OutcomeUnknownError(`verify ${template} gave no answer`, 'unexpected_body');
    }
    return this.transactionOutcome(reference, result.data.data, result.data.message, template);
  }

  /** Looks a payout up by reference; `not_found` when Sayswitch has never seen it. */
  async lookupPayout(reference: string): Promise<LookupOutcome> {
    const template = this.paths.payoutLookupPath;
    const result = await this.call({
      method: 'GET',
      template,
      path: fillTemplate(template, { reference }),
      operation: 'lookup',
      reference,
      schema: payoutResponseSchema,
    });
    if (result.type === 'not_found') return { status: 'not_found', reference };
    if (result.type !== 'ok') {
      throw new OutcomeUnknownError(`payout lookup ${template} gave no answer`, 'unexpected_body');
    }
    return this.payoutOutcome(reference, result.data.data, result.data.message, template);
  }

  /** Banks (or mobile-money providers) that accept payouts in `currency`. */
  async listBanks(currency: PayoutCurrency): Promise<Bank[]> {
    const template =
      currency === 'NGN' ? this.paths.bankListPath : this.paths.bankListByCurrencyPath;
    const result = await this.call({
      method: 'GET',
      template,
      path: fillTemplate(template, { currency }),
      operation: 'read',
      schema: bankListResponseSchema,
    });
    if (result.type !== 'ok')
      throw new OutcomeUnknownError(`${template} gave no answer`, 'unexpected_body');
    return result.data.data.map((b) => ({ name: b.bankName, code: b.bankCode }));
  }

  /** The account holder's name for a bank account or wallet; fatal when the gateway cannot resolve it. */
  async resolveAccountName(q: {
    bankCode: string;
    accountNumber: string;
    currency: PayoutCurrency;
  }): Promise<string> {
    const template = this.paths.accountNamePath;
    const result = await this.call({
      method: 'POST',
      template,
      path: template,
      operation: 'read',
      payload: { bank_code: q.bankCode, account_number: q.accountNumber, currency: q.currency },
      schema: accountNameResponseSchema,
    });
    if (result.type !== 'ok')
      throw new OutcomeUnknownError(`${template} gave no answer`, 'unexpected_body');
    return result.data.data;
  }

  /** The merchant's wallet in `currency`. */
  async walletBalance(currency: Currency): Promise<WalletBalance> {
    const template = this.paths.walletBalancePath;
    const result = await this.call({
      method: 'GET',
      template,
      path: fillTemplate(template, { currency }),
      operation: 'read',
      schema: walletBalanceResponseSchema,
    });
    if (result.type !== 'ok')
      throw new OutcomeUnknownError(`${template} gave no answer`, 'unexpected_body');
    return { currency, balance: result.data.data.balance, pending: result.data.data.pending };
  }

  private adoptDuplicate(reference: string, found: LookupOutcome): GatewayOutcome {
    if (found.status === 'not_found') {
      throw new OutcomeUnknownError(
        'the gateway refused the reference as a duplicate but cannot find it',
        'duplicate_reference_unresolved',
      );
    }
    this.logger?.info(
      { reference, status: found.status },
      'duplicate reference adopted from lookup',
    );
    return found;
  }

  private checkReference(
    reference: string,
    data: { reference?: string | undefined },
    endpoint: string,
  ): void {
    // An answer about another reference is not an answer about ours.
    if (data.reference !== undefined && data.reference !== reference) {
      throw new OutcomeUnknownError(
        `${endpoint} answered about a different reference`,
        'reference_mismatch',
      );
    }
  }

  private transactionOutcome(
    reference: string,
    data: TransactionData,
    message: string | undefined,
    endpoint: string,
  ): GatewayOutcome {
    this.checkReference(reference, data, endpoint);
    const base = { reference, ...(data.id !== undefined ? { gatewayReference: data.id } : {}) };
    const status = normaliseStatus(data.status);
    const text = data.gateway_response ?? message;
    switch (status) {
      case 'succeeded': {
        const amount = data.requested_amount ?? data.amount;
        return {
          ...base,
          status: 'succeeded',
          ...(amount !== undefined ? { amount } : {}),
          ...(data.fees !== undefined ? { fee: data.fees } : {}),
        };
      }
      case 'failed':
        return {
          ...base,
          status: 'failed',
          reason: declineReason(data.gateway_response, message),
          ...(text !== undefined ? { message: text } : {}),
        };
      case 'canceled':
        return {
          ...base,
          status: 'failed',
          reason: 'canceled',
          ...(text !== undefined ? { message: text } : {}),
        };
      case 'reversed':
      case 'pending':
        // A charge has no reversed state in the domain (payouts only): keep it non-final for a human.
        return { ...base, status: 'pending', ...(text !== undefined ? { message: text } : {}) };
    }
  }

  private payoutOutcome(
    reference: string,
    data: PayoutData,
    message: string | undefined,
    endpoint: string,
  ): GatewayOutcome {
    this.checkReference(reference, data, endpoint);
    const base = { reference, ...(data.id !== undefined ? { gatewayReference: data.id } : {}) };
    const status = normaliseStatus(data.status);
    const text = data.gateway_response ?? message;
    const money = {
      ...(data.amount !== undefined ? { amount: data.amount } : {}),
      ...(data.fee !== undefined ? { fee: data.fee } : {}),
    };
    switch (status) {
      case 'succeeded':
        return { ...base, status: 'succeeded', ...money };
      case 'reversed':
        return { ...base, status: 'reversed', ...money };
      case 'failed':
        return {
          ...base,
          status: 'failed',
          reason: declineReason(data.gateway_response, message),
          ...(text !== undefined ? { message: text } : {}),
        };
      case 'canceled':
        return {
          ...base,
          status: 'failed',
          reason: 'canceled',
          ...(text !== undefined ? { message: text } : {}),
        };
      case 'pending':
        return { ...base, status: 'pending', ...(text !== undefined ? { message: text } : {}) };
    }
  }

  /**
   * Whether the failed request's socket ever finished connecting. Request bytes are written only
   * after that point, so `false` proves nothing was sent (a timeout or reset during the TLS
   * handshake is then retryable, not outcome_unknown). Undefined when it cannot be told.
   */
  private transportReady(err: unknown): boolean | undefined {
    if (err === null || typeof err !== 'object') return undefined;
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
    const envelope = encryptedEnvelopeSchema.safeParse(json);
    // Only the exact `{ data: "<ciphertext>" }` form is decrypted; a plaintext envelope (an error
    // page the gateway did not encrypt) is read as it is.
    if (!envelope.success) return { ok: true, body: json };
    try {
      return { ok: true, body: decryptJson(envelope.data.data, this.encryption) };
    } catch {
      return { ok: false, reason: 'undecryptable' };
    }
  }

  private async call<S extends z.ZodType>(spec: CallSpec<S>): Promise<CallResult<z.output<S>>> {
    const ctx: CallContext = {
      endpoint: `${spec.method} ${spec.template}`,
      operation: spec.operation,
      ...(spec.reference !== undefined ? { reference: spec.reference } : {}),
    };
    const headers: Record<string, string> = {
      Authorization: `Bearer ${this.secretKey}`,
      'Content-Type': 'application/json',
      Accept: 'application/json',
    };
    let data: string | undefined;
    if (spec.payload !== undefined) {
      if (this.signRequests) headers.Encryption = signRequest(spec.payload, this.secretKey);
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
        headers,
        // axios' own timeout is a socket-idle timer; this one bounds the whole call.
        signal: AbortSignal.timeout(this.timeoutMs),
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
