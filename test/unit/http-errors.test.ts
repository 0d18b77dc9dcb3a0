/**
 * One error shape everywhere (src/http/errors.ts): fastify's own body-parsing and routing errors
 * answer `{ error: { code, message } }` in the product's words, never an `FST_ERR_*` code and
 * never the request URL echoed back.
 */
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { buildHttpServer } from '../../src/http/server.ts';
import { createLogger } from '../../src/infra/logger.ts';

const TOKEN = 'test-token-0123456789abcdef';

async function server() {
  return buildHttpServer({
    checkResponses: true,
    logger: createLogger({ level: 'silent' }),
    tokens: { write: TOKEN },
    payments: {} as never,
    ready: () => Promise.resolve({ ok: true as const }),
  });
}

describe('framework errors in the product error shape', () => {
  it.each([
    ['malformed JSON', 'application/json', '{bad', 400, 'invalid_json'],
    ['an empty JSON body', 'application/json', '', 400, 'invalid_json'],
    ['an unsupported media type', 'text/xml', '<a/>', 415, 'unsupported_media_type'],
  ])('%s', async (_what, type, payload, status, code) => {
    const app = await server();
    const res = await app.inject({
      method: 'POST',
      url: '/payments',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': type },
      payload,
    });
    expect(res.statusCode).toBe(status);
    expect(res.json()).toEqual({ error: { code, message: expect.any(String) as string } });
    expect(res.body).not.toContain('FST_');
    await app.close();
  });

  it('an over-long path parameter: 414 without echoing the URL', async () => {
    const app = await server();
    const long = 'x'.repeat(300);
    const res = await app.inject({
      method: 'GET',
      url: `/payments/${long}`,
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(res.statusCode).toBe(414);
    expect(res.json()).toMatchObject({ error: { code: 'uri_too_long' } });
    expect(res.body).not.toContain(long);
    await app.close();
  });

  it("a URL over node's header limit: 431 in the error shape (fastify's own body before)", async () => {
    const app = await server();
    await app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = app.server.address() as AddressInfo;
    const res = await new Promise<{ status: number; type: string; body: string }>(
      (resolve, reject) => {
        const req = request(
          { host: '127.0.0.1', port, path: `/payments?cursor=${'y'.repeat(20_000)}` },
          (r) => {
            let body = '';
            r.on('data', (c: Buffer) => (body += c.toString()));
            r.on('end', () =>
              resolve({ status: r.statusCode ?? 0, type: String(r.headers['content-type']), body }),
            );
          },
        );
        req.on('error', reject);
        req.end();
      },
    );
    expect(res.status).toBe(431);
    expect(res.type).toMatch(/^application\/json/);
    expect(JSON.parse(res.body)).toEqual({
      error: {
        code: 'headers_too_large',
        message: 'the URL and headers are too large (16 KiB in all)',
      },
    });
    await app.close();
  });
});

describe("requests the routes' zod schemas refuse, in the product error shape", () => {
  it.each([
    ['a bad value', '/payments?limit=0', ['limit']],
    ['an unknown parameter', '/payments?colour=red', ['colour']],
    ['several problems at once', '/payments?state=paid&limit=x', ['state', 'limit']],
  ])('%s: 422 invalid_query, one detail per field', async (_what, url, fields) => {
    const app = await server();
    const res = await app.inject({ url, headers: { authorization: `Bearer ${TOKEN}` } });
    expect(res.statusCode).toBe(422);
    const body = res.json<{ error: { code: string; message: string; details: unknown[] } }>();
    expect(body).toEqual({
      error: {
        code: 'invalid_query',
        message: 'the list query is invalid',
        details: fields.map((field) => ({ field, message: expect.any(String) as string })),
      },
    });
    expect(res.body).not.toContain('FST_');
    await app.close();
  });

  it('the token is checked before the query: no token, 401 whatever the query', async () => {
    const app = await server();
    const res = await app.inject({ url: '/payments?limit=0' });
    expect(res.statusCode).toBe(401);
    await app.close();
  });
});
