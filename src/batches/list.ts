/**
 * `GET /batches` and `billing batch list` (docs/batches.md "Listing batches"): batches newest
 * first, optionally of one status, with cursor pagination over the store's creation-time indexes
 * (store/batch-list.ts), so a page costs what it returns. The query is validated here once for
 * both edges: an unknown parameter, a bad status, limit or cursor is refused naming it.
 */
import { z } from 'zod';
import { UnreadableRecordError } from '../kernel/errors.ts';
import type { Logger } from '../infra/logger.ts';
import { BATCH_STATES, type BatchListStore } from './ports.ts';
import { toBatchStatus, type BatchStatus } from './status.ts';

export const BATCH_LIST_LIMIT_DEFAULT = 50;
export const BATCH_LIST_LIMIT_MAX = 200;

/** The list's query parameters (HTTP query string, CLI flags). Unknown names are refused. */
export const batchListQuerySchema = z.strictObject({
  status: z
    .enum(BATCH_STATES, { error: `status must be one of ${BATCH_STATES.join(', ')}` })
    .optional()
    .describe('only batches in this state'),
  limit: z.coerce
    .number()
    .int()
    .min(1)
    .max(BATCH_LIST_LIMIT_MAX)
    .default(BATCH_LIST_LIMIT_DEFAULT)
    .describe(`page size, 1-${BATCH_LIST_LIMIT_MAX}`),
  cursor: z.string().min(1).max(2_000).optional().describe("the previous page's next_cursor"),
});
export type BatchListQuery = z.infer<typeof batchListQuerySchema>;

export interface BatchList {
  /** Each batch as `GET /batches/:id` shows it. */
  data: BatchStatus[];
  /** Pass as `cursor` for the next page; null on the last page. */
  next_cursor: string | null;
}

/**
 * A batch the list cannot read or show (another version's shape, a hand edit): left out of the
 * page, logged by id with what is wrong (never its content), so one record never fails every page
 * it is on. `GET /batches/:id` still answers for it (an error).
 */
function reportUnlisted(logger: Logger, err: UnreadableRecordError): void {
  logger.error(
    { batchId: err.id, why: err.why },
    'batch cannot be read by this version: left out of the list',
  );
}

/**
 * One page of batches. A batch listed by the index but gone from the store (never, short of a
 * manual deletion) is skipped; one this version cannot read is left out and logged. A page may
 * then hold fewer than `limit` batches (`next_cursor` still says whether more follow). Throws the
 * port's `CursorError` (a RangeError) for a bad cursor.
 */
export async function listBatches(
  deps: { batches: BatchListStore; logger: Logger },
  q: BatchListQuery,
): Promise<BatchList> {
  const page = await deps.batches.listIds(q.status, q.limit, q.cursor);
  const records = await deps.batches.readMany(page.ids);
  const data: BatchStatus[] = [];
  for (const b of records) {
    if (b instanceof UnreadableRecordError) {
      reportUnlisted(deps.logger, b);
      continue;
    }
    if (!b) continue;
    try {
      data.push(toBatchStatus(b));
    } catch (err) {
      reportUnlisted(deps.logger, UnreadableRecordError.of('batch', b.id, err));
    }
  }
  return { data, next_cursor: page.next ?? null };
}
