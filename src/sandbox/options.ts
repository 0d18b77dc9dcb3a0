/**
 * Sandbox options (docs/product.md §9). Parsed once by `startSandbox`; the CLI maps its flags
 * (`--settle-ms`, `--fault-rate`, …) onto these fields after converting them to numbers/booleans.
 *
 * Every unknown in Sayswitch's behaviour (docs/sayswitch-wire.md, "The matrix of unknowns") is an
 * optional field with no default here: a named `profile` (profiles.ts) fills what the caller left
 * out, and `resolveSandboxOptions` turns the lot into {@link Unknowns}. Absent profile = `default`,
 * which is the sandbox's behaviour from before the options existed.
 */
import { z } from 'zod';

const nonNegativeMs = z.number().int().nonnegative();

/**
 * What a submission with a reference seen before gets (unknown 1). `400-opaque` is a validation
 * failure that names nothing, so no adapter can tell it from any other refusal: it is in no
 * profile (the adapter's contract cannot resolve it); the payment rule keeps it safe, and the
 * chaos matrix runs a cell under it (docs/sayswitch-wire.md, "Duplicate reference").
 */
export const DUPLICATE_ANSWERS = ['409', '400', '200-failure', '200-echo', '400-opaque'] as const;
export type DuplicateAnswer = (typeof DUPLICATE_ANSWERS)[number];
/** How a lookup of an unknown reference answers (unknown 3). */
export const NOT_FOUND_ANSWERS = ['404', '200-failure'] as const;
export type NotFoundAnswer = (typeof NOT_FOUND_ANSWERS)[number];
/** How a card charge proceeds (unknown 4). */
export const CARD_FLOWS = ['settled', '3ds2'] as const;
export type CardFlow = (typeof CARD_FLOWS)[number];
/** Whether a payout answers its final status at once or later (unknown 6). */
export const PAYOUT_FLOWS = ['sync', 'async'] as const;
export type PayoutFlow = (typeof PAYOUT_FLOWS)[number];
/** The body of a collection (charge) webhook (unknown 7). */
export const COLLECTION_WEBHOOKS = ['notify', 'documented'] as const;
export type CollectionWebhook = (typeof COLLECTION_WEBHOOKS)[number];

/** What a refund request with an `amount` below the refundable balance gets (unknown 8). */
export const REFUND_PARTIALS = ['supported', 'full-only', 'rejected'] as const;
export type RefundPartial = (typeof REFUND_PARTIALS)[number];
/** Whether a refund's `merchant_reference` is kept, echoed and deduplicated (unknown 9). */
export const REFUND_CALLER_REFERENCES = ['ignored', 'honoured'] as const;
export type RefundCallerReference = (typeof REFUND_CALLER_REFERENCES)[number];
/**
 * The status words a transaction or payout carries on the wire (unknown 11, §7.8): `documented`
 * the four the docs show (`success`, `failed`, `pending`, `reversed`); `extended` the other
 * plausible vocabulary (`successful`, `declined` / `cancelled`, `processing`, `abandoned` for an
 * abandoned 3-D Secure challenge). Decided by `statusWord` (wire.ts); the ledger keeps its own.
 */
export const STATUS_VOCABULARIES = ['documented', 'extended'] as const;
export type StatusVocabulary = (typeof STATUS_VOCABULARIES)[number];
/**
 * A fault on the first refund request of each transaction (not an unknown: an injected failure,
 * like `faultRate`): recorded then 500, recorded then held past any timeout, or 500 recording
 * nothing.
 */
export const REFUND_FAULTS = ['none', 'lost-response', 'hang', 'unrecorded-500'] as const;
export type RefundFault = (typeof REFUND_FAULTS)[number];

export const PROFILE_NAMES = [
  'default',
  'strict-docs',
  'hostile',
  'laravel-unique',
  'idempotent-replay',
] as const;
export type ProfileName = (typeof PROFILE_NAMES)[number];

export const sandboxOptionsSchema = z.object({
  /** 0 picks a free port (tests). */
  port: z.number().int().min(0).max(65_535).default(4010),
  host: z.string().min(1).default('127.0.0.1'),
  /** The Bearer key clients must send; also the HMAC key of webhook signatures. */
  secretKey: z.string().min(1).default('sk_test_sandbox'),
  /** When present, requests and responses are AES-256-CBC payloads (docs/sayswitch-wire.md). */
  encryption: z
    .object({
      key: z.string().min(1),
      iv: z.string().min(1),
      encoding: z.enum(['hex', 'base64']).default('hex'),
    })
    .optional(),
  refundFault: z.enum(REFUND_FAULTS).default('none'),
  /** Delay before a pending 52/53 settles, a 58 payout is reversed and an async payout ends. */
  settleMs: nonNegativeMs.default(2000),
  /** How long a 55 response is held: past any sane client timeout. */
  hangMs: nonNegativeMs.default(60_000),
  /** Added before every API response (not the `/__sandbox` endpoints). */
  latencyMs: nonNegativeMs.default(0),
  /** Probability that a submission behaves as 54, 55, 56 or 57 regardless of its amount. */
  faultRate: z.number().min(0).max(1).default(0),
  seed: z.number().int().default(1),
  webhookUrl: z.url({ protocol: /^https?$/ }).optional(),
  /** How many times each webhook is delivered (1 = once). */
  webhookDuplicates: z.number().int().min(1).max(100).default(1),
  /** Deliver the webhooks of a short window in a seeded random order. */
  webhookShuffle: z.boolean().default(false),
  /**
   * With shuffle on: how long events are collected into one batch before it is shuffled and
   * sent. The seeded order is reproducible when the same events fall into the same batch.
   */
  webhookShuffleWindowMs: nonNegativeMs.default(100),

  // The unknowns. No defaults: what is absent comes from the profile (profiles.ts).
  /** A named combination of the unknowns below; explicit fields override it. */
  profile: z.enum(PROFILE_NAMES).optional(),
  duplicateReference: z.enum(DUPLICATE_ANSWERS).optional(),
  /** Verify and payout lookup answer not-found for this long after a reference is recorded. */
  lookupLagMs: nonNegativeMs.optional(),
  notFound: z.enum(NOT_FOUND_ANSWERS).optional(),
  cardFlow: z.enum(CARD_FLOWS).optional(),
  /** With the 3ds2 card flow: a challenge nobody ends within this window expires (failed). */
  threeDsExpiryMs: nonNegativeMs.optional(),
  payoutFlow: z.enum(PAYOUT_FLOWS).optional(),
  collectionWebhook: z.enum(COLLECTION_WEBHOOKS).optional(),
  refundPartial: z.enum(REFUND_PARTIALS).optional(),
  refundCallerReference: z.enum(REFUND_CALLER_REFERENCES).optional(),
  /** How long a refund stays `pending` before it succeeds (unknown 10; scaled by `timeScale`). */
  refundSettleMs: nonNegativeMs.optional(),
  /** The words of every transaction and payout `status` sent (unknown 11); the ledger keeps its own. */
  statusWords: z.enum(STATUS_VOCABULARIES).optional(),
  /**
   * Multiplies `lookupLagMs`, `refundSettleMs` and `threeDsExpiryMs` (whether from a profile or explicit), so tests
   * can run a profile's 60 s lag in 60 ms with `timeScale: 0.001`. Default 1.
   */
  timeScale: z.number().positive().max(1000).optional(),
});

/** What callers pass: every field optional, defaults filled by the schema. */
export type SandboxOptionsInput = z.input<typeof sandboxOptionsSchema>;
/** Parsed options with every default applied (the unknowns still optional). */
export type SandboxOptions = z.output<typeof sandboxOptionsSchema>;

/** The unknowns in effect, profile applied and durations scaled. */
export interface Unknowns {
  duplicateReference: DuplicateAnswer;
  lookupLagMs: number;
  notFound: NotFoundAnswer;
  cardFlow: CardFlow;
  threeDsExpiryMs: number;
  payoutFlow: PayoutFlow;
  collectionWebhook: CollectionWebhook;
  refundPartial: RefundPartial;
  refundCallerReference: RefundCallerReference;
  refundSettleMs: number;
  statusWords: StatusVocabulary;
}

/** Parsed options plus the resolved unknowns; what `startSandbox` runs on. */
export interface ResolvedSandboxOptions extends SandboxOptions {
  profile: ProfileName;
  unknowns: Unknowns;
}
