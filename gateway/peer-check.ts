import type { TLSSocket } from 'node:tls';
import { certificateIdentity, normalizeSerial } from '../protocol/cert-identity.js';
import type { ClientIdentity } from './authz.js';

/**
 * Who is at the other end of a TLS connection, or why they are refused — decided once per
 * connection, right after the handshake, for the MQTT port and the WebSocket port alike.
 *
 * The TLS servers run with `requestCert` but without `rejectUnauthorized`: with it, OpenSSL
 * ends the handshake itself and the gateway only ever saw "socket hang up" / ECONNRESET, not
 * which certificate was refused or why. Here the verification result OpenSSL computed against
 * the tenant CA (`authorized`, `authorizationError`) is read after the handshake and named.
 * Two stages:
 *   tls       the certificate did not verify (none, another CA, out of date): the socket is
 *             closed before the MQTT layer sees one byte of it;
 *   identity  it verified, but its identity has no rights here (another tenant's name, revoked,
 *             a role without broker rights): the client gets CONNACK 5 "not authorized", as a
 *             verified peer deserves an answer it can act on.
 */
export type PeerRefusalReason =
  | 'no-certificate'
  | 'unknown-ca'
  | 'expired'
  | 'not-yet-valid'
  | 'unverified'
  | 'other-tenant'
  | 'no-identity'
  | 'revoked'
  | 'no-broker-rights';

export type PeerRefusalStage = 'tls' | 'identity';

export class PeerRefusal {
  constructor(
    readonly reason: PeerRefusalReason,
    readonly stage: PeerRefusalStage,
    readonly detail: string,
    /** The serial of the certificate the peer presented (verified or not), lowercase hex. */
    readonly serial?: string,
  ) {}
}

export interface PeerCheckOptions {
  tenant: string;
  isRevoked: (serial: string) => boolean;
}

/** OpenSSL verification codes (X509_V_ERR_*, as Node names them) that mean "not signed by the tenant CA". */
const UNKNOWN_ISSUER = new Set([
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
]);

export function checkPeer(socket: TLSSocket, opts: PeerCheckOptions): ClientIdentity | PeerRefusal {
  const cert = socket.getPeerX509Certificate();
  if (!cert) return new PeerRefusal('no-certificate', 'tls', 'no client certificate presented');
  // Read before it is trusted only to name the refusal; an unverified identity grants nothing.
  const claimed = certificateIdentity(cert);
  const serial = claimed?.serial ?? normalizeSerial(cert.serialNumber);
  if (!socket.authorized) {
    const code = verificationCode(socket.authorizationError);
    if (code === 'CERT_HAS_EXPIRED') return new PeerRefusal('expired', 'tls', `certificate expired on ${new Date(cert.validTo).toISOString()}`, serial);
    if (code === 'CERT_NOT_YET_VALID') return new PeerRefusal('not-yet-valid', 'tls', `certificate not valid before ${new Date(cert.validFrom).toISOString()}`, serial);
    if (claimed && claimed.tenant !== opts.tenant) return new PeerRefusal('other-tenant', 'tls', `certificate of tenant ${claimed.tenant}, not signed by this tenant's CA (${code})`, serial);
    if (UNKNOWN_ISSUER.has(code)) return new PeerRefusal('unknown-ca', 'tls', `certificate not signed by this tenant's CA (${code})`, serial);
    return new PeerRefusal('unverified', 'tls', `certificate did not verify (${code})`, serial);
  }
  if (!claimed) return new PeerRefusal('no-identity', 'identity', 'certificate carries no Clockface identity', serial);
  if (claimed.tenant !== opts.tenant) return new PeerRefusal('other-tenant', 'identity', `certificate names tenant ${claimed.tenant}`, serial);
  if (opts.isRevoked(claimed.serial)) return new PeerRefusal('revoked', 'identity', `certificate ${claimed.serial} is revoked`, serial);
  if (claimed.role === 'gateway' || claimed.role === 'cloud') return new PeerRefusal('no-broker-rights', 'identity', `role ${claimed.role} has no broker rights`, serial);
  return claimed;
}

/** "host:port" of the peer, for logs (the socket may already be closed: then what Node kept). */
export function peerAddress(socket: { remoteAddress?: string; remotePort?: number }): string | undefined {
  if (!socket.remoteAddress) return undefined;
  const host = socket.remoteAddress.includes(':') ? `[${socket.remoteAddress}]` : socket.remoteAddress;
  return socket.remotePort === undefined ? host : `${host}:${socket.remotePort}`;
}

function verificationCode(err: unknown): string {
  // Node documents authorizationError as an Error with the OpenSSL code; some versions give the code string itself.
  if (typeof err === 'string') return err;
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'UNKNOWN';
}
