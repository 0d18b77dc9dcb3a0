/**
 * This process's HTTP traffic as events, from Node's built-in diagnostics channels
 * (`http.server.request.start`, `http.server.response.finish`, `http.client.request.start`,
 * `http.client.request.error`): a test can wait for something to happen inside a server or a
 * client it has no hook into (the sandbox, the app) instead of sleeping and hoping it did.
 * Servers are told apart by the port they listen on, clients by the port they call.
 */
import diagnostics from 'node:diagnostics_channel';
import type { ClientRequest, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

interface ServerMessage {
  request: IncomingMessage;
  response: ServerResponse;
  server: Server;
}

interface ClientMessage {
  request: ClientRequest;
  error?: NodeJS.ErrnoException;
}

const listensOn = (server: Server, port: number) =>
  (server.address() as AddressInfo | null)?.port === port;

const calls = (request: ClientRequest, port: number) =>
  String(request.getHeader('host')).endsWith(`:${port}`);

/** A running count of events; `stop()` stops counting. */
export interface Counter {
  (): number;
  stop(): void;
}

function counter<M>(channel: string, matches: (message: M) => boolean): Counter {
  let n = 0;
  const listener = (message: unknown) => {
    if (matches(message as M)) n++;
  };
  diagnostics.subscribe(channel, listener);
  return Object.assign(() => n, { stop: () => diagnostics.unsubscribe(channel, listener) });
}

function first<M>(channel: string, matches: (message: M) => boolean): Promise<M> {
  return new Promise((resolve) => {
    const listener = (message: unknown) => {
      if (!matches(message as M)) return;
      diagnostics.unsubscribe(channel, listener);
      resolve(message as M);
    };
    diagnostics.subscribe(channel, listener);
  });
}

/** Resolves once a request for `path` reached the server on `port`, whatever it then does. */
export async function serverRequestReached(port: number, path: string): Promise<void> {
  await first<ServerMessage>(
    'http.server.request.start',
    (m) => listensOn(m.server, port) && m.request.url === path,
  );
}

/** Counts the responses with `status` the server on `port` finished sending for `path`. */
export function countServerResponses(port: number, path: string, status: number): Counter {
  return counter<ServerMessage>(
    'http.server.response.finish',
    (m) => listensOn(m.server, port) && m.request.url === path && m.response.statusCode === status,
  );
}

/** Counts the requests this process starts to `port`. */
export function countClientRequests(port: number): Counter {
  return counter<ClientMessage>('http.client.request.start', (m) => calls(m.request, port));
}

/** Resolves with the error of the first request this process makes to `port` that fails. */
export async function clientRequestFailed(port: number): Promise<NodeJS.ErrnoException> {
  const m = await first<ClientMessage>('http.client.request.error', (c) => calls(c.request, port));
  return m.error!;
}
