/**
 * A Lua script run by its SHA1 (EVALSHA), falling back to EVAL once when Redis does not have it
 * cached (first use, or after a restart or SCRIPT FLUSH). Sending the body with every call (EVAL)
 * costs a large socket write per call here and a SHA1 of the body in Redis; on the hot path (two
 * intent transitions per payment) that was a tenth of the worker's CPU. A NOSCRIPT reply means
 * nothing ran, so the fallback can never apply a script twice.
 */
import { createHash } from 'node:crypto';
import type { ChainableCommander, Redis } from 'ioredis';
import { mastersOf } from './connection.ts';

export type ScriptArg = string | number;

export function isNoScript(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith('NOSCRIPT');
}

export class LuaScript {
  readonly sha: string;

  constructor(readonly body: string) {
    this.sha = createHash('sha1').update(body).digest('hex');
  }

  /** Runs the script with `numKeys` keys first in `args`. */
  async run(redis: Redis, numKeys: number, ...args: ScriptArg[]): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, numKeys, ...args);
    } catch (err) {
      if (!isNoScript(err)) throw err;
      return redis.eval(this.body, numKeys, ...args);
    }
  }

  /** Queues the script on a pipeline; see {@link LuaScript.load} for a pipeline's NOSCRIPT. */
  queue(pipe: ChainableCommander, numKeys: number, ...args: ScriptArg[]): ChainableCommander {
    return pipe.evalsha(this.sha, numKeys, ...args);
  }

  /**
   * Runs the script once per call, all in one pipelined round trip; `[error, reply]` per call, in
   * order. Calls that met NOSCRIPT ran nothing: the script is loaded and only those run again.
   */
  async runPipelined(
    redis: Redis,
    calls: readonly { numKeys: number; args: readonly ScriptArg[] }[],
  ): Promise<[Error | null, unknown][]> {
    const exec = async (batch: readonly { numKeys: number; args: readonly ScriptArg[] }[]) => {
      const pipe = redis.pipeline();
      for (const c of batch) this.queue(pipe, c.numKeys, ...c.args);
      return (await pipe.exec()) ?? [];
    };
    const replies = await exec(calls);
    const missing = replies.flatMap(([err], i) => (isNoScript(err) ? [i] : []));
    if (missing.length === 0) return replies;
    await this.load(redis);
    const retried = await exec(missing.map((i) => calls[i]!));
    missing.forEach((i, j) => (replies[i] = retried[j] ?? replies[i]!));
    return replies;
  }

  /**
   * Caches the script in Redis (before re-running a pipeline whose calls met NOSCRIPT). On a
   * cluster every master gets it: a pipeline's calls run on the master of their slot.
   */
  async load(redis: Redis): Promise<void> {
    await Promise.all((await mastersOf(redis)).map((node) => node.script('LOAD', this.body)));
  }
}
