/**
 * `POST /payments` and `GET /payments/:reference` (docs/product.md §4). The access policy
 * (http/auth.ts) guards both: the POST takes API_TOKEN, the GET API_READ_TOKEN or API_TOKEN.
 */
import type { FastifyInstance } from 'fastify';
import { createPayment, type CreateDeps } from '../../payments/create.ts';
import { findPayment, toView } from '../../payments/view.ts';
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
