/** Bearer-token guard for mutating routes; constant-time comparison. */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify';
import { apiError } from './errors.ts';

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Returns a fastify preHandler refusing requests without `Authorization: Bearer <token>`. */
export function requireBearer(token: string): preHandlerAsyncHookHandler {
  const expected = digest(token);
  return async (req: FastifyRequest, reply: FastifyReply) => {
    const header = req.headers.authorization ?? '';
    const m = /^Bearer (.+)$/.exec(header);
    if (!m || !timingSafeEqual(digest(m[1] ?? ''), expected)) {
      await reply
        .code(401)
        .send(apiError('unauthorized', 'a valid Authorization: Bearer token is required'));
    }
  };
}
