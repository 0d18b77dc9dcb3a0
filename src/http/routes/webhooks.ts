/**
 * `POST /webhooks/sayswitch`: raw-body `payloadSignature` check (401 when missing or wrong, the
 * body never echoed or logged), a body-size limit (413), then a fast 200 after enqueueing a
 * reconcile check. During a key rotation a signature with SAYSWITCH_SECRET_KEY_PREVIOUS passes
 * too (Sayswitch's retries of webhooks signed before the regeneration): a webhook only makes us
 * verify the payment with the gateway, it changes no state by itself.
 */
import type { FastifyInstance } from 'fastify';
import { matchWebhookSignature } from '../../infra/gateway/sayswitch/crypto.ts';
import { parseWebhook } from '../../infra/gateway/sayswitch/webhook.ts';
import { takeWebhook, type IntakeDeps } from '../../payments/webhook-intake.ts';
import { z } from 'zod';
import { apiError } from '../errors.ts';
import { errorResponses, parsedByHandler } from '../schemas.ts';

export interface WebhookRouteDeps extends IntakeDeps {
  secretKey: string;
  /** SAYSWITCH_SECRET_KEY_PREVIOUS: its signatures are accepted too, while it is set. */
  previousSecretKey?: string;
  maxBytes: number;
}

export async function registerWebhookRoutes(app: FastifyInstance, deps: WebhookRouteDeps) {
  const keys =
    deps.previousSecretKey === undefined
      ? [deps.secretKey]
      : [deps.secretKey, deps.previousSecretKey];
  // Encapsulated: only this route reads JSON as raw bytes (the signature covers the exact bytes).
  await app.register((scope, _opts, registered) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser(
      '*',
      { parseAs: 'buffer', bodyLimit: deps.maxBytes },
      (_req, body, done) => {
        done(null, body);
      },
    );
    scope.post(
      '/webhooks/sayswitch',
      {
        schema: {
          tags: ['webhooks'],
          summary: "Sayswitch's payment notifications (signed with payloadSignature)",
          description:
            'The raw body is checked against the payloadSignature header (HMAC-SHA512 with the ' +
            'secret key, or with SAYSWITCH_SECRET_KEY_PREVIOUS while that is set) before it is ' +
            'read; then a reconcile check is enqueued and 200 answered.',
          // Read as raw bytes (the signature covers them), parsed after the check.
          body: parsedByHandler(
            z.looseObject({}).describe("Sayswitch's webhook payload (docs/sayswitch-wire.md)"),
          ),
          response: {
            200: z.object({ received: z.literal(true), result: z.unknown() }),
            ...errorResponses(413),
          },
        },
      },
      async (req, reply) => {
        const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
        const signature = req.headers.payloadsignature;
        const matched = matchWebhookSignature(raw, signature, keys);
        if (matched < 0) {
          deps.logger.warn(
            {
              ip: req.ip,
              bytes: raw.length,
              signature: signature === undefined ? 'missing' : 'mismatch',
            },
            'webhook refused: bad payloadSignature',
          );
          return reply
            .code(401)
            .send(apiError('bad_signature', 'payloadSignature is missing or does not match'));
        }
        if (matched > 0) {
          // Tells the operator when SAYSWITCH_SECRET_KEY_PREVIOUS can go: once these stop.
          deps.logger.info(
            { ip: req.ip, bytes: raw.length },
            'webhook signed with SAYSWITCH_SECRET_KEY_PREVIOUS: accepted',
          );
        }
        const result = await takeWebhook(deps, parseWebhook(raw));
        return reply.code(200).send({ received: true, result });
      },
    );
    registered();
  });
}
