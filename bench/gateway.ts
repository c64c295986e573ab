import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt, { type MqttClient } from 'mqtt';
import { generateKeyPair, newMessageId, sealAndSign, topics } from '../protocol/index.js';
import { createSitePki, type SitePki } from '../gateway/testing/site-pki.js';
import { StandInCloud } from '../gateway/testing/stand-in-cloud.js';
import { percentile, round } from './measure.js';

/**
 * `npm run bench -- gateway`: 50 simulated terminals (mqtt.js over TLS with client
 * certificates) publish sealed QoS 1 events as fast as their inflight window allows, against
 *  1. the Clockface gateway (a separate `clockface gateway` process): durable SQLite queue
 *     committed before each PUBACK, forwarding to a local ingest endpoint (the stand-in cloud
 *     over loopback HTTP); after the run we wait until every PUBACKed event reached it;
 *  2. Debian's Mosquitto with persistence on and the same TLS setup, for reference (note:
 *     Mosquitto's persistence is a periodic snapshot, not a per-message commit).
 * Output: events/s, publish→PUBACK latency p50/p99, broker RSS, and whether anything was lost.
 */
const TERMINALS = Number(process.env.BENCH_GATEWAY_TERMINALS ?? 50);
const WINDOW = Number(process.env.BENCH_GATEWAY_WINDOW ?? 10);
const SECONDS = Number(process.env.BENCH_GATEWAY_SECONDS ?? 5);
/** Unique sealed events per terminal, made before the clock starts; the run stops early if they run out. */
const PER_TERMINAL = Number(process.env.BENCH_GATEWAY_EVENTS ?? 1600);
const TENANT = 'acme';

const here = dirname(fileURLToPath(import.meta.url));

export async function run(): Promise<Record<string, unknown>> {
  const dir = mkdtempSync(join(tmpdir(), 'cf-bench-gw-'));
  try {
    const pki = await createSitePki(join(dir, 'pki'), TENANT);
    const terminals = [];
    for (let i = 0; i < TERMINALS; i++) terminals.push(await pki.issue('device', `term-${i}`));
    process.stderr.write(`bench gateway: sealing events for ${TERMINALS} terminals ...\n`);
    const sealStart = performance.now();
    const pool = makeEvents(TERMINALS, PER_TERMINAL);
    process.stderr.write(`bench gateway: sealed ${TERMINALS * PER_TERMINAL} events in ${Math.round(performance.now() - sealStart)} ms\n`);
    const results: Record<string, unknown> = { terminals: TERMINALS, inflightWindowPerTerminal: WINDOW, seconds: SECONDS };
    for (const durability of ['full', 'normal'] as const) {
      process.stderr.write(`bench gateway: clockface gateway (synchronous=${durability}) ...\n`);
      results[`clockface_${durability}`] = await benchGateway(dir, pki, terminals, pool, durability);
    }
    process.stderr.write('bench gateway: mosquitto ...\n');
    results.mosquitto = await benchMosquitto(dir, pki, terminals, pool);
    const gwRate = (results.clockface_full as { eventsPerSecond: number }).eventsPerSecond;
    const mqRate = (results.mosquitto as { eventsPerSecond?: number }).eventsPerSecond;
    results.targets = {
      eventsPerSecond: 3000,
      metEventsPerSecond: gwRate >= 3000,
      ratioToMosquitto: mqRate ? round(gwRate / mqRate, 2) : null,
      metHalfOfMosquitto: mqRate ? gwRate >= mqRate / 2 : null,
    };
    return results;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

interface BenchEvent {
  id: string;
  envelope: Buffer;
}

/** Sealed, signed event envelopes made before the clock starts (a ~250-byte alarm each). */
function makeEvents(terminals: number, perTerminal: number): BenchEvent[][] {
  const cloud = generateKeyPair('x25519');
  const recipient = { keyId: cloud.keyId, key: cloud.publicKey };
  return Array.from({ length: terminals }, (_, t) => {
    const signer = generateKeyPair('ed25519');
    const device = `term-${t}`;
    return Array.from({ length: perTerminal }, (_, i) => {
      const id = newMessageId();
      const body = { type: 'alarm', eventId: id, tenant: TENANT, device, alarm: 'tamper', door: null, at: Date.now() };
      return { id, envelope: sealAndSign({ kind: 'event', id, tenant: TENANT, device, seq: i + 1, body, signer, recipient }) };
    });
  });
}

async function benchGateway(dir: string, pki: SitePki, terminals: { certPem: string; keyPem: string }[], pool: BenchEvent[][], durability: 'full' | 'normal') {
  const token = 'bench-' + newMessageId();
  const cloud = new StandInCloud({ tenant: TENANT, token, adminKey: generateKeyPair('ed25519') });
  await cloud.start();
  const runDir = mkdtempSync(join(dir, `gw-${durability}-`));
  writeFileSync(join(runDir, 'gateway.token'), token);
  const config = {
    tenant: TENANT,
    gateway: 'bench-gw',
    dataDir: join(runDir, 'data'),
    durability,
    mqtt: { host: '127.0.0.1', port: 0, ca: pki.caFile, cert: pki.gatewayCertFile, key: pki.gatewayKeyFile, wsPort: null },
    cloud: { url: cloud.url, tokenFile: join(runDir, 'gateway.token') },
    ops: { port: 0 },
    log: { level: 'info' },
    // Terminals in the field publish a few events a minute; the bench runs them flat out.
    limits: { publishRate: 100_000, publishBurst: 100_000, maxInflight: 1000 },
  };
  const configFile = join(runDir, 'gateway.json');
  writeFileSync(configFile, JSON.stringify(config));
  const child = spawn(process.execPath, [...nodeFlags(), join(here, '..', 'cli', 'main.js'), 'gateway', '--config', configFile], { stdio: ['ignore', 'ignore', 'pipe'] });
  try {
    const port = await readyPort(child);
    const load = await publishLoad(port, pki, terminals, pool, child.pid);
    const drainStart = performance.now();
    const acked = load.ackedIds;
    const stored = () => new Set(cloud.events.map((e) => e.id));
    let atCloud = stored();
    while (acked.some((id) => !atCloud.has(id)) && performance.now() - drainStart < 60_000) {
      await new Promise((r) => setTimeout(r, 100));
      atCloud = stored();
    }
    const lost = acked.filter((id) => !atCloud.has(id)).length;
    return {
      ...load.summary,
      forwardedToIngest: atCloud.size,
      lostAfterDrain: lost,
      drainAfterLoadMs: Math.round(performance.now() - drainStart),
      duplicatesAtIngest: cloud.duplicates,
      ingestCalls: cloud.ingestCalls,
      rssMB: load.rssMB,
    };
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    await cloud.stop();
  }
}

async function benchMosquitto(dir: string, pki: SitePki, terminals: { certPem: string; keyPem: string }[], pool: BenchEvent[][]) {
  const runDir = mkdtempSync(join(dir, 'mosquitto-'));
  const port = 20000 + Math.floor(Math.random() * 20000);
  const conf = join(runDir, 'mosquitto.conf');
  writeFileSync(
    conf,
    [
      'per_listener_settings false',
      'user root',
      `persistence true`,
      `persistence_location ${runDir}/`,
      'allow_anonymous false',
      `listener ${port} 127.0.0.1`,
      `cafile ${pki.caFile}`,
      `certfile ${pki.gatewayCertFile}`,
      `keyfile ${pki.gatewayKeyFile}`,
      'require_certificate true',
      'use_identity_as_username true',
      'max_queued_messages 100000',
      'log_dest stderr',
      'log_type error',
      '',
    ].join('\n'),
  );
  const child = spawn('mosquitto', ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const started = await new Promise<boolean>((resolve) => {
    child.once('error', () => resolve(false));
    child.once('exit', () => resolve(false));
    setTimeout(() => resolve(true), 700);
  });
  if (!started) return { error: `mosquitto did not start: ${err.slice(0, 300) || 'not installed?'}` };
  try {
    const load = await publishLoad(port, pki, terminals, pool, child.pid);
    return { ...load.summary, rssMB: load.rssMB, persistence: 'on (periodic snapshot, autosave on shutdown)' };
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
}

/** Extra Node flags for the gateway process, e.g. BENCH_GATEWAY_NODE_FLAGS="--cpu-prof" to profile it. */
function nodeFlags(): string[] {
  return (process.env.BENCH_GATEWAY_NODE_FLAGS ?? '').split(/\s+/).filter(Boolean);
}

function readyPort(child: ChildProcess): Promise<number> {
  let err = '';
  return new Promise((resolve, reject) => {
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (c: string) => {
      err = (err + c).slice(-20_000);
      const m = /"mqttPort":(\d+)/.exec(err);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`gateway exited (${code}): ${err.slice(-1000)}`)));
  });
}

async function publishLoad(port: number, pki: SitePki, terminals: { certPem: string; keyPem: string }[], pool: BenchEvent[][], pid: number | undefined) {
  const ca = readFileSync(pki.caFile);
  const clients: MqttClient[] = await Promise.all(
    terminals.map(
      (t, i) =>
        new Promise<MqttClient>((resolve, reject) => {
          const c = mqtt.connect({ protocol: 'mqtts', host: '127.0.0.1', port, ca, cert: t.certPem, key: t.keyPem, protocolVersion: 4, reconnectPeriod: 0, clientId: `term-${i}`, clean: true });
          c.once('connect', () => resolve(c));
          c.once('error', reject);
        }),
    ),
  );
  const latencies: number[] = [];
  const ackedIds: string[] = [];
  let errors = 0;
  let measuring = false;
  let running = true;
  let measured = 0;
  let lastMeasuredAt = 0;
  const pumps = clients.map((client, t) => {
    const events = pool[t]!;
    let next = 0;
    let inflight = 0;
    return new Promise<void>((resolve) => {
      const pump = () => {
        while (running && inflight < WINDOW && next < events.length) {
          const ev = events[next++]!;
          const started = performance.now();
          const counted = measuring;
          inflight++;
          client.publish(topics.events(TENANT, `term-${t}`), ev.envelope, { qos: 1 }, (e) => {
            inflight--;
            if (e) errors++;
            else {
              ackedIds.push(ev.id);
              if (counted && measuring) {
                measured++;
                lastMeasuredAt = performance.now();
                latencies.push(lastMeasuredAt - started);
              }
            }
            if (running && next < events.length) pump();
            else if (inflight === 0) resolve();
          });
        }
        if (inflight === 0) resolve();
      };
      pump();
    });
  });
  // Warm-up: the first tenth of the events (TLS sessions, JIT, SQLite page cache), then measure.
  const warmup = Math.floor(pool.reduce((n, events) => n + events.length, 0) / 10);
  while (ackedIds.length < warmup) await new Promise((r) => setTimeout(r, 5));
  measuring = true;
  const t0 = performance.now();
  const cpu0 = cpuSecondsOf(pid);
  let rssMB = 0;
  const sampler = setInterval(() => (rssMB = Math.max(rssMB, rssOf(pid))), 500);
  const allDone = Promise.all(pumps);
  await Promise.race([allDone, new Promise((r) => setTimeout(r, SECONDS * 1000))]);
  measuring = false;
  // If the terminals ran out of events early, the rate is over the time they were busy.
  const elapsed = ((lastMeasuredAt || performance.now()) - t0) / 1000;
  clearInterval(sampler);
  rssMB = Math.max(rssMB, rssOf(pid));
  const cpuSeconds = cpuSecondsOf(pid) - cpu0;
  running = false;
  await Promise.all(pumps);
  for (const c of clients) c.end(true);
  latencies.sort((a, b) => a - b);
  const exhausted = ackedIds.length >= pool.reduce((n, events) => n + events.length, 0);
  return {
    ackedIds,
    rssMB: round(rssMB, 1),
    summary: {
      eventsPerSecond: Math.round(measured / elapsed),
      measuredSeconds: round(elapsed, 2),
      // Broker CPU per event (user + system), from /proc: what the broker costs, apart from the load generator.
      brokerCpuMicrosecondsPerEvent: measured ? Math.round((cpuSeconds * 1e6) / measured) : null,
      brokerCpuCores: round(cpuSeconds / elapsed, 2),
      pubackLatencyMs: { p50: round(percentile(latencies, 50), 2), p99: round(percentile(latencies, 99), 2) },
      ackedTotal: ackedIds.length,
      publishErrors: errors,
      poolExhausted: exhausted,
    },
  };
}

/** utime + stime of a process in seconds (Linux /proc, 100 ticks per second). */
function cpuSecondsOf(pid: number | null | undefined): number {
  if (!pid) return 0;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

function rssOf(pid: number | null | undefined): number {
  if (!pid) return 0;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}
