/**
 * pino JSON logs, one line per meaningful event. Secrets and card data are removed twice: by
 * key (pino `redact`, any of the names below at the top level or one level down) and by value
 * (long digit runs that look like card numbers are masked in every string that is logged).
 *
 * Redaction is by the secret's own name (`secretKey`, `apiToken`, `cardToken`, `password`,
 * `authorization`, …), never by a generic one: intent keys (`key`, `intentKey`), attempt
 * references (`reference`), subscription and batch ids are identifiers operators search the logs
 * by, so they are logged as they are. A secret that lives under a generic name is redacted by its
 * path instead (`encryption.key`, the Sayswitch payload key of the configuration), and code never
 * logs a secret under a generic name.
 */
import {
  pino,
  type Bindings,
  type ChildLoggerOptions,
  type DestinationStream,
  type Logger,
  type LoggerOptions,
} from 'pino';
import { mapStrings, replaceCardNumbers } from '../kernel/card-number.ts';

export type { Logger };

/**
 * Keys whose values never reach a log line. Matched at depth 0, 1 and 2. Each is the name of a
 * secret or of card data; identifiers (`key`, `intentKey`, `reference`, ids) must not be listed.
 */
export const REDACTED_KEYS = [
  'authorization',
  'Authorization',
  'secretKey',
  'secret_key',
  'SAYSWITCH_SECRET_KEY',
  'SAYSWITCH_SECRET_KEY_PREVIOUS',
  'previousSecretKey',
  'encryptionKey',
  'encryption_key',
  'SAYSWITCH_ENCRYPTION_KEY',
  'encryptionIv',
  'encryption_iv',
  'iv',
  'SAYSWITCH_ENCRYPTION_IV',
  'DATA_ENCRYPTION_KEY',
  'dataEncryptionKey',
  'DATA_ENCRYPTION_KEY_PREVIOUS',
  'previousDataEncryptionKey',
  'API_TOKEN',
  'apiToken',
  'API_TOKEN_PREVIOUS',
  'apiTokenPrevious',
  'API_READ_TOKEN',
  'apiReadToken',
  'API_READ_TOKEN_PREVIOUS',
  'apiReadTokenPrevious',
  'NOTIFY_SECRET',
  'notifySecret',
  'NOTIFY_SECRET_PREVIOUS',
  'previousSecret',
  'secret',
  'DASHBOARD_PASSWORD',
  'password',
  'card',
  'cardToken',
  'card_token',
  'cardTokenEnc',
  'cardTokenSealed',
  'authorization_code',
  'authorizationCode',
  'authorizationSealed',
  'token',
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
  'webhook-signature',
];

/**
 * Secrets under a generic name, redacted by their path (at depth 0, 1 and 2 like the keys above):
 * the configuration's Sayswitch payload encryption is `{ key, iv, encoding }`.
 */
export const REDACTED_PATHS = ['encryption.key', 'encryption.iv'];

function redactPaths(): string[] {
  const paths: string[] = [];
  for (const k of REDACTED_KEYS) {
    const q = /^[A-Za-z_$][\w$]*$/.test(k) ? k : `["${k}"]`;
    const dot = q.startsWith('[') ? q : `.${q}`;
    paths.push(q, `*${dot}`, `*.*${dot}`);
  }
  for (const p of REDACTED_PATHS) paths.push(p, `*.${p}`, `*.*.${p}`);
  return paths;
}

/**
 * Masks card numbers in free text (messages, error strings, identifiers), by the one rule of
 * kernel/card-number.ts: 12–19 digits, optionally grouped by spaces or dashes, standing on their
 * own (not preceded or followed by a letter or digit), that pass the Luhn check; each keeps its
 * last four digits. `_` separates like a space, so a card number used as (part of) an identifier
 * is masked too (`api_4111111111111111_1` logs as `api_[PAN …1111]_1`), while the parts our
 * identifiers are made of never are: the periods (`yyyymmdd`), attempt numbers and line numbers
 * of kernel/ids.ts are far shorter than 12 digits, and a digit run inside a word (`tok4111…`,
 * hex) is left alone. Timestamps and ids of card length mostly fail Luhn and stay readable; an id
 * component that is itself a Luhn-valid card-length number is indistinguishable from a card
 * number and is masked (decided: card data wins).
 */
export function maskPans(s: string): string {
  return replaceCardNumbers(s, (digits) => `[PAN …${digits.slice(-4)}]`);
}

/** How deep {@link serializeErrors} looks for an Error (`{ err }`, `{ a: { err } }`). */
const ERROR_DEPTH = 2;

/**
 * `value` with each Error in it (itself, or an object value down to {@link ERROR_DEPTH}) replaced
 * by pino's serialized form (`type`, `message`, `stack`, its own fields). The `log` formatter runs
 * before the serializers, and an Error's `message` and `stack` are not enumerable: masked as an
 * object, an Error kept only its own fields (`{ code }`), and the serializer never saw it.
 */
function serializeErrors(value: unknown, depth = 0): unknown {
  if (value instanceof Error) return pino.stdSerializers.err(value);
  if (depth >= ERROR_DEPTH || value === null || typeof value !== 'object' || Array.isArray(value))
    return value;
  let out: Record<string, unknown> | undefined;
  for (const [k, v] of Object.entries(value)) {
    const s = serializeErrors(v, depth + 1);
    if (s !== v) (out ??= { ...(value as Record<string, unknown>) })[k] = s;
  }
  return out ?? value;
}

/** Every string in a logged object, card numbers masked (an Error's message and stack too). */
function maskDeep(value: unknown): unknown {
  return mapStrings(serializeErrors(value), maskPans);
}

/**
 * The message pino takes from an Error when the call gives none (`log.error(err)`,
 * `log.error({ err })`): pino reads it after the hooks, so it would skip the masking. Given here.
 */
function errorMessage(args: readonly unknown[]): string | undefined {
  if (typeof args[1] === 'string') return undefined;
  const [first] = args;
  if (first instanceof Error) return first.message;
  if (first === null || typeof first !== 'object') return undefined;
  const { err, msg } = first as { err?: unknown; msg?: unknown };
  return msg === undefined && err instanceof Error ? err.message : undefined;
}

export interface CreateLoggerOptions {
  level?: string;
  name?: string;
  /**
   * Where lines go; stdout when omitted. Tests pass a memory stream; the `billing` CLI passes
   * {@link stderrDestination} (stdout carries command results only, docs/operations.md "Logs").
   */
  destination?: DestinationStream;
}

/**
 * Standard error, written synchronously (a line logged just before the process exits is not
 * lost): where every `billing` command, `billing start` included, writes its log lines.
 */
export function stderrDestination(): DestinationStream {
  return pino.destination({ dest: 2, sync: true });
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
      log: (obj) => maskDeep(obj) as Record<string, unknown>,
    },
    hooks: {
      logMethod(args, method) {
        const fromError = errorMessage(args);
        const all =
          fromError === undefined
            ? args
            : [args[0] instanceof Error ? { err: args[0] } : args[0], fromError, ...args.slice(1)];
        const masked = all.map((a) => (typeof a === 'string' ? maskPans(a) : a)) as typeof args;
        method.apply(this, masked);
      },
    },
    // The `log` formatter has serialized (and masked) every Error already; what reaches here as an
    // object is that form, which serializing again would retype as `Object`.
    serializers: { err: (e: unknown) => (e instanceof Error ? pino.stdSerializers.err(e) : e) },
  };
  const logger = opts.destination ? pino(options, opts.destination) : pino(options);
  // A child's bindings (`log.child({ batchId })`) are serialized once, when the child is made,
  // and never pass the `log` formatter (pino resets `formatters.bindings` for children). Every
  // child inherits this method from the root (pino makes children with `Object.create`).
  // Called with each child's own `this`, so a grandchild keeps its parent's bindings.
  const child = Reflect.get(logger, 'child') as unknown as (...args: unknown[]) => unknown;
  const maskedChild = function (this: Logger, bindings: Bindings, opts?: ChildLoggerOptions) {
    return Reflect.apply(child, this, [maskDeep(bindings), opts]);
  };
  logger.child = maskedChild as unknown as typeof logger.child;
  return logger;
}
