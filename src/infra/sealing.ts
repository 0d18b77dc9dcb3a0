/**
 * Sealing of card tokens at rest: AES-256-GCM with DATA_ENCRYPTION_KEY, random 12-byte nonce,
 * `v1.<nonce b64url>.<ciphertext b64url>.<tag b64url>`. Tampering or a wrong key fails loudly.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { CryptoError } from '../kernel/errors.ts';
import type { Sealer } from '../kernel/ports.ts';

/**
 * Nonces drawn from the CSPRNG 4 KiB at a time and each handed out once (as Node pools the entropy
 * of randomUUID): a randomBytes call per seal cost about 2 µs of CPU, a third of a seal, on every
 * payment the API creates (issue 18). The pool is module state, so no two sealers share a nonce
 * either; GCM needs them unique under one key, which 96 random bits are.
 */
let noncePool = Buffer.alloc(0);
let nonceAt = 0;

/** The nonce and authentication tag lengths seal() writes, the only ones unseal() opens. */
const NONCE_BYTES = 12;
const TAG_BYTES = 16;

function nextNonce(): Buffer {
  if (nonceAt + NONCE_BYTES > noncePool.length) {
    noncePool = randomBytes(4096);
    nonceAt = 0;
  }
  nonceAt += NONCE_BYTES;
  return noncePool.subarray(nonceAt - NONCE_BYTES, nonceAt);
}

export function createSealer(key: Buffer): Sealer {
  if (key.length !== 32) throw new RangeError('DATA_ENCRYPTION_KEY must be 32 bytes');
  return {
    seal(plaintext) {
      const nonce = nextNonce();
      const c = createCipheriv('aes-256-gcm', key, nonce);
      const ct = Buffer.concat([c.update(plaintext, 'utf8'), c.final()]);
      return `v1.${nonce.toString('base64url')}.${ct.toString('base64url')}.${c.getAuthTag().toString('base64url')}`;
    },
    unseal(sealed) {
      const parts = sealed.split('.');
      if (parts.length !== 4 || parts[0] !== 'v1')
        throw new CryptoError('sealed value is malformed', 'unseal_failed');
      const nonce = Buffer.from(parts[1] ?? '', 'base64url');
      const tag = Buffer.from(parts[3] ?? '', 'base64url');
      // GCM takes any tag of 4 to 16 bytes unless told its length: a tag cut short (4 bytes: one
      // forgery in 2^32 tries) would open. Only what seal() writes is accepted.
      if (nonce.length !== NONCE_BYTES || tag.length !== TAG_BYTES)
        throw new CryptoError('sealed value is malformed', 'unseal_failed');
      try {
        const d = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
        d.setAuthTag(tag);
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
