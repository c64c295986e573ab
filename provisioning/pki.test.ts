import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { connect, createServer, type TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { certificateIdentity, normalizeSerial } from '../protocol/cert-identity.js';
import { createCertificateAuthority, createRevocationList, issueCertificate } from './pki.js';

describe('tenant PKI', () => {
  it('issues certificates whose identity a real TLS server reads from the verified peer', async () => {
    const ca = await createCertificateAuthority({ tenant: 'acme' });
    const server = await issueCertificate({ ca, tenant: 'acme', role: 'gateway', id: 'site-1', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
    const device = await issueCertificate({ ca, tenant: 'acme', role: 'device', id: 'door-1' });

    const tls = createServer({ key: server.keyPem, cert: server.certPem, ca: ca.certPem, requestCert: true, rejectUnauthorized: true }, (s: TLSSocket) => {
      const peer = s.getPeerX509Certificate();
      s.end(JSON.stringify(peer ? certificateIdentity(peer) : null));
    });
    tls.listen(0, '127.0.0.1');
    await once(tls, 'listening');
    const { port } = tls.address() as AddressInfo;
    const client = connect({ host: '127.0.0.1', port, ca: ca.certPem, key: device.keyPem, cert: device.certPem, servername: 'localhost' });
    let text = '';
    client.on('data', (d) => (text += d));
    await once(client, 'end');
    tls.close();
    expect(JSON.parse(text)).toEqual({ tenant: 'acme', role: 'device', id: 'door-1', serial: normalizeSerial(device.serial) });
  });

  it('refuses a client certificate from another CA at the TLS handshake', async () => {
    const ca = await createCertificateAuthority({ tenant: 'acme' });
    const other = await createCertificateAuthority({ tenant: 'acme' });
    const server = await issueCertificate({ ca, tenant: 'acme', role: 'gateway', id: 'site-1', ipAddresses: ['127.0.0.1'] });
    const rogue = await issueCertificate({ ca: other, tenant: 'acme', role: 'device', id: 'door-1' });
    const tls = createServer({ key: server.keyPem, cert: server.certPem, ca: ca.certPem, requestCert: true, rejectUnauthorized: true }, (s) => s.end('hello'));
    tls.listen(0, '127.0.0.1');
    await once(tls, 'listening');
    const { port } = tls.address() as AddressInfo;
    const client = connect({ host: '127.0.0.1', port, ca: ca.certPem, key: rogue.keyPem, cert: rogue.certPem });
    const outcome = await new Promise<string>((resolve) => {
      let got = '';
      client.on('data', (d) => (got += d));
      client.on('error', (e) => resolve(`error: ${e.message}`));
      client.on('close', () => resolve(got ? `data: ${got}` : 'closed'));
    });
    tls.close();
    expect(outcome).not.toContain('hello');
  });

  it('puts the tenant, role and id in the subject and SAN, and writes a CRL naming revoked serials', async () => {
    const ca = await createCertificateAuthority({ tenant: 'acme' });
    const leaf = await issueCertificate({ ca, tenant: 'acme', role: 'device', id: 'clock-2' });
    const cert = new X509Certificate(leaf.certPem);
    expect(cert.subject).toContain('CN=clock-2');
    expect(cert.subject).toContain('O=acme');
    expect(cert.verify(new X509Certificate(ca.certPem).publicKey)).toBe(true);
    const crl = await createRevocationList(ca, [leaf.serial]);
    expect(crl).toMatch(/^-----BEGIN X509 CRL-----\n/);
  });

  it('refuses ids that could inject into names or topics', async () => {
    const ca = await createCertificateAuthority({ tenant: 'acme' });
    await expect(issueCertificate({ ca, tenant: 'acme', role: 'device', id: 'door,O=evil' })).rejects.toThrow(/device id/);
    await expect(createCertificateAuthority({ tenant: 'ACME/#' })).rejects.toThrow(/tenant id/);
  });
});

describe('revocation list', () => {
  it('is a CRL that Node TLS accepts and uses to refuse the revoked client', async () => {
    const ca = await createCertificateAuthority({ tenant: 'acme' });
    const server = await issueCertificate({ ca, tenant: 'acme', role: 'gateway', id: 'site-1', ipAddresses: ['127.0.0.1'] });
    const revoked = await issueCertificate({ ca, tenant: 'acme', role: 'device', id: 'door-9' });
    const crl = await createRevocationList(ca, [revoked.serial]);
    const tls = createServer({ key: server.keyPem, cert: server.certPem, ca: ca.certPem, crl, requestCert: true, rejectUnauthorized: true }, (s) => s.end('hello'));
    tls.listen(0, '127.0.0.1');
    await once(tls, 'listening');
    const { port } = tls.address() as AddressInfo;
    const client = connect({ host: '127.0.0.1', port, ca: ca.certPem, key: revoked.keyPem, cert: revoked.certPem });
    const got = await new Promise<string>((resolve) => {
      let data = '';
      client.on('data', (d) => (data += d));
      client.on('error', () => resolve(data));
      client.on('close', () => resolve(data));
    });
    tls.close();
    expect(got).toBe('');
  });
});
