/**
 * Sandbox options (docs/product.md §9). Parsed once by `startSandbox`; the CLI maps its flags
 * (`--settle-ms`, `--fault-rate`, …) onto these fields after converting them to numbers/booleans.
 */
import { z } from 'zod';

const nonNegativeMs = z.number().int().nonnegative();

export const sandboxOptionsSchema = z.object({
  /** 0 picks a free port (tests). */
  port: z.number().int().min(0).max(65_535).default(4010),
  host: z.string().min(1).default('127.0.0.1'),
  /** The Bearer key clients must send; also the HMAC key of webhook signatures. */
  secretKey: z.string().min(1).default('sk_test_sandbox'),
  /** When present, requests and responses are AES-256-CBC payloads (docs/sayswitch-wire.md). */
  encryption: z
    .object({
      key: z.string().min(1),
      iv: z.string().min(1),
      encoding: z.enum(['hex', 'base64']).default('hex'),
    })
    .optional(),
  /** Delay before a pending 52/53 settles and a 58 payout is reversed. */
  settleMs: nonNegativeMs.default(2000),
  /** How long a 55 response is held: past any sane client timeout. */
  hangMs: nonNegativeMs.default(60_000),
  /** Added before every API response (not the `/__sandbox` endpoints). */
  latencyMs: nonNegativeMs.default(0),
  /** Probability that a submission behaves as 54, 55, 56 or 57 regardless of its amount. */
  faultRate: z.number().min(0).max(1).default(0),
  seed: z.number().int().default(1),
  webhookUrl: z.url({ protocol: /^https?$/ }).optional(),
  /** How many times each webhook is delivered (1 = once). */
  webhookDuplicates: z.number().int().min(1).max(100).default(1),
  /** Deliver the webhooks of a short window in a seeded random order. */
  webhookShuffle: z.boolean().default(false),
  /**
   * With shuffle on: how long events are collected into one batch before it is shuffled and
   * sent. The seeded order is reproducible when the same events fall into the same batch.
   */
  webhookShuffleWindowMs: nonNegativeMs.default(100),
});

/** What callers pass: every field optional, defaults filled by the schema. */
export type SandboxOptionsInput = z.input<typeof sandboxOptionsSchema>;
/** Parsed options with every default applied. */
export type SandboxOptions = z.output<typeof sandboxOptionsSchema>;
