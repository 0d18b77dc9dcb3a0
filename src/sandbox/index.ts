/**
 * The local Sayswitch simulator (docs/product.md §9, docs/sayswitch-wire.md): same paths,
 * envelopes, status codes and webhooks as the adapter expects, plus `GET /__sandbox/ledger`, the
 * truth of what money moved.
 */
import type { AddressInfo } from 'node:net';
import type { PayloadCryptoConfig } from '../infra/gateway/sayswitch/crypto.ts';
import { encryptJson, signWebhook } from '../infra/gateway/sayswitch/crypto.ts';
import { createLogger, type Logger } from '../infra/logger.ts';
import { SandboxCore } from './core.ts';
import { LedgerStore, type Ledger } from './ledger.ts';
import type { ProfileName, SandboxOptionsInput, Unknowns } from './options.ts';
import { resolveSandboxOptions } from './profiles.ts';
import { buildSandboxApp } from './server.ts';
import type { ThreeDsAction } from './three-ds.ts';
import { TimerRegistry } from './timers.ts';
import { WebhookDispatcher } from './webhooks.ts';

export {
  CARD_FLOWS,
  COLLECTION_WEBHOOKS,
  DUPLICATE_ANSWERS,
  NOT_FOUND_ANSWERS,
  PAYOUT_FLOWS,
  PROFILE_NAMES,
  REFUND_CALLER_REFERENCES,
  REFUND_FAULTS,
  REFUND_PARTIALS,
  STATUS_VOCABULARIES,
  sandboxOptionsSchema,
} from './options.ts';
export type {
  CardFlow,
  CollectionWebhook,
  DuplicateAnswer,
  NotFoundAnswer,
  PayoutFlow,
  ProfileName,
  SandboxOptions,
  SandboxOptionsInput,
  StatusVocabulary,
  Unknowns,
} from './options.ts';
export { PROFILES, resolveSandboxOptions } from './profiles.ts';
export type { Profile, ProfileSettings } from './profiles.ts';
export { THREE_DS_ACTIONS } from './three-ds.ts';
export { ABANDONED_RESPONSE, statusWord } from './wire.ts';
export type { ThreeDsAction } from './three-ds.ts';
export type {
  Authentication,
  Ledger,
  LedgerActivity,
  LedgerEntry,
  LedgerStatus,
  LedgerTotals,
} from './ledger.ts';

/** A running sandbox. */
export interface Sandbox {
  /** Base URL, e.g. `http://127.0.0.1:4010`; pass it as `SAYSWITCH_BASE_URL`. */
  url: string;
  port: number;
  /** The profile in effect (`default` when none was named). */
  profile: ProfileName;
  /** The unknowns in effect: the profile, explicit options over it, durations scaled. */
  unknowns: Readonly<Unknowns>;
  /** A copy of the ledger at this instant (the same as `GET /__sandbox/ledger`). */
  ledger(): Ledger;
  /**
   * Ends a 3-D Secure challenge as the payer would (card flow `3ds2`), the same as
   * `POST /__sandbox/3ds/{reference}/{action}`; returns that endpoint's status and body.
   */
  authenticate(reference: string, action: ThreeDsAction): { status: number; body: unknown };
  /**
   * Stops at once: held 55 responses and keep-alive sockets are destroyed, settlement and
   * webhook timers cleared, in-flight webhooks aborted. Idempotent.
   */
  close(): Promise<void>;
}

export interface StartSandboxDeps {
  /** Lifecycle and webhook-failure lines only, never per request. Silent when omitted. */
  logger?: Logger;
  /** Milliseconds since the epoch, for timestamps in responses. */
  now?: () => number;
}

function formatUrl(host: string, port: number): string {
  // A wildcard bind is reachable on loopback; that is the address callers can actually use.
  const reachable = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return reachable.includes(':') ? `http://[${reachable}]:${port}` : `http://${reachable}:${port}`;
}

/**
 * Starts a sandbox server. Options are validated with `sandboxOptionsSchema`, what they leave
 * out is filled from their `profile` (profiles.ts); a bad option, an unusable encryption key or
 * a busy port rejects the promise.
 */
export async function startSandbox(
  input: SandboxOptionsInput = {},
  deps: StartSandboxDeps = {},
): Promise<Sandbox> {
  const opts = resolveSandboxOptions(input);
  const logger = deps.logger ?? createLogger({ level: 'silent' });
  const now = deps.now ?? Date.now;

  let crypto: PayloadCryptoConfig | undefined;
  if (opts.encryption) {
    crypto = {
      ...opts.encryption,
      onWarning: (msg) => logger.warn({ component: 'sandbox' }, msg),
    };
    // Fail at start, not on the first request, if the key material cannot be used.
    encryptJson({}, crypto);
  }

  const timers = new TimerRegistry();
  const ledger = new LedgerStore();
  const webhooks = opts.webhookUrl
    ? new WebhookDispatcher({
        url: opts.webhookUrl,
        secretKey: opts.secretKey,
        duplicates: opts.webhookDuplicates,
        shuffle: opts.webhookShuffle,
        shuffleWindowMs: opts.webhookShuffleWindowMs,
        seed: opts.seed,
        timers,
        logger,
        sign: signWebhook,
      })
    : undefined;
  const core = new SandboxCore({
    ledger,
    timers,
    settleMs: opts.settleMs,
    hangMs: opts.hangMs,
    faultRate: opts.faultRate,
    seed: opts.seed,
    now,
    unknowns: opts.unknowns,
    refundFault: opts.refundFault,
    ...(webhooks ? { notify: (ref, payload) => webhooks.enqueue(ref, payload) } : {}),
  });
  const app = buildSandboxApp({
    core,
    ledger,
    timers,
    secretKey: opts.secretKey,
    crypto,
    latencyMs: opts.latencyMs,
  });

  try {
    await app.listen({ port: opts.port, host: opts.host });
  } catch (err) {
    timers.closeAll();
    webhooks?.close();
    await app.close();
    throw err;
  }
  const port = (app.server.address() as AddressInfo).port;
  const url = formatUrl(opts.host, port);
  logger.info(
    {
      component: 'sandbox',
      url,
      encryption: opts.encryption ? opts.encryption.encoding : 'off',
      faultRate: opts.faultRate,
      seed: opts.seed,
      webhooks: opts.webhookUrl !== undefined,
      profile: opts.profile,
      unknowns: opts.unknowns,
    },
    'sandbox listening',
  );

  let closing: Promise<void> | undefined;
  return {
    url,
    port,
    profile: opts.profile,
    unknowns: { ...opts.unknowns },
    ledger: () => ledger.snapshot(),
    authenticate: (reference, action) => {
      const { status, body } = core.endThreeDs(reference, action);
      return { status, body };
    },
    close: () => {
      closing ??= (async () => {
        // Timers first: held responses resolve as abandoned and destroy their own sockets, and
        // no settlement can enqueue a webhook after the dispatcher is closed.
        timers.closeAll();
        webhooks?.close();
        await app.close();
        logger.info({ component: 'sandbox', url }, 'sandbox closed');
      })();
      return closing;
    },
  };
}
