/**
 * The 3-D Secure routes under `/__sandbox/3ds` (never encrypted, no auth, like every
 * `/__sandbox` route): the `_links.url` of a challenge answers `GET` with the payer's page and
 * `POST` with the documented payer-authentication step; `POST …/{complete,fail,abandon}` ends it.
 * Registered in their own scope so that the page's HTML form posts are accepted there only.
 */
import type { FastifyPluginCallback, FastifyReply, FastifyRequest } from 'fastify';
import type { SandboxCore } from './core.ts';
import { THREE_DS_ACTIONS, THREE_DS_PATH } from './three-ds.ts';

type RefParams = { reference: string };

/** `http://host:port` as the client reached the sandbox; roots the links a challenge carries. */
export function originOf(req: FastifyRequest): string {
  return `${req.protocol}://${req.host}`;
}

const isForm = (req: FastifyRequest): boolean =>
  (req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded');

function page(reply: FastifyReply, status: number, html: string): FastifyReply {
  return reply.code(status).type('text/html; charset=utf-8').send(html);
}

export function threeDsRoutes(core: SandboxCore): FastifyPluginCallback {
  return (scope, _opts, done) => {
    // The payer's page posts empty HTML forms; their bodies carry nothing the sandbox reads.
    scope.addContentTypeParser(
      'application/x-www-form-urlencoded',
      { parseAs: 'string' },
      (_req, _body, done) => done(null, {}),
    );

    scope.get<{ Params: RefParams }>(`${THREE_DS_PATH}/:reference`, (req, reply) => {
      const html = core.threeDs.page(req.params.reference);
      if (html === undefined) return page(reply, 404, '<p>No such challenge.</p>');
      return page(reply, 200, html);
    });

    scope.post<{ Params: RefParams }>(`${THREE_DS_PATH}/:reference`, (req, reply) => {
      const result = core.triggerThreeDs(req.params.reference, req.body, originOf(req));
      return reply.code(result.status).send(result.body);
    });

    for (const action of THREE_DS_ACTIONS) {
      scope.post<{ Params: RefParams }>(`${THREE_DS_PATH}/:reference/${action}`, (req, reply) => {
        const ref = req.params.reference;
        const result = core.endThreeDs(ref, action);
        if (!isForm(req)) return reply.code(result.status).send(result.body);
        // A browser on the payer's page: show the page again, now with the outcome.
        return page(reply, result.status, core.threeDs.page(ref) ?? '<p>No such challenge.</p>');
      });
    }
    done();
  };
}
