/** Sealing (infra/sealing.ts): round trip, tamper detection, a fresh nonce for every seal. */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createSealer } from '../../src/infra/sealing.ts';

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
