/**
 * `POST /batches/:id/cancel`, `POST /batches/:id/retry-failed`, `POST /batches/:id/approve`
 * (docs/batches.md "Cancel", "Retry failed rows", "Approval"). Write routes: the access policy
 * (http/auth.ts) lets only a write token through, and `req.tokenName` is who asks.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { batchIdSchema, type BatchDeps } from '../../batches/ingest.ts';
import { approveBatch, cancelBatch, retryFailedBatch } from '../../batches/operations.ts';
import { toBatchStatus } from '../../batches/status.ts';
import { z } from 'zod';
import { BATCH_STATES } from '../../batches/ports.ts';
import { apiError } from '../errors.ts';
import { errorResponses, idParam } from '../schemas.ts';
import { batchStatusSchema } from './batches.ts';

type IdRequest = FastifyRequest<{ Params: { id: string } }>;

/** The batch id of the path, or undefined after answering 404. */
function idOf(req: IdRequest, reply: FastifyReply): string | undefined {
  const id = batchIdSchema.safeParse(req.params.id);
  if (id.success) return id.data;
  void reply.code(404).send(apiError('not_found', `no batch ${req.params.id}`));
  return undefined;
}

const notFound = (reply: FastifyReply, id: string) =>
  reply.code(404).send(apiError('not_found', `no batch ${id}`));

/** Who asks: the name of the token the request carried. */
const who = (req: FastifyRequest): string => req.tokenName ?? 'unknown';

const batchId = idParam('id', 'the batch id');

/** What retry-failed answers: the new batch, or that nothing failed. */
const retrySchema = z.object({
  batchId: z.string(),
  retryOf: z.string().optional(),
  status: z.enum(['created', 'existing', 'resumed', 'nothing_to_retry']),
  rows: z.int(),
  state: z.enum(BATCH_STATES).optional(),
});
const TAGS = ['batches'];

/** Registers the batch operations. */
export function registerBatchOpsRoutes(app: FastifyInstance, deps: BatchDeps): void {
  app.post<{ Params: { id: string } }>(
    '/batches/:id/cancel',
    {
      schema: {
        tags: TAGS,
        summary: 'Cancel: fail the rows not yet submitted (reason canceled)',
        params: batchId,
        response: {
          200: z.object({
            batchId: z.string(),
            status: z.literal('canceled'),
            canceledNow: z.int().describe('queued rows this call moved to failed'),
            batch: batchStatusSchema,
          }),
          ...errorResponses(403, 404, 409),
        },
      },
    },
    async (req, reply) => {
      const id = idOf(req, reply);
      if (id === undefined) return reply;
      const r = await cancelBatch(deps, id, who(req));
      switch (r.status) {
        case 'not_found':
          return notFound(reply, id);
        case 'ingesting':
          return reply
            .code(409)
            .send(
              apiError(
                'batch_ingesting',
                `batch ${id} is still being enqueued; cancel it once its rows are enqueued`,
              ),
            );
        case 'completed':
          return reply
            .code(409)
            .send(
              apiError(
                'batch_completed',
                `batch ${id} has completed: every row is final, nothing was canceled`,
              ),
            );
        case 'canceled':
          return {
            batchId: id,
            status: 'canceled',
            canceledNow: r.canceledNow,
            batch: toBatchStatus(r.batch),
          };
      }
    },
  );

  app.post<{ Params: { id: string } }>(
    '/batches/:id/approve',
    {
      schema: {
        tags: TAGS,
        summary: 'Approve a batch awaiting approval (BATCH_APPROVAL; another identity)',
        params: batchId,
        response: {
          200: z.object({
            batchId: z.string(),
            status: z
              .enum(['approved', 'already_approved', 'not_required'])
              .describe('approved now; approved before; or never held for approval'),
            batch: batchStatusSchema,
          }),
          ...errorResponses(403, 404, 409),
        },
      },
    },
    async (req, reply) => {
      const id = idOf(req, reply);
      if (id === undefined) return reply;
      const r = await approveBatch(deps, id, who(req));
      if ('status' in r) return { batchId: id, status: r.status, batch: toBatchStatus(r.batch) };
      switch (r.why) {
        case 'missing':
          return notFound(reply, id);
        case 'same_approver':
          return reply
            .code(403)
            .send(
              apiError(
                'same_approver',
                `batch ${id} was submitted by ${who(req)}; another identity must approve it`,
              ),
            );
        case 'canceled':
          return reply.code(409).send(apiError('batch_canceled', `batch ${id} is canceled`));
        case 'not_awaiting_approval':
          return reply
            .code(409)
            .send(
              apiError(
                'not_awaiting_approval',
                `batch ${id} is ${r.state ?? 'not awaiting approval'}; nothing to approve`,
              ),
            );
      }
    },
  );

  app.post<{ Params: { id: string } }>(
    '/batches/:id/retry-failed',
    {
      schema: {
        tags: TAGS,
        summary: "Retry a finished batch's failed rows as a new batch (new references)",
        params: batchId,
        response: {
          200: retrySchema,
          201: retrySchema,
          ...errorResponses(403, 404, 409),
        },
      },
    },
    async (req, reply) => {
      const id = idOf(req, reply);
      if (id === undefined) return reply;
      const r = await retryFailedBatch(deps, id, who(req), {
        ...(deps.config?.batchApproval !== undefined
          ? { approval: deps.config.batchApproval }
          : {}),
      });
      switch (r.status) {
        case 'not_found':
          return notFound(reply, id);
        case 'in_progress':
          return reply
            .code(409)
            .send(
              apiError(
                'batch_in_progress',
                `batch ${id} has ${r.inProgress} rows not final yet; retry its failed rows once every row is final`,
              ),
            );
        case 'conflict':
          return reply
            .code(409)
            .send(
              apiError(
                'batch_id_conflict',
                `batch id ${r.batchId} is already used by another batch`,
              ),
            );
        case 'nothing_to_retry':
          return reply.code(200).send({ batchId: id, status: r.status, rows: 0 });
        case 'created':
        case 'existing':
        case 'resumed':
          return reply.code(r.status === 'created' ? 201 : 200).send({
            batchId: r.batch.id,
            retryOf: id,
            status: r.status,
            rows: r.rows,
            state: r.batch.state,
          });
      }
    },
  );
}
