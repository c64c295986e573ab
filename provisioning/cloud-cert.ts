import { isIP } from 'node:net';
import { normalizeSerial } from '../protocol/cert-identity.js';
import { OutputFolder } from './output.js';
import { issueCertificate } from './pki.js';
import type { TenantKeyring } from './tenant.js';
import { checkHost } from './units.js';

/**
 * The cloud API's HTTPS certificate, issued by the tenant CA for a cloud the tenant runs itself
 * (a single-site installation, the demo). Gateways then check the cloud with the tenant's
 * ca.crt (`gateway add --cloud-ca DIR/tenant/ca.crt` puts it in their bundle as cloud-ca.crt),
 * exactly as terminals check the gateway. A cloud with a certificate from a public CA needs
 * none of this: gateways check it against the system's store.
 */
export const CLOUD_CERT_FILES = { cert: 'cloud/https.crt', key: 'cloud/https.key' } as const;
/** The identity in the certificate's SAN: urn:clockface:<tenant>:cloud:api. */
export const CLOUD_CERT_ID = 'api';

export interface CloudCertOptions {
  /** The name gateways dial (the host of their cloud.url); more names in altNames. */
  host: string;
  altNames?: string[];
  validityDays?: number;
}

export interface CloudCertResult {
  serial: string;
  names: string[];
  cert: string;
  key: string;
  notAfter: string;
}

export async function issueCloudCertificate(out: OutputFolder, ring: TenantKeyring, opts: CloudCertOptions): Promise<CloudCertResult> {
  const names = [opts.host, ...(opts.altNames ?? [])].map(checkHost);
  // Renewing (replacing an existing certificate and key) takes --force, as every replacement does.
  out.assertWritable([CLOUD_CERT_FILES.cert, CLOUD_CERT_FILES.key]);
  const cert = await issueCertificate({
    ca: ring.ca,
    tenant: ring.tenant,
    role: 'cloud',
    id: CLOUD_CERT_ID,
    validityDays: opts.validityDays,
    dnsNames: names.filter((n) => isIP(n) === 0),
    ipAddresses: names.filter((n) => isIP(n) !== 0),
  });
  out.mkdir('cloud', 0o700);
  out.write(CLOUD_CERT_FILES.cert, cert.certPem, { overwrite: true });
  out.write(CLOUD_CERT_FILES.key, cert.keyPem, { secret: true, overwrite: true });
  return {
    serial: normalizeSerial(cert.serial),
    names,
    cert: out.resolveInside(CLOUD_CERT_FILES.cert),
    key: out.resolveInside(CLOUD_CERT_FILES.key),
    notAfter: cert.notAfter.toISOString(),
  };
}
