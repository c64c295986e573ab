import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer, type Server } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { certificateIdentity } from '../protocol/cert-identity.js';
import { provision } from './test-support.js';

/**
 * `provision cloud cert`: the cloud API's HTTPS certificate from the tenant CA. Proven by TLS
 * handshakes as a gateway makes them (the tenant's ca.crt as the only trust, the name it dials).
 */
let root: string;
let dir: string;
let server: Server;
let port: number;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'cf-cloud-cert-'));
  dir = join(root, 'acme');
  expect((await provision(['tenant', 'init', '--out', dir, '--tenant', 'acme'])).code).toBe(0);
});
afterAll(() => {
  server?.close();
  rmSync(root, { recursive: true, force: true });
});

function handshake(host: string, servername?: string): Promise<{ authorized: boolean; error: string | null }> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, ca: readFileSync(join(dir, 'tenant', 'ca.crt')), ...(servername ? { servername } : {}) });
    socket.once('secureConnect', () => {
      resolve({ authorized: socket.authorized, error: null });
      socket.destroy();
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve({ authorized: false, error: err.code ?? err.message }));
  });
}

describe('provision cloud cert', () => {
  it('issues the cloud a server certificate for the names gateways dial, trusted through the tenant CA only', async () => {
    const r = await provision(['cloud', 'cert', '--out', dir, '--host', 'localhost', '--alt-name', '127.0.0.1']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.names).toEqual(['localhost', '127.0.0.1']);
    expect(r.stderr).toMatch(/--cloud-ca .*tenant\/ca\.crt/);
    const certFile = join(dir, 'cloud', 'https.crt');
    const keyFile = join(dir, 'cloud', 'https.key');
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    const cert = new X509Certificate(readFileSync(certFile));
    expect(certificateIdentity(cert)).toMatchObject({ tenant: 'acme', role: 'cloud', id: 'api' });
    expect(cert.checkIssued(new X509Certificate(readFileSync(join(dir, 'tenant', 'ca.crt'))))).toBe(true);

    server = createServer({ cert: readFileSync(certFile), key: readFileSync(keyFile) }, (s) => s.end());
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
    expect(await handshake('127.0.0.1', 'localhost')).toEqual({ authorized: true, error: null });
    expect(await handshake('127.0.0.1')).toEqual({ authorized: true, error: null });
    expect((await handshake('127.0.0.1', 'cloud.example')).error).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
  });

  it('renews only with --force, and refuses a host that is not a name or address', async () => {
    const again = await provision(['cloud', 'cert', '--out', dir, '--host', 'localhost']);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/refusing to overwrite existing cloud\/https\.crt, cloud\/https\.key \(use --force/);
    const renewed = await provision(['cloud', 'cert', '--out', dir, '--host', 'localhost', '--force']);
    expect(renewed.code, renewed.stderr).toBe(0);
    const bad = await provision(['cloud', 'cert', '--out', dir, '--host', 'not a host', '--force']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/"not a host" is not a host name or IP address/);
  });
});
