/**
 * Subscription management over HTTP (docs/product.md §4, docs/subscriptions.md): `POST
 * /subscriptions`, `GET /subscriptions/:id`, `PATCH /subscriptions/:id`, `POST
 * /subscriptions/:id/{pause,resume,cancel}` (pause takes an optional `resume_at`, cancel an
 * optional `at_period_end`). The access policy (http/auth.ts) covers every route: the mutating
 * ones take API_TOKEN, the read API_READ_TOKEN or API_TOKEN (a subscription carries the
 * customer's email). Views never contain the card token. Bodies are validated by the
 * subscriptions capability (import.ts, patch-input.ts) with the shared field rules; every
 * problem names its field (422, `details: [{ field, message }]`).
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import { SUBSCRIPTION_STATUSES } from '../../subscriptions/record.ts';
import { parseCancelBody, parsePauseBody } from '../../subscriptions/patch-input.ts';
import {
  applyAction,
  createSubscriptionFromBody,
  listSubscriptions,
  patchSubscription,
  showSubscription,
  toSubscriptionView,
  type ActionName,
  type ActionOptions,
  type SubscriptionServiceDeps,
} from '../../subscriptions/service.ts';
import { apiError } from '../errors.ts';

const ACTIONS: readonly ActionName[] = ['pause', 'resume', 'cancel'];

function notFound(reply: FastifyReply, id: string) {
  return reply.code(404).send(apiError('not_found', `no subscription ${id}`));
}

function invalid(reply: FastifyReply, message: string, issues: unknown) {
  return reply.code(422).send(apiError('invalid_subscription', message, issues));
}

function clockAdvancing(reply: FastifyReply, id: string) {
  return reply
    .code(409)
    .send(
      apiError(
        'test_clock_advancing',
        `subscription ${id} lives on a test clock that is advancing; try again once it is ready`,
      ),
    );
}

/** Registers the subscription routes on `app`. */
/** `GET /subscriptions` query: status, page size and the previous page's `next_cursor`. */
const subscriptionListQuerySchema = z.strictObject({
  status: z.enum(SUBSCRIPTION_STATUSES).optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.string().min(1).max(200).optional(),
});

export function registerSubscriptionRoutes(
  app: FastifyInstance,
  deps: SubscriptionServiceDeps,
): void {
  app.post('/subscriptions', async (req, reply) => {
    const res = await createSubscriptionFromBody(deps, req.body);
    switch (res.status) {
      case 'invalid':
        return invalid(reply, 'the subscription is invalid', res.issues);
      case 'clock_advancing':
        return reply
          .code(409)
          .send(
            apiError(
              'test_clock_advancing',
              'the test clock is advancing; create the subscription once it is ready',
            ),
          );
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

  app.get('/subscriptions', async (req, reply) => {
    const q = subscriptionListQuerySchema.safeParse(req.query ?? {});
    if (!q.success) {
      return reply.code(422).send(
        apiError(
          'invalid_query',
          'the list query is invalid',
          q.error.issues.map((i) => ({
            field:
              i.path.join('.') || (i.code === 'unrecognized_keys' ? i.keys.join(', ') : '(query)'),
            message: i.message,
          })),
        ),
      );
    }
    const { cursor, ...rest } = q.data;
    const page = await listSubscriptions(deps, { ...rest, ...(cursor ? { after: cursor } : {}) });
    return { data: page.items, next_cursor: page.next ?? null };
  });

  app.get<{ Params: { id: string } }>('/subscriptions/:id', async (req, reply) => {
    const view = await showSubscription(deps, req.params.id);
    if (!view) return notFound(reply, req.params.id);
    return view;
  });

  app.patch<{ Params: { id: string } }>('/subscriptions/:id', async (req, reply) => {
    const id = req.params.id;
    const res = await patchSubscription(deps, id, req.body);
    switch (res.status) {
      case 'not_found':
        return notFound(reply, id);
      case 'invalid':
        return invalid(reply, 'the change is invalid', res.issues);
      case 'refused':
        switch (res.code) {
          case 'canceled':
            return reply
              .code(409)
              .send(apiError('subscription_canceled', `subscription ${id} is canceled`));
          case 'charge_open':
            return reply
              .code(409)
              .send(
                apiError(
                  'charge_open',
                  `subscription ${id} has a charge in flight or in dunning: its currency can ` +
                    'change only between periods, once nothing is owed or being charged',
                ),
              );
          case 'busy':
            return reply
              .code(409)
              .send(
                apiError(
                  'subscription_busy',
                  `subscription ${id} is being billed right now; try again in a moment`,
                ),
              );
          case 'test_clock_advancing':
            return clockAdvancing(reply, id);
        }
        break;
      case 'ok':
        return toSubscriptionView(res.subscription);
    }
  });

  for (const action of ACTIONS) {
    app.post<{ Params: { id: string } }>(`/subscriptions/:id/${action}`, async (req, reply) => {
      const id = req.params.id;
      let opts: ActionOptions = {};
      if (action === 'pause') {
        const body = parsePauseBody(req.body);
        if (!body.ok) return invalid(reply, 'the pause is invalid', body.issues);
        if (body.resumeAt !== undefined) opts = { resumeAt: body.resumeAt };
      } else if (action === 'cancel') {
        const body = parseCancelBody(req.body);
        if (!body.ok) return invalid(reply, 'the cancel is invalid', body.issues);
        if (body.atPeriodEnd !== undefined) opts = { atPeriodEnd: body.atPeriodEnd };
      }
      const res = await applyAction(deps, id, action, opts);
      switch (res.status) {
        case 'not_found':
          return notFound(reply, id);
        case 'invalid':
          return invalid(reply, `the ${action} is invalid`, res.issues);
        case 'refused':
          if (res.code === 'test_clock_advancing') return clockAdvancing(reply, id);
          return reply
            .code(409)
            .send(
              apiError(
                'subscription_canceled',
                `subscription ${id} is canceled; it cannot be ${action}d`,
              ),
            );
        case 'ok':
          return toSubscriptionView(res.subscription);
      }
    });
  }
}
