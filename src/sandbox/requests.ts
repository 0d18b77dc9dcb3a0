/** Request bodies the sandbox accepts, as zod schemas (docs/sayswitch-wire.md, "Endpoints"). */
import { z } from 'zod';
import { CHARGE_CURRENCIES, PAYOUT_CURRENCIES, parseGatewayAmount } from '../kernel/money.ts';

const reference = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1 to 64 characters of letters, digits, "_" and "-"');

const amount = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const minor = parseGatewayAmount(v);
  if (minor === undefined || minor === 0) {
    ctx.addIssue({ code: 'custom', message: 'must be a positive amount in major units' });
    return z.NEVER;
  }
  return minor;
});

const nonEmpty = z.string().min(1);

export const chargeSchema = z.object({
  amount,
  // Opaque card token: validated for presence only, never stored or echoed.
  card: nonEmpty,
  currency: z.enum(CHARGE_CURRENCIES),
  email: nonEmpty,
  reference,
  narration: z.string().optional(),
});

export const payoutSchema = z
  .object({
    account_name: nonEmpty,
    account_number: nonEmpty,
    amount,
    bank_code: nonEmpty,
    bank_name: nonEmpty,
    currency: z.enum(PAYOUT_CURRENCIES),
    narration: nonEmpty,
    reference,
    paymentMode: z.enum(['bank', 'momo']).optional(),
  })
  .refine((p) => p.currency === 'NGN' || p.paymentMode !== undefined, {
    message: 'is required for KES and GHS',
    path: ['paymentMode'],
  });

export const accountNameSchema = z.object({
  bank_code: nonEmpty,
  account_number: nonEmpty,
  currency: z.enum(PAYOUT_CURRENCIES),
});
