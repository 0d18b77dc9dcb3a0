import { afterEach, describe, expect, it } from 'vitest';
import { sandboxOptionsFromFlags, type SandboxFlags } from '../../../src/cli/commands/sandbox.ts';
import {
  DUPLICATE_ANSWERS,
  PROFILES,
  PROFILE_NAMES,
  STATUS_VOCABULARIES,
  resolveSandboxOptions,
  startSandbox,
  type Sandbox,
  type SandboxOptionsInput,
} from '../../../src/sandbox/index.ts';
import { until } from '../../support/poll.ts';
import {
  callSandbox,
  chargeBody,
  payoutBody,
  startWebhookReceiver,
  type LooseJson,
  type WebhookReceiver,
} from '../../support/sandbox.ts';

const CHARGE = '/api/s2s/transaction/initialize';
const PAYOUT = '/api/v1/bank_transfer';

const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((o) => o.close()));
});

describe('resolving options', () => {
  it('without a profile is the default profile, which is the sandbox from before the options', () => {
    const today = {
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
    };
    const none = resolveSandboxOptions({});
    expect(none.profile).toBe('default');
    expect(none.unknowns).toEqual(today);
    expect(none.webhookDuplicates).toBe(1);
    expect(none.webhookShuffle).toBe(false);
    expect(resolveSandboxOptions({ profile: 'default' }).unknowns).toEqual(today);
  });

  it('fills what the caller left out from the profile; explicit options win', () => {
    const hostile = resolveSandboxOptions({ profile: 'hostile' });
    expect(hostile.unknowns).toEqual({
      duplicateReference: '200-failure',
      lookupLagMs: 60_000,
      notFound: '200-failure',
      cardFlow: '3ds2',
      threeDsExpiryMs: 600_000,
      payoutFlow: 'async',
      collectionWebhook: 'documented',
      refundPartial: 'full-only',
      refundCallerReference: 'ignored',
      refundSettleMs: 10_000,
      statusWords: 'extended',
    });
    expect(hostile.webhookDuplicates).toBe(2);
    expect(hostile.webhookShuffle).toBe(true);

    const mixed = resolveSandboxOptions({
      profile: 'hostile',
      duplicateReference: '409',
      cardFlow: 'settled',
      webhookDuplicates: 1,
      webhookShuffle: false,
      lookupLagMs: undefined,
    });
    expect(mixed.unknowns).toMatchObject({
      duplicateReference: '409',
      cardFlow: 'settled',
      lookupLagMs: 60_000,
      notFound: '200-failure',
    });
    expect(mixed.webhookDuplicates).toBe(1);
    expect(mixed.webhookShuffle).toBe(false);
  });

  it('scales the lag and the 3DS expiry by timeScale, from a profile or explicit', () => {
    expect(resolveSandboxOptions({ profile: 'hostile', timeScale: 0.001 }).unknowns).toMatchObject({
      lookupLagMs: 60,
      threeDsExpiryMs: 600,
    });
    expect(
      resolveSandboxOptions({ lookupLagMs: 2000, threeDsExpiryMs: 100, timeScale: 0.5 }).unknowns,
    ).toMatchObject({ lookupLagMs: 1000, threeDsExpiryMs: 50 });
  });

  it('uses every variant of every unknown in at least one profile', () => {
    const used = (key: keyof (typeof PROFILES)['default']['settings']) =>
      new Set(PROFILE_NAMES.map((p) => PROFILES[p].settings[key]));
    // All but `400-opaque`, which no adapter can resolve: the chaos matrix runs a cell of its own
    // under it (test/integration/chaos.test.ts).
    expect(used('duplicateReference')).toEqual(
      new Set(DUPLICATE_ANSWERS.filter((a) => a !== '400-opaque')),
    );
    expect(used('notFound')).toEqual(new Set(['404', '200-failure']));
    expect(used('cardFlow')).toEqual(new Set(['settled', '3ds2']));
    expect(used('payoutFlow')).toEqual(new Set(['sync', 'async']));
    expect(used('collectionWebhook')).toEqual(new Set(['notify', 'documented']));
    expect(used('statusWords')).toEqual(new Set(STATUS_VOCABULARIES));
    expect([...used('lookupLagMs')].some((lag) => Number(lag) > 0)).toBe(true);
  });

  it.each([
    [{ profile: 'nope' }],
    [{ duplicateReference: '418' }],
    [{ notFound: '410' }],
    [{ cardFlow: 'otp' }],
    [{ payoutFlow: 'later' }],
    [{ collectionWebhook: 'xml' }],
    [{ statusWords: 'paystack' }],
    [{ lookupLagMs: -1 }],
    [{ timeScale: 0 }],
  ])('refuses %j', async (bad) => {
    expect(() => resolveSandboxOptions(bad as SandboxOptionsInput)).toThrow();
    await expect(startSandbox({ port: 0, ...(bad as SandboxOptionsInput) })).rejects.toThrow();
  });

  it('reports the profile and unknowns in effect on the running sandbox', async () => {
    const sb = await startSandbox({ port: 0, profile: 'strict-docs', payoutFlow: 'sync' });
    open.push(sb);
    expect(sb.profile).toBe('strict-docs');
    expect(sb.unknowns).toMatchObject({ cardFlow: '3ds2', payoutFlow: 'sync' });
  });
});

describe('CLI flags', () => {
  const base: SandboxFlags = {
    port: 0,
    host: '127.0.0.1',
    secretKey: 'sk_test_sandbox',
    encryptionEncoding: 'hex',
    settleMs: 2000,
    hangMs: 60_000,
    latencyMs: 0,
    faultRate: 0,
    seed: 1,
  };

  it('pass only the unknowns that were given, so the profile fills the rest', () => {
    const opts = sandboxOptionsFromFlags({
      ...base,
      profile: 'hostile',
      notFound: '404',
      webhookShuffle: false,
      timeScale: 0.01,
    });
    expect(opts).not.toHaveProperty('duplicateReference');
    expect(opts).not.toHaveProperty('webhookDuplicates');
    expect(opts).not.toHaveProperty('statusWords');
    const resolved = resolveSandboxOptions(opts);
    expect(resolved.unknowns).toMatchObject({
      notFound: '404',
      duplicateReference: '200-failure',
      lookupLagMs: 600,
    });
    expect(resolved.webhookShuffle).toBe(false);
    expect(resolved.webhookDuplicates).toBe(2);
    expect(resolved.unknowns.statusWords).toBe('extended');
    // --status-words overrides the profile's vocabulary, like any unknown's flag.
    const documented = sandboxOptionsFromFlags({
      ...base,
      profile: 'hostile',
      statusWords: 'documented',
    });
    expect(resolveSandboxOptions(documented).unknowns.statusWords).toBe('documented');
  });

  it('refuses half an encryption pair', () => {
    expect(() => sandboxOptionsFromFlags({ ...base, encryptionKey: 'k' })).toThrow(/go together/);
  });
});

/** A fixed clock, so that two sandboxes answer byte for byte alike. */
const FIXED_NOW = () => Date.UTC(2026, 0, 2, 3, 4, 5);

interface Transcript {
  answers: { step: string; status: number; body: LooseJson }[];
  ledger: LooseJson;
  webhooks: string[];
}

/** Every outcome, a duplicate of each kind, both lookups found and not found, with webhooks. */
async function transcript(options: SandboxOptionsInput): Promise<Transcript> {
  const rx: WebhookReceiver = await startWebhookReceiver();
  open.push(rx);
  const sb: Sandbox = await startSandbox(
    { port: 0, settleMs: 20, hangMs: 20, webhookUrl: rx.url, ...options },
    { now: FIXED_NOW },
  );
  open.unshift(sb);
  const answers: Transcript['answers'] = [];
  const step = async (label: string, path: string, body?: unknown) => {
    const res = await callSandbox(sb, path, body === undefined ? {} : { body });
    answers.push({ step: label, status: res.status, body: res.body });
  };
  for (const rem of ['00', '51', '52', '53', '54', '55', '56', '57', '58']) {
    await step(`charge ${rem}`, CHARGE, chargeBody(`c${rem}`, `20.${rem}`));
    await step(`payout ${rem}`, PAYOUT, payoutBody(`p${rem}`, `20.${rem}`));
  }
  await step('charge duplicate', CHARGE, chargeBody('c00', '99'));
  await step('payout duplicate', PAYOUT, payoutBody('p00', '99'));
  await step('verify', '/api/v1/transaction/verify/c00');
  await step('verify s2s', '/api/s2s/v1/transaction/verify/c51');
  await step('verify missing', '/api/v1/transaction/verify/nope');
  await step('payout lookup', '/api/v1/payout/p00');
  await step('payout lookup missing', '/api/v1/payout/nope');
  await step('payout lookup of a charge', '/api/v1/payout/c00');
  // Settled: c52, c53, p52, p53 final and p58 reversed; 15 webhooks in all (7 charges, 8 payout).
  await until(() => sb.ledger().references.p58?.status === 'reversed', { what: 'p58 reversed' });
  await rx.waitFor(15);
  await until(
    () =>
      ['c52', 'c53', 'p52', 'p53'].every((r) => sb.ledger().references[r]?.status !== 'pending'),
    { what: '52/53 settled' },
  );
  return {
    answers,
    ledger: sb.ledger(),
    webhooks: rx.received.map((w) => w.rawBody).sort(),
  };
}

describe('the default profile', () => {
  it("answers exactly as the sandbox did before the options (no profile, 'default', explicit)", async () => {
    const none = await transcript({});
    const named = await transcript({ profile: 'default' });
    const explicit = await transcript({
      duplicateReference: '409',
      lookupLagMs: 0,
      notFound: '404',
      cardFlow: 'settled',
      payoutFlow: 'sync',
      collectionWebhook: 'notify',
      statusWords: 'documented',
    });
    expect(named).toEqual(none);
    expect(explicit).toEqual(none);

    // And "before the options" is today's documented contract (docs/sayswitch-wire.md).
    const at = (label: string) => none.answers.find((a) => a.step === label)!;
    expect(at('charge 00')).toMatchObject({
      status: 200,
      body: { status: true, data: { reference: 'c00', status: 'success' } },
    });
    expect(at('payout 52')).toMatchObject({ status: 200, body: { data: { status: 'pending' } } });
    expect(at('charge 51').body.data).toMatchObject({
      status: 'failed',
      gateway_response: 'Declined',
    });
    expect(at('charge 54').status).toBe(500);
    expect(at('charge 56').status).toBe(500);
    expect(at('payout 57').status).toBe(429);
    for (const label of ['charge duplicate', 'payout duplicate']) {
      expect(at(label)).toEqual({
        step: label,
        status: 409,
        body: { success: false, message: 'Duplicate reference' },
      });
    }
    expect(at('verify missing')).toEqual({
      step: 'verify missing',
      status: 404,
      body: {
        success: false,
        message: 'Transaction not found',
        error: 'No transaction found with reference: nope',
      },
    });
    expect(at('payout lookup missing').status).toBe(404);
    expect(at('payout lookup of a charge').status).toBe(404);
    const kinds = none.webhooks.map((raw) => (JSON.parse(raw) as { notify: string }).notify);
    expect(new Set(kinds)).toEqual(new Set(['transaction', 'payout']));
    expect(none.ledger.references.c00).toEqual({
      kind: 'charge',
      amount: 2000,
      currency: 'NGN',
      status: 'success',
      moneyMoved: true,
    });
    expect(none.ledger.activity.c00).toEqual({
      submissions: 2,
      duplicates: 1,
      moves: 1,
      reversals: 0,
      statuses: ['success'],
    });
    expect(none.ledger.activity.p58).toMatchObject({
      moves: 1,
      reversals: 1,
      statuses: ['success', 'reversed'],
    });
  });
});

describe('the statusWords unknown', () => {
  /** The extended words read back as the ledger statuses they name (charges and payouts alike). */
  const DOCUMENTED_OF: Record<string, string> = {
    successful: 'success',
    declined: 'failed',
    cancelled: 'failed',
    abandoned: 'failed',
    processing: 'pending',
    reversed: 'reversed',
  };
  const asDocumented = (body: LooseJson): LooseJson => {
    const status = body?.data?.status;
    if (typeof status !== 'string') return body;
    return { ...body, data: { ...body.data, status: DOCUMENTED_OF[status] ?? `?${status}` } };
  };

  it('changes nothing but the status words: same answers, ledger and webhooks otherwise', async () => {
    const documented = await transcript({});
    const extended = await transcript({ statusWords: 'extended' });
    // The ledger keeps its own statuses, whatever the wire says.
    expect(extended.ledger).toEqual(documented.ledger);
    expect(extended.answers.map((a) => ({ ...a, body: asDocumented(a.body) }))).toEqual(
      documented.answers,
    );
    const normalised = (t: Transcript) =>
      t.webhooks.map((raw) => JSON.stringify(asDocumented(JSON.parse(raw)))).sort();
    expect(normalised(extended)).toEqual(documented.webhooks);

    const at = (label: string): LooseJson =>
      extended.answers.find((a) => a.step === label)!.body.data;
    expect(at('charge 00').status).toBe('successful');
    expect(at('charge 51')).toMatchObject({ status: 'declined', gateway_response: 'Declined' });
    expect(at('charge 52').status).toBe('processing');
    expect(at('payout 51')).toMatchObject({ status: 'cancelled', gateway_response: 'Declined' });
    expect(at('payout 52').status).toBe('processing');
    expect(at('verify').status).toBe('successful');
    expect(at('payout lookup').status).toBe('successful');
    const words = new Set(extended.webhooks.map((raw): unknown => JSON.parse(raw).data.status));
    expect(words).toEqual(new Set(['successful', 'declined', 'cancelled', 'reversed']));
  });
});
