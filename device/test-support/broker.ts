import { Aedes } from 'aedes';
import { createServer, type Server, type TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { createCertificateAuthority, issueCertificate, type PemPair } from '../../provisioning/pki.js';

/**
 * A minimal mutual-TLS aedes broker on loopback for the terminal's tests. It stands in for the
 * site gateway (branch `gateway`): same topics, same certificates, no store-and-forward.
 */
export interface TestBroker {
  url: string;
  port: number;
  aedes: Aedes;
  ca: PemPair;
  device: PemPair;
  /** A second client identity (the "gateway side" of tests). */
  peer: PemPair;
  /** The broker's own server certificate (kept for restarts on the same port). */
  serverPair: PemPair;
  close(): Promise<void>;
}

export async function startTestBroker(tenant: string, device: string, port = 0): Promise<TestBroker> {
  const ca = await createCertificateAuthority({ tenant });
  const server = await issueCertificate({ ca, tenant, role: 'gateway', id: 'gw-test', ipAddresses: ['127.0.0.1'], dnsNames: ['localhost'] });
  const deviceCert = await issueCertificate({ ca, tenant, role: 'device', id: device });
  const peer = await issueCertificate({ ca, tenant, role: 'gateway', id: 'gw-peer' });
  return listen({ ca, server, device: deviceCert, peer }, port);
}

/** Restarts a broker on the same port with the same certificates (broker-down scenarios). */
export async function restartTestBroker(b: TestBroker): Promise<TestBroker> {
  return listen({ ca: b.ca, server: b.serverPair, device: b.device, peer: b.peer }, b.port);
}

async function listen(c: { ca: PemPair; server: PemPair; device: PemPair; peer: PemPair }, port: number): Promise<TestBroker> {
  const aedes = await Aedes.createBroker();
  const server: Server = createServer(
    { ca: c.ca.certPem, cert: c.server.certPem, key: c.server.keyPem, requestCert: true, rejectUnauthorized: true },
    (socket: TLSSocket) => aedes.handle(socket),
  );
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const actual = (server.address() as AddressInfo).port;
  return {
    url: `mqtts://127.0.0.1:${actual}`,
    port: actual,
    aedes,
    ca: c.ca,
    device: c.device,
    peer: c.peer,
    serverPair: c.server,
    async close() {
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      server.close();
      // Drop live client connections so the device sees the broker go down at once.
      await new Promise<void>((resolve) => {
        server.getConnections(() => resolve());
      });
    },
  };
}
