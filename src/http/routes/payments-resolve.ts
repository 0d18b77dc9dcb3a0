/**
 * `POST /payments/:key/resolve` — the path parameter is named `reference` like the other payment
 * routes' (one parameter node in the router) and takes a key or a reference — (docs/operations.md, "Resolving needs_review"): a person records
 * the outcome of a payment the machinery left in `needs_review` (or `unknown` past
 * RESOLVE_UNKNOWN_AFTER), after the gateway is asked again (payments/resolve.ts). A write route of
 * the access policy: only API_TOKEN, whose name is recorded as who resolved it.
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { resolvePayment, RESOLVE_OUTCOMES, type ResolveDeps } from '../../payments/resolve.ts';
import { toView } from '../../payments/view.ts';
import { apiError } from '../errors.ts';
import { errorResponses, idParam } from '../schemas.ts';
import { paymentViewSchema } from './payments.ts';

/** The body: what the operator says happened, why, and whether to override the gateway. */
export const resolveBodySchema = z.strictObject({
  outcome: z.enum(RESOLVE_OUTCOMES),
  note: z.string().trim().min(1, 'note is required: say what you checked').max(1_000),
  force: z.boolean().default(false),
});

export function registerResolveRoute(app: FastifyInstance, deps: ResolveDeps) {
  app.post<{ Params: { reference: string }; Body: z.output<typeof resolveBodySchema> }>(
    '/payments/:reference/resolve',
    {
      config: { invalid: { code: 'invalid_resolution', message: 'the resolution is invalid' } },
      schema: {
        tags: ['payments'],
        summary: 'Record the outcome of a payment in needs_review (the gateway is asked first)',
        params: idParam('reference', 'intent key or attempt reference'),
        body: resolveBodySchema,
        response: {
          200: paymentViewSchema.extend({
            resolution: z.object({ gateway: z.unknown(), forced: z.boolean() }),
          }),
          ...errorResponses(403, 404, 409, 422),
        },
      },
    },
    async (req, reply) => {
      const res = await resolvePayment(deps, req.params.reference, {
        ...req.body,
        by: req.tokenName ?? 'API_TOKEN',
      });
      switch (res.status) {
        case 'not_found':
          return reply
            .code(404)
            .send(
              apiError('not_found', `no payment with key or reference ${req.params.reference}`),
            );
        case 'not_resolvable':
          return reply.code(409).send(apiError('not_resolvable', res.message));
        case 'gateway_disagrees':
        case 'gateway_unconfirmed':
          return reply.code(409).send(apiError(res.status, res.message, { gateway: res.gateway }));
        case 'resolved':
          return reply.send({
            ...toView(res.intent, await deps.store.history(res.intent.key)),
            resolution: { gateway: res.gateway, forced: res.forced },
          });
      }
    },
  );
}
