import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CertRole } from '../../protocol/cert-identity.js';
import { createCertificateAuthority, issueCertificate, type IssuedCertificate, type IssueOptions } from '../../provisioning/pki.js';

/**
 * Test support: a tenant CA and the certificates a site needs, written as PEM files the way
 * provisioning lays them out. Used by the gateway's tests and benchmark.
 */
export interface SitePki {
  dir: string;
  tenant: string;
  ca: IssuedCertificate;
  caFile: string;
  gatewayCertFile: string;
  gatewayKeyFile: string;
  /** Issues a client certificate and writes it as <name>.crt / <name>.key. */
  issue(role: CertRole, id: string, extra?: Partial<IssueOptions> & { name?: string }): Promise<ClientCredentials>;
}

export interface ClientCredentials {
  id: string;
  serial: string;
  certPem: string;
  keyPem: string;
  certFile: string;
  keyFile: string;
}

export async function createSitePki(dir: string, tenant: string): Promise<SitePki> {
  mkdirSync(dir, { recursive: true });
  const ca = await createCertificateAuthority({ tenant });
  const caFile = join(dir, 'ca.crt');
  writeFileSync(caFile, ca.certPem);
  const gw = await issueCertificate({ ca, tenant, role: 'gateway', id: 'site-gw', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
  const gatewayCertFile = join(dir, 'gateway.crt');
  const gatewayKeyFile = join(dir, 'gateway.key');
  writeFileSync(gatewayCertFile, gw.certPem);
  writeFileSync(gatewayKeyFile, gw.keyPem, { mode: 0o600 });
  return {
    dir,
    tenant,
    ca,
    caFile,
    gatewayCertFile,
    gatewayKeyFile,
    async issue(role, id, extra = {}) {
      const { name, ...opts } = extra;
      const cert = await issueCertificate({ ca, tenant, role, id, ...opts });
      const base = join(dir, name ?? `${role}-${id}`);
      writeFileSync(`${base}.crt`, cert.certPem);
      writeFileSync(`${base}.key`, cert.keyPem, { mode: 0o600 });
      return { id, serial: cert.serial, certPem: cert.certPem, keyPem: cert.keyPem, certFile: `${base}.crt`, keyFile: `${base}.key` };
    },
  };
}
