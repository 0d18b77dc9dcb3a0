/**
 * A stub Sayswitch for tests that need answers the sandbox never gives (an HTML page, a redirect,
 * another amount): real HTTP on a free loopback port, each request answered by `answer` from its
 * path. With {@link quietHandlerContext}, for calling a queue handler directly.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { HandlerContext } from '../../src/infra/queues/processor.ts';

export interface StubAnswer {
  status: number;
  /** Default `application/json` when there is a body. */
  headers?: Record<string, string>;
  /** A string is sent as is; anything else as JSON. */
  body?: unknown;
}

export interface StubGateway {
  url: string;
  close(): Promise<void>;
}

/** Starts the stub; `answer` gets the request's path (the reference is its last segment). */
export async function startStubGateway(answer: (path: string) => StubAnswer): Promise<StubGateway> {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const a = answer(req.url ?? '');
      const text =
        a.body === undefined ? '' : typeof a.body === 'string' ? a.body : JSON.stringify(a.body);
      res.writeHead(a.status, {
        ...(a.body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...a.headers,
      });
      res.end(text);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The reference a lookup asked about: the path's last segment. */
export function referenceOf(path: string): string {
  return decodeURIComponent(path.split('/').pop() ?? '');
}

/** A handler context whose log discards everything. */
export const quietHandlerContext = {
  log: { info: () => undefined, warn: () => undefined, error: () => undefined },
} as unknown as HandlerContext;
