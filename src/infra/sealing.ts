/**
 * Sealing of card tokens at rest: AES-256-GCM with DATA_ENCRYPTION_KEY, random 12-byte nonce,
 * `v1.<nonce b64url>.<ciphertext b64url>.<tag b64url>`. Tampering or a wrong key fails loudly.
 * And the request digests of idempotency, HMAC-SHA256 under the same key. Both accept
 * DATA_ENCRYPTION_KEY_PREVIOUS during a rotation (docs/operations.md "Rotating secrets").
 */
import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  randomBytes,
  timingSafeEqual,
} from 'node:crypto';
import { CryptoError } from '../kernel/errors.ts';
import type { RequestHasher, Sealer } from '../kernel/ports.ts';

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

function checkKey(key: Buffer, variable: string): void {
  if (key.length !== 32) throw new RangeError(`${variable} must be 32 bytes`);
}

/** The parts of a sealed value, or a CryptoError when it is not one seal() wrote. */
function parse(sealed: string): { nonce: Buffer; ct: Buffer; tag: Buffer } {
  const parts = sealed.split('.');
  if (parts.length !== 4 || parts[0] !== 'v1')
    throw new CryptoError('sealed value is malformed', 'unseal_failed');
  const nonce = Buffer.from(parts[1] ?? '', 'base64url');
  const tag = Buffer.from(parts[3] ?? '', 'base64url');
  // GCM takes any tag of 4 to 16 bytes unless told its length: a tag cut short (4 bytes: one
  // forgery in 2^32 tries) would open. Only what seal() writes is accepted.
  if (nonce.length !== NONCE_BYTES || tag.length !== TAG_BYTES)
    throw new CryptoError('sealed value is malformed', 'unseal_failed');
  return { nonce, ct: Buffer.from(parts[2] ?? '', 'base64url'), tag };
}

/** The plaintext under `key`, or undefined when the authentication fails (another key). */
function open(key: Buffer, p: { nonce: Buffer; ct: Buffer; tag: Buffer }): string | undefined {
  try {
    const d = createDecipheriv('aes-256-gcm', key, p.nonce, { authTagLength: TAG_BYTES });
    d.setAuthTag(p.tag);
    return Buffer.concat([d.update(p.ct), d.final()]).toString('utf8');
  } catch {
    return undefined;
  }
}

/**
 * The sealer of DATA_ENCRYPTION_KEY (`key`), and during a rotation of DATA_ENCRYPTION_KEY_PREVIOUS
 * (`previous`): seals under `key` only; opens with `key`, then `previous`. GCM's tag tells the keys
 * apart (a wrong key fails authentication), so the sealed format carries no key id and values
 * sealed before the rotation keep their form.
 */
export function createSealer(key: Buffer, previous?: Buffer): Sealer {
  checkKey(key, 'DATA_ENCRYPTION_KEY');
  if (previous) checkKey(previous, 'DATA_ENCRYPTION_KEY_PREVIOUS');
  const seal = (plaintext: string): string => {
    const nonce = nextNonce();
    const c = createCipheriv('aes-256-gcm', key, nonce);
    const ct = Buffer.concat([c.update(plaintext, 'utf8'), c.final()]);
    return `v1.${nonce.toString('base64url')}.${ct.toString('base64url')}.${c.getAuthTag().toString('base64url')}`;
  };
  const refused = () =>
    new CryptoError(
      previous
        ? 'sealed value opens with neither DATA_ENCRYPTION_KEY nor DATA_ENCRYPTION_KEY_PREVIOUS'
        : 'sealed value does not open with DATA_ENCRYPTION_KEY',
      'unseal_failed',
    );
  return {
    seal,
    unseal(sealed) {
      const p = parse(sealed);
      const plain = open(key, p) ?? (previous ? open(previous, p) : undefined);
      if (plain === undefined) throw refused();
      return plain;
    },
    reseal(sealed) {
      const p = parse(sealed);
      if (open(key, p) !== undefined) return undefined;
      const plain = previous ? open(previous, p) : undefined;
      if (plain === undefined) throw refused();
      return seal(plain);
    },
  };
}

/**
 * Request digests under DATA_ENCRYPTION_KEY (`key`); during a rotation a digest under
 * DATA_ENCRYPTION_KEY_PREVIOUS (`previous`) matches too. Compared in constant time.
 */
export function createRequestHasher(key: Buffer, previous?: Buffer): RequestHasher {
  checkKey(key, 'DATA_ENCRYPTION_KEY');
  if (previous) checkKey(previous, 'DATA_ENCRYPTION_KEY_PREVIOUS');
  const under = (k: Buffer, canonical: string) =>
    createHmac('sha256', k).update(canonical).digest('hex');
  const same = (a: string, b: string) =>
    a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));
  return {
    digest: (canonical) => under(key, canonical),
    matches(stored, canonical) {
      if (same(stored, under(key, canonical))) return true;
      return previous !== undefined && same(stored, under(previous, canonical));
    },
  };
}
