/** `billing sandbox`: the local Sayswitch simulator (docs/product.md §9). */
import { InvalidArgumentError, type Command } from 'commander';
import { startSandbox } from '../../sandbox/index.ts';
import type { CliContext } from '../context.ts';
import { parseIntFlag } from '../parsers.ts';

function parseRate(value: string): number {
  const n = Number(value);
  if (!/^\d*\.?\d+$/.test(value) || n < 0 || n > 1)
    throw new InvalidArgumentError('--fault-rate must be between 0 and 1');
  return n;
}

interface SandboxFlags {
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
  webhookDuplicates: number;
  webhookShuffle?: boolean;
}

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
      'delay before 52/53 settle and 58 reverses',
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
      'deliver each webhook n times',
      parseIntFlag('--webhook-duplicates'),
      1,
    )
    .option('--webhook-shuffle', 'deliver webhooks in a seeded random order')
    .action(async (f: SandboxFlags) => {
      if ((f.encryptionKey === undefined) !== (f.encryptionIv === undefined)) {
        throw new InvalidArgumentError('--encryption-key and --encryption-iv go together');
      }
      if (f.encryptionEncoding !== 'hex' && f.encryptionEncoding !== 'base64') {
        throw new InvalidArgumentError('--encryption-encoding must be hex or base64');
      }
      const logger = ctx.logger();
      const sandbox = await startSandbox(
        {
          port: f.port,
          host: f.host,
          secretKey: f.secretKey,
          ...(f.encryptionKey !== undefined && f.encryptionIv !== undefined
            ? {
                encryption: {
                  key: f.encryptionKey,
                  iv: f.encryptionIv,
                  encoding: f.encryptionEncoding,
                },
              }
            : {}),
          settleMs: f.settleMs,
          hangMs: f.hangMs,
          latencyMs: f.latencyMs,
          faultRate: f.faultRate,
          seed: f.seed,
          ...(f.webhookUrl !== undefined ? { webhookUrl: f.webhookUrl } : {}),
          webhookDuplicates: f.webhookDuplicates,
          webhookShuffle: f.webhookShuffle ?? false,
        },
        { logger },
      );
      ctx
        .out()
        .info(
          `Sayswitch sandbox listening on ${sandbox.url} (ledger: ${sandbox.url}/__sandbox/ledger)`,
        );
      await ctx.untilSignal();
      await sandbox.close();
    });
}
