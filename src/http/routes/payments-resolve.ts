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

/** The body: what the operator says happened, why, and whether to override the gateway. */
export const resolveBodySchema = z.strictObject({
  outcome: z.enum(RESOLVE_OUTCOMES),
  note: z.string().trim().min(1, 'note is required: say what you checked').max(1_000),
  force: z.boolean().default(false),
});

export function registerResolveRoute(app: FastifyInstance, deps: ResolveDeps) {
  app.post<{ Params: { reference: string } }>(
    '/payments/:reference/resolve',
    async (req, reply) => {
      const body = resolveBodySchema.safeParse(req.body ?? {});
      if (!body.success) {
        return reply.code(422).send(
          apiError(
            'invalid_resolution',
            'the resolution is invalid',
            body.error.issues.map((i) => ({
              field: i.path.join('.') || '(body)',
              message: i.message,
            })),
          ),
        );
      }
      const res = await resolvePayment(deps, req.params.reference, {
        ...body.data,
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
