/**
 * TLS floor (docs/sayswitch-wire.md "Transport"): the adapter refuses a gateway that only speaks TLS 1.1 with a
 * fatal `tls_version` error, and works against TLS 1.2+. Certificates are generated at test time
 * with the openssl CLI, so no key material lives in the repository.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FatalError } from '../../../src/kernel/errors.ts';
import type { AttemptReference } from '../../../src/kernel/ids.ts';
import { amountMinor } from '../../../src/kernel/money.ts';
import type { ChargeRequest } from '../../../src/kernel/ports.ts';
import { SayswitchGateway } from '../../../src/infra/gateway/sayswitch/client.ts';

const silentCharge: ChargeRequest = {
  reference: 'api_tls_silent_1' as AttemptReference,
  amount: amountMinor(1000),
  currency: 'NGN',
  email: 'payer@example.com',
  cardToken: 'opaque-card-token',
};

let dir: string;
let key: Buffer;
let cert: Buffer;
const servers: https.Server[] = [];
const gateways: SayswitchGateway[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'sayswitch-tls-'));
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-sha256',
      '-days',
      '1',
      '-keyout',
      join(dir, 'key.pem'),
      '-out',
      join(dir, 'cert.pem'),
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
    ],
    { stdio: 'ignore' },
  );
  key = readFileSync(join(dir, 'key.pem'));
  cert = readFileSync(join(dir, 'cert.pem'));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

afterEach(async () => {
  for (const g of gateways.splice(0)) g.close();
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
});

/** A tiny gateway stand-in answering the wallet endpoint, limited to the given TLS versions. */
async function startServer(
  opts: https.ServerOptions,
): Promise<{ url: string; versions: string[] }> {
  const versions: string[] = [];
  const server = https.createServer({ key, cert, ...opts }, (req, res) => {
    versions.push((req.socket as TLSSocket).getProtocol() ?? 'unknown');
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({ success: true, data: { currency: 'NGN', balance: '1154.2', pending: '0' } }),
    );
  });
  // A refused handshake is the expected outcome of one test; keep it from surfacing as noise.
  server.on('tlsClientError', () => undefined);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, versions };
}

function gatewayFor(url: string): SayswitchGateway {
  const g = new SayswitchGateway({
    baseUrl: url,
    secretKey: 'sk_test_tls',
    timeoutMs: 5_000,
    httpsAgentOptions: { ca: cert },
  });
  gateways.push(g);
  return g;
}

describe('TLS floor', () => {
  it('refuses a server limited to TLS 1.1 with fatal tls_version', async () => {
    const { url, versions } = await startServer({
      minVersion: 'TLSv1.1',
      maxVersion: 'TLSv1.1',
      // OpenSSL 3 refuses TLS 1.1 at the default security level; lower it so the server can offer it.
      ciphers: 'DEFAULT@SECLEVEL=0',
    });
    let caught: unknown;
    try {
      await gatewayFor(url).walletBalance('NGN');
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(FatalError);
    expect(caught).toMatchObject({ kind: 'fatal', code: 'tls_version', authFailure: false });
    expect(versions).toEqual([]);
  });

  it('works against TLS 1.2', async () => {
    const { url, versions } = await startServer({ minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' });
    expect(await gatewayFor(url).walletBalance('NGN')).toEqual({
      currency: 'NGN',
      balance: 115_420,
      pending: 0,
    });
    expect(versions).toEqual(['TLSv1.2']);
  });

  it('works against TLS 1.3', async () => {
    const { url, versions } = await startServer({ minVersion: 'TLSv1.3' });
    expect((await gatewayFor(url).walletBalance('NGN')).balance).toBe(115_420);
    expect(versions).toEqual(['TLSv1.3']);
  });

  it('cannot be talked below TLS 1.2 through httpsAgentOptions', async () => {
    const { url } = await startServer({
      minVersion: 'TLSv1.1',
      maxVersion: 'TLSv1.1',
      ciphers: 'DEFAULT@SECLEVEL=0',
    });
    const g = new SayswitchGateway({
      baseUrl: url,
      secretKey: 'sk_test_tls',
      timeoutMs: 5_000,
      httpsAgentOptions: { ca: cert, minVersion: 'TLSv1', ciphers: 'DEFAULT@SECLEVEL=0' },
    });
    gateways.push(g);
    await expect(g.walletBalance('NGN')).rejects.toMatchObject({ code: 'tls_version' });
  });
});

describe('sent or not: a peer that accepts TCP and then says nothing', () => {
  const sockets = new Set<Socket>();
  let silent: Server;
  let url: string;

  beforeAll(async () => {
    silent = createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    url = `127.0.0.1:${(silent.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => silent.close(() => resolve()));
  });

  it('https: the TLS handshake never completes, so the request was never sent → retryable', async () => {
    const g = new SayswitchGateway({
      baseUrl: `https://${url}`,
      secretKey: 'sk_test_tls',
      timeoutMs: 300,
    });
    gateways.push(g);
    await expect(g.chargeCard(silentCharge)).rejects.toMatchObject({
      kind: 'retryable',
      code: 'connect_failed',
    });
  });

  it('http: the request was written, so a timeout is outcome_unknown', async () => {
    const g = new SayswitchGateway({
      baseUrl: `http://${url}`,
      secretKey: 'sk_test_tls',
      // Long enough to connect and write first on a loaded machine: a deadline before the
      // connection is up is "never sent" (connect_failed), which 300 ms sometimes was.
      timeoutMs: 2_000,
    });
    gateways.push(g);
    await expect(g.chargeCard(silentCharge)).rejects.toMatchObject({
      kind: 'outcome_unknown',
      code: 'timeout',
    });
  });
});
