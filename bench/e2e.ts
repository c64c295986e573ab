import { readFileSync } from 'node:fs';
import mqtt, { type MqttClient } from 'mqtt';
import { createLogger } from '../common/log.js';
import { WasmTerminalFaceEngine } from '../device/face/terminal-engine.js';
import { cardHash, topics } from '../protocol/index.js';
import { badge, startInProcessSite } from '../tests/support/site.js';
import { percentile, round } from './measure.js';
import { oneFaceFrame } from '../demo/people.js';
import { opaqueSubject } from '../protocol/fixtures.js';

/**
 * End to end through the three tiers (in one process, each over its real protocol): 100
 * simulated terminals publish real sealed, signed punches with their own client certificates
 * over MQTT/TLS to the site gateway, which queues them durably and forwards them to the real
 * cloud (SQLite, receipts). The rate counts a punch only once the cloud has stored it. Then one
 * real terminal service (real face engine, 1:1 badge + face) gives badge-to-relay and
 * badge-to-cloud-receipt latency (the receipt travels back through the gateway).
 */
const TERMINALS = 100;
const PER_TERMINAL = 60;
const WINDOW = 10;

export async function run(): Promise<Record<string, unknown>> {
  const log = createLogger({ name: 'bench-e2e', level: 'silent' });
  const stack = await startInProcessSite(log, { batchSize: 500 });
  const clients: MqttClient[] = [];
  try {
    const { cloud, site, gateway } = stack;
    // 100 terminals: keys registered with the cloud, certificates from the site CA.
    const sims = [];
    for (let i = 0; i < TERMINALS; i++) {
      const id = `sim-${i}`;
      await cloud.addDevice('acme', id);
      const creds = await site.pki.issue('device', id);
      const client = await mqtt.connectAsync({
        protocol: 'mqtts', host: '127.0.0.1', port: gateway.mqttPort, ca: readFileSync(site.pki.caFile), cert: creds.certPem, key: creds.keyPem,
        protocolVersion: 4, clientId: `acme.${id}`, reconnectPeriod: 0,
      });
      clients.push(client);
      const envelopes = Array.from({ length: PER_TERMINAL }, () => cloud.punch('acme', id).envelope);
      sims.push({ id, client, envelopes });
    }
    const stored = () => cloud.service.db.prepare('SELECT COUNT(*) FROM punches').pluck().get() as number;
    const before = stored();
    const total = TERMINALS * PER_TERMINAL;
    const t0 = performance.now();
    await Promise.all(
      sims.map(async ({ id, client, envelopes }) => {
        let next = 0;
        const lane = async () => {
          while (next < envelopes.length) await client.publishAsync(topics.events('acme', id), envelopes[next++]!, { qos: 1 });
        };
        await Promise.all(Array.from({ length: WINDOW }, lane));
      }),
    );
    const acceptedMs = performance.now() - t0;
    while (stored() < before + total) await new Promise((r) => setTimeout(r, 5));
    const storedMs = performance.now() - t0;
    for (const c of clients) await c.endAsync();
    clients.length = 0;

    // One real terminal in the loop: badge + face on the real engine.
    const face = await WasmTerminalFaceEngine.create();
    const frame = await oneFaceFrame(face.engine);
    const door = await stack.startTerminal('door-bench', { frame, mode: 'access', face, policy: { credentials: 'card+face', access: { pulseMs: 100, groups: { staff: 'always' } } } });
    const t = cloud.tenants.get('acme')!;
    // The terminal's policy holds the group's opaque id (startTerminal asked the cloud's directory for it); so does the subject.
    const staff = await stack.accessGroupId('staff');
    door.store.upsertSubject(
      { subject: opaqueSubject('s-bench'), cardHashes: [cardHash(t.keys.pepper, '1001')], pinHash: null, faceConsent: true, accessGroups: [staff], suspended: false },
      [{ model: face.model, vector: await face.templateFromPhoto(frame) }],
    );
    while (!door.link.connected) await new Promise((r) => setTimeout(r, 10));
    const relay: number[] = [];
    const receipt: number[] = [];
    for (let i = 0; i < 25; i++) {
      const acked = door.link.acknowledged;
      const { punch, relayAt, startedAt } = await badge(door, 1001);
      if (punch.decision !== 'granted' || relayAt === null) throw new Error(`bench terminal refused its own employee: ${punch.reasons.join(', ')}`);
      while (door.link.acknowledged === acked) await new Promise((r) => setTimeout(r, 1));
      if (i >= 5) {
        relay.push(relayAt - startedAt);
        receipt.push(performance.now() - startedAt);
      }
      await new Promise((r) => setTimeout(r, 150));
    }
    relay.sort((x, y) => x - y);
    receipt.sort((x, y) => x - y);
    return {
      terminals: TERMINALS,
      punches: total,
      punchesPerSecondToCloud: Math.round((total * 1000) / storedMs),
      punchesPerSecondAcceptedByGateway: Math.round((total * 1000) / acceptedMs),
      badgeToRelayMs: { median: round(percentile(relay, 50)), p95: round(percentile(relay, 95)), n: relay.length },
      badgeToCloudReceiptMs: { median: round(percentile(receipt, 50)), p95: round(percentile(receipt, 95)), n: receipt.length },
      note: 'one process, 2 cores shared by cloud, gateway, 100 MQTT/TLS terminals and one real terminal with the WASM face engine',
    };
  } finally {
    for (const c of clients) c.end(true);
    await stack.close();
  }
}
