import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createLogger } from '../common/log.js';
import { loadGatewayConfig } from '../gateway/config.js';
import { startGateway } from '../gateway/gateway.js';
import { GatewayStore } from '../gateway/store.js';
import { createSitePki, type SitePki } from '../gateway/testing/site-pki.js';
import { IngestEndpoint } from './gateway.js';
import { round } from './measure.js';

/**
 * `npm run bench -- gateway-drain`: a site gateway catching up after a cloud outage. The queue
 * is filled before the gateway starts, the gateway runs in this process with its forwarder
 * pointed at a local ingest endpoint (on its own thread), and we time the drain while sampling
 * the broker thread's event-loop delay (1 ms resolution): a long delay is a stretch in which no
 * terminal's TLS read, PUBACK or door message was handled. Two queues: 50,000 small events
 * (476 bytes, as the gateway bench's) and 1,000 punch photos of 80 KB (16 MiB requests).
 */
const TENANT = 'acme';
const CASES = [
  { name: 'smallEvents', count: 50_000, bytes: 476 },
  { name: 'punchPhotos', count: 1_000, bytes: 80_000 },
];

export async function run(): Promise<Record<string, unknown>> {
  const dir = mkdtempSync(join(tmpdir(), 'cf-bench-drain-'));
  try {
    const pki = await createSitePki(join(dir, 'pki'), TENANT);
    const results: Record<string, unknown> = {};
    for (const c of CASES) results[c.name] = await drain(dir, pki, c);
    return results;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function drain(dir: string, pki: SitePki, c: (typeof CASES)[number]) {
  const token = 'bench-' + randomUUID();
  const cloud = await IngestEndpoint.start(TENANT, token);
  const runDir = mkdtempSync(join(dir, `${c.name}-`));
  writeFileSync(join(runDir, 'gateway.token'), token);
  const configFile = join(runDir, 'gateway.json');
  writeFileSync(
    configFile,
    JSON.stringify({
      tenant: TENANT,
      gateway: 'bench-gw',
      dataDir: join(runDir, 'data'),
      mqtt: { host: '127.0.0.1', port: 0, ca: pki.caFile, cert: pki.gatewayCertFile, key: pki.gatewayKeyFile, wsPort: null },
      cloud: { url: cloud.url, tokenFile: join(runDir, 'gateway.token') },
      ops: { port: 0 },
      log: { level: 'error' },
    }),
  );
  const config = loadGatewayConfig(configFile);
  const store = new GatewayStore({ dataDir: config.dataDir, durability: 'normal' });
  const envelope = randomBytes(c.bytes);
  for (let i = 0; i < c.count; i += 500) {
    store.appendEvents(Array.from({ length: Math.min(500, c.count - i) }, () => ({ id: randomUUID(), device: 'door-1', envelope })));
  }
  store.close();
  const delay = monitorEventLoopDelay({ resolution: 1 });
  const started = performance.now();
  const gw = await startGateway(config, { log: createLogger({ name: 'bench-drain', level: 'error' }), ops: false });
  delay.enable();
  while ((await cloud.stats()).stored < c.count) await new Promise((r) => setTimeout(r, 20));
  delay.disable();
  const drainMs = performance.now() - started;
  const { duplicates } = await cloud.stats();
  await gw.close();
  await cloud.stop();
  return {
    events: c.count,
    eventBytes: c.bytes,
    drainMs: Math.round(drainMs),
    eventsPerSecond: Math.round(c.count / (drainMs / 1000)),
    duplicatesAtIngest: duplicates,
    brokerLoopDelayMs: { p50: round(delay.percentile(50) / 1e6), p99: round(delay.percentile(99) / 1e6), max: round(delay.max / 1e6) },
  };
}
