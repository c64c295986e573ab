import { rmSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { newMessageId, sealAndSign, type DeviceEvent, type KeyPair, type PunchEvent } from '../../protocol/index.js';
import { createApiKey } from '../auth.js';
import { FakeClock } from '../clock.js';
import { buildServer } from '../server.js';
import { CloudService } from '../service.js';
import { deviceKeys, tempDir, writeTenantKeys, type DeviceKeys, type TenantKeyFiles } from './fixtures.js';

/**
 * A real cloud for tests: SQLite and vault in a temp dir, Fastify listening on loopback,
 * tenants with keyrings on disk, an owner key, a gateway and devices registered through the
 * HTTP API like provisioning does.
 */
/** Response bodies in tests are read field by field with expect(); typing each shape would add nothing. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

export interface TestTenant {
  id: string;
  keys: TenantKeyFiles;
  ownerKey: string;
  gatewayToken: string;
  devices: Map<string, DeviceKeys & { seq: number }>;
}

export interface Harness {
  dir: string;
  clock: FakeClock;
  service: CloudService;
  app: FastifyInstance;
  url: string;
  tenants: Map<string, TestTenant>;
  api(method: string, path: string, opts?: { token?: string; body?: unknown; raw?: boolean }): Promise<{ status: number; json: Json; bytes: Buffer }>;
  /** Registers a terminal through the API; by default behind gw-1 with certificate serial 0a1b2c. */
  addDevice(tenant: string, device: string, opts?: { gateway?: string; certSerial?: string }): Promise<DeviceKeys & { seq: number }>;
  /** Seals and signs any device event (command results, alarms) as the terminal would. */
  seal(tenant: string, device: string, event: DeviceEvent, opts?: { seq?: number; sentAt?: number }): Buffer;
  punch(tenant: string, device: string, patch?: Partial<PunchEvent>, opts?: { seq?: number; sentAt?: number }): { event: PunchEvent; envelope: Buffer };
  ingest(tenant: string, items: Array<{ id: string; tenant: string; device: string; envelope: Buffer | string }>, token?: string): Promise<{ status: number; json: Json }>;
  close(): Promise<void>;
}

export async function startHarness(tenantIds: string[] = ['acme', 'globex']): Promise<Harness> {
  const dir = tempDir();
  const clock = new FakeClock(Date.now());
  const keys = new Map(tenantIds.map((t) => [t, writeTenantKeys(dir, t)] as const));
  const service = new CloudService({ dataDir: `${dir}/data`, tenants: tenantIds.map((id) => ({ id, keysDir: keys.get(id)!.dir })), clock });
  const app = await buildServer({ service, maxWaitSeconds: 5 });
  const address = await app.listen({ host: '127.0.0.1', port: 0 });
  const tenants = new Map<string, TestTenant>();

  const api: Harness['api'] = async (method, path, opts = {}) => {
    const res = await fetch(`${address}${path}`, {
      method,
      headers: { ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}), ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: opts.body === undefined ? undefined : typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body),
    });
    const bytes = Buffer.from(await res.arrayBuffer());
    let json: unknown = null;
    if ((res.headers.get('content-type') ?? '').includes('json')) json = JSON.parse(bytes.toString('utf8'));
    return { status: res.status, json, bytes };
  };

  for (const id of tenantIds) {
    const ownerKey = createApiKey(service.db, id, 'owner', clock.now()).key;
    const gw = await api('POST', `/v1/tenants/${id}/gateways`, { token: ownerKey, body: { gateway: 'gw-1' } });
    if (gw.status !== 201) throw new Error(`gateway registration failed: ${gw.status} ${JSON.stringify(gw.json)}`);
    tenants.set(id, { id, keys: keys.get(id)!, ownerKey, gatewayToken: gw.json.token as string, devices: new Map() });
  }

  const h: Harness = {
    dir,
    clock,
    service,
    app,
    url: address,
    tenants,
    api,
    async addDevice(tenant, device, opts = {}) {
      const t = tenants.get(tenant)!;
      const k = { ...deviceKeys(), seq: 0 };
      const r = await api('POST', `/v1/tenants/${tenant}/devices`, {
        token: t.ownerKey,
        body: {
          device,
          gateway: opts.gateway ?? 'gw-1',
          signingPublicKey: k.signing.publicRaw.toString('base64'),
          sealingPublicKey: k.sealing.publicRaw.toString('base64'),
          certSerial: opts.certSerial ?? '0a1b2c',
        },
      });
      if (r.status !== 201) throw new Error(`device registration failed: ${r.status} ${JSON.stringify(r.json)}`);
      t.devices.set(device, k);
      return k;
    },
    punch(tenant, device, patch = {}, opts = {}) {
      const eventId = patch.eventId ?? newMessageId();
      const event: PunchEvent = {
        type: 'punch',
        eventId,
        tenant,
        device,
        subject: null,
        credential: 'card+face',
        action: 'in',
        decision: 'granted',
        reasons: [],
        scores: { faceExists: 0.99, similarity: 0.97, liveness: null, quality: 0.8 },
        model: 'faceapi-128',
        door: null,
        time: { wall: clock.now(), monotonicMs: 1234, clockSync: 'synced' },
        photo: null,
        photoDropped: false,
        ...patch,
      };
      return { event, envelope: h.seal(tenant, device, event, opts) };
    },
    seal(tenant, device, event, opts = {}) {
      const t = tenants.get(tenant)!;
      const d = t.devices.get(device)!;
      return sealAndSign({
        kind: 'event',
        id: event.eventId,
        tenant,
        device,
        seq: opts.seq ?? ++d.seq,
        body: event,
        signer: d.signing,
        recipient: { keyId: t.keys.cloudSealing.keyId, key: t.keys.cloudSealing.publicKey },
        sentAt: opts.sentAt ?? clock.now(),
      });
    },
    async ingest(tenant, items, token) {
      const t = tenants.get(tenant)!;
      const body = { events: items.map((i) => ({ ...i, envelope: Buffer.isBuffer(i.envelope) ? i.envelope.toString('base64') : i.envelope })) };
      const r = await api('POST', '/v1/gateway/ingest', { token: token ?? t.gatewayToken, body });
      return { status: r.status, json: r.json };
    },
    async close() {
      await app.close();
      service.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return h;
}

export type { KeyPair };
