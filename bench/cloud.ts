import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { newMessageId, sealAndSign, type PunchEvent } from '../protocol/index.js';
import { FakeClock, DAY_MS } from '../cloud/clock.js';
import { Sweeper } from '../cloud/retention.js';
import { newPhotoId } from '../cloud/vault.js';
import { buildServer } from '../cloud/server.js';
import { CloudService } from '../cloud/service.js';
import { createGatewayToken } from '../cloud/auth.js';
import { deviceKeys, makeJpeg, tempDir, writeTenantKeys } from '../cloud/testing/fixtures.js';
import { round } from './measure.js';

/**
 * `npm run bench -- cloud`: ingest throughput over real HTTP into SQLite (sealed, signed
 * events in batches of 500, without and with a ~40 KB 640x480 photo whose metadata segments are
 * dropped losslessly (cloud/jpeg-metadata.ts allow-list, no re-encode), encrypted and written to
 * the vault), and the retention sweep of 1,000,000 expired photo records
 * (rows bulk-inserted, each with a small ciphertext file on disk; only the sweep is timed).
 * Targets: >= 2,000 events/s without photos, >= 300/s with, sweep <= 60 s.
 */
// As the cloud role does (cloud/main.ts): more libuv threads for parallel unlinks.
process.env.UV_THREADPOOL_SIZE ??= '16';
const SWEEP_RECORDS = Number(process.env.CLOCKFACE_BENCH_SWEEP_RECORDS ?? 1_000_000);

export async function run(): Promise<Record<string, unknown>> {
  const dir = tempDir('cf-bench-cloud-');
  try {
    const ingest = await benchIngest(join(dir, 'ingest'));
    const sweep = await benchSweep(join(dir, 'sweep'));
    return {
      ...ingest,
      sweep,
      targets: { ingestNoPhotoPerSec: 2000, ingestPhotoPerSec: 300, sweep1MSeconds: 60 },
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function benchIngest(dir: string) {
  mkdirSync(dir, { recursive: true });
  const keys = writeTenantKeys(dir, 'acme');
  const clock = new FakeClock(Date.now());
  const service = new CloudService({ dataDir: join(dir, 'data'), tenants: [{ id: 'acme', keysDir: keys.dir }], clock });
  const app = await buildServer({ service });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  const { token, hash } = createGatewayToken();
  service.db.prepare('INSERT INTO gateways (tenant, gateway, token_hash, created_at) VALUES (?, ?, ?, ?)').run('acme', 'gw-1', hash, clock.now());
  const dev = deviceKeys();
  service.registry.addDevice('acme', { device: 'door-1', gateway: 'gw-1', signingPublicKey: dev.signing.publicRaw.toString('base64'), sealingPublicKey: dev.sealing.publicRaw.toString('base64'), certSerial: '01' }, 'bench');
  let seq = 0;
  const photo = await makeJpeg({ width: 640, height: 480, detailWidth: 40, seed: 42 });
  const make = (withPhoto: boolean) => {
    const eventId = newMessageId();
    const event: PunchEvent = {
      type: 'punch', eventId, tenant: 'acme', device: 'door-1', subject: null, credential: 'card+face', action: 'in', decision: 'granted',
      reasons: [], scores: { faceExists: 0.99, similarity: 0.97, liveness: null, quality: null }, model: 'm', door: null,
      time: { wall: clock.now(), monotonicMs: 1, clockSync: 'synced' }, photo: withPhoto ? photo.toString('base64') : null, photoDropped: false,
    };
    const envelope = sealAndSign({ kind: 'event', id: eventId, tenant: 'acme', device: 'door-1', seq: ++seq, body: event, signer: dev.signing, recipient: { keyId: keys.cloudSealing.keyId, key: keys.cloudSealing.publicKey }, sentAt: clock.now() });
    return { id: eventId, tenant: 'acme', device: 'door-1', envelope: envelope.toString('base64') };
  };
  const measure = async (count: number, batch: number, withPhoto: boolean) => {
    const batches: string[] = [];
    for (let i = 0; i < count; i += batch) batches.push(JSON.stringify({ events: Array.from({ length: Math.min(batch, count - i) }, () => make(withPhoto)) }));
    const start = performance.now();
    let stored = 0;
    for (const body of batches) {
      const res = await fetch(`${url}/v1/gateway/ingest`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body });
      const json = (await res.json()) as { results: Array<{ status: string }> };
      stored += json.results.filter((r) => r.status === 'stored').length;
    }
    const seconds = (performance.now() - start) / 1000;
    if (stored !== count) throw new Error(`bench: only ${stored} of ${count} events stored`);
    return round(count / seconds, 0);
  };
  try {
    await measure(500, 500, false); // warm-up
    const noPhoto = await measure(10_000, 500, false);
    const withPhoto = await measure(2_000, 100, true);
    return { ingestNoPhotoPerSec: noPhoto, ingestPhotoPerSec: withPhoto, photoBytes: photo.length, batchNoPhoto: 500, batchPhoto: 100 };
  } finally {
    await app.close();
    service.close();
  }
}

async function benchSweep(dir: string) {
  mkdirSync(dir, { recursive: true });
  const keys = writeTenantKeys(dir, 'acme');
  const clock = new FakeClock(Date.UTC(2026, 0, 1));
  const service = new CloudService({ dataDir: join(dir, 'data'), tenants: [{ id: 'acme', keysDir: keys.dir }], clock });
  try {
    const setupStart = performance.now();
    const insert = service.db.prepare('INSERT INTO photos (id, tenant, kind, subject, kek_id, wrapped_key, created_at, bytes) VALUES (?, ?, ?, NULL, ?, ?, ?, ?)');
    const kek = 'bench';
    const wrapped = randomBytes(60);
    const stub = randomBytes(64);
    for (let i = 0; i < 256; i++) mkdirSync(join(service.vault.dir, i.toString(16).padStart(2, '0')), { recursive: true });
    const chunk = 50_000;
    // Photos taken over 30 days, as a large tenant's would be (about one every 2.6 s).
    const spanMs = 30 * DAY_MS;
    const start0 = clock.now();
    for (let done = 0; done < SWEEP_RECORDS; done += chunk) {
      const ids: string[] = [];
      service.db.transaction(() => {
        for (let i = done; i < Math.min(done + chunk, SWEEP_RECORDS); i++) {
          const at = start0 + Math.floor((i * spanMs) / SWEEP_RECORDS);
          const id = newPhotoId(at);
          ids.push(id);
          insert.run(id, 'acme', 'punch', kek, wrapped, at, 40_000);
        }
      })();
      for (const id of ids) writeFileSync(service.vault.pathOf(id), stub);
    }
    // Flush the setup's million file writes to disk first, so the sweep is not timed against their writeback.
    execFileSync('sync');
    const setupSeconds = (performance.now() - setupStart) / 1000;
    clock.advance(121 * DAY_MS);
    const sweeper = new Sweeper(service, { batchSize: 5000 });
    const start = performance.now();
    const result = await sweeper.sweepTenant('acme');
    const seconds = (performance.now() - start) / 1000;
    if (result.photos !== SWEEP_RECORDS) throw new Error(`bench: swept ${result.photos} of ${SWEEP_RECORDS}`);
    return { records: SWEEP_RECORDS, seconds: round(seconds, 1), perSecond: round(SWEEP_RECORDS / seconds, 0), setupSeconds: round(setupSeconds, 1), note: 'each record: row + 64-byte file + audit entry' };
  } finally {
    service.close();
  }
}
