import type { X509Certificate } from 'node:crypto';

/**
 * What a Clockface certificate says about its holder, and how to read it back. The gateway,
 * the cloud and the terminal read peers' certificates; provisioning writes them. Reading
 * needs only node:crypto's X509Certificate, so a running service never loads the issuing
 * side's X.509 stack (provisioning/pki.ts). The encoding:
 *   subject  CN=<id>, OU=<role>, O=<tenant>
 *   SAN      URI urn:clockface:<tenant>:<role>:<id>   (the authoritative form)
 */
export const CERT_ROLES = ['device', 'gateway', 'operator', 'integration', 'cloud'] as const;
export type CertRole = (typeof CERT_ROLES)[number];

export interface CertIdentity {
  tenant: string;
  role: CertRole;
  id: string;
  serial: string;
}

export function identityUri(i: { tenant: string; role: CertRole; id: string }): string {
  return `urn:clockface:${i.tenant}:${i.role}:${i.id}`;
}

const URI_PATTERN = /URI:urn:clockface:([a-z0-9-]+):([a-z]+):([a-z0-9-]+)(?:,|$)/;

/**
 * Reads the identity a verified peer certificate carries (Node's X509Certificate, or
 * tls.TLSSocket#getPeerX509Certificate()). Returns null when it carries none in the
 * Clockface form: such a peer gets no rights.
 */
export function certificateIdentity(cert: X509Certificate): CertIdentity | null {
  const m = URI_PATTERN.exec(cert.subjectAltName ?? '');
  if (!m) return null;
  const [, tenant, role, id] = m as unknown as [string, string, string, string];
  if (!(CERT_ROLES as readonly string[]).includes(role)) return null;
  return { tenant, role: role as CertRole, id, serial: normalizeSerial(cert.serialNumber) };
}

/** Serials compare as lowercase hex without leading zeros (revocation lists, registry rows, logs). */
export function normalizeSerial(serial: string): string {
  return serial.toLowerCase().replace(/^0+(?=.)/, '');
}
