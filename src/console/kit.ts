/** What the console's page modules share (plugin.ts builds it). */
import type { FastifyReply, FastifyRequest } from 'fastify';
// The `schema.hide` option is @fastify/swagger's (its types augment FastifySchema with it).
import type {} from '@fastify/swagger';
import type { ConsoleDeps } from './deps.ts';
import type { Html } from './html.ts';
import type { Flash, PageContext } from './layout.ts';

/** Route options of every console route: out of the OpenAPI document. */
export const HIDDEN = { schema: { hide: true } } as const;

/** Helpers the page modules share. */
export interface ConsoleKit {
  deps: ConsoleDeps;
  /** The page context of a request (who, CSRF token, flash); clears the flash it read. */
  ctx(req: FastifyRequest, reply: FastifyReply): PageContext;
  /** Sends a whole page. */
  send(reply: FastifyReply, body: Html, status?: number): FastifyReply;
  /** Redirects after an action (303 See Other) with a flash message for the next page. */
  done(reply: FastifyReply, location: string, flash: Flash): FastifyReply;
  /** Who acts: the operator's identity from the credentials. */
  who(req: FastifyRequest): string;
}
