import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../common/log.js';
import { topics } from '../protocol/index.js';
import { startGateway, type Gateway } from './gateway.js';
import { createSite, DeviceSim, QUICK_FORWARDER, type Site, until } from './testing/fixture.js';
import { freePort } from '../common/free-port.js';
import { requireTool } from '../tests/support/tools.js';

/*
 * A real Mosquitto (Debian's `mosquitto`) bridged in front of the gateway with the bridge
 * block docs/gateway.md documents: the bridge authenticates with the terminal's device
 * certificate, carries that terminal's events up and its receipts down, and the gateway
 * refuses what the block carries outside that certificate's rights. Mosquitto's bridge state
 * notifications ($SYS/broker/connection/.../state) must stay local, or the gateway ends the
 * connection as a publish outside the device's rights.
 */
// Mosquitto is the part under test: without it this file fails at once, saying how to install it.
requireTool('mosquitto', 'mosquitto_pub', 'mosquitto_sub');

let site: Site;
let gw: Gateway;
let mosquitto: ChildProcess;
let localPort: number;
let mosquittoLog = '';

function run(cmd: string, args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 20_000 }, (error, stdout, stderr) => resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, out: stdout, err: stderr }));
  });
}

describe('a Mosquitto bridge in front of the gateway', () => {
  beforeAll(async () => {
    site = await createSite('acme');
    const { config } = site.writeConfig({ forwarder: QUICK_FORWARDER });
    gw = await startGateway(config, { log: createLogger({ name: 'gateway-test', level: 'silent' }) });
    const door = await site.pki.issue('device', 'door-b');
    localPort = await freePort();
    const conf = join(site.dir, 'mosquitto.conf');
    writeFileSync(
      conf,
      [
        'user root',
        'persistence false',
        'log_dest stderr',
        'log_type error',
        'log_type warning',
        'log_type notice',
        `listener ${localPort} 127.0.0.1`,
        'allow_anonymous true',
        // The documented bridge block (docs/gateway.md), pointed at the test gateway.
        'connection cf-door-b',
        `address 127.0.0.1:${gw.mqttPort}`,
        'bridge_protocol_version mqttv311',
        `bridge_cafile ${site.pki.caFile}`,
        `bridge_certfile ${door.certFile}`,
        `bridge_keyfile ${door.keyFile}`,
        'cleansession false',
        'notifications_local_only true',
        'restart_timeout 1',
        'topic cf/v1/acme/door-b/events out 1',
        'topic cf/v1/acme/door-b/status out 1',
        'topic cf/v1/acme/door-b/door out 1',
        'topic cf/v1/acme/door-b/ack in 1',
        'topic cf/v1/acme/door-b/cmd in 1',
        // A misconfigured line: another terminal's events through door-b's certificate.
        'topic cf/v1/acme/door-c/events out 1',
        '',
      ].join('\n'),
    );
    mosquitto = spawn('mosquitto', ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    mosquitto.stderr!.on('data', (c: Buffer) => (mosquittoLog = (mosquittoLog + c.toString()).slice(-4000)));
    await until(() => gw.broker.connectedDevices().includes('door-b'), 50);
  });

  afterAll(async () => {
    if (mosquitto && mosquitto.exitCode === null) {
      mosquitto.kill('SIGTERM');
      await new Promise((r) => mosquitto.once('exit', r));
    }
    await gw?.close();
    await site?.cleanup();
  });

  it('carries a terminal\'s events to the cloud and its receipts back, with the bridge connection kept', async () => {
    const sim = new DeviceSim('acme', 'door-b', site.cloudKey);
    const ev = sim.event();
    const file = join(site.dir, 'bridged.bin');
    writeFileSync(file, ev.envelope);
    // The receipt for the event comes back down the bridge to a local subscriber.
    const sub = spawn('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(localPort), '-q', '1', '-C', '1', '-t', topics.ack('acme', 'door-b')], { stdio: ['ignore', 'pipe', 'pipe'] });
    const receipt = new Promise<Buffer>((resolve) => {
      const chunks: Buffer[] = [];
      sub.stdout!.on('data', (c: Buffer) => chunks.push(c));
      sub.once('exit', () => resolve(Buffer.concat(chunks)));
    });
    const pub = await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(localPort), '-q', '1', '-t', topics.events('acme', 'door-b'), '-f', file]);
    expect(pub.code).toBe(0);
    await until(() => site.cloud.events.some((e) => e.id === ev.id), 50);
    expect((await receipt).length).toBeGreaterThan(0);
    // Nothing the bridge sent on its own (state notifications) was refused.
    expect(gw.metrics.publishesRefused.get({ reason: 'topic-not-allowed' })).toBe(0);
    expect(gw.broker.connectedDevices()).toContain('door-b');
  });

  it('is refused outside the certificate\'s rights: another terminal\'s events never reach the cloud', async () => {
    const foreign = new DeviceSim('acme', 'door-c', site.cloudKey).event();
    const file = join(site.dir, 'foreign.bin');
    writeFileSync(file, foreign.envelope);
    const refusedBefore = gw.metrics.publishesRefused.get({ reason: 'topic-not-allowed' });
    expect((await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(localPort), '-q', '1', '-t', topics.events('acme', 'door-c'), '-f', file])).code).toBe(0);
    // The gateway ends the bridge connection on the foreign publish (MQTT 3.1.1 cannot refuse
    // one publish); Mosquitto keeps the message queued and retries it on each reconnect, so
    // the refusals repeat: a topic line outside the certificate's rights blocks the bridge.
    await until(() => gw.metrics.publishesRefused.get({ reason: 'topic-not-allowed' }) >= refusedBefore + 2, 50);
    expect(site.cloud.events.some((e) => e.id === foreign.id)).toBe(false);
    expect(site.cloud.events.every((e) => e.device === 'door-b')).toBe(true);
  });
});
