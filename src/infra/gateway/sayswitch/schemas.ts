/**
 * Zod schemas for every Sayswitch response the adapter reads (docs/sayswitch-wire.md). Both
 * envelopes (`success` and `status`) are accepted and unknown keys are kept, because the real API
 * adds fields freely. Amounts may be decimal strings or numbers and come out as minor units.
 * A response that does not fit is not understood: transport.ts turns that into outcome_unknown.
 */
import { z } from 'zod';
import { parseGatewayAmount, type AmountMinor } from '../../../kernel/money.ts';

/** A major-unit amount as Sayswitch sends it (`"1500.50"` or `1500.5`), parsed to minor units. */
const gatewayAmountSchema = z.union([z.string(), z.number()]).transform((v, ctx): AmountMinor => {
  const parsed = parseGatewayAmount(v);
  if (parsed === undefined) {
    ctx.addIssue({ code: 'custom', message: 'not a gateway amount' });
    return z.NEVER;
  }
  return parsed;
});

/** An optional amount: absent or null both mean "not given". */
const optionalAmount = gatewayAmountSchema.nullish().transform((v) => v ?? undefined);

/** Free text the gateway may send as null. */
const optionalText = z
  .string()
  .nullish()
  .transform((v) => v ?? undefined);

/** Ids come back as strings or numbers. */
const optionalId = z
  .union([z.string(), z.number()])
  .nullish()
  .transform((v) => (v === null || v === undefined ? undefined : String(v)));

/** The two envelopes: `{ success, message }` and `{ status, message }`. */
const envelopeSchema = z.looseObject({
  success: z.boolean().optional(),
  status: z.boolean().optional(),
  message: optionalText,
  error: z.unknown().optional(),
  data: z.unknown().optional(),
});

/** `ok = body.success ?? body.status`; undefined when the body carries neither flag. */
export function envelopeOk(body: unknown): boolean | undefined {
  const parsed = envelopeSchema.safeParse(body);
  if (!parsed.success) return undefined;
  return parsed.data.success ?? parsed.data.status;
}

/** The `message` of an envelope, if it has one. */
export function envelopeMessage(body: unknown): string | undefined {
  const parsed = envelopeSchema.safeParse(body);
  return parsed.success ? parsed.data.message : undefined;
}

/** The 3DS / OTP continuation link: its presence means the charge waits on the customer. */
const linksSchema = z.looseObject({
  url: z.string(),
  method: z.string().optional(),
  payload: z.array(z.string()).optional(),
});
export type Links = z.infer<typeof linksSchema>;

/**
 * A reusable card authorization as `/api/v1/transaction/verify` documents it (sayswitch-api.md
 * §3.1): `authorization_code`, `reusable`, card details. Read leniently: a shape we do not know
 * reads as absent rather than failing the verify.
 */
const authorizationSchema = z
  .looseObject({
    authorization_code: z
      .string()
      .nullish()
      .transform((v) => (v ? v : undefined)),
    reusable: z.union([z.boolean(), z.string(), z.number()]).nullish(),
  })
  .transform((a) => ({
    authorization_code: a.authorization_code,
    // `false`, "false", 0 and "0" all say the code cannot be charged again.
    reusable: !(
      a.reusable === false ||
      a.reusable === 0 ||
      /^(?:false|0)$/i.test(String(a.reusable))
    ),
  }))
  .optional()
  .catch(undefined);

/** The S2S verify's top-level `card`: only its `token` (`"ss-tkn-…"` or null) is read. */
const cardSchema = z
  .looseObject({
    token: z
      .string()
      .nullish()
      .transform((v) => (v ? v : undefined)),
  })
  .optional()
  .catch(undefined);

/** A charge as returned by initialize and verify. `amount` = `requested_amount` + `fees`. */
const transactionDataSchema = z.looseObject({
  id: optionalId,
  reference: optionalText,
  amount: optionalAmount,
  requested_amount: optionalAmount,
  fees: optionalAmount,
  currency: optionalText,
  status: z.string(),
  gateway_response: optionalText,
  _links: linksSchema.optional(),
  authorization: authorizationSchema,
});
export type TransactionData = z.infer<typeof transactionDataSchema>;

/**
 * Charge initialize response. `data` is the transaction, or (3DS2) an HTML string with `_links`
 * at the top level, or (older OTP flow) an object carrying `_links` without a status.
 */
export const chargeResponseSchema = z.looseObject({
  success: z.boolean().optional(),
  status: z.boolean().optional(),
  message: optionalText,
  _links: linksSchema.optional(),
  data: z.union([
    transactionDataSchema,
    // Only without a status word: a transaction whose other fields do not parse (a fee with
    // three decimals) must fail the schema (outcome unknown), not pass here unparsed and be read
    // as a transaction with major-unit amounts.
    z.looseObject({ _links: linksSchema, paymentid: optionalId, status: z.null().optional() }),
    z.string(),
  ]),
});
export type ChargeResponse = z.infer<typeof chargeResponseSchema>;

/**
 * Verify by reference (200 only; not-found is decided in error-mapping/). Next to `data`, the
 * reusable authorization (`authorization`, `/api/v1/transaction/verify`) and the card (`card`,
 * S2S verify) are read for their reusable code or token.
 */
export const verifyResponseSchema = z.looseObject({
  success: z.boolean().optional(),
  status: z.boolean().optional(),
  message: optionalText,
  data: transactionDataSchema,
  authorization: authorizationSchema,
  card: cardSchema,
});
export type VerifyResponse = z.infer<typeof verifyResponseSchema>;

/** A payout as returned by bank_transfer and payout lookup. */
const payoutDataSchema = z.looseObject({
  id: optionalId,
  reference: optionalText,
  amount: optionalAmount,
  fee: optionalAmount,
  currency: optionalText,
  status: z.string(),
  gateway_response: optionalText,
});
export type PayoutData = z.infer<typeof payoutDataSchema>;

/** bank_transfer and payout lookup share one shape. */
export const payoutResponseSchema = z.looseObject({
  success: z.boolean().optional(),
  status: z.boolean().optional(),
  message: optionalText,
  data: payoutDataSchema,
});

/**
 * A refund as `POST /api/v1/refund`, its status lookup and its list show it (docs/refunds.md).
 * Only `refund_id`, `reference` (`RF_…`) and `status` are documented; the transaction's
 * reference, the amount and our `merchant_reference` are read when present.
 */
const refundDataSchema = z.looseObject({
  refund_id: optionalId,
  reference: optionalText,
  transaction_reference: optionalText,
  merchant_reference: optionalText,
  amount: optionalAmount,
  status: z.string(),
  message: optionalText,
});
export type RefundData = z.infer<typeof refundDataSchema>;

/** `POST /api/v1/refund` and `GET /api/v1/refund/status/{reference}`. */
export const refundResponseSchema = z.looseObject({
  success: z.boolean().optional(),
  status: z.boolean().optional(),
  message: optionalText,
  data: refundDataSchema,
});

/** `GET /api/v1/refund`: a list, bare or paginated (`data.data`, as the wallet ledger is). */
export const refundListResponseSchema = z.looseObject({
  success: z.boolean().optional(),
  status: z.boolean().optional(),
  message: optionalText,
  data: z.union([z.array(refundDataSchema), z.looseObject({ data: z.array(refundDataSchema) })]),
});

const bankCode = z.union([z.string(), z.number()]).transform((v) => String(v));

export const bankListResponseSchema = z.looseObject({
  success: z.boolean().optional(),
  status: z.boolean().optional(),
  message: optionalText,
  currency: optionalText,
  data: z.array(z.looseObject({ bankName: z.string(), bankCode })),
});

/** Account name resolution: `data` is the name itself, a string. */
export const accountNameResponseSchema = z.looseObject({
  success: z.boolean().optional(),
  status: z.boolean().optional(),
  message: optionalText,
  data: z.string().min(1),
});

/**
 * A wallet figure. The docs' sample shows `pending: "-10.12"`; the domain has no negative amounts,
 * so a negative or unparsable `pending` reads as 0 rather than failing the whole balance call.
 */
const lenientNonNegativeAmount = z.unknown().transform((v): AmountMinor => {
  if (typeof v !== 'string' && typeof v !== 'number') return 0 as AmountMinor;
  return parseGatewayAmount(v) ?? (0 as AmountMinor);
});

export const walletBalanceResponseSchema = z.looseObject({
  success: z.boolean().optional(),
  status: z.boolean().optional(),
  message: optionalText,
  data: z.looseObject({
    currency: optionalText,
    balance: gatewayAmountSchema,
    pending: lenientNonNegativeAmount,
  }),
});

/** The encrypted wire form of any body when payload encryption is on: exactly `{ "data": "…" }`. */
export const encryptedEnvelopeSchema = z.strictObject({ data: z.string() });

/** A text field of a webhook: anything that is not a string reads as absent. */
const lenientText = z.string().optional().catch(undefined);

/**
 * The fields a webhook's kind and status are read from, in both shapes (docs/sayswitch-wire.md
 * "Webhooks"): `{ notify, notifyType, data }` and the documented `{ id, type, created, data }`.
 * Every field is optional; the reference is found in webhook.ts.
 */
export const webhookBodySchema = z.looseObject({
  notify: lenientText,
  notifyType: lenientText,
  type: lenientText,
  event: lenientText,
  data: z.looseObject({ status: lenientText }).optional().catch(undefined),
});
