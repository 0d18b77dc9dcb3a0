/**
 * What ioredis does to a command whose reply a dropped connection lost: it sends it again after
 * reconnecting (autoResendUnfulfilledCommands, its default; the cluster client after a failover),
 * so the command runs twice and its caller sees the second reply. A Proxy over a client that does
 * exactly that to the first call of one of `targets`: the EVALSHA of a script, or a plain command
 * named as the client's method (`'hincrby'`), for tests of the calls that must answer a second
 * run of the same call as they answered the first. Naming both a script and the command it
 * replaced lets one test fail on the old code and pass on the new.
 */
import type { Redis } from 'ioredis';
import type { LuaScript } from '../../src/infra/redis/lua-script.ts';

type Call = (...args: unknown[]) => Promise<unknown>;

export function resendingOnce(inner: Redis, ...targets: (LuaScript | string)[]): Redis {
  const scripts = new Set(targets.flatMap((t) => (typeof t === 'string' ? [] : [t.sha])));
  const commands = new Set(targets.filter((t): t is string => typeof t === 'string'));
  let done = false;
  /** `call`, run twice the first time `targeted` says so; the second reply is answered. */
  const twiceOnce =
    (call: Call, targeted: (args: unknown[]) => boolean): Call =>
    async (...args) => {
      if (done || !targeted(args)) return call(...args);
      done = true;
      await call(...args);
      return call(...args);
    };
  return new Proxy(inner, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      const call = (value as Call).bind(target);
      if (prop === 'evalsha') return twiceOnce(call, (args) => scripts.has(args[0] as string));
      if (typeof prop === 'string' && commands.has(prop)) return twiceOnce(call, () => true);
      return call;
    },
  });
}
