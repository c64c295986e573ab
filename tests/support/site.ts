import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startHarness, type Harness } from '../../cloud/testing/harness.js';
import type { Logger } from '../../common/log.js';
import { DeviceConfig } from '../../device/config.js';
import type { FaceEngine } from '../../device/face-engine.js';
import type { PunchBody } from '../../device/events.js';
import type { SimulatedCardReader } from '../../device/hardware/index.js';
import { startDeviceService, type DeviceService } from '../../device/service.js';
import { startGateway, type Gateway } from '../../gateway/gateway.js';
import { createSite, type Site } from '../../gateway/testing/fixture.js';
import { privateKeyToPem } from '../../protocol/index.js';
import { policyWithGroupIds } from '../../demo/site.js';

/**
 * The three tiers in one process, each over its real protocol: the real cloud (SQLite, vault,
 * receipts) on loopback HTTP, the site gateway (aedes with client certificates, durable queue)
 * forwarding to it, and terminals that get their certificates from the site CA and their keys
 * registered with the cloud — what provisioning does, without the files. Used by the cross-tier
 * test and the end-to-end benchmark.
 */
export interface InProcessSite {
  cloud: Harness;
  site: Site;
  gateway: Gateway;
  cloudPort: number;
  startTerminal(id: string, opts: { frame: Buffer; policy: Record<string, unknown>; mode: 'access' | 'timekeeping'; face: FaceEngine | null }): Promise<DeviceService>;
  /** The opaque id of the access group with this name in the cloud's directory (made on first use). */
  accessGroupId(name: string): Promise<string>;
  close(): Promise<void>;
}

export async function startInProcessSite(log: Logger, forwarder: Record<string, number> = {}, gatewayExtra: Record<string, unknown> = {}): Promise<InProcessSite> {
  const cloud = await startHarness(['acme']);
  const site = await createSite('acme');
  writeFileSync(join(site.dir, 'cloud.token'), cloud.tenants.get('acme')!.gatewayToken, { mode: 0o600 });
  const { config } = site.writeConfig({
    cloud: { url: cloud.url, tokenFile: 'cloud.token' },
    limits: { publishRate: 100_000, publishBurst: 100_000, maxInflight: 1000 },
    forwarder: { batchSize: 200, requestTimeoutMs: 5000, backoffBaseMs: 20, backoffMaxMs: 300, breakerThreshold: 3, breakerCooldownMs: 300, longPollSeconds: 1, revocationRefreshMs: 3_600_000, ...forwarder },
    ...gatewayExtra,
  });
  const gateway = await startGateway(config, { log });
  const terminals: DeviceService[] = [];
  const accessGroupId = async (name: string) => {
    const r = await cloud.api('POST', '/v1/tenants/acme/access-groups', { token: cloud.tenants.get('acme')!.ownerKey, body: { name } });
    if (r.status !== 200 && r.status !== 201) throw new Error(`access group: HTTP ${r.status}`);
    return r.json.id as string;
  };
  return {
    accessGroupId,
    cloud,
    site,
    gateway,
    cloudPort: Number(new URL(cloud.url).port),
    async startTerminal(id, opts) {
      const t = cloud.tenants.get('acme')!;
      const keys = await cloud.addDevice('acme', id);
      const creds = await site.pki.issue('device', id);
      const dir = join(site.dir, id);
      mkdirSync(join(dir, 'camera'), { recursive: true });
      writeFileSync(join(dir, 'camera', 'frame.jpg'), opts.frame);
      const files: Record<string, string> = {
        'ca.crt': readFileSync(site.pki.caFile, 'utf8'),
        'device.crt': creds.certPem,
        'device.key': creds.keyPem,
        'device-signing.key': privateKeyToPem(keys.signing),
        'device-sealing.key': privateKeyToPem(keys.sealing),
        'cloud-sealing.pub': t.keys.cloudSealing.publicRaw.toString('base64'),
        'admin-signing.pub': t.keys.adminSigning.publicRaw.toString('base64'),
        'card-pepper.key': t.keys.pepper.toString('base64'),
      };
      for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text, { mode: 0o600 });
      const deviceConfig = DeviceConfig.parse({
        tenant: 'acme',
        device: id,
        mode: opts.mode,
        dataDir: join(dir, 'data'),
        mqtt: { url: `mqtts://127.0.0.1:${gateway.mqttPort}` },
        hardware: {
          camera: { driver: 'replay', replayPath: join(dir, 'camera'), fps: 30 },
          reader: { driver: 'simulator', repeatWindowMs: 0 },
          gpio: { driver: 'simulator' },
          pins: { relay: 17, greenLed: 22, redLed: 23, buzzer: 24 },
        },
        // Installed as facilities staff would: access groups by their ids from the cloud's directory.
        policy: await policyWithGroupIds(opts.policy, accessGroupId),
      });
      const service = await startDeviceService({ config: deviceConfig, baseDir: dir, log, face: opts.face, opsPort: null });
      terminals.push(service);
      return service;
    },
    async close() {
      for (const t of terminals) await t.stop();
      await gateway.close();
      await site.cleanup();
      await cloud.close().catch(() => undefined);
    },
  };
}

/** Badges a card (its number) at a terminal's simulated reader and waits for the decision. */
export async function badge(service: DeviceService, card: number): Promise<{ punch: PunchBody; relayAt: number | null; startedAt: number }> {
  const punched = new Promise<{ punch: PunchBody; relayAt: number | null }>((resolve) =>
    service.terminal.once('punch', (punch, meta) => resolve({ punch, relayAt: meta.relayAt })),
  );
  const startedAt = performance.now();
  (service.hardware.reader as SimulatedCardReader).present(card.toString(16).toUpperCase().padStart(10, '0'));
  return { ...(await punched), startedAt };
}
