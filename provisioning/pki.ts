// @peculiar/x509 resolves its algorithms through tsyringe, which needs the Reflect metadata API.
import 'reflect-metadata';
import { createPrivateKey, randomBytes, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { CERT_ROLES, identityUri, type CertRole } from '../protocol/cert-identity.js';
import { assertId } from '../protocol/index.js';

/**
 * The tenant's certificate authority and the certificates it issues for MQTT over TLS.
 * ECDSA P-256 keys: every TLS stack a site may use (Node, Mosquitto, OpenSSL, embedded
 * clients) speaks it. A unit's identity is in its certificate, never in what it claims; the
 * encoding, and the reading that services do, is protocol/cert-identity.ts.
 */
type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;
x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY_MS = 86_400_000;

export interface PemPair {
  certPem: string;
  keyPem: string;
}

export interface IssuedCertificate extends PemPair {
  /** Lowercase hex serial, as used in revocation lists. */
  serial: string;
  notAfter: Date;
}

export interface CaOptions {
  tenant: string;
  validityDays?: number;
  now?: Date;
}

export async function createCertificateAuthority(opts: CaOptions): Promise<IssuedCertificate> {
  const tenant = assertId('tenant', opts.tenant);
  const keys = (await webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify'])) as CryptoKeyPair;
  const notBefore = new Date((opts.now ?? new Date()).getTime() - 5 * 60_000);
  const notAfter = new Date(notBefore.getTime() + (opts.validityDays ?? 3650) * DAY_MS);
  const serial = newSerial();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial,
    name: `CN=Clockface tenant CA ${tenant}, O=${tenant}`,
    notBefore,
    notAfter,
    signingAlgorithm: ALGORITHM,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString('pem'), keyPem: await privateKeyPem(keys.privateKey), serial, notAfter };
}

export interface IssueOptions {
  ca: PemPair;
  tenant: string;
  role: CertRole;
  id: string;
  validityDays?: number;
  /** Override the validity window (tests issue expired certificates this way). */
  notBefore?: Date;
  notAfter?: Date;
  /** Server certificates (the gateway's broker, the cloud API) get these names and serverAuth. */
  dnsNames?: string[];
  ipAddresses?: string[];
}

export async function issueCertificate(opts: IssueOptions): Promise<IssuedCertificate> {
  const tenant = assertId('tenant', opts.tenant);
  const id = assertId(opts.role === 'device' ? 'device' : 'gateway', opts.id);
  if (!CERT_ROLES.includes(opts.role)) throw new Error(`unknown certificate role ${opts.role}`);
  const caCert = new x509.X509Certificate(opts.ca.certPem);
  const caKey = await importPrivateKey(opts.ca.keyPem);
  const keys = (await webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify'])) as CryptoKeyPair;
  const notBefore = opts.notBefore ?? new Date(Date.now() - 5 * 60_000);
  const notAfter = opts.notAfter ?? new Date(notBefore.getTime() + (opts.validityDays ?? 825) * DAY_MS);
  const isServer = (opts.dnsNames?.length ?? 0) + (opts.ipAddresses?.length ?? 0) > 0;
  const serial = newSerial();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial,
    subject: `CN=${id}, OU=${opts.role}, O=${tenant}`,
    issuer: caCert.subject,
    notBefore,
    notAfter,
    signingAlgorithm: ALGORITHM,
    publicKey: keys.publicKey,
    signingKey: caKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement, true),
      new x509.ExtendedKeyUsageExtension(
        isServer ? [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth] : [x509.ExtendedKeyUsage.clientAuth],
      ),
      new x509.SubjectAlternativeNameExtension([
        { type: 'url', value: identityUri({ tenant, role: opts.role, id }) },
        ...(opts.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value })),
        ...(opts.ipAddresses ?? []).map((value) => ({ type: 'ip' as const, value })),
      ]),
      await x509.AuthorityKeyIdentifierExtension.create(caCert),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString('pem'), keyPem: await privateKeyPem(keys.privateKey), serial, notAfter };
}

/** A signed X.509 CRL (PEM) for TLS stacks that take one (Node's `crl` option, Mosquitto's crlfile). */
export async function createRevocationList(ca: PemPair, serials: string[], now = new Date()): Promise<string> {
  const caCert = new x509.X509Certificate(ca.certPem);
  const crl = await x509.X509CrlGenerator.create({
    issuer: caCert.subject,
    thisUpdate: now,
    nextUpdate: new Date(now.getTime() + 7 * DAY_MS),
    entries: serials.map((serialNumber) => ({ serialNumber, revocationDate: now })),
    signingAlgorithm: ALGORITHM,
    signingKey: await importPrivateKey(ca.keyPem),
  });
  // OpenSSL (Node, Mosquitto) expects the "X509 CRL" PEM label.
  return toPem('X509 CRL', Buffer.from(crl.rawData));
}

function toPem(label: string, der: Buffer): string {
  const body = der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`;
}

function newSerial(): string {
  // 16 random bytes with the top bit clear: a positive INTEGER as RFC 5280 asks.
  const bytes = randomBytes(16);
  bytes[0] = bytes[0]! & 0x7f | 0x10;
  return bytes.toString('hex');
}

async function privateKeyPem(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key));
  return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }).export({ format: 'pem', type: 'pkcs8' }).toString();
}

async function importPrivateKey(pem: string): Promise<CryptoKey> {
  const der = createPrivateKey(pem).export({ format: 'der', type: 'pkcs8' });
  return webcrypto.subtle.importKey('pkcs8', der, ALGORITHM, false, ['sign']) as Promise<CryptoKey>;
}
