import { request } from 'node:https';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCertificateAuthority, issueCertificate, type IssuedCertificate } from '../provisioning/pki.js';
import { buildServer, loadTenantCas } from './server.js';
import { CloudService } from './service.js';
import { tempDir, writeTenantKeys } from './testing/fixtures.js';

/** Gateways authenticating with client certificates from their tenant CA, over real TLS. */
const dir = tempDir();
let service: CloudService;
let app: FastifyInstance;
let port: number;
let acmeCa: IssuedCertificate;
let gw: IssuedCertificate;
let forged: IssuedCertificate;
let revoked: IssuedCertificate;

beforeAll(async () => {
  acmeCa = await createCertificateAuthority({ tenant: 'acme' });
  const globexCa = await createCertificateAuthority({ tenant: 'globex' });
  const acmeKeys = writeTenantKeys(dir, 'acme');
  const globexKeys = writeTenantKeys(dir, 'globex');
  writeFileSync(join(acmeKeys.dir, 'ca.crt'), acmeCa.certPem);
  writeFileSync(join(globexKeys.dir, 'ca.crt'), globexCa.certPem);
  const server = await issueCertificate({ ca: acmeCa, tenant: 'acme', role: 'cloud', id: 'cloud', ipAddresses: ['127.0.0.1'] });
  writeFileSync(join(dir, 'server.crt'), server.certPem);
  writeFileSync(join(dir, 'server.key'), server.keyPem);
  gw = await issueCertificate({ ca: acmeCa, tenant: 'acme', role: 'gateway', id: 'gw-1' });
  revoked = await issueCertificate({ ca: acmeCa, tenant: 'acme', role: 'gateway', id: 'gw-2' });
  // Signed by globex's CA but claiming to be an acme gateway.
  forged = await issueCertificate({ ca: globexCa, tenant: 'acme', role: 'gateway', id: 'gw-1' });

  const tenants = [{ id: 'acme', keysDir: acmeKeys.dir }, { id: 'globex', keysDir: globexKeys.dir }];
  service = new CloudService({ dataDir: join(dir, 'data'), tenants });
  service.registry.addGateway('acme', 'gw-1', 'test');
  service.registry.addGateway('acme', 'gw-2', 'test');
  service.registry.revoke('acme', [revoked.serial], 'test');
  app = await buildServer({ service, tls: { cert: join(dir, 'server.crt'), key: join(dir, 'server.key') }, tenantCas: loadTenantCas(tenants) });
  await app.listen({ host: '127.0.0.1', port: 0 });
  port = (app.server.address() as { port: number }).port;
});
afterAll(async () => {
  await app?.close();
  service?.close();
  rmSync(dir, { recursive: true, force: true });
});

function get(path: string, client?: IssuedCertificate): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'GET', ca: acmeCa.certPem, ...(client ? { cert: client.certPem, key: client.keyPem } : {}) }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('gateway client certificates', () => {
  it('accepts a registered gateway certificate from its tenant CA', async () => {
    const r = await get('/v1/gateway/revocations', gw);
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body).serials).toEqual([revoked.serial]);
  });

  it('refuses no certificate, a certificate from another tenant’s CA, and a revoked one', async () => {
    expect((await get('/v1/gateway/revocations')).status).toBe(401);
    expect((await get('/v1/gateway/revocations', forged)).status).toBe(401);
    expect((await get('/v1/gateway/revocations', revoked)).status).toBe(401);
  });

  it('refuses the valid certificate of a gateway whose registration was revoked, until it gets a new token', async () => {
    const gw3 = await issueCertificate({ ca: acmeCa, tenant: 'acme', role: 'gateway', id: 'gw-3' });
    service.registry.addGateway('acme', 'gw-3', 'test');
    expect((await get('/v1/gateway/revocations', gw3)).status).toBe(200);
    service.registry.revokeGateway('acme', 'gw-3', 'test');
    expect((await get('/v1/gateway/revocations', gw3)).status).toBe(401);
    service.registry.rotateGatewayToken('acme', 'gw-3', 'test');
    expect((await get('/v1/gateway/revocations', gw3)).status).toBe(200);
  });
});
