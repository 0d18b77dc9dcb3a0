/**
 * `GET /batches` and `billing batch list` (docs/batches.md "Listing batches"): batches newest
 * first, optionally of one status, with cursor pagination over the store's creation-time indexes
 * (store/batch-list.ts), so a page costs what it returns. The query is validated here once for
 * both edges: an unknown parameter, a bad status, limit or cursor is refused naming it.
 */
import { z } from 'zod';
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
 * One page of batches. A batch listed by the index but gone from the store (never, short of a
 * manual deletion) is skipped. Throws the port's `CursorError` (a RangeError) for a bad cursor.
 */
export async function listBatches(
  deps: { batches: BatchListStore },
  q: BatchListQuery,
): Promise<BatchList> {
  const page = await deps.batches.listIds(q.status, q.limit, q.cursor);
  const records = await deps.batches.getMany(page.ids);
  return {
    data: records.flatMap((b) => (b ? [toBatchStatus(b)] : [])),
    next_cursor: page.next ?? null,
  };
}
