import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../cloud/testing/harness.js';
import { keyPairFromPem } from '../protocol/index.js';
import { provision } from '../provisioning/test-support.js';

/*
 * Units registered once and then replaced, rotated or re-tokened, through `clockface
 * provision … --cloud` against the real cloud (SQLite, Fastify on loopback): what the cloud
 * holds afterwards is read back through its own admin API.
 */
let cloud: Harness;
let work: string;
let dir: string;
let keyFile: string;
let ownerKey: string;

async function ok(argv: string[]) {
  const r = await provision(argv);
  if (r.code !== 0) throw new Error(`provision ${argv.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r;
}
const withCloud = () => ['--cloud', cloud.url, '--api-key-file', keyFile];
const serialOf = (file: string) => new X509Certificate(readFileSync(file)).serialNumber.toLowerCase().replace(/^0+(?=.)/, '');
const publicOf = (alg: 'ed25519' | 'x25519', file: string) => keyPairFromPem(alg, readFileSync(file)).publicRaw.toString('base64');

async function registered(device: string) {
  const r = await cloud.api('GET', '/v1/tenants/acme/devices', { token: ownerKey });
  return (r.json as { devices: Array<{ device: string; certSerial: string }> }).devices.find((d) => d.device === device);
}
const keysAtCloud = (device: string) =>
  cloud.service.db.prepare('SELECT signing_public AS signing, sealing_public AS sealing FROM devices WHERE tenant = ? AND device = ?').get('acme', device) as {
    signing: string;
    sealing: string;
  };
const gatewayCall = (token: string) => cloud.api('GET', '/v1/gateway/revocations', { token });
async function audit(action: string) {
  const r = await cloud.api('GET', '/v1/tenants/acme/audit', { token: ownerKey });
  return (r.json as { entries: Array<{ action: string; objectId: string; detail: unknown }> }).entries.filter((e) => e.action === action);
}

beforeAll(async () => {
  cloud = await startHarness(['acme']);
  ownerKey = cloud.tenants.get('acme')!.ownerKey;
  work = mkdtempSync(join(tmpdir(), 'cf-reprov-'));
  dir = join(work, 'acme');
  keyFile = join(work, 'owner.key');
  writeFileSync(keyFile, ownerKey, { mode: 0o600 });
  await ok(['tenant', 'init', '--out', dir, '--tenant', 'acme']);
  await ok(['gateway', 'add', '--out', dir, '--gateway', 'site-1', '--host', 'localhost', ...withCloud()]);
  await ok(['device', 'add', '--out', dir, '--device', 'door-1', '--gateway', 'site-1', '--profile', 'simulator', '--mode', 'access', ...withCloud()]);
});

afterAll(async () => {
  await cloud?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('re-registration with the real cloud', () => {
  const bundle = () => join(dir, 'devices', 'door-1');

  it('rotate --cloud records the new serial and keeps the signing and sealing keys', async () => {
    const keysBefore = keysAtCloud('door-1');
    expect((await registered('door-1'))?.certSerial).toBe(serialOf(join(bundle(), 'device.crt')));
    const r = await ok(['rotate', '--out', dir, '--device', 'door-1', ...withCloud()]);
    expect(r.json.serial).toBe(serialOf(join(bundle(), 'device.crt')));
    expect((await registered('door-1'))?.certSerial).toBe(r.json.serial);
    expect(keysAtCloud('door-1')).toEqual(keysBefore);
    const [entry] = await audit('device.replaced');
    expect(entry).toMatchObject({ objectId: 'door-1', detail: { certSerial: r.json.serial, keysChanged: false } });
  });

  it('device add --force --cloud replaces the keys the cloud verifies; without --force it is refused', async () => {
    const again = await provision(['device', 'add', '--out', dir, '--device', 'door-1', '--gateway', 'site-1', '--profile', 'simulator', ...withCloud()]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already exists/);
    const oldKeys = keysAtCloud('door-1');

    await ok(['device', 'add', '--out', dir, '--device', 'door-1', '--gateway', 'site-1', '--profile', 'simulator', '--force', ...withCloud()]);
    const now = keysAtCloud('door-1');
    expect(now).toEqual({ signing: publicOf('ed25519', join(bundle(), 'device-signing.key')), sealing: publicOf('x25519', join(bundle(), 'device-sealing.key')) });
    expect(now.signing).not.toBe(oldKeys.signing);
    expect((await registered('door-1'))?.certSerial).toBe(serialOf(join(bundle(), 'device.crt')));
  });

  it('PUT devices/{device}: owner/admin only, known devices only, the path names the device', async () => {
    const body = {
      gateway: 'site-1',
      signingPublicKey: publicOf('ed25519', join(bundle(), 'device-signing.key')),
      sealingPublicKey: publicOf('x25519', join(bundle(), 'device-sealing.key')),
      certSerial: 'abc123',
    };
    const reviewer = (await cloud.api('POST', '/v1/tenants/acme/api-keys', { token: ownerKey, body: { role: 'reviewer' } })).json as { key: string };
    expect((await cloud.api('PUT', '/v1/tenants/acme/devices/door-1', { token: reviewer.key, body })).status).toBe(403);
    expect((await cloud.api('PUT', '/v1/tenants/acme/devices/door-9', { token: ownerKey, body })).status).toBe(404);
    expect((await cloud.api('PUT', '/v1/tenants/acme/devices/door-1', { token: ownerKey, body: { ...body, device: 'clock-1' } })).status).toBe(400);
    expect((await cloud.api('PUT', '/v1/tenants/acme/devices/door-1', { token: ownerKey, body: { ...body, gateway: 'nowhere' } })).status).toBe(404);
    expect((await cloud.api('PUT', '/v1/tenants/acme/devices/door-1', { token: ownerKey, body: { ...body, signingPublicKey: 'AAAA' } })).status).toBe(400);
    // Nothing of that changed the registration.
    expect((await registered('door-1'))?.certSerial).toBe(serialOf(join(bundle(), 'device.crt')));
  });

  it('gateway add --force --cloud issues a new token; the old one is refused at once', async () => {
    const tokenFile = join(dir, 'gateways', 'site-1', 'gateway.token');
    const first = readFileSync(tokenFile, 'utf8').trim();
    expect((await gatewayCall(first)).status).toBe(200);
    await ok(['gateway', 'add', '--out', dir, '--gateway', 'site-1', '--host', 'localhost', '--force', ...withCloud()]);
    const second = readFileSync(tokenFile, 'utf8').trim();
    expect(second).not.toBe(first);
    expect((await gatewayCall(first)).status).toBe(401);
    expect((await gatewayCall(second)).status).toBe(200);
    expect(await audit('gateway.token-rotated')).toHaveLength(1);
  });

  it('a revoked gateway is refused until it gets a new token', async () => {
    const token = readFileSync(join(dir, 'gateways', 'site-1', 'gateway.token'), 'utf8').trim();
    const revoked = await cloud.api('POST', '/v1/tenants/acme/gateways/site-1/revoke', { token: ownerKey });
    expect(revoked.status).toBe(200);
    expect((await gatewayCall(token)).status).toBe(401);
    // No new devices behind a revoked gateway.
    const add = await provision(['device', 'add', '--out', dir, '--device', 'door-2', '--gateway', 'site-1', '--profile', 'simulator', ...withCloud()]);
    expect(add.code).toBe(1);
    expect(add.stderr).toMatch(/revoked/);
    const fresh = await cloud.api('POST', '/v1/tenants/acme/gateways/site-1/token', { token: ownerKey });
    expect(fresh.status).toBe(201);
    expect((await gatewayCall(token)).status).toBe(401);
    expect((await gatewayCall((fresh.json as { token: string }).token)).status).toBe(200);
    expect((await cloud.api('POST', '/v1/tenants/acme/gateways/nowhere/token', { token: ownerKey })).status).toBe(404);
  });
});
