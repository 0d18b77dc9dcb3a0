/**
 * Test clocks over HTTP (test mode only; docs/subscriptions.md "Test clocks"): `POST
 * /test-clocks` `{ frozen_time, name? }`, `POST /test-clocks/:id/advance` `{ to }`, `GET
 * /test-clocks/:id`. In live mode (a secret key that is not `sk_test_`) every route answers 403
 * `test_mode_only`. Covered by the access policy like every route (http/auth.ts).
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import {
  advanceTestClock,
  createTestClock,
  getTestClock,
  toClockView,
} from '../../subscriptions/clocks-service.ts';
import { instantSchema } from '../../subscriptions/import.ts';
import type { SubscriptionServiceDeps } from '../../subscriptions/service.ts';
import { apiError } from '../errors.ts';

const createSchema = z.strictObject({
  frozen_time: instantSchema('frozen_time'),
  name: z.string().max(100, 'name is longer than 100 characters').optional(),
});
const advanceSchema = z.strictObject({ to: instantSchema('to') });

/** `{ field, message }` per problem, as the other routes report them. */
function issuesOf(error: z.ZodError): { field?: string; message: string }[] {
  return error.issues.map((i) => {
    if (i.code === 'unrecognized_keys')
      return { field: i.keys.join(', '), message: `unknown field ${i.keys.join(', ')}` };
    const field = i.path[0];
    return field === undefined
      ? { message: 'the body must be a JSON object' }
      : { field: String(field), message: i.message };
  });
}

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
  app.post('/test-clocks', async (req, reply) => {
    if (!deps.testMode) return liveMode(reply);
    const parsed = createSchema.safeParse(req.body ?? {});
    if (!parsed.success)
      return reply
        .code(422)
        .send(apiError('invalid_test_clock', 'the test clock is invalid', issuesOf(parsed.error)));
    const clock = await createTestClock(deps, parsed.data.frozen_time, parsed.data.name);
    return reply.code(201).send(toClockView(clock));
  });

  app.get<{ Params: { id: string } }>('/test-clocks/:id', async (req, reply) => {
    if (!deps.testMode) return liveMode(reply);
    const clock = await getTestClock(deps, req.params.id);
    return clock ? toClockView(clock) : notFound(reply, req.params.id);
  });

  app.post<{ Params: { id: string } }>('/test-clocks/:id/advance', async (req, reply) => {
    if (!deps.testMode) return liveMode(reply);
    const parsed = advanceSchema.safeParse(req.body ?? {});
    if (!parsed.success)
      return reply
        .code(422)
        .send(apiError('invalid_test_clock', 'the advance is invalid', issuesOf(parsed.error)));
    const res = await advanceTestClock(deps, req.params.id, parsed.data.to);
    switch (res.status) {
      case 'not_found':
        return notFound(reply, req.params.id);
      case 'advancing':
        return reply
          .code(409)
          .send(
            apiError(
              'test_clock_advancing',
              `test clock ${req.params.id} is advancing; advance it again once it is ready`,
            ),
          );
      case 'invalid':
        return reply
          .code(422)
          .send(apiError('invalid_test_clock', 'the advance is invalid', [res.issue]));
      case 'ok':
        return reply.code(202).send(toClockView(res.clock));
    }
  });
}
