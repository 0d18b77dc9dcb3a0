/**
 * Subscription management over HTTP (docs/product.md §4, docs/subscriptions.md): `POST
 * /subscriptions`, `GET /subscriptions/:id`, `POST /subscriptions/:id/{pause,resume,cancel}`.
 * The access policy (http/auth.ts) covers every route: the mutating ones take API_TOKEN, the read
 * API_READ_TOKEN or API_TOKEN (a subscription carries the customer's email). Views never contain
 * the card token.
 */
import type { FastifyInstance } from 'fastify';
import {
  applyAction,
  createSubscriptionFromBody,
  showSubscription,
  toSubscriptionView,
  type ActionName,
  type SubscriptionServiceDeps,
} from '../../subscriptions/service.ts';
import { apiError } from '../errors.ts';

const ACTIONS: readonly ActionName[] = ['pause', 'resume', 'cancel'];

/** Registers the subscription routes on `app`. */
export function registerSubscriptionRoutes(
  app: FastifyInstance,
  deps: SubscriptionServiceDeps,
): void {
  app.post('/subscriptions', async (req, reply) => {
    const res = await createSubscriptionFromBody(deps, req.body);
    switch (res.status) {
      case 'invalid':
        return reply
          .code(422)
          .send(apiError('invalid_subscription', 'the subscription is invalid', res.issues));
      case 'conflict':
        return reply
          .code(409)
          .send(
            apiError(
              'id_reused',
              `subscription ${res.subscription.id} already exists with different details`,
            ),
          );
      case 'created':
      case 'existing':
        return reply
          .code(res.status === 'created' ? 201 : 200)
          .send(toSubscriptionView(res.subscription));
    }
  });

  app.get<{ Params: { id: string } }>('/subscriptions/:id', async (req, reply) => {
    const view = await showSubscription(deps, req.params.id);
    if (!view) {
      return reply.code(404).send(apiError('not_found', `no subscription ${req.params.id}`));
    }
    return view;
  });

  for (const action of ACTIONS) {
    app.post<{ Params: { id: string } }>(`/subscriptions/:id/${action}`, async (req, reply) => {
      const res = await applyAction(deps, req.params.id, action);
      switch (res.status) {
        case 'not_found':
          return reply.code(404).send(apiError('not_found', `no subscription ${req.params.id}`));
        case 'refused':
          return reply
            .code(409)
            .send(
              apiError(
                'subscription_canceled',
                `subscription ${req.params.id} is canceled; it cannot be ${action}d`,
              ),
            );
        case 'ok':
          return toSubscriptionView(res.subscription);
      }
    });
  }
}
