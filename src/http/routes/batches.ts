/**
 * `POST /batches`, `GET /batches`, `GET /batches/:id`, `GET /batches/:id/results`
 * (docs/product.md §4, docs/batches.md "HTTP").
 *
 * The upload is streamed: a `text/csv` body is handed to the validator as the raw request stream,
 * never buffered, so a file of any size costs flat memory (rows are spilled to disk, see
 * batches/ingest.ts). Fastify's body limit does not apply to it for the same reason.
 */
import type { Readable } from 'node:stream';
import type { FastifyInstance, preHandlerAsyncHookHandler } from 'fastify';
import { z } from 'zod';
import { batchIdSchema, submitBatch, type BatchDeps } from '../../batches/ingest.ts';
import { batchListQuerySchema, listBatches, type BatchListQuery } from '../../batches/list.ts';
import { BATCH_STATES, CursorError, TRACKED_STATES } from '../../batches/ports.ts';
import { batchResultsStream } from '../../batches/results.ts';
import { batchStatus } from '../../batches/status.ts';
import { textSchema } from '../../input/fields.ts';
import { apiError } from '../errors.ts';
import { errorResponses, idParam, pageOf, parsedByHandler } from '../schemas.ts';

/** Explicit boolean flags: `z.coerce.boolean()` would read "false" as true. */
const flag = z
  .enum(['true', 'false', '1', '0'], { error: 'must be true or false' })
  .optional()
  .transform((v) => v === 'true' || v === '1');

/**
 * The upload's query. Strict: an unknown parameter (a misspelt flag) is refused naming it, never
 * silently ignored — a batch uploaded without the flag its sender meant would run differently.
 * The snake_case spellings the rest of the API uses are accepted as aliases.
 */
const uploadQuery = z
  .strictObject({
    type: z
      .enum(['charge', 'payout'], { error: 'type must be "charge" or "payout"' })
      .describe('what every row of the file is'),
    id: batchIdSchema
      .optional()
      .describe("the batch's id (default: derived from the file's content)"),
    skipInvalid: flag.describe('enqueue the valid rows of a file with invalid ones'),
    validateOnly: flag.describe('validate and report; store nothing'),
    /** Pay rows whose reference another batch of the type already used (refused by default). */
    allowReusedReferences: flag.describe(
      'pay rows whose reference another batch of the type already used',
    ),
    /**
     * The file's name, kept on the batch for people. One line of text: `billing batch status`
     * prints it to an operator's terminal, where a line break or an escape sequence would forge
     * the lines after it (the rows and amounts a second person approves, BATCH_APPROVAL).
     */
    name: textSchema('name')
      .max(200, 'name is longer than 200 characters')
      .optional()
      .describe("the file's name, kept for people (one line, no control characters)"),
    skip_invalid: flag.describe('alias of skipInvalid'),
    validate_only: flag.describe('alias of validateOnly'),
    allow_reused_references: flag.describe('alias of allowReusedReferences'),
  })
  .transform(({ skip_invalid, validate_only, allow_reused_references, ...q }) => ({
    ...q,
    skipInvalid: q.skipInvalid || skip_invalid,
    validateOnly: q.validateOnly || validate_only,
    allowReusedReferences: q.allowReusedReferences || allow_reused_references,
  }));
type UploadQuery = z.output<typeof uploadQuery>;

const money = z.object({ amount: z.string(), amountMinor: z.number().int() });

/** `GET /batches/:id`'s view (batches/status.ts `BatchStatus`), described for the document. */
export const batchStatusSchema = z
  .object({
    id: z.string(),
    type: z.enum(['charge', 'payout']),
    state: z.enum(BATCH_STATES),
    source: z.string(),
    rows: z.number().int(),
    valid: z.number().int(),
    invalid: z.number().int(),
    counts: z.object(
      Object.fromEntries(
        [...TRACKED_STATES, 'in_progress'].map((st) => [st, z.number().int()]),
      ) as Record<string, z.ZodNumber>,
    ),
    final: z.number().int(),
    totals: z.record(
      z.string().describe('currency'),
      money.extend({
        rows: z.number().int(),
        byState: z.object(
          Object.fromEntries(TRACKED_STATES.map((st) => [st, money])) as Record<
            string,
            typeof money
          >,
        ),
      }),
    ),
    createdAt: z.iso.datetime(),
    ingestedAt: z.iso.datetime().optional(),
    finishedAt: z.iso.datetime().optional(),
    submittedBy: z.string().optional(),
    approvedBy: z.string().optional(),
    approvedAt: z.iso.datetime().optional(),
    canceledBy: z.string().optional(),
    canceledAt: z.iso.datetime().optional(),
    canceledRows: z.number().int().optional(),
    retryOf: z.string().optional(),
    retriedBy: z.string().optional(),
  })
  .meta({ id: 'BatchStatus' });

/** What POST /batches answers for a file it took (or validated). */
const uploadSummarySchema = z.object({
  batchId: z.string(),
  status: z.enum(['created', 'existing', 'resumed', 'validated']),
  rows: z.number().int(),
  valid: z.number().int(),
  invalid: z.number().int(),
  state: z.enum(BATCH_STATES).optional(),
  errors: z.array(
    z.object({ line: z.number().int(), column: z.string().optional(), message: z.string() }),
  ),
});

const batchId = idParam('id', 'the batch id');

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

  app.post(
    '/batches',
    {
      preHandler: guard,
      // POST /batches has always answered 400 and named the parameter as `parameter`.
      config: {
        invalid: {
          status: 400,
          code: 'bad_request',
          message: 'invalid query parameters',
          parameterAlias: true,
        },
      },
      schema: {
        tags: ['batches'],
        summary: 'Upload a CSV file of charges or payouts (streamed; any size)',
        description:
          'The body is the CSV file itself (docs/product.md §6 for the columns). Invalid rows ' +
          'refuse the file (422, one detail per line) unless skipInvalid.',
        querystring: uploadQuery,
        consumes: ['text/csv'],
        // The raw request stream, read by the CSV validator as it arrives (never buffered).
        body: parsedByHandler(
          z.string().describe('the CSV file: a header row, then one row per payment'),
        ),
        response: {
          200: uploadSummarySchema,
          201: uploadSummarySchema,
          ...errorResponses(400, 403, 409, 415, 422),
        },
      },
    },
    async (req, reply) => {
      const q = req.query as UploadQuery;
      // No body at all is `null` (fastify), not undefined.
      const body = req.body as Readable | null | undefined;
      if (!body || typeof body.iterator !== 'function') {
        return reply
          .code(415)
          .send(apiError('unsupported_media_type', 'send the file as Content-Type: text/csv'));
      }
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
    },
  );

  app.get(
    '/batches',
    {
      schema: {
        tags: ['batches'],
        summary: 'Batches, newest first, optionally of one state (cursor-paginated)',
        querystring: batchListQuerySchema,
        response: { 200: pageOf(batchStatusSchema), ...errorResponses(422) },
      },
    },
    async (req, reply) => {
      try {
        return await listBatches(deps, req.query as BatchListQuery);
      } catch (err) {
        if (!(err instanceof CursorError)) throw err;
        return reply
          .code(422)
          .send(
            apiError('invalid_query', err.message, [{ field: 'cursor', message: err.message }]),
          );
      }
    },
  );

  app.get<{ Params: { id: string } }>(
    '/batches/:id',
    {
      schema: {
        tags: ['batches'],
        summary: "A batch's status: counts by state, money per currency, times",
        params: batchId,
        response: { 200: batchStatusSchema, ...errorResponses(404) },
      },
    },
    async (req, reply) => {
      const id = batchIdSchema.safeParse(req.params.id);
      const status = id.success ? await batchStatus(deps, id.data) : undefined;
      if (!status) {
        return reply.code(404).send(apiError('not_found', `no batch ${req.params.id}`));
      }
      return status;
    },
  );

  app.get<{ Params: { id: string } }>(
    '/batches/:id/results',
    {
      schema: {
        tags: ['batches'],
        summary: 'The results file: one CSV row per input row with its outcome',
        params: batchId,
        response: {
          200: {
            description: 'the results CSV (streamed)',
            content: { 'text/csv': { schema: z.string() } },
          },
          ...errorResponses(404),
        },
      },
    },
    async (req, reply) => {
      const id = batchIdSchema.safeParse(req.params.id);
      if (!id.success || !(await batchStatus(deps, id.data))) {
        return reply.code(404).send(apiError('not_found', `no batch ${req.params.id}`));
      }
      return reply
        .type('text/csv; charset=utf-8')
        .header('content-disposition', `attachment; filename="batch-${id.data}-results.csv"`)
        .send(batchResultsStream(deps, id.data));
    },
  );
}
