/**
 * Sealing of card tokens at rest: AES-256-GCM with DATA_ENCRYPTION_KEY, random 12-byte nonce,
 * `v1.<nonce b64url>.<ciphertext b64url>.<tag b64url>`. Tampering or a wrong key fails loudly.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { CryptoError } from '../kernel/errors.ts';
import type { Sealer } from '../kernel/ports.ts';

export function createSealer(key: Buffer): Sealer {
  if (key.length !== 32) throw new RangeError('DATA_ENCRYPTION_KEY must be 32 bytes');
  return {
    seal(plaintext) {
      const nonce = randomBytes(12);
      const c = createCipheriv('aes-256-gcm', key, nonce);
      const ct = Buffer.concat([c.update(plaintext, 'utf8'), c.final()]);
      return `v1.${nonce.toString('base64url')}.${ct.toString('base64url')}.${c.getAuthTag().toString('base64url')}`;
    },
    unseal(sealed) {
      const parts = sealed.split('.');
      if (parts.length !== 4 || parts[0] !== 'v1')
        throw new CryptoError('sealed value is malformed', 'unseal_failed');
      try {
        const d = createDecipheriv('aes-256-gcm', key, Buffer.from(parts[1] ?? '', 'base64url'));
        d.setAuthTag(Buffer.from(parts[3] ?? '', 'base64url'));
        return Buffer.concat([
          d.update(Buffer.from(parts[2] ?? '', 'base64url')),
          d.final(),
        ]).toString('utf8');
      } catch (cause) {
        throw new CryptoError(
          'sealed value does not open with DATA_ENCRYPTION_KEY',
          'unseal_failed',
          cause,
        );
      }
    },
  };
}
