/**
 * Test clocks over HTTP (test mode only; docs/subscriptions.md "Test clocks"): `POST
 * /test-clocks` `{ frozen_time, name? }`, `POST /test-clocks/:id/advance` `{ to }`, `GET
 * /test-clocks/:id`, `DELETE /test-clocks/:id`. In live mode (a secret key that is not `sk_test_`) every route answers 403
 * `test_mode_only`. Covered by the access policy like every route (http/auth.ts).
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import {
  advanceTestClock,
  createTestClock,
  deleteTestClock,
  getTestClock,
  toClockView,
} from '../../subscriptions/clocks-service.ts';
import { NOT_AN_OBJECT } from '../../input/record.ts';
import { instantSchema } from '../../subscriptions/import.ts';
import type { SubscriptionServiceDeps } from '../../subscriptions/service.ts';
import { apiError } from '../errors.ts';
import { errorResponses, idParam } from '../schemas.ts';

/** Unknown fields and a body that is no object, in the words the other routes use. */
const bodyError = (iss: z.core.$ZodRawIssue): string | undefined =>
  iss.code === 'unrecognized_keys'
    ? `unknown field ${iss.keys.join(', ')}`
    : iss.code === 'invalid_type' && iss.path?.length === 0
      ? NOT_AN_OBJECT.message
      : undefined;

const createSchema = z.strictObject(
  {
    frozen_time: instantSchema('frozen_time').describe("the clock's time (ISO 8601 instant)"),
    name: z.string().max(100, 'name is longer than 100 characters').optional(),
  },
  { error: bodyError },
);
const advanceSchema = z.strictObject(
  { to: instantSchema('to').describe('the instant to move to (later than now on the clock)') },
  { error: bodyError },
);

/** A test clock (subscriptions/clocks-service.ts `TestClockView`). */
const clockViewSchema = z
  .looseObject({
    id: z.string(),
    object: z.literal('test_clock'),
    name: z.string().nullable(),
    frozen_time: z.iso.datetime(),
    status: z.enum(['advancing', 'ready']),
    advancing_to: z.iso.datetime().nullable(),
    created_at: z.iso.datetime(),
  })
  .meta({ id: 'TestClock' });

/** What deleting a clock answers. */
const deletedSchema = z
  .object({
    id: z.string(),
    object: z.literal('test_clock'),
    deleted: z.literal(true),
    canceled_subscriptions: z
      .array(z.string())
      .describe('the subscriptions this request canceled (reason test_clock_deleted)'),
  })
  .meta({ id: 'DeletedTestClock' });

/** 409 while the clock advances (advance and delete wait for it to be ready). */
function advancing(reply: FastifyReply, id: string, what: string) {
  return reply
    .code(409)
    .send(
      apiError(
        'test_clock_advancing',
        `test clock ${id} is advancing; ${what} it again once it is ready`,
      ),
    );
}

const clockId = idParam('id', 'the test clock id');
const TAGS = ['test clocks'];

function liveMode(reply: FastifyReply) {
  return reply
    .code(403)
    .send(
      apiError(
        'test_mode_only',
        'test clocks exist only in test mode: SAYSWITCH_SECRET_KEY must be a sk_test_ key (the sandbox)',
      ),
    );
}

function notFound(reply: FastifyReply, id: string) {
  return reply.code(404).send(apiError('not_found', `no test clock ${id}`));
}

/** Registers the test clock routes on `app`. */
export function registerTestClockRoutes(app: FastifyInstance, deps: SubscriptionServiceDeps): void {
  app.post<{ Body: z.output<typeof createSchema> }>(
    '/test-clocks',
    {
      config: { invalid: { code: 'invalid_test_clock', message: 'the test clock is invalid' } },
      schema: {
        tags: TAGS,
        summary: 'Create a test clock (test mode only)',
        body: createSchema,
        response: { 201: clockViewSchema, ...errorResponses(403, 415, 422) },
      },
    },
    async (req, reply) => {
      if (!deps.testMode) return liveMode(reply);
      const clock = await createTestClock(deps, req.body.frozen_time, req.body.name);
      return reply.code(201).send(toClockView(clock));
    },
  );

  app.get<{ Params: { id: string } }>(
    '/test-clocks/:id',
    {
      schema: {
        tags: TAGS,
        summary: 'One test clock (test mode only)',
        params: clockId,
        response: { 200: clockViewSchema, ...errorResponses(403, 404) },
      },
    },
    async (req, reply) => {
      if (!deps.testMode) return liveMode(reply);
      const clock = await getTestClock(deps, req.params.id);
      return clock ? toClockView(clock) : notFound(reply, req.params.id);
    },
  );

  app.post<{ Params: { id: string }; Body: z.output<typeof advanceSchema> }>(
    '/test-clocks/:id/advance',
    {
      config: { invalid: { code: 'invalid_test_clock', message: 'the advance is invalid' } },
      schema: {
        tags: TAGS,
        summary: 'Advance a test clock: its subscriptions bill as time passes (test mode only)',
        params: clockId,
        body: advanceSchema,
        response: { 202: clockViewSchema, ...errorResponses(403, 404, 409, 415, 422) },
      },
    },
    async (req, reply) => {
      if (!deps.testMode) return liveMode(reply);
      const res = await advanceTestClock(deps, req.params.id, req.body.to);
      switch (res.status) {
        case 'not_found':
          return notFound(reply, req.params.id);
        case 'advancing':
          return advancing(reply, req.params.id, 'advance');
        case 'invalid':
          return reply
            .code(422)
            .send(apiError('invalid_test_clock', 'the advance is invalid', [res.issue]));
        case 'ok':
          return reply.code(202).send(toClockView(res.clock));
      }
    },
  );
  app.delete<{ Params: { id: string } }>(
    '/test-clocks/:id',
    {
      schema: {
        tags: TAGS,
        summary:
          'Delete a ready test clock: its subscriptions are canceled (reason test_clock_deleted) and kept (test mode only)',
        params: clockId,
        response: { 200: deletedSchema, ...errorResponses(403, 404, 409) },
      },
    },
    async (req, reply) => {
      if (!deps.testMode) return liveMode(reply);
      const res = await deleteTestClock(deps, req.params.id);
      switch (res.status) {
        case 'not_found':
          return notFound(reply, req.params.id);
        case 'advancing':
          return advancing(reply, req.params.id, 'delete');
        case 'deleted':
          return {
            id: res.id,
            object: 'test_clock' as const,
            deleted: true as const,
            canceled_subscriptions: res.canceled,
          };
      }
    },
  );
}
