/**
 * What ioredis does to a command whose reply a dropped connection lost: it sends it again after
 * reconnecting (autoResendUnfulfilledCommands, its default; the cluster client after a failover),
 * so the command runs twice and its caller sees the second reply. A Proxy over a client that does
 * exactly that to the first EVALSHA of one script, for tests of the scripts that must answer a
 * second run of the same call as they answered the first.
 */
import type { Redis } from 'ioredis';
import type { LuaScript } from '../../src/infra/redis/lua-script.ts';

export function resendingOnce(inner: Redis, script: LuaScript): Redis {
  let done = false;
  return new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop === 'evalsha') {
        const evalsha = (sha: string, args: (string | number)[]) =>
          (target.evalsha as (...a: (string | number)[]) => Promise<unknown>)(sha, ...args);
        return async (sha: string, ...args: (string | number)[]) => {
          if (sha !== script.sha || done) return evalsha(sha, args);
          done = true;
          await evalsha(sha, args);
          return evalsha(sha, args);
        };
      }
      const value: unknown = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? (value as () => unknown).bind(target) : value;
    },
  });
}
