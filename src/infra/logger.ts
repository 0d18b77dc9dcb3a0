/**
 * pino JSON logs, one line per meaningful event. Secrets and card data are removed twice: by
 * key (pino `redact`, any of the names below at the top level or one level down) and by value
 * (long digit runs that look like card numbers are masked in every string that is logged).
 */
import { pino, type Logger, type LoggerOptions, type DestinationStream } from 'pino';

export type { Logger };

/** Keys whose values never reach a log line. Matched at depth 0, 1 and 2. */
export const REDACTED_KEYS = [
  'authorization',
  'Authorization',
  'secretKey',
  'secret_key',
  'SAYSWITCH_SECRET_KEY',
  'encryptionKey',
  'encryption_key',
  'SAYSWITCH_ENCRYPTION_KEY',
  'encryptionIv',
  'encryption_iv',
  'iv',
  'key',
  'SAYSWITCH_ENCRYPTION_IV',
  'DATA_ENCRYPTION_KEY',
  'dataEncryptionKey',
  'API_TOKEN',
  'apiToken',
  'NOTIFY_SECRET',
  'notifySecret',
  'DASHBOARD_PASSWORD',
  'password',
  'card',
  'cardToken',
  'card_token',
  'cardTokenEnc',
  'number',
  'cardNumber',
  'card_number',
  'pan',
  'cvv',
  'CVV',
  'pin',
  'PIN',
  'payloadSignature',
  'payloadsignature',
  'x-billing-signature',
];

function redactPaths(): string[] {
  const paths: string[] = [];
  for (const k of REDACTED_KEYS) {
    const q = /^[A-Za-z_$][\w$]*$/.test(k) ? k : `["${k}"]`;
    const dot = q.startsWith('[') ? q : `.${q}`;
    paths.push(q, `*${dot}`, `*.*${dot}`);
  }
  return paths;
}

/** 13–19 digits, optionally grouped by spaces or dashes: the shape of a card number. */
const PAN = /\b(?:\d[ -]?){12,18}\d\b/g;

/** The Luhn checksum every card number satisfies (and nine in ten other digit runs do not). */
function luhn(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = Number(digits[digits.length - 1 - i]);
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

/**
 * Masks card numbers in free text (messages, error strings): digit runs of card length that pass
 * the Luhn check. Timestamps and ids of the same length mostly fail it and stay readable.
 */
export function maskPans(s: string): string {
  return s.replace(PAN, (m) => {
    const digits = m.replace(/\D/g, '');
    return luhn(digits) ? `[PAN …${digits.slice(-4)}]` : m;
  });
}

function maskDeep(value: unknown, depth: number): unknown {
  if (typeof value === 'string') return maskPans(value);
  if (depth > 4 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => maskDeep(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = maskDeep(v, depth + 1);
  return out;
}

export interface CreateLoggerOptions {
  level?: string;
  name?: string;
  /** Where lines go; stdout when omitted. Tests pass a memory stream. */
  destination?: DestinationStream;
}

/** Builds the process logger. Every role and adapter gets a child of it. */
export function createLogger(opts: CreateLoggerOptions = {}): Logger {
  const options: LoggerOptions = {
    level: opts.level ?? 'info',
    base: { service: opts.name ?? 'sayswitch-billing' },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: redactPaths(), censor: '[REDACTED]' },
    formatters: {
      level: (label) => ({ level: label }),
      log: (obj) => maskDeep(obj, 0) as Record<string, unknown>,
    },
    hooks: {
      logMethod(args, method) {
        const masked = args.map((a) => (typeof a === 'string' ? maskPans(a) : a)) as typeof args;
        method.apply(this, masked);
      },
    },
    serializers: { err: pino.stdSerializers.err },
  };
  return opts.destination ? pino(options, opts.destination) : pino(options);
}
