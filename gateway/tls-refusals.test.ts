import { readFileSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { connect as connectTls } from 'node:tls';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { normalizeSerial } from '../protocol/cert-identity.js';
import { createCertificateAuthority, issueCertificate } from '../provisioning/pki.js';
import type { Gateway } from './gateway.js';
import { connectClient, createSite, startWatchedGateway, until, type Site } from './testing/fixture.js';

/*
 * Every refused client is logged with why, from where and with which certificate: over real
 * TLS on loopback against the real gateway, one certificate per reason. A refusal at the TLS
 * stage (the certificate did not verify) never reaches the MQTT layer; one at the identity
 * stage (it verified but has no rights here) gets CONNACK 5.
 */
let site: Site;
let gw: Gateway;
let lines: string[];
/** Clients aedes took in (a CONNECT it processed), counted to prove the TLS stage keeps them out. */
let aedesClients = 0;

interface RefusalLine {
  msg: string;
  reason: string;
  stage: string;
  peer?: string;
  serial?: string;
  detail?: string;
  code?: string;
}

beforeAll(async () => {
  site = await createSite('acme');
  ({ gw, lines } = await startWatchedGateway(site, 'tls-refusals'));
  gw.broker.aedes.on('client', () => aedesClients++);
});

afterAll(async () => {
  await gw?.close();
  await site?.cleanup();
});

function refusals(): RefusalLine[] {
  return lines.map((l) => JSON.parse(l) as RefusalLine).filter((l) => l.msg === 'connection refused');
}

/** Tries to connect with the given certificate, expects a refusal, and returns the one new refusal log line. */
async function refusedWith(creds: { cert: string; key: string } | null): Promise<RefusalLine> {
  const before = refusals().length;
  if (creds) {
    // Every refusal, at either stage, is answered in MQTT: CONNACK 5.
    await expect(connectClient({ port: gw.mqttPort, ca: site.pki.caFile, creds })).rejects.toThrow(/not authorized/i);
  } else {
    // No client certificate at all: the handshake completes (the server asks, the client has none).
    await expect(mqtt.connectAsync({ protocol: 'mqtts', host: '127.0.0.1', port: gw.mqttPort, ca: readFileSync(site.pki.caFile), protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 10_000 })).rejects.toThrow(/not authorized/i);
  }
  await until(() => refusals().length > before);
  const added = refusals().slice(before);
  expect(added).toHaveLength(1);
  return added[0]!;
}

describe('refused TLS clients are logged with their reason', () => {
  it('no certificate, another CA, expired, not yet valid, and another tenant: refused at the TLS stage, before MQTT', async () => {
    const clientsBefore = aedesClients;
    const noCert = await refusedWith(null);
    expect(noCert).toMatchObject({ reason: 'no-certificate', stage: 'tls' });
    expect(noCert.peer).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(noCert.serial).toBeUndefined();

    const foreignCa = await createCertificateAuthority({ tenant: 'acme' });
    const wrongCa = await issueCertificate({ ca: foreignCa, tenant: 'acme', role: 'device', id: 'door-1' });
    expect(await refusedWith({ cert: wrongCa.certPem, key: wrongCa.keyPem })).toMatchObject({ reason: 'unknown-ca', stage: 'tls', serial: normalizeSerial(wrongCa.serial), peer: expect.stringMatching(/^127\.0\.0\.1:\d+$/) });

    const past = new Date(Date.now() - 10 * 86_400_000);
    const expired = await site.pki.issue('device', 'door-old', { notBefore: past, notAfter: new Date(past.getTime() + 86_400_000) });
    const expiredLine = await refusedWith({ cert: expired.certPem, key: expired.keyPem });
    expect(expiredLine).toMatchObject({ reason: 'expired', stage: 'tls', serial: normalizeSerial(expired.serial), peer: expect.stringMatching(/^127\.0\.0\.1:\d+$/) });
    expect(expiredLine.detail).toContain(new Date(past.getTime() + 86_400_000).toISOString().slice(0, 10));

    const future = new Date(Date.now() + 10 * 86_400_000);
    const early = await site.pki.issue('device', 'door-new', { notBefore: future, notAfter: new Date(future.getTime() + 86_400_000) });
    expect(await refusedWith({ cert: early.certPem, key: early.keyPem })).toMatchObject({ reason: 'not-yet-valid', stage: 'tls', serial: normalizeSerial(early.serial) });

    const globexCa = await createCertificateAuthority({ tenant: 'globex' });
    const otherTenant = await issueCertificate({ ca: globexCa, tenant: 'globex', role: 'device', id: 'door-1' });
    const otherLine = await refusedWith({ cert: otherTenant.certPem, key: otherTenant.keyPem });
    expect(otherLine).toMatchObject({ reason: 'other-tenant', stage: 'tls', serial: normalizeSerial(otherTenant.serial) });
    expect(otherLine.detail).toContain('globex');

    // None of them got as far as an MQTT session.
    expect(aedesClients).toBe(clientsBefore);
    for (const reason of ['no-certificate', 'unknown-ca', 'expired', 'not-yet-valid', 'other-tenant']) {
      expect(gw.metrics.tlsRefused.get({ reason })).toBe(1);
    }
    expect(gw.metrics.connectsRefused.get({ reason: 'tls' })).toBe(5);
  });

  it('a revoked serial, another tenant signed by this CA, and a role without broker rights: CONNACK 5, logged with peer and serial', async () => {
    const revoked = await site.pki.issue('device', 'door-lost');
    site.cloud.revokedSerials = [revoked.serial];
    await gw.sync!.refreshRevocations();
    const revokedLine = await refusedWith({ cert: revoked.certPem, key: revoked.keyPem });
    expect(revokedLine).toMatchObject({ reason: 'revoked', stage: 'identity', serial: normalizeSerial(revoked.serial), peer: expect.stringMatching(/^127\.0\.0\.1:\d+$/) });
    site.cloud.revokedSerials = [];

    const misnamed = await issueCertificate({ ca: site.pki.ca, tenant: 'globex', role: 'device', id: 'door-1' });
    await expect(connectClient({ port: gw.mqttPort, ca: site.pki.caFile, creds: { cert: misnamed.certPem, key: misnamed.keyPem } })).rejects.toThrow(/not authorized/i);
    await until(() => refusals().some((l) => l.serial === normalizeSerial(misnamed.serial)));
    expect(refusals().find((l) => l.serial === normalizeSerial(misnamed.serial))).toMatchObject({ reason: 'other-tenant', stage: 'identity' });

    const gatewayRole = await site.pki.issue('gateway', 'other-gw');
    expect(await refusedWith({ cert: gatewayRole.certPem, key: gatewayRole.keyPem })).toMatchObject({ reason: 'no-broker-rights', stage: 'identity', serial: normalizeSerial(gatewayRole.serial) });
  });

  it('a client that refuses the gateway\'s own certificate is logged as a failed handshake with its address', async () => {
    const before = refusals().length;
    const otherCa = await createCertificateAuthority({ tenant: 'acme' });
    const device = await site.pki.issue('device', 'door-h');
    await expect(
      new Promise<void>((resolve, reject) => {
        const socket = connectTls({ host: '127.0.0.1', port: gw.mqttPort, ca: otherCa.certPem, cert: device.certPem, key: device.keyPem, servername: 'localhost' }, () => resolve());
        socket.once('error', reject);
      }),
    ).rejects.toThrow();
    await until(() => refusals().length > before);
    const line = refusals().slice(before)[0]!;
    expect(line).toMatchObject({ reason: 'handshake-failed', stage: 'tls', peer: expect.stringMatching(/^127\.0\.0\.1:\d+$/) });
  });

  it('MQTT 5 clients and mosquitto_sub are told "not authorized" too', async () => {
    const foreignCa = await createCertificateAuthority({ tenant: 'acme' });
    const wrongCa = await issueCertificate({ ca: foreignCa, tenant: 'acme', role: 'integration', id: 'panel' });
    await expect(
      mqtt.connectAsync({ protocol: 'mqtts', host: '127.0.0.1', port: gw.mqttPort, ca: readFileSync(site.pki.caFile), cert: wrongCa.certPem, key: wrongCa.keyPem, protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 10_000 }),
    ).rejects.toThrow(/not authorized/i);
    const files = await site.pki.issue('device', 'door-gone', { notBefore: new Date(Date.now() - 3 * 86_400_000), notAfter: new Date(Date.now() - 86_400_000) });
    const err = await new Promise<string>((resolve) =>
      execFile('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(gw.mqttPort), '-V', 'mqttv311', '--cafile', site.pki.caFile, '--cert', files.certFile, '--key', files.keyFile, '-t', 'cf/v1/acme/+/door', '-C', '1', '-W', '5'], { timeout: 20_000 }, (_e, _out, stderr) => resolve(stderr)),
    );
    expect(err).toMatch(/not authori[sz]ed/i);
    await until(() => refusals().some((l) => l.serial === normalizeSerial(files.serial)));
    expect(refusals().find((l) => l.serial === normalizeSerial(files.serial))).toMatchObject({ reason: 'expired', stage: 'tls' });
  });

  it('a valid device certificate still connects', async () => {
    const creds = await site.pki.issue('device', 'door-ok');
    const client = await connectClient({ port: gw.mqttPort, ca: site.pki.caFile, creds });
    await client.endAsync(true);
  });
});
