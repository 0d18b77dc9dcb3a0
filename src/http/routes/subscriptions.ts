/**
 * Subscription management over HTTP (docs/product.md §4, docs/subscriptions.md): `POST
 * /subscriptions`, `GET /subscriptions/:id`, `PATCH /subscriptions/:id`, `POST
 * /subscriptions/:id/{pause,resume,cancel,retry}` (pause takes an optional `resume_at`, cancel an
 * optional `at_period_end`; retry runs a failed renewal's next retry now). The access policy (http/auth.ts) covers every route: the mutating
 * ones take API_TOKEN, the read API_READ_TOKEN or API_TOKEN (a subscription carries the
 * customer's email). Views never contain the card token. Bodies are validated by the
 * subscriptions capability (import.ts, patch-input.ts) with the shared field rules; every
 * problem names its field (422, `details: [{ field, message }]`).
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import { SUBSCRIPTION_STATUSES } from '../../subscriptions/record.ts';
import { subscriptionBodySchema } from '../../subscriptions/import.ts';
import {
  cancelBodySchema,
  parseCancelBody,
  parsePauseBody,
  pauseBodySchema,
  subscriptionPatchBodySchema,
} from '../../subscriptions/patch-input.ts';
import {
  actionRefusalMessage,
  applyAction,
  createSubscriptionFromBody,
  listSubscriptions,
  patchSubscription,
  REFUSAL_ERROR_CODE,
  showSubscription,
  toSubscriptionView,
  type ActionName,
  type ActionOptions,
  type SubscriptionServiceDeps,
} from '../../subscriptions/service.ts';
import { emailSchema } from '../../input/fields.ts';
import { apiError } from '../errors.ts';
import {
  errorResponses,
  idParam,
  optionalBody,
  pageOf,
  pageQuery,
  parsedByHandler,
} from '../schemas.ts';

const ACTIONS: readonly ActionName[] = ['pause', 'resume', 'cancel', 'retry'];
const ACTION_SUMMARY: Readonly<Record<ActionName, string>> = {
  pause: 'Pause billing (optionally until resume_at)',
  resume: 'Resume a paused subscription',
  cancel: 'Cancel now, or when the period paid for ends (at_period_end)',
  retry:
    "Retry a failed renewal now instead of at its scheduled retry (a subscription in dunning; the gateway's failure of the previous attempt is checked first)",
};

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
        REFUSAL_ERROR_CODE.test_clock_advancing,
        `subscription ${id} lives on a test clock that is advancing; try again once it is ready`,
      ),
    );
}

/** `GET /subscriptions` query: status, page size and the previous page's `next_cursor`. */
const subscriptionListQuerySchema = z.strictObject({
  status: z.enum(SUBSCRIPTION_STATUSES).optional().describe('only subscriptions in this status'),
  customer_email: emailSchema('customer_email')
    .optional()
    .describe("only this customer's subscriptions (the address ignoring case)"),
  ...pageQuery(200, 50, 200),
});

const iso = z.iso.datetime();

/**
 * One subscription (subscriptions/view.ts `SubscriptionView`; never the card token). Loose: a view
 * may gain fields (described, not enforced; http/openapi.ts).
 */
const subscriptionViewSchema = z
  .looseObject({
    id: z.string(),
    customer_email: z.string(),
    amount: z.string(),
    amount_minor: z.int(),
    currency: z.string(),
    interval: z.string(),
    interval_count: z.int(),
    anchor: z.iso
      .datetime({ offset: true })
      .describe("the schedule's anchor, in the subscription's time zone (with its offset)"),
    timezone: z.string(),
    status: z.enum(SUBSCRIPTION_STATUSES),
    current_period_start: iso.nullable(),
    current_period_end: iso.nullable(),
    next_charge_at: iso.nullable(),
    billing_held: z
      .looseObject({
        key: z.string(),
        reference: z.string(),
        state: z.string(),
        awaiting: z.enum(['customer', 'gateway', 'operator']),
        since: iso,
      })
      .nullable(),
    next_period_start: iso,
    metadata: z.record(z.string(), z.string()),
    dunning: z.array(z.looseObject({ key: z.string(), attempt: z.int(), retry_at: iso })),
    skipped_periods: z.int(),
    trial_end: iso.nullable(),
    cancel_at_period_end: z.boolean(),
    cancel_at: iso.nullable(),
    resume_at: iso.nullable(),
    test_clock: z.string().nullable(),
    created_at: iso,
    updated_at: iso,
  })
  .meta({ id: 'Subscription' });

const subscriptionId = idParam('id', 'the subscription id');
const TAGS = ['subscriptions'];
const INVALID = { code: 'invalid_subscription', message: 'the subscription is invalid' };

/** Registers the subscription routes on `app`. */
export function registerSubscriptionRoutes(
  app: FastifyInstance,
  deps: SubscriptionServiceDeps,
): void {
  app.post(
    '/subscriptions',
    {
      schema: {
        tags: TAGS,
        summary: 'Create a subscription (idempotent by id)',
        body: parsedByHandler(subscriptionBodySchema),
        response: {
          200: subscriptionViewSchema,
          201: subscriptionViewSchema,
          ...errorResponses(403, 409, 415, 422),
        },
      },
    },
    async (req, reply) => {
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
    },
  );

  app.get(
    '/subscriptions',
    {
      config: { invalid: { code: 'invalid_query', message: 'the list query is invalid' } },
      schema: {
        tags: TAGS,
        summary:
          "Subscriptions, optionally of one status or one customer's email (cursor-paginated)",
        querystring: subscriptionListQuerySchema,
        response: { 200: pageOf(subscriptionViewSchema), ...errorResponses(422) },
      },
    },
    async (req) => {
      const { cursor, customer_email, ...rest } = req.query as z.output<
        typeof subscriptionListQuerySchema
      >;
      const page = await listSubscriptions(deps, {
        ...rest,
        ...(customer_email !== undefined ? { customerEmail: customer_email } : {}),
        ...(cursor ? { after: cursor } : {}),
      });
      return { data: page.items, next_cursor: page.next ?? null };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/subscriptions/:id',
    {
      schema: {
        tags: TAGS,
        summary: 'One subscription',
        params: subscriptionId,
        response: { 200: subscriptionViewSchema, ...errorResponses(404) },
      },
    },
    async (req, reply) => {
      const view = await showSubscription(deps, req.params.id);
      if (!view) return notFound(reply, req.params.id);
      return view;
    },
  );

  app.patch<{ Params: { id: string } }>(
    '/subscriptions/:id',
    {
      config: { invalid: INVALID },
      schema: {
        tags: TAGS,
        summary:
          'Change amount, currency, card, interval, anchor, metadata or cancel_at_period_end',
        params: subscriptionId,
        body: parsedByHandler(subscriptionPatchBodySchema),
        response: { 200: subscriptionViewSchema, ...errorResponses(403, 404, 409, 415, 422) },
      },
    },
    async (req, reply) => {
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
                .send(apiError(REFUSAL_ERROR_CODE.canceled, `subscription ${id} is canceled`));
            case 'charge_open':
              return reply
                .code(409)
                .send(
                  apiError(
                    REFUSAL_ERROR_CODE.charge_open,
                    `subscription ${id} has a charge in flight or in dunning: its currency can ` +
                      'change only between periods, once nothing is owed or being charged',
                  ),
                );
            case 'busy':
              return reply
                .code(409)
                .send(
                  apiError(
                    REFUSAL_ERROR_CODE.busy,
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
    },
  );

  for (const action of ACTIONS) {
    const actionBody =
      action === 'pause' ? pauseBodySchema : action === 'cancel' ? cancelBodySchema : undefined;
    app.post<{ Params: { id: string } }>(
      `/subscriptions/:id/${action}`,
      {
        config: { invalid: INVALID },
        schema: {
          tags: TAGS,
          summary: ACTION_SUMMARY[action],
          params: subscriptionId,
          ...(actionBody ? { body: parsedByHandler(optionalBody(actionBody)) } : {}),
          response: { 200: subscriptionViewSchema, ...errorResponses(403, 404, 409, 422) },
        },
      },
      async (req, reply) => {
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
                apiError(REFUSAL_ERROR_CODE[res.code], actionRefusalMessage(id, action, res.code)),
              );
          case 'ok':
            return toSubscriptionView(res.subscription);
        }
      },
    );
  }
}
