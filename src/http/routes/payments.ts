/**
 * `POST /payments` and `GET /payments/:reference` (docs/product.md §4). The access policy
 * (http/auth.ts) guards both: the POST takes API_TOKEN, the GET API_READ_TOKEN or API_TOKEN.
 */
import type { FastifyInstance } from 'fastify';
import { createPayment, type CreateDeps } from '../../payments/create.ts';
import { findPayment, toView } from '../../payments/view.ts';
import { listPayments, paymentListQuerySchema } from '../../payments/list.ts';
import { apiError } from '../errors.ts';

export function registerPaymentRoutes(app: FastifyInstance, deps: CreateDeps) {
  app.post('/payments', async (req, reply) => {
    const res = await createPayment(deps, req.body);
    switch (res.status) {
      case 'invalid':
        return reply
          .code(422)
          .send(apiError('invalid_payment', 'the payment instruction is invalid', res.issues));
      case 'conflict':
        return reply
          .code(409)
          .send(
            apiError('key_reused', `key ${res.intent.key} was already used with a different body`),
          );
      case 'created':
      case 'existing':
        return reply
          .code(res.status === 'created' ? 201 : 200)
          .send(toView(res.intent, await deps.store.history(res.intent.key)));
    }
  });

  app.get('/payments', async (req, reply) => {
    const q = paymentListQuerySchema.safeParse(req.query ?? {});
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
    try {
      return await listPayments(deps.store, q.data);
    } catch (err) {
      if (err instanceof RangeError) {
        return reply
          .code(422)
          .send(
            apiError('invalid_query', err.message, [{ field: 'cursor', message: err.message }]),
          );
      }
      throw err;
    }
  });

  app.get<{ Params: { reference: string } }>('/payments/:reference', async (req, reply) => {
    const view = await findPayment(deps.store, req.params.reference);
    if (!view) {
      return reply
        .code(404)
        .send(apiError('not_found', `no payment with key or reference ${req.params.reference}`));
    }
    return view;
  });
}
