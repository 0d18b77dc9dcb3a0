/**
 * `billing sandbox`: the local Sayswitch simulator (docs/product.md §9). Runs until SIGINT or
 * SIGTERM; "listening on …" is printed at start (stderr with --json, whose one document comes at
 * the end).
 */
import { InvalidArgumentError, Option, type Command } from 'commander';
import { ZodError } from 'zod';
import {
  CARD_FLOWS,
  COLLECTION_WEBHOOKS,
  DUPLICATE_ANSWERS,
  NOT_FOUND_ANSWERS,
  PAYOUT_FLOWS,
  PROFILE_NAMES,
  REFUND_CALLER_REFERENCES,
  REFUND_FAULTS,
  REFUND_PARTIALS,
  STATUS_VOCABULARIES,
  resolveSandboxOptions,
  startSandbox,
  type SandboxOptionsInput,
} from '../../sandbox/index.ts';
import type { CliContext } from '../context.ts';
import { UsageError } from '../errors.ts';
import { parseIntFlag } from '../parsers.ts';

function parseRate(value: string): number {
  const n = Number(value);
  if (!/^\d*\.?\d+$/.test(value) || n < 0 || n > 1)
    throw new InvalidArgumentError('--fault-rate must be between 0 and 1');
  return n;
}

function parseScale(value: string): number {
  const n = Number(value);
  if (!/^\d*\.?\d+$/.test(value) || n <= 0 || n > 1000)
    throw new InvalidArgumentError('--time-scale must be a number above 0 (at most 1000)');
  return n;
}

/** What commander hands the action; the unknowns and the profile-set flags have no default. */
export interface SandboxFlags {
  port: number;
  host: string;
  secretKey: string;
  encryptionKey?: string;
  encryptionIv?: string;
  encryptionEncoding: 'hex' | 'base64';
  settleMs: number;
  hangMs: number;
  latencyMs: number;
  faultRate: number;
  seed: number;
  webhookUrl?: string;
  webhookDuplicates?: number;
  webhookShuffle?: boolean;
  profile?: SandboxOptionsInput['profile'];
  duplicateReference?: SandboxOptionsInput['duplicateReference'];
  lookupLagMs?: number;
  notFound?: SandboxOptionsInput['notFound'];
  cardFlow?: SandboxOptionsInput['cardFlow'];
  threeDsExpiryMs?: number;
  payoutFlow?: SandboxOptionsInput['payoutFlow'];
  collectionWebhook?: SandboxOptionsInput['collectionWebhook'];
  refundPartial?: SandboxOptionsInput['refundPartial'];
  refundCallerReference?: SandboxOptionsInput['refundCallerReference'];
  refundSettleMs?: number;
  statusWords?: SandboxOptionsInput['statusWords'];
  refundFault?: SandboxOptionsInput['refundFault'];
  timeScale?: number;
}

/**
 * Maps flags onto `startSandbox` options. Flags a profile may set are passed only when given,
 * so an explicit flag overrides the profile and an absent one leaves it in charge.
 */
export function sandboxOptionsFromFlags(f: SandboxFlags): SandboxOptionsInput {
  if ((f.encryptionKey === undefined) !== (f.encryptionIv === undefined)) {
    throw new UsageError('--encryption-key and --encryption-iv go together');
  }
  if (f.encryptionEncoding !== 'hex' && f.encryptionEncoding !== 'base64') {
    throw new UsageError('--encryption-encoding must be hex or base64');
  }
  const given = Object.fromEntries(
    (
      [
        'webhookUrl',
        'webhookDuplicates',
        'webhookShuffle',
        'profile',
        'duplicateReference',
        'lookupLagMs',
        'notFound',
        'cardFlow',
        'threeDsExpiryMs',
        'payoutFlow',
        'collectionWebhook',
        'refundPartial',
        'refundCallerReference',
        'refundSettleMs',
        'statusWords',
        'refundFault',
        'timeScale',
      ] as const
    )
      .filter((k) => f[k] !== undefined)
      .map((k) => [k, f[k]]),
  ) as SandboxOptionsInput;
  return {
    port: f.port,
    host: f.host,
    secretKey: f.secretKey,
    ...(f.encryptionKey !== undefined && f.encryptionIv !== undefined
      ? { encryption: { key: f.encryptionKey, iv: f.encryptionIv, encoding: f.encryptionEncoding } }
      : {}),
    settleMs: f.settleMs,
    hangMs: f.hangMs,
    latencyMs: f.latencyMs,
    faultRate: f.faultRate,
    seed: f.seed,
    ...given,
  };
}

/**
 * The flag an option of `startSandbox` comes from: its path in kebab case (`webhookDuplicates`
 * → `--webhook-duplicates`, `encryption.key` → `--encryption-key`).
 */
export function flagOfOption(path: readonly PropertyKey[]): string {
  const name = path.map((p) => String(p).replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)).join('-');
  return `--${name}`;
}

/**
 * Checks the options as `startSandbox` will (its schema, the profile filled in) before anything
 * starts; a refused value is a usage error naming its flag (exit 2), not a ZodError.
 */
export function checkSandboxOptions(options: SandboxOptionsInput): void {
  try {
    resolveSandboxOptions(options);
  } catch (err) {
    if (!(err instanceof ZodError)) throw err;
    const lines = err.issues.map((i) => `${flagOfOption(i.path)}: ${i.message}`);
    throw new UsageError(lines, {
      details: err.issues.map((i) => ({ flag: flagOfOption(i.path), message: i.message })),
    });
  }
}

const choice = (flags: string, description: string, values: readonly string[]) =>
  new Option(flags, description).choices(values);

export function registerSandboxCommand(program: Command, ctx: CliContext) {
  program
    .command('sandbox')
    .description('run the local Sayswitch simulator')
    .option('--port <port>', 'port to listen on', parseIntFlag('--port'), 4010)
    .option('--host <host>', 'address to bind', '127.0.0.1')
    .option('--secret-key <key>', 'Bearer key clients must send; signs webhooks', 'sk_test_sandbox')
    .option('--encryption-key <key>', 'AES-256-CBC key: requests and responses are encrypted')
    .option('--encryption-iv <iv>', 'AES-256-CBC IV (with --encryption-key)')
    .option('--encryption-encoding <enc>', 'hex or base64', 'hex')
    .option(
      '--settle-ms <ms>',
      'delay before 52/53 settle, 58 reverses and an async payout ends',
      parseIntFlag('--settle-ms'),
      2000,
    )
    .option('--hang-ms <ms>', 'how long a 55 response is held', parseIntFlag('--hang-ms'), 60_000)
    .option('--latency-ms <ms>', 'delay added to every response', parseIntFlag('--latency-ms'), 0)
    .option('--fault-rate <p>', 'probability a submission behaves as 54/55/56/57', parseRate, 0)
    .option(
      '--seed <n>',
      'seed of the fault injection and webhook shuffling',
      parseIntFlag('--seed'),
      1,
    )
    .option('--webhook-url <url>', 'where to POST signed webhooks')
    .option(
      '--webhook-duplicates <n>',
      'deliver each webhook n times (default 1, or the profile)',
      parseIntFlag('--webhook-duplicates'),
    )
    .option('--webhook-shuffle', 'deliver webhooks in a seeded random order')
    .option('--no-webhook-shuffle', 'deliver webhooks in order, whatever the profile says')
    .addOption(
      choice(
        '--profile <name>',
        'a named combination of the options below, which override it (default: default; ' +
          'docs/sayswitch-wire.md, "The matrix of unknowns")',
        PROFILE_NAMES,
      ),
    )
    .addOption(
      choice('--duplicate-reference <answer>', 'what a reused reference gets', DUPLICATE_ANSWERS),
    )
    .option(
      '--lookup-lag-ms <ms>',
      'verify and payout lookup answer not-found this long after a reference is recorded',
      parseIntFlag('--lookup-lag-ms'),
    )
    .addOption(choice('--not-found <answer>', 'how a lookup answers not-found', NOT_FOUND_ANSWERS))
    .addOption(choice('--card-flow <flow>', 'settled, or a 3-D Secure challenge', CARD_FLOWS))
    .option(
      '--three-ds-expiry-ms <ms>',
      'a 3-D Secure challenge nobody ends expires (failed) after this long',
      parseIntFlag('--three-ds-expiry-ms'),
    )
    .addOption(
      choice('--payout-flow <flow>', 'final status at once, or pending then final', PAYOUT_FLOWS),
    )
    .addOption(
      choice('--collection-webhook <shape>', 'charge webhook body shape', COLLECTION_WEBHOOKS),
    )
    .addOption(
      choice(
        '--refund-partial <answer>',
        'a refund of part of a transaction: refunded, refunded whole, or refused',
        REFUND_PARTIALS,
      ),
    )
    .addOption(
      choice(
        '--refund-caller-reference <answer>',
        "whether a refund's merchant_reference is kept, echoed and deduplicated",
        REFUND_CALLER_REFERENCES,
      ),
    )
    .option(
      '--refund-settle-ms <ms>',
      'how long a refund stays pending before it succeeds',
      parseIntFlag('--refund-settle-ms'),
    )
    .addOption(
      choice(
        '--status-words <vocabulary>',
        'transaction and payout status words: the documented ones, or successful/declined/' +
          'cancelled/processing/abandoned',
        STATUS_VOCABULARIES,
      ),
    )
    .addOption(
      choice(
        '--refund-fault <fault>',
        "a fault on each transaction's first refund request (default none)",
        REFUND_FAULTS,
      ),
    )
    .option(
      '--time-scale <factor>',
      'multiplies the lookup lag and the 3-D Secure expiry (e.g. 0.001)',
      parseScale,
    )
    .action(async (f: SandboxFlags) => {
      const options = sandboxOptionsFromFlags(f);
      checkSandboxOptions(options);
      const logger = ctx.logger();
      // Listening for SIGTERM/SIGINT before anything starts: a signal during start-up stops it
      // cleanly once it is up, instead of killing the process (Node's default).
      const stopSignal = ctx.untilSignal();
      const sandbox = await startSandbox(options, { logger });
      ctx
        .out()
        .info(
          `Sayswitch sandbox listening on ${sandbox.url} (profile ${sandbox.profile}; ledger: ${sandbox.url}/__sandbox/ledger)`,
        );
      const signal = await stopSignal;
      await sandbox.close();
      // The listening line above is on stderr with --json; the document comes when it stops.
      if (ctx.out().json) {
        ctx.out().result({ url: sandbox.url, profile: sandbox.profile, signal, stopped: true });
      }
    });
}
