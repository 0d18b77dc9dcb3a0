/**
 * `POST /webhooks/sayswitch`: raw-body `payloadSignature` check (401 when missing or wrong, the
 * body never echoed or logged), a body-size limit (413), then a fast 200 after enqueueing a
 * reconcile check.
 */
import type { FastifyInstance } from 'fastify';
import { verifyWebhookSignature } from '../../infra/gateway/sayswitch/crypto.ts';
import { parseWebhook } from '../../infra/gateway/sayswitch/webhook.ts';
import { takeWebhook, type IntakeDeps } from '../../payments/webhook-intake.ts';
import { z } from 'zod';
import { apiError } from '../errors.ts';
import { errorResponses, parsedByHandler } from '../schemas.ts';

export interface WebhookRouteDeps extends IntakeDeps {
  secretKey: string;
  maxBytes: number;
}

export async function registerWebhookRoutes(app: FastifyInstance, deps: WebhookRouteDeps) {
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
            'secret key) before it is read; then a reconcile check is enqueued and 200 answered.',
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
        if (!verifyWebhookSignature(raw, signature, deps.secretKey)) {
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
        const result = await takeWebhook(deps, parseWebhook(raw));
        return reply.code(200).send({ received: true, result });
      },
    );
    registered();
  });
}
