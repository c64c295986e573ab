import { execFile, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../common/log.js';
import { topics } from '../protocol/index.js';
import { startGateway, type Gateway } from './gateway.js';
import { commandEnvelope, createSite, DeviceSim, QUICK_FORWARDER, type Site, until } from './testing/fixture.js';
import type { ClientCredentials } from './testing/site-pki.js';
import { requireTool } from '../tests/support/tools.js';

/*
 * Interop: the stock Mosquitto command-line clients (Debian's mosquitto-clients) with a
 * device certificate connect to the gateway, publish within their rights, receive commands,
 * and are refused outside their rights.
 */
// The stock clients are the part under test: without them this file fails at once, saying how to install them.
requireTool('mosquitto_pub', 'mosquitto_sub');

let site: Site;
let gw: Gateway;
let creds: ClientCredentials;

beforeAll(async () => {
  site = await createSite('acme');
  const { config } = site.writeConfig({ forwarder: QUICK_FORWARDER });
  gw = await startGateway(config, { log: createLogger({ name: 'gateway-test', level: 'silent' }) });
  creds = await site.pki.issue('device', 'door-m');
});

afterAll(async () => {
  await gw?.close();
  await site?.cleanup();
});

function tlsArgs(c: Pick<ClientCredentials, 'certFile' | 'keyFile'>) {
  return ['-h', '127.0.0.1', '-p', String(gw.mqttPort), '--cafile', site.pki.caFile, '--cert', c.certFile, '--key', c.keyFile, '-V', 'mqttv311'];
}

function run(cmd: string, args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 20_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ code, out: stdout, err: stderr });
    });
  });
}

describe('Mosquitto clients against the gateway', () => {
  it('mosquitto_pub publishes a status and a sealed event within its rights', async () => {
    const status = JSON.stringify({ type: 'status', tenant: 'acme', device: 'door-m', state: 'online', at: Date.now(), versions: { app: '1' }, health: {} });
    const pubStatus = await run('mosquitto_pub', [...tlsArgs(creds), '-q', '1', '-r', '-t', topics.status('acme', 'door-m'), '-m', status]);
    expect(pubStatus.err).toBe('');
    expect(pubStatus.code).toBe(0);

    const ev = new DeviceSim('acme', 'door-m', site.cloudKey).event();
    const file = join(site.dir, 'event.bin');
    writeFileSync(file, ev.envelope);
    const pubEvent = await run('mosquitto_pub', [...tlsArgs(creds), '-q', '1', '-t', topics.events('acme', 'door-m'), '-f', file]);
    expect(pubEvent.code).toBe(0);
    await until(() => site.cloud.events.some((e) => e.id === ev.id));
    await until(() => site.cloud.presence.some((p) => p.device === 'door-m' && p.state === 'online'));
  });

  it('mosquitto_sub receives a command on its own cmd topic, and the delivery is reported', async () => {
    const cmd = commandEnvelope(site.adminKey, 'acme', 'door-m');
    const sub = spawn('mosquitto_sub', [...tlsArgs(creds), '-q', '1', '-C', '1', '-N', '-t', topics.cmd('acme', 'door-m')]);
    const chunks: Buffer[] = [];
    sub.stdout.on('data', (c: Buffer) => chunks.push(c));
    const exited = new Promise<number | null>((r) => sub.once('exit', (code) => r(code)));
    await until(() => gw.broker.connectedDevices().includes('door-m'));
    site.cloud.queueCommand('door-m', cmd.envelope);
    expect(await exited).toBe(0);
    expect(Buffer.concat(chunks).equals(cmd.envelope)).toBe(true);
    await until(() => site.cloud.delivered.some((d) => d.commandId === cmd.id));
  });

  it('is refused outside its rights: another device\'s topics, and without a client certificate', async () => {
    const other = new DeviceSim('acme', 'door-x', site.cloudKey).event();
    const file = join(site.dir, 'other.bin');
    writeFileSync(file, other.envelope);
    const before = site.cloud.events.length;
    const pub = await run('mosquitto_pub', [...tlsArgs(creds), '-q', '1', '-t', topics.events('acme', 'door-x'), '-f', file]);
    expect(pub.code).not.toBe(0);
    expect(gw.metrics.publishesRefused.get({ reason: 'topic-not-allowed' })).toBe(1);

    const sub = await run('mosquitto_sub', [...tlsArgs(creds), '-q', '1', '-C', '1', '-W', '5', '-t', topics.cmd('acme', 'door-x')]);
    expect(sub.err).toMatch(/denied/i);
    expect(sub.out).toBe('');

    const noCert = await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(gw.mqttPort), '--cafile', site.pki.caFile, '-q', '1', '-t', topics.status('acme', 'door-m'), '-m', '{}']);
    expect(noCert.code).not.toBe(0);
    expect(site.cloud.events.length).toBe(before);
  });
});
