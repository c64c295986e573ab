import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../common/log.js';
import { createCertificateAuthority } from '../provisioning/pki.js';
import { topics } from '../protocol/index.js';
import { startGateway, type Gateway } from './gateway.js';
import { connectClient, createSite, DeviceSim, QUICK_FORWARDER, type Site, until } from './testing/fixture.js';

/**
 * The gateway checks the cloud it talks to: over HTTPS with the CA named in cloud.ca, a cloud
 * whose certificate that CA did not sign is refused — nothing is sent to it, and the log says
 * why in words an operator can act on. With the right CA the same site forwards.
 */
let site: Site | undefined;
let gw: Gateway | undefined;
afterEach(async () => {
  await gw?.close();
  await site?.cleanup();
  gw = undefined;
  site = undefined;
});

async function start(s: Site, caFile: string) {
  const lines: Array<Record<string, unknown>> = [];
  const log = createLogger({ name: 'gateway-test', level: 'info', destination: { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) } });
  const { config } = s.writeConfig({ forwarder: QUICK_FORWARDER, cloud: { url: s.cloud.url, tokenFile: 'gateway.token', ca: caFile } });
  gw = await startGateway(config, { log, ops: false });
  return lines;
}

/** One sealed event from door-1, PUBACKed by the gateway (so it is on its queue for the cloud). */
async function publishOneEvent(s: Site): Promise<void> {
  const creds = await s.pki.issue('device', 'door-1');
  const client = await connectClient({ port: gw!.mqttPort, ca: s.pki.caFile, creds });
  await client.publishAsync(topics.events('acme', 'door-1'), new DeviceSim(s.tenant, 'door-1', s.cloudKey).event().envelope, { qos: 1 });
  await client.endAsync();
}

describe('gateway → cloud over HTTPS', () => {
  it('refuses a cloud whose certificate its cloud.ca did not sign, sends it nothing, and logs why', async () => {
    site = await createSite('acme');
    // Another tenant's CA (a copy-paste slip at install time): valid, but not the cloud's issuer.
    const other = await createCertificateAuthority({ tenant: 'globex' });
    writeFileSync(join(site.dir, 'other-ca.crt'), other.certPem);
    const lines = await start(site, 'other-ca.crt');
    await publishOneEvent(site);

    await until(() => lines.some((l) => l.reason === 'cloud-certificate-untrusted' && /forwarding stopped/.test(String(l.msg))));
    await until(() => lines.some((l) => l.reason === 'cloud-certificate-untrusted' && /no command reaches/.test(String(l.msg))));
    const refusal = lines.find((l) => l.reason === 'cloud-certificate-untrusted')!;
    expect(refusal.level).toBe(50); // error: an operator must act
    expect(refusal.tlsCode).toBe('UNABLE_TO_VERIFY_LEAF_SIGNATURE'); // no chain from the cloud's certificate to that CA
    expect(JSON.stringify(refusal)).toMatch(/cloud\.ca must name the CA that signed it/);
    expect(site.cloud.storedCount).toBe(0);
  });

  it('forwards to the same cloud once cloud.ca is the CA that signed its certificate', async () => {
    site = await createSite('acme');
    const lines = await start(site, 'pki/ca.crt');
    await publishOneEvent(site);
    await until(() => site!.cloud.storedCount === 1);
    expect(lines.filter((l) => l.reason === 'cloud-certificate-untrusted')).toEqual([]);
  });
});
