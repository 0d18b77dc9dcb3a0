/** Waiting for a batch to complete (`billing batch submit --wait`), reading its status. */
import type { Clock } from '../kernel/clock.ts';
import type { BatchStatus } from './status.ts';

/** Reads a batch's status (e.g. `batchStatus` of status.ts bound to its deps). */
export type StatusPoller = (id: string) => Promise<BatchStatus | undefined>;

/** Waits for a batch to complete, calling `onProgress` with each status read. */
export async function waitForBatch(
  poll: StatusPoller,
  id: string,
  opts: {
    intervalMs?: number;
    onProgress?: (s: BatchStatus) => void;
    clock?: Pick<Clock, 'now'>;
    timeoutMs?: number;
  } = {},
): Promise<BatchStatus> {
  const intervalMs = opts.intervalMs ?? 500;
  const start = opts.clock?.now() ?? Date.now();
  for (;;) {
    const status = await poll(id);
    if (!status) throw new Error(`no batch ${id}`);
    opts.onProgress?.(status);
    if (status.state === 'completed') return status;
    if (
      opts.timeoutMs !== undefined &&
      (opts.clock?.now() ?? Date.now()) - start > opts.timeoutMs
    ) {
      throw new Error(`batch ${id} not completed within ${opts.timeoutMs} ms`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
