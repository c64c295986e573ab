import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topics } from '../protocol/index.js';
import { spawnGateway, type GatewayProcess } from './testing/child.js';
import { DeviceSim, connectClient, createSite, until, type Site } from './testing/fixture.js';
import { GatewayStore } from './store.js';

/*
 * The durability promise, tested on a real process: a PUBACK means the event is on the
 * gateway's disk. Terminals publish as fast as they can; the gateway is killed with SIGKILL
 * mid-stream; every event that had been PUBACKed must be in the queue file or already at the
 * cloud, and after a restart every one of them reaches the cloud. Then the same under a
 * graceful SIGTERM, which must exit 0 and lose nothing either.
 */
let site: Site;
let configFile: string;
let gw: GatewayProcess | null = null;

beforeAll(async () => {
  site = await createSite('acme');
  ({ file: configFile } = site.writeConfig({
    log: { level: 'info' },
    limits: { maxPacketBytes: 600 * 1024, publishRate: 100_000, publishBurst: 100_000, maxInflight: 1000 },
    forwarder: { batchSize: 100, requestTimeoutMs: 5000, backoffBaseMs: 20, backoffMaxMs: 200, breakerThreshold: 5, breakerCooldownMs: 200, longPollSeconds: 1, revocationRefreshMs: 3_600_000 },
  }));
});

afterAll(async () => {
  if (gw && gw.child.exitCode === null) {
    gw.child.kill('SIGKILL');
    await gw.exited;
  }
  await site?.cleanup();
});

/** Terminals publishing QoS 1 events with a window of `window` unacknowledged each; records PUBACKed ids. */
async function load(port: number, devices: number, window: number) {
  const acked = new Set<string>();
  let running = true;
  const clients: MqttClient[] = [];
  const sims = Array.from({ length: devices }, (_, i) => new DeviceSim('acme', `term-${i}`, site.cloudKey));
  for (const sim of sims) {
    const creds = await site.pki.issue('device', sim.id);
    clients.push(await connectClient({ port, ca: site.pki.caFile, creds }));
  }
  const pumps = clients.map((client, i) => {
    const sim = sims[i]!;
    return new Promise<void>((resolve) => {
      let inflight = 0;
      const next = () => {
        while (running && client.connected && inflight < window) {
          const ev = sim.event();
          inflight++;
          client.publish(topics.events('acme', sim.id), ev.envelope, { qos: 1 }, (err) => {
            inflight--;
            if (!err) acked.add(ev.id);
            if (running && client.connected) next();
            else if (inflight === 0) resolve();
          });
        }
      };
      client.on('close', () => resolve());
      next();
    });
  });
  return {
    acked,
    stop: async () => {
      running = false;
      await Promise.race([Promise.all(pumps), new Promise((r) => setTimeout(r, 5000))]);
      for (const c of clients) c.end(true);
    },
  };
}

function queuedIds(): Set<string> {
  const dataDir = join(site.dir, 'data');
  if (!existsSync(join(dataDir, 'gateway.sqlite'))) return new Set();
  const store = new GatewayStore({ dataDir });
  const ids = new Set(store.nextEvents(1_000_000).map((e) => e.id));
  store.close();
  return ids;
}

describe('gateway process durability', () => {
  it('loses no PUBACKed event when killed with SIGKILL under load, and forwards them all after a restart', async () => {
    site.cloud.mode = 'up';
    gw = await spawnGateway(configFile);
    const run = await load(gw.mqttPort, 10, 20);
    await until(() => run.acked.size >= 1500);
    gw.child.kill('SIGKILL');
    expect(await gw.exited).toBe('SIGKILL');
    await run.stop();
    const acked = [...run.acked];

    const atCloud = new Set(site.cloud.events.map((e) => e.id));
    const onDisk = queuedIds();
    const missing = acked.filter((id) => !atCloud.has(id) && !onDisk.has(id));
    expect(missing).toEqual([]);

    gw = await spawnGateway(configFile);
    await until(() => {
      const stored = new Set(site.cloud.events.map((e) => e.id));
      return acked.every((id) => stored.has(id)) && queuedIds().size === 0;
    }, 50);
    gw.child.kill('SIGTERM');
    expect(await gw.exited).toBe(0);
  }, 120_000);

  it('shuts down gracefully on SIGTERM under load without losing a PUBACKed event', async () => {
    site.cloud.mode = 'error'; // nothing leaves: every acknowledged event must be in the queue file
    const before = new Set(site.cloud.events.map((e) => e.id));
    gw = await spawnGateway(configFile);
    const run = await load(gw.mqttPort, 10, 20);
    await until(() => run.acked.size >= 1000);
    gw.child.kill('SIGTERM');
    expect(await gw.exited).toBe(0);
    await run.stop();
    const onDisk = queuedIds();
    expect([...run.acked].filter((id) => !onDisk.has(id) && !before.has(id))).toEqual([]);
    expect(gw.stderr()).toMatch(/"msg":"gateway stopped"/);
  }, 120_000);
});
