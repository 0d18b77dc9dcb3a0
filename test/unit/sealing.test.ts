/** Sealing (infra/sealing.ts): round trip, tamper detection, a fresh nonce for every seal. */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createSealer } from '../../src/infra/sealing.ts';
import { CryptoError } from '../../src/kernel/errors.ts';

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
