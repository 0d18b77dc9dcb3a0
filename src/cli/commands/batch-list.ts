/**
 * `billing batch list` and `billing batch reindex`: the CLI side of GET /batches
 * (batches/list.ts) and the one-off index backfill after upgrading (docs/batches.md, "Listing
 * batches").
 */
import type { Command } from 'commander';
import { batchListQuerySchema, listBatches, type BatchList } from '../../batches/list.ts';
import { BATCH_STATES } from '../../batches/ports.ts';
import { withApp, type CliContext } from '../context.ts';
import { UsageError, withCursorFlag } from '../errors.ts';
import { formatPage } from '../output.ts';

function human(v: unknown): string[] {
  const { data, next_cursor } = v as BatchList;
  const rows = data.map((b) => [
    b.id,
    b.type,
    b.state + (b.canceledAt !== undefined ? ' (canceled)' : ''),
    `${b.final}/${b.valid} final`,
    b.createdAt,
  ]);
  return formatPage(rows, next_cursor, 'no batches');
}

/** Registers `list` and `reindex` under `billing batch`. */
export function registerBatchListCommands(batch: Command, ctx: CliContext): void {
  batch
    .command('list')
    .description('a page of batches, newest first (as GET /batches)')
    .option('--status <state>', BATCH_STATES.join(', '))
    .option('--limit <n>', 'page size, 1-200', '50')
    .option('--cursor <cursor>', 'the next page of a previous list')
    .action(async (opts: Record<string, string | undefined>) => {
      const q = batchListQuerySchema.safeParse({
        ...(opts.status ? { status: opts.status } : {}),
        limit: opts.limit,
        ...(opts.cursor ? { cursor: opts.cursor } : {}),
      });
      if (!q.success) {
        throw new UsageError(
          q.error.issues.map((i) => `--${i.path.join('.')}: ${i.message}`).join('; '),
          { code: 'invalid_input' },
        );
      }
      await withApp(ctx, async (app) => {
        ctx.out().result(await withCursorFlag(() => listBatches(app, q.data)), human);
      });
    });

  batch
    .command('reindex')
    .description('add batches stored before the list of every batch existed to it (once)')
    .action(async () => {
      await withApp(ctx, async (app) => {
        const indexed = await app.batches.reindexCreated();
        ctx.out().result({ indexed }, () => `${indexed} batches indexed`);
      });
    });
}
