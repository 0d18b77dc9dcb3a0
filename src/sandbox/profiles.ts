/**
 * Named combinations of the unknowns (docs/sayswitch-wire.md, "The matrix of unknowns"). A
 * profile fills only what the caller left out: `{ profile: 'hostile', duplicateReference: '409' }`
 * is hostile with 409 duplicates. Durations here are unscaled; `timeScale` shrinks them.
 */
import {
  sandboxOptionsSchema,
  type ProfileName,
  type ResolvedSandboxOptions,
  type SandboxOptionsInput,
  type Unknowns,
} from './options.ts';

/** What a profile may set: the unknowns, plus webhook redelivery and order (also unknown). */
export type ProfileSettings = Unknowns &
  Required<Pick<SandboxOptionsInput, 'webhookDuplicates' | 'webhookShuffle'>>;

export interface Profile {
  /** One line: what Sayswitch this profile pretends to be. */
  summary: string;
  settings: ProfileSettings;
}

/** The sandbox as it behaved before the unknowns were options. */
const DEFAULT_SETTINGS: ProfileSettings = {
  duplicateReference: '409',
  lookupLagMs: 0,
  notFound: '404',
  cardFlow: 'settled',
  threeDsExpiryMs: 600_000,
  payoutFlow: 'sync',
  collectionWebhook: 'notify',
  refundPartial: 'supported',
  refundCallerReference: 'ignored',
  refundSettleMs: 0,
  statusWords: 'documented',
  webhookDuplicates: 1,
  webhookShuffle: false,
};

export const PROFILES: Readonly<Record<ProfileName, Profile>> = {
  default: {
    summary: "today's sandbox: 409 duplicates, no lag, 404, settled cards, sync payouts, notify",
    settings: DEFAULT_SETTINGS,
  },
  'strict-docs': {
    summary:
      'only what the public docs show: 409 (the generic "duplicate unique resource" code), no ' +
      'lag, 404, 3DS2 cards, async payouts, the documented `type: payment.success` webhook, ' +
      'whole refunds only, pending for 2 s',
    settings: {
      ...DEFAULT_SETTINGS,
      cardFlow: '3ds2',
      payoutFlow: 'async',
      collectionWebhook: 'documented',
      // Only the documented refund: the whole transaction, answered `pending` first.
      refundPartial: 'rejected',
      refundSettleMs: 2_000,
    },
  },
  hostile: {
    summary:
      'the worst plausible Sayswitch: duplicates as 200 success:false, lookups blind for 60 s, ' +
      'not-found as 200 success:false, 3DS2 cards, async payouts, documented webhooks, each ' +
      'delivered twice in shuffled order, a refund amount silently ignored (all of it goes back), ' +
      'the extended status words (`successful`, `declined`, `processing`, `abandoned`, `cancelled`)',
    settings: {
      duplicateReference: '200-failure',
      lookupLagMs: 60_000,
      notFound: '200-failure',
      cardFlow: '3ds2',
      threeDsExpiryMs: 600_000,
      payoutFlow: 'async',
      collectionWebhook: 'documented',
      // An amount is silently ignored: the whole remaining balance goes back.
      refundPartial: 'full-only',
      refundCallerReference: 'ignored',
      refundSettleMs: 10_000,
      // `abandoned` is a word the adapter does not know: the charge stays pending at our side.
      statusWords: 'extended',
      webhookDuplicates: 2,
      webhookShuffle: true,
    },
  },
  'laravel-unique': {
    summary:
      'a stock Laravel backend: a duplicate fails the `unique` rule as a 400 validation error; ' +
      'async payouts as documented; the extended status words',
    settings: {
      ...DEFAULT_SETTINGS,
      duplicateReference: '400',
      payoutFlow: 'async',
      statusWords: 'extended',
    },
  },
  'idempotent-replay': {
    summary:
      'an idempotent write side over a lagging read side: a duplicate replays the original ' +
      'transaction (200) while lookups are blind for 5 s; async payouts; a refund keeps and ' +
      'echoes our merchant_reference',
    settings: {
      ...DEFAULT_SETTINGS,
      duplicateReference: '200-echo',
      lookupLagMs: 5_000,
      payoutFlow: 'async',
      refundCallerReference: 'honoured',
    },
  },
};

const profileField = sandboxOptionsSchema.shape.profile;

/**
 * Validates `input`, fills what it leaves out from its profile (then the schema defaults) and
 * resolves the unknowns, durations scaled by `timeScale`. Throws a ZodError on a bad option.
 */
export function resolveSandboxOptions(input: SandboxOptionsInput = {}): ResolvedSandboxOptions {
  const named = profileField.safeParse((input as { profile?: unknown } | null)?.profile);
  const profile: ProfileName = (named.success ? named.data : undefined) ?? 'default';
  const explicit = Object.fromEntries(
    Object.entries(input ?? {}).filter(([, v]) => v !== undefined),
  ) as SandboxOptionsInput;
  // A bad `profile` stays in `explicit`, so the schema refuses it rather than defaulting.
  const opts = sandboxOptionsSchema.parse({ ...PROFILES[profile].settings, ...explicit });
  const base = PROFILES[profile].settings;
  const scale = opts.timeScale ?? 1;
  const unknowns: Unknowns = {
    duplicateReference: opts.duplicateReference ?? base.duplicateReference,
    lookupLagMs: Math.round((opts.lookupLagMs ?? base.lookupLagMs) * scale),
    notFound: opts.notFound ?? base.notFound,
    cardFlow: opts.cardFlow ?? base.cardFlow,
    threeDsExpiryMs: Math.round((opts.threeDsExpiryMs ?? base.threeDsExpiryMs) * scale),
    payoutFlow: opts.payoutFlow ?? base.payoutFlow,
    collectionWebhook: opts.collectionWebhook ?? base.collectionWebhook,
    refundPartial: opts.refundPartial ?? base.refundPartial,
    refundCallerReference: opts.refundCallerReference ?? base.refundCallerReference,
    refundSettleMs: Math.round((opts.refundSettleMs ?? base.refundSettleMs) * scale),
    statusWords: opts.statusWords ?? base.statusWords,
  };
  return { ...opts, profile, unknowns };
}
