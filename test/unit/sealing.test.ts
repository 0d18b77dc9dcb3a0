/**
 * Sealing (infra/sealing.ts): round trip, tamper detection, a fresh nonce for every seal; and the
 * rotation of DATA_ENCRYPTION_KEY (sealer, request digests, the console's CSRF tokens).
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';
import { compared } from '../support/counted-compare.ts';
import { csrfTokens } from '../../src/console/access.ts';
import { createRequestHasher, createSealer } from '../../src/infra/sealing.ts';
import { CryptoError } from '../../src/kernel/errors.ts';

/** Counts timingSafeEqual calls (still the real one): every key must be compared, whichever matches. */
vi.mock('node:crypto', async (importOriginal) =>
  (await import('../support/counted-compare.ts')).countingCompares(await importOriginal()),
);

describe('createSealer', () => {
  const sealer = createSealer(randomBytes(32));

  it('opens what it sealed and refuses a tampered or foreign value', () => {
    const sealed = sealer.seal('tok_0123456789abcdef');
    expect(sealer.unseal(sealed)).toBe('tok_0123456789abcdef');
    const [v, n, ct, tag] = sealed.split('.') as [string, string, string, string];
    const flipped = `${ct.startsWith('A') ? 'B' : 'A'}${ct.slice(1)}`;
    expect(() => sealer.unseal([v, n, flipped, tag].join('.'))).toThrow(/does not open/);
    expect(() => createSealer(randomBytes(32)).unseal(sealed)).toThrow(/does not open/);
  });

  it('never uses a nonce twice, across the pool refills and across sealers', () => {
    const other = createSealer(randomBytes(32));
    const nonces = new Set<string>();
    for (let i = 0; i < 2_000; i++) {
      for (const s of [sealer, other]) {
        const nonce = s.seal('x').split('.')[1] ?? '';
        expect(Buffer.from(nonce, 'base64url')).toHaveLength(12);
        nonces.add(nonce);
      }
    }
    expect(nonces.size).toBe(4_000);
  });
});

describe('createSealer: only the tag and nonce seal() writes open', () => {
  const sealer = createSealer(randomBytes(32));

  it('refuses a value whose authentication tag was cut short (GCM takes 4 to 16 bytes)', () => {
    const sealed = sealer.seal('ss-tkn-truncated-tag-0123');
    const [v, n, ct, tag] = sealed.split('.') as [string, string, string, string];
    const full = Buffer.from(tag, 'base64url');
    for (const bytes of [4, 8, 12, 15]) {
      const short = full.subarray(0, bytes).toString('base64url');
      expect(() => sealer.unseal([v, n, ct, short].join('.'))).toThrow(CryptoError);
    }
    expect(sealer.unseal(sealed)).toBe('ss-tkn-truncated-tag-0123');
  });
});

describe('rotating DATA_ENCRYPTION_KEY: the previous key opens and matches, never seals', () => {
  const oldKey = randomBytes(32);
  const newKey = randomBytes(32);
  const before = createSealer(oldKey);
  const during = createSealer(newKey, oldKey);
  const after = createSealer(newKey);

  it('opens what either key sealed, seals under the new key only', () => {
    const old = before.seal('tok_before_rotation_0123');
    expect(during.unseal(old)).toBe('tok_before_rotation_0123');
    const fresh = during.seal('tok_during_rotation_0123');
    expect(after.unseal(fresh)).toBe('tok_during_rotation_0123');
    expect(() => before.unseal(fresh)).toThrow(/does not open/);
    expect(() => during.unseal(createSealer(randomBytes(32)).seal('x'))).toThrow(
      /opens with neither DATA_ENCRYPTION_KEY nor DATA_ENCRYPTION_KEY_PREVIOUS/,
    );
    // The refusal names the variables, never a key.
    for (const s of [during, before]) {
      try {
        s.unseal(createSealer(randomBytes(32)).seal('tok_foreign_0123456789'));
        expect.unreachable();
      } catch (err) {
        const text = `${String(err)} ${JSON.stringify(err)} ${String((err as Error).cause)}`;
        for (const key of [oldKey, newKey]) {
          expect(text).not.toContain(key.toString('hex'));
          expect(text).not.toContain(key.toString('base64'));
        }
        expect(text).not.toContain('tok_foreign_0123456789');
      }
    }
  });

  it('reseal: a new value for what the previous key sealed, nothing for the current key, an error for neither', () => {
    const old = before.seal('tok_reseal_0123456789');
    const moved = during.reseal(old);
    expect(moved).toBeDefined();
    expect(moved).not.toBe(old);
    expect(after.unseal(moved!)).toBe('tok_reseal_0123456789');
    expect(during.reseal(moved!)).toBeUndefined();
    expect(() => during.reseal(createSealer(randomBytes(32)).seal('x'))).toThrow(CryptoError);
    expect(() => during.reseal('not-a-sealed-value')).toThrow(/malformed/);
    // Without a previous key nothing can be moved: a foreign value is an error, not "current".
    expect(() => after.reseal(old)).toThrow(/does not open/);
  });

  it('request digests: made under the new key, matched under either', () => {
    const canonical = '{"type":"charge","amount":100}';
    const old = createRequestHasher(oldKey).digest(canonical);
    const hasher = createRequestHasher(newKey, oldKey);
    const fresh = hasher.digest(canonical);
    expect(fresh).toBe(createRequestHasher(newKey).digest(canonical));
    expect(fresh).not.toBe(old);
    expect(hasher.matches(old, canonical)).toBe(true);
    expect(hasher.matches(fresh, canonical)).toBe(true);
    expect(hasher.matches(old, `${canonical} `)).toBe(false);
    expect(createRequestHasher(newKey).matches(old, canonical)).toBe(false);
    expect(hasher.matches('', canonical)).toBe(false);
    // The whole digest is compared, in constant time, under each key it may be made under.
    expect(hasher.matches(fresh.slice(0, 32), canonical)).toBe(false);
    expect(hasher.matches(`${fresh.slice(0, 32)}${old.slice(32)}`, canonical)).toBe(false);
    expect(hasher.matches(`${old.slice(0, 32)}${fresh.slice(32)}`, canonical)).toBe(false);
    compared.calls = 0;
    expect(hasher.matches(createRequestHasher(randomBytes(32)).digest(canonical), canonical)).toBe(
      false,
    );
    expect(compared.calls).toBe(2);
  });

  it("the console's CSRF tokens: made under the new key, a form opened before the change still submits", () => {
    const old = csrfTokens(oldKey).tokenFor('console:ops');
    const csrf = csrfTokens(newKey, oldKey);
    expect(csrf.matches('console:ops', old)).toBe(true);
    expect(csrf.matches('console:ops', csrf.tokenFor('console:ops'))).toBe(true);
    expect(csrf.tokenFor('console:ops')).toBe(csrfTokens(newKey).tokenFor('console:ops'));
    expect(csrf.matches('console:other', old)).toBe(false);
    expect(csrfTokens(newKey).matches('console:ops', old)).toBe(false);
    // Compared under every key, whichever matches.
    for (const token of [csrf.tokenFor('console:ops'), old, 'x'.repeat(old.length)]) {
      compared.calls = 0;
      csrf.matches('console:ops', token);
      expect(compared.calls, token).toBe(2);
    }
  });
});
