/**
 * `POST /batches`, `GET /batches/:id`, `GET /batches/:id/results` (docs/product.md §4,
 * docs/batches.md "HTTP").
 *
 * The upload is streamed: a `text/csv` body is handed to the validator as the raw request stream,
 * never buffered, so a file of any size costs flat memory (rows are spilled to disk, see
 * batches/ingest.ts). Fastify's body limit does not apply to it for the same reason.
 */
import type { Readable } from 'node:stream';
import type { FastifyInstance, preHandlerAsyncHookHandler } from 'fastify';
import { z } from 'zod';
import { batchIdSchema, submitBatch, type BatchDeps } from '../../batches/ingest.ts';
import { batchResultsStream } from '../../batches/results.ts';
import { batchStatus } from '../../batches/status.ts';
import { apiError } from '../errors.ts';

/** Explicit boolean flags: `z.coerce.boolean()` would read "false" as true. */
const flag = z
  .enum(['true', 'false', '1', '0'], { error: 'must be true or false' })
  .optional()
  .transform((v) => v === 'true' || v === '1');

/** The snake_case spellings the rest of the API uses, accepted as aliases. */
const ALIASES: Readonly<Record<string, string>> = {
  skip_invalid: 'skipInvalid',
  validate_only: 'validateOnly',
  allow_reused_references: 'allowReusedReferences',
};

/**
 * The upload's query. Strict: an unknown parameter (a misspelt flag) is refused naming it, never
 * silently ignored — a batch uploaded without the flag its sender meant would run differently.
 */
const uploadQuery = z.preprocess(
  (q) =>
    q && typeof q === 'object'
      ? Object.fromEntries(Object.entries(q).map(([k, v]) => [ALIASES[k] ?? k, v]))
      : q,
  z.strictObject({
    type: z.enum(['charge', 'payout'], { error: 'type must be "charge" or "payout"' }),
    id: batchIdSchema.optional(),
    skipInvalid: flag,
    validateOnly: flag,
    /** Pay rows whose reference another batch of the type already used (refused by default). */
    allowReusedReferences: flag,
    /** The file's name, kept on the batch for people. */
    name: z.string().max(200).optional(),
  }),
);

/**
 * The request body without destroying the request when validation stops reading early (a
 * structural error): the socket must survive to carry the 422.
 */
async function* keepOpen(body: Readable): AsyncGenerator<Buffer> {
  for await (const chunk of body.iterator({ destroyOnReturn: false })) yield chunk as Buffer;
}

/** Registers the batch routes; `guard` protects the upload (a mutating route). */
export function registerBatchRoutes(
  app: FastifyInstance,
  deps: BatchDeps,
  guard: preHandlerAsyncHookHandler,
): void {
  // The stream itself becomes `req.body`; the validator reads it as it arrives.
  app.addContentTypeParser('text/csv', (_req, payload, done) => done(null, payload));

  app.post('/batches', { preHandler: guard }, async (req, reply) => {
    const query = uploadQuery.safeParse(req.query);
    if (!query.success) {
      return reply.code(400).send(
        apiError(
          'bad_request',
          'invalid query parameters',
          query.error.issues.map((i) => ({
            parameter: i.code === 'unrecognized_keys' ? i.keys.join(', ') : String(i.path[0] ?? ''),
            message: i.message,
          })),
        ),
      );
    }
    const body = req.body as Readable | undefined;
    if (body === undefined || typeof body.iterator !== 'function') {
      return reply
        .code(415)
        .send(apiError('unsupported_media_type', 'send the file as Content-Type: text/csv'));
    }
    const q = query.data;
    const result = await submitBatch(deps, {
      input: keepOpen(body),
      type: q.type,
      ...(q.id !== undefined ? { id: q.id } : {}),
      skipInvalid: q.skipInvalid,
      validateOnly: q.validateOnly,
      allowReusedReferences: q.allowReusedReferences,
      sourceName: q.name ?? 'upload.csv',
      // Who submitted it, for BATCH_APPROVAL's second person (batches/approval.ts).
      ...(req.tokenName ? { submittedBy: req.tokenName } : {}),
    });
    if (!body.readableEnded) {
      // Refused before the end: drop the rest and do not reuse the connection.
      reply.header('connection', 'close');
      body.resume();
    }
    const summary = {
      batchId: result.batchId,
      status: result.status,
      rows: result.totals.rows,
      valid: result.totals.valid,
      invalid: result.totals.invalid,
      ...(result.batch ? { state: result.batch.state } : {}),
    };
    const details = result.errors.map((e) => ({
      line: e.line,
      ...(e.column !== undefined ? { column: e.column } : {}),
      message: e.message,
    }));
    switch (result.status) {
      case 'invalid':
        return reply
          .code(422)
          .send(apiError('invalid_batch', result.message ?? 'the file is invalid', details));
      case 'conflict':
        return reply
          .code(409)
          .send(apiError('batch_id_conflict', result.message ?? 'batch id already used'));
      case 'created':
        return reply.code(201).send({ ...summary, errors: details });
      case 'existing':
      case 'resumed':
      case 'validated':
        return reply.code(200).send({ ...summary, errors: details });
    }
  });

  app.get<{ Params: { id: string } }>('/batches/:id', async (req, reply) => {
    const id = batchIdSchema.safeParse(req.params.id);
    const status = id.success ? await batchStatus(deps, id.data) : undefined;
    if (!status) {
      return reply.code(404).send(apiError('not_found', `no batch ${req.params.id}`));
    }
    return status;
  });

  app.get<{ Params: { id: string } }>('/batches/:id/results', async (req, reply) => {
    const id = batchIdSchema.safeParse(req.params.id);
    if (!id.success || !(await batchStatus(deps, id.data))) {
      return reply.code(404).send(apiError('not_found', `no batch ${req.params.id}`));
    }
    return reply
      .type('text/csv; charset=utf-8')
      .header('content-disposition', `attachment; filename="batch-${id.data}-results.csv"`)
      .send(batchResultsStream(deps, id.data));
  });
}
