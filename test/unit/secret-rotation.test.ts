/**
 * Rotating NOTIFY_SECRET and SAYSWITCH_SECRET_KEY (docs/operations.md "Rotating secrets"): the
 * configuration of NOTIFY_SECRET_PREVIOUS and SAYSWITCH_SECRET_KEY_PREVIOUS (errors name the
 * variable, never a value), notifications signed with both secrets so that a Standard Webhooks
 * receiver holding either verifies them, and a Sayswitch webhook signature checked against both
 * keys.
 */
import { Webhook } from 'standardwebhooks';
import { describe, expect, it, vi } from 'vitest';
import { compared } from '../support/counted-compare.ts';
import { ConfigError, loadConfig, SECRET_VARIABLES } from '../../src/config/config.ts';
import {
  matchWebhookSignature,
  signWebhook,
  verifyWebhookSignature,
} from '../../src/infra/gateway/sayswitch/crypto.ts';
import {
  signNotification,
  standardWebhookSecret,
  standardWebhookSigner,
  verifyNotification,
} from '../../src/notifications/signature.ts';

/** Counts timingSafeEqual calls (still the real one): every key must be compared, whichever matches. */
vi.mock('node:crypto', async (importOriginal) =>
  (await import('../support/counted-compare.ts')).countingCompares(await importOriginal()),
);

const VALID = {
  SAYSWITCH_SECRET_KEY: 'sk_test_current_key_0123',
  DATA_ENCRYPTION_KEY: 'ab'.repeat(32),
  API_TOKEN: 'token-0123456789abcdef',
};
const NEW_SECRET = `whsec_${Buffer.from('rotation-new-secret-0123456789ab').toString('base64')}`;
const OLD_SECRET = `whsec_${Buffer.from('rotation-old-secret-0123456789ab').toString('base64')}`;
const NOTIFY = {
  NOTIFY_URL: 'https://merchant.example/hook',
  NOTIFY_SECRET: NEW_SECRET,
};

function problems(env: Record<string, string>) {
  try {
    loadConfig(env, { onWarning: () => {} });
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

/** The one problem of `env`, which must name `variable` and never show any of `secrets`. */
function onlyProblem(env: Record<string, string>, variable: string, secrets: string[]) {
  const err = problems(env);
  expect(err.problems.map((p) => p.variable)).toEqual([variable]);
  for (const s of secrets) {
    expect(err.message).not.toContain(s);
    expect(JSON.stringify(err.problems)).not.toContain(s);
  }
  return err.problems[0]!.message;
}

describe('NOTIFY_SECRET_PREVIOUS', () => {
  it('is a secret, optional, and read with NOTIFY_SECRET in either form', () => {
    expect(SECRET_VARIABLES).toContain('NOTIFY_SECRET_PREVIOUS');
    expect(loadConfig({ ...VALID, ...NOTIFY }).notify?.previousSecret).toBeUndefined();
    expect(
      loadConfig({ ...VALID, ...NOTIFY, NOTIFY_SECRET_PREVIOUS: '' }).notify?.previousSecret,
    ).toBeUndefined();
    for (const previous of [OLD_SECRET, 'a-plain-old-secret']) {
      expect(loadConfig({ ...VALID, ...NOTIFY, NOTIFY_SECRET_PREVIOUS: previous }).notify).toEqual({
        url: NOTIFY.NOTIFY_URL,
        secret: NEW_SECRET,
        previousSecret: previous,
        retryScheduleMs: expect.any(Array),
      });
    }
  });

  it('is validated as NOTIFY_SECRET is: a whsec_ value must be base64', () => {
    const bad = 'whsec_not base64 s3cret!';
    expect(
      onlyProblem({ ...VALID, ...NOTIFY, NOTIFY_SECRET_PREVIOUS: bad }, 'NOTIFY_SECRET_PREVIOUS', [
        bad,
      ]),
    ).toBe('must be whsec_ followed by standard base64');
  });

  it('needs NOTIFY_URL and NOTIFY_SECRET', () => {
    const envs: Record<string, string>[] = [
      { NOTIFY_SECRET_PREVIOUS: OLD_SECRET },
      { NOTIFY_URL: NOTIFY.NOTIFY_URL, NOTIFY_SECRET_PREVIOUS: OLD_SECRET },
      { NOTIFY_SECRET: NEW_SECRET, NOTIFY_SECRET_PREVIOUS: OLD_SECRET },
    ];
    for (const env of envs) {
      const err = problems({ ...VALID, ...env });
      expect(err.problems, JSON.stringify(Object.keys(env))).toContainEqual({
        variable: 'NOTIFY_SECRET_PREVIOUS',
        message: expect.stringContaining('needs NOTIFY_URL and NOTIFY_SECRET'),
      });
      expect(err.message).not.toContain(OLD_SECRET);
      expect(err.message).not.toContain(NEW_SECRET);
    }
  });

  it('must differ from NOTIFY_SECRET, also when the same key is written in the other form', () => {
    const plain = 'the-same-plain-secret';
    const cases: [string, string][] = [
      [NEW_SECRET, NEW_SECRET],
      [plain, plain],
      [plain, standardWebhookSecret(plain)],
      [standardWebhookSecret(plain), plain],
    ];
    for (const [current, previous] of cases) {
      expect(
        onlyProblem(
          { ...VALID, ...NOTIFY, NOTIFY_SECRET: current, NOTIFY_SECRET_PREVIOUS: previous },
          'NOTIFY_SECRET_PREVIOUS',
          [current, previous, Buffer.from(plain).toString('base64')],
        ),
      ).toBe('must differ from NOTIFY_SECRET (the same signing key)');
    }
  });
});

describe('SAYSWITCH_SECRET_KEY_PREVIOUS', () => {
  const LIVE = {
    ...VALID,
    SAYSWITCH_SECRET_KEY: 'sk_live_current_key_0123',
    SAYSWITCH_BASE_URL: 'https://backendapi.sayswitchgroup.com',
  };

  it('is a secret, optional, of the same mode; API calls keep SAYSWITCH_SECRET_KEY', () => {
    expect(SECRET_VARIABLES).toContain('SAYSWITCH_SECRET_KEY_PREVIOUS');
    expect(loadConfig(VALID).sayswitch.previousSecretKey).toBeUndefined();
    expect(
      loadConfig({ ...VALID, SAYSWITCH_SECRET_KEY_PREVIOUS: '' }).sayswitch.previousSecretKey,
    ).toBeUndefined();
    const test = loadConfig({ ...VALID, SAYSWITCH_SECRET_KEY_PREVIOUS: 'sk_test_previous_0123' });
    expect(test.sayswitch.secretKey).toBe('sk_test_current_key_0123');
    expect(test.sayswitch.previousSecretKey).toBe('sk_test_previous_0123');
    expect(test.testMode).toBe(true);
    const live = loadConfig({ ...LIVE, SAYSWITCH_SECRET_KEY_PREVIOUS: 'sk_live_previous_0123' });
    expect(live.sayswitch.secretKey).toBe('sk_live_current_key_0123');
    expect(live.sayswitch.previousSecretKey).toBe('sk_live_previous_0123');
    expect(live.testMode).toBe(false);
  });

  it('has the format of SAYSWITCH_SECRET_KEY', () => {
    const cases: [string, string][] = [
      ['sk_s3c', 'is too short'],
      [
        'sk_test_with s3cret space',
        'must be printable ASCII without spaces (it is sent in a header)',
      ],
      [
        'sk_test_\u00e9t\u00e9-s3cret',
        'must be printable ASCII without spaces (it is sent in a header)',
      ],
    ];
    for (const [value, message] of cases) {
      expect(
        onlyProblem(
          { ...VALID, SAYSWITCH_SECRET_KEY_PREVIOUS: value },
          'SAYSWITCH_SECRET_KEY_PREVIOUS',
          [value],
        ),
      ).toBe(message);
    }
  });

  it('must differ from SAYSWITCH_SECRET_KEY', () => {
    expect(
      onlyProblem(
        { ...VALID, SAYSWITCH_SECRET_KEY_PREVIOUS: VALID.SAYSWITCH_SECRET_KEY },
        'SAYSWITCH_SECRET_KEY_PREVIOUS',
        [VALID.SAYSWITCH_SECRET_KEY],
      ),
    ).toBe('must differ from SAYSWITCH_SECRET_KEY');
  });

  it('refuses a test key beside a live one, either way round', () => {
    const cases: Record<string, string>[] = [
      { ...LIVE, SAYSWITCH_SECRET_KEY_PREVIOUS: 'sk_test_previous_0123' },
      { ...VALID, SAYSWITCH_SECRET_KEY_PREVIOUS: 'sk_live_previous_0123' },
    ];
    for (const env of cases) {
      expect(
        onlyProblem(env, 'SAYSWITCH_SECRET_KEY_PREVIOUS', [
          env.SAYSWITCH_SECRET_KEY!,
          env.SAYSWITCH_SECRET_KEY_PREVIOUS!,
        ]),
      ).toMatch(
        /^must be of the same mode as SAYSWITCH_SECRET_KEY \(both sk_test_, or both live\)/,
      );
    }
  });
});

describe('notifications signed with both secrets during a rotation', () => {
  const BODY =
    '{"id":"evt_1","type":"payment.succeeded","at":"2025-01-02T03:04:05.000Z","data":{}}';
  const headersNow = (secret: string, previous?: string) =>
    standardWebhookSigner(secret, previous).headers('evt_1', BODY, Date.now() / 1000);

  it('carries two v1 signatures, the new one first, each the one secret alone gives', () => {
    const t = 1_700_000_000;
    const both = standardWebhookSigner(NEW_SECRET, OLD_SECRET).headers('evt_1', BODY, t);
    const one = (s: string) =>
      standardWebhookSigner(s).headers('evt_1', BODY, t)['webhook-signature'];
    expect(both['webhook-signature']).toBe(`${one(NEW_SECRET)} ${one(OLD_SECRET)}`);
    expect(both['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]{43}= v1,[A-Za-z0-9+/]{43}=$/);
    expect(both['webhook-id']).toBe('evt_1');
    expect(both['webhook-timestamp']).toBe(String(t));
  });

  it.each([
    ['whsec_ secrets', NEW_SECRET, OLD_SECRET],
    ['plain secrets', 'new-plain-secret-0123', 'old-plain-secret-0123'],
  ])('verify with the standardwebhooks package holding either secret: %s', (_l, next, prev) => {
    const headers = headersNow(next, prev);
    for (const holder of [next, prev]) {
      expect(new Webhook(standardWebhookSecret(holder)).verify(BODY, headers)).toEqual(
        JSON.parse(BODY),
      );
    }
    const other = standardWebhookSecret('an-unrelated-secret-0123');
    expect(() => new Webhook(other).verify(BODY, headers)).toThrow();
    // Without the previous secret, a receiver still holding it refuses (what the rotation avoids).
    expect(() => new Webhook(standardWebhookSecret(prev)).verify(BODY, headersNow(next))).toThrow();
  });

  it('the deprecated X-Billing-Signature carries both too', () => {
    const t = 1_700_000_000;
    const header = signNotification(BODY, NEW_SECRET, t, OLD_SECRET);
    expect(header).toBe(
      `${signNotification(BODY, NEW_SECRET, t)},${signNotification(BODY, OLD_SECRET, t).split(',')[1]}`,
    );
    for (const holder of [NEW_SECRET, OLD_SECRET]) {
      expect(verifyNotification(BODY, header, holder, { nowSec: t })).toBe(true);
    }
    expect(verifyNotification(BODY, header, 'whsec_other', { nowSec: t })).toBe(false);
  });
});

describe('a Sayswitch webhook checked against the current and the previous key', () => {
  const body = Buffer.from('{"notify":"payout","data":{"reference":"api_x_1"}}');
  const CURRENT = 'sk_test_current_key_0123';
  const PREVIOUS = 'sk_test_previous_key_0123';

  it('tells which key signed it, -1 for none', () => {
    const keys = [CURRENT, PREVIOUS];
    expect(matchWebhookSignature(body, signWebhook(body, CURRENT), keys)).toBe(0);
    expect(matchWebhookSignature(body, signWebhook(body, PREVIOUS), keys)).toBe(1);
    expect(matchWebhookSignature(body, signWebhook(body, 'sk_test_unrelated_99'), keys)).toBe(-1);
    expect(matchWebhookSignature(body, signWebhook(body, PREVIOUS), [CURRENT])).toBe(-1);
    expect(matchWebhookSignature(body, undefined, keys)).toBe(-1);
    expect(matchWebhookSignature(body, 'ab'.repeat(63), keys)).toBe(-1);
    expect(matchWebhookSignature(body, [signWebhook(body, CURRENT)], keys)).toBe(-1);
    expect(verifyWebhookSignature(body, signWebhook(body, PREVIOUS), CURRENT)).toBe(false);
  });

  it('compares every key in constant time, whichever matches', () => {
    const keys = [CURRENT, PREVIOUS];
    for (const key of [CURRENT, PREVIOUS, 'sk_test_unrelated_99']) {
      compared.calls = 0;
      matchWebhookSignature(body, signWebhook(body, key), keys);
      expect(compared.calls, key).toBe(2);
    }
  });
});
