/**
 * Sayswitch payload encryption (AES-256-CBC, static IV, PKCS#7) and signatures (HMAC-SHA512).
 * Byte layout follows docs/sayswitch-wire.md and the official code samples: key and IV are the
 * UTF-8 bytes of the dashboard strings, ciphertext is lowercase hex unless configured as base64.
 * Shared by the adapter and the sandbox, so the two cannot drift apart.
 */
import { createCipheriv, createDecipheriv, createHmac, timingSafeEqual } from 'node:crypto';
import { CryptoError } from '../../../kernel/errors.ts';

type PayloadEncoding = 'hex' | 'base64';

export type PayloadCryptoConfig = {
  key: string;
  iv: string;
  encoding: PayloadEncoding;
  /** Called when the key or IV is not the exact length and is padded or truncated like PHP does. */
  onWarning?: (msg: string) => void;
};

const KEY_BYTES = 32;
const IV_BYTES = 16;
const BLOCK_BYTES = 16;

interface KeyMaterial {
  key: Buffer;
  iv: Buffer;
}

// Derived per config object so the PHP-compatibility warning fires once per config, not per call.
const materialCache = new WeakMap<PayloadCryptoConfig, KeyMaterial>();

/** Right-pads with 0x00 or truncates to `size` bytes, as PHP's openssl_encrypt does silently. */
function fitBytes(bytes: Buffer, size: number): Buffer {
  if (bytes.length === size) return bytes;
  if (bytes.length > size) return bytes.subarray(0, size);
  return Buffer.concat([bytes, Buffer.alloc(size - bytes.length)]);
}

function keyMaterial(cfg: PayloadCryptoConfig): KeyMaterial {
  const cached = materialCache.get(cfg);
  if (cached) return cached;
  const rawKey = Buffer.from(cfg.key, 'utf8');
  if (rawKey.length !== KEY_BYTES) {
    // Never include the key itself: only its length.
    cfg.onWarning?.(
      `encryption key is ${rawKey.length} bytes, not ${KEY_BYTES}; ${
        rawKey.length > KEY_BYTES ? 'truncating' : 'right-padding with 0x00'
      } like PHP openssl_encrypt`,
    );
  }
  // The samples take the first 16 characters; for the ASCII IVs the dashboard issues that equals
  // the first 16 UTF-8 bytes. Working in bytes keeps a multi-byte IV from producing a 17+ byte IV.
  const rawIv = Buffer.from(cfg.iv, 'utf8');
  if (rawIv.length < IV_BYTES) {
    cfg.onWarning?.(
      `encryption IV is ${rawIv.length} bytes, fewer than ${IV_BYTES}; right-padding with 0x00 like PHP openssl_encrypt`,
    );
  }
  const material = { key: fitBytes(rawKey, KEY_BYTES), iv: fitBytes(rawIv, IV_BYTES) };
  materialCache.set(cfg, material);
  return material;
}

/** Fatal on invalid UTF-8; decode() without `stream` starts afresh each call, so one is shared. */
const UTF8 = new TextDecoder('utf-8', { fatal: true });
const BASE64_CIPHERTEXT = /^[A-Za-z0-9+/]+={0,2}$/;

function decodeCiphertext(text: string, encoding: PayloadEncoding): Buffer {
  if (encoding === 'hex') {
    // Whole AES blocks of hex digits: Buffer.from stops at the first pair that is not hex, so a
    // decoded length of exactly half the text proves every character was one (the regex this
    // replaces, /^(?:[0-9a-fA-F]{32})+$/, was a visible cost per gateway answer).
    const bytes =
      text.length > 0 && text.length % (2 * BLOCK_BYTES) === 0
        ? Buffer.from(text, 'hex')
        : undefined;
    if (bytes === undefined || bytes.length * 2 !== text.length) {
      throw new CryptoError('ciphertext is not whole AES blocks of hex', 'crypto_bad_encoding');
    }
    return bytes;
  }
  if (!BASE64_CIPHERTEXT.test(text) || text.length % 4 !== 0) {
    throw new CryptoError('ciphertext is not base64', 'crypto_bad_encoding');
  }
  const bytes = Buffer.from(text, 'base64');
  if (bytes.length === 0 || bytes.length % BLOCK_BYTES !== 0) {
    throw new CryptoError('ciphertext is not whole AES blocks', 'crypto_bad_encoding');
  }
  return bytes;
}

/**
 * Encrypts a UTF-8 string to the configured encoding. Exposed for the sandbox and for tests that
 * compare against the openssl CLI; callers in the product use {@link encryptJson}.
 */
export function encryptText(plaintext: string, cfg: PayloadCryptoConfig): string {
  const { key, iv } = keyMaterial(cfg);
  const cipher = createCipheriv('aes-256-cbc', key, iv);
  const out = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return out.toString(cfg.encoding);
}

/**
 * Decrypts ciphertext in the configured encoding to a UTF-8 string.
 * @throws CryptoError when the text is not valid ciphertext, the padding is wrong (wrong key or
 * tampered bytes), or the plaintext is not valid UTF-8.
 */
export function decryptText(text: string, cfg: PayloadCryptoConfig): string {
  const bytes = decodeCiphertext(text, cfg.encoding);
  const { key, iv } = keyMaterial(cfg);
  let plain: Buffer;
  try {
    const decipher = createDecipheriv('aes-256-cbc', key, iv);
    plain = Buffer.concat([decipher.update(bytes), decipher.final()]);
  } catch (cause) {
    throw new CryptoError(
      'payload does not decrypt (wrong key or tampered)',
      'crypto_decrypt',
      cause,
    );
  }
  try {
    return UTF8.decode(plain);
  } catch (cause) {
    throw new CryptoError('decrypted payload is not UTF-8', 'crypto_decrypt', cause);
  }
}

/**
 * Encrypts `JSON.stringify(obj)`: the value of `{ "data": … }` in an encrypted request or response.
 * @throws CryptoError when the value has no JSON form (undefined, a function, a BigInt, a cycle).
 */
export function encryptJson(obj: unknown, cfg: PayloadCryptoConfig): string {
  let json: string | undefined;
  try {
    json = JSON.stringify(obj);
  } catch (cause) {
    throw new CryptoError('payload is not JSON-serialisable', 'crypto_encode', cause);
  }
  if (json === undefined)
    throw new CryptoError('payload is not JSON-serialisable', 'crypto_encode');
  return encryptText(json, cfg);
}

/**
 * Decrypts and parses an encrypted JSON payload. Either returns the whole parsed value or throws:
 * never a half-parsed object.
 * @throws CryptoError on anything that is not ciphertext of JSON under this key and IV.
 */
export function decryptJson(text: string, cfg: PayloadCryptoConfig): unknown {
  if (typeof text !== 'string')
    throw new CryptoError('ciphertext is not a string', 'crypto_bad_encoding');
  const plain = decryptText(text, cfg);
  try {
    return JSON.parse(plain) as unknown;
  } catch (cause) {
    throw new CryptoError('decrypted payload is not JSON', 'crypto_parse', cause);
  }
}

/**
 * Webhook signature: lowercase hex HMAC-SHA512 of the raw body bytes, keyed by the secret key.
 * Sign the bytes exactly as sent; re-serialised JSON would not match.
 */
export function signWebhook(rawBody: Buffer | string, secretKey: string): string {
  return createHmac('sha512', secretKey).update(rawBody).digest('hex');
}

const SHA512_HEX = /^[0-9a-fA-F]{128}$/;

/**
 * Checks a `payloadSignature` header against the raw body, in constant time. A missing, repeated,
 * malformed or wrong-length header is simply false; this never throws.
 */
export function verifyWebhookSignature(
  rawBody: Buffer | string,
  header: string | string[] | undefined,
  secretKey: string,
): boolean {
  return matchWebhookSignature(rawBody, header, [secretKey]) >= 0;
}

/**
 * Which of `secretKeys` signed the body (the index of the first that matches), or -1: what
 * {@link verifyWebhookSignature} checks, for several keys (SAYSWITCH_SECRET_KEY, then
 * SAYSWITCH_SECRET_KEY_PREVIOUS during a rotation). Every key's HMAC is computed and compared in
 * constant time whatever the outcome, with no early exit, so the time taken does not tell which
 * key matched, nor whether the first did.
 */
export function matchWebhookSignature(
  rawBody: Buffer | string,
  header: string | string[] | undefined,
  secretKeys: readonly string[],
): number {
  if (typeof header !== 'string') return -1;
  const given = header.trim();
  // The length check before timingSafeEqual is what makes it length-safe; it leaks only that the
  // header is not a SHA-512 hex digest, which is public knowledge.
  if (!SHA512_HEX.test(given)) return -1;
  const got = Buffer.from(given, 'hex');
  let matched = -1;
  secretKeys.forEach((key, i) => {
    const equal = timingSafeEqual(got, createHmac('sha512', key).update(rawBody).digest());
    if (equal && matched < 0) matched = i;
  });
  return matched;
}

function sortKeysDeep(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeysDeep);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value).sort())
      out[k] = sortKeysDeep((value as Record<string, unknown>)[k]);
    return out;
  }
  return value;
}

/**
 * The optional `Encryption` request header seen in third-party code (docs/sayswitch-wire.md
 * "Request signature header"): hex HMAC-SHA512 of `JSON.stringify(payload)` with object keys
 * sorted (recursively), keyed by the secret key. Sent only when `signRequests` is on; unverified
 * against the real API.
 */
export function signRequest(payload: unknown, secretKey: string): string {
  const json = JSON.stringify(sortKeysDeep(payload)) ?? '';
  return createHmac('sha512', secretKey).update(json, 'utf8').digest('hex');
}
