import { DetectFacesCommand, RekognitionClient } from '@aws-sdk/client-rekognition';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeJpeg } from '../testing/fixtures.js';
import { startHarness, type Harness } from '../testing/harness.js';
import { LocalFaceEngine } from './local.js';
import { RekognitionEngine } from './rekognition.js';
import { startRekognitionEndpoint, type RekognitionEndpoint } from './rekognition-endpoint.js';
import { RecheckWorker } from './worker.js';

/**
 * The failure paths of the re-check, driven through the real AWS SDK client and a real
 * endpoint: SigV4 refusals, an engine that is down (the face worker command exits at once),
 * retries with backoff, and the dead-letter state that flags the punch for review.
 */
const creds = { accessKeyId: 'AKIDCLOCKFACETEST', secretAccessKey: 'test-secret-not-real' };
let endpoint: RekognitionEndpoint;
let downEngine: LocalFaceEngine;
let h: Harness;
/** What reached the endpoint (signature checked), stamped with the rate limiter's own clock. */
const arrivals: Array<{ target: string; at: number }> = [];
let pacedNow = 1_000_000;

beforeAll(async () => {
  // A face worker that cannot start: every call fails as retryable, like an outage.
  downEngine = new LocalFaceEngine([process.execPath, '-e', 'process.exit(3)']);
  endpoint = await startRekognitionEndpoint({
    engine: downEngine,
    region: 'eu-west-1',
    credentials: { [creds.accessKeyId]: creds.secretAccessKey },
    onRequest: (r) => arrivals.push({ target: r.target, at: pacedNow }),
  });
  h = await startHarness(['acme']);
  await h.addDevice('acme', 'door-1');
});
afterAll(async () => {
  await endpoint?.close();
  await downEngine?.close();
  await h?.close();
});

const client = (over: Partial<{ region: string; secretAccessKey: string }> = {}) =>
  new RekognitionClient({
    region: over.region ?? 'eu-west-1',
    endpoint: endpoint.url,
    credentials: { accessKeyId: creds.accessKeyId, secretAccessKey: over.secretAccessKey ?? creds.secretAccessKey },
    maxAttempts: 1,
  });

describe('Rekognition-compatible endpoint', () => {
  it('checks SigV4: wrong secret and wrong region are refused; a correct signature reaches the engine', async () => {
    const image = { Bytes: await makeJpeg() };
    await expect(client({ secretAccessKey: 'wrong' }).send(new DetectFacesCommand({ Image: image }))).rejects.toMatchObject({ name: 'InvalidSignatureException' });
    await expect(client({ region: 'us-east-1' }).send(new DetectFacesCommand({ Image: image }))).rejects.toMatchObject({ name: 'InvalidSignatureException' });
    expect(endpoint.stats.refused).toBe(2);
    // Signed right: passes the signature check and fails only because this engine is down.
    await expect(client().send(new DetectFacesCommand({ Image: image }))).rejects.toMatchObject({ name: 'ServiceUnavailableException' });
    expect(endpoint.stats.refused).toBe(2);
    const unsigned = await fetch(endpoint.url, { method: 'POST', headers: { 'x-amz-target': 'RekognitionService.DetectFaces' }, body: '{}' });
    expect(unsigned.status).toBe(403);
  });
});

describe('re-check worker', () => {
  it('retries an engine outage with backoff, then dead-letters the punch and flags it for review', async () => {
    const p = h.punch('acme', 'door-1', { photo: (await makeJpeg({ seed: 5 })).toString('base64') });
    await h.ingest('acme', [{ id: p.event.eventId, tenant: 'acme', device: 'door-1', envelope: p.envelope }]);
    const engine = new RekognitionEngine({ region: 'eu-west-1', endpoint: endpoint.url, credentials: creds });
    const worker = new RecheckWorker(h.service, engine, { ratePerSecond: 50, maxAttempts: 3, intervalMs: 1000 });
    try {
      expect(await worker.runOnce()).toEqual([{ eventId: p.event.eventId, state: 'retry' }]);
      // Backoff: not due again until the clock moves on.
      expect(await worker.runOnce()).toEqual([]);
      h.clock.advance(60_000);
      expect(await worker.runOnce()).toEqual([{ eventId: p.event.eventId, state: 'retry' }]);
      h.clock.advance(60_000);
      expect(await worker.runOnce()).toEqual([{ eventId: p.event.eventId, state: 'dead-letter' }]);
    } finally {
      await engine.close();
    }
    const row = (await h.api('GET', '/v1/tenants/acme/punches?review=open', { token: h.tenants.get('acme')!.ownerKey })).json.punches.find(
      (x: { eventId: string }) => x.eventId === p.event.eventId,
    );
    expect(row).toMatchObject({ recheckState: 'dead-letter', reviewState: 'open', reviewReasons: ['recheck-failed'] });
    expect(row.recheckError).toMatch(/ServiceUnavailable/);
  });

  it('never hands one punch to two workers at once', async () => {
    const p = h.punch('acme', 'door-1', { photo: (await makeJpeg({ seed: 6 })).toString('base64') });
    await h.ingest('acme', [{ id: p.event.eventId, tenant: 'acme', device: 'door-1', envelope: p.envelope }]);
    const engine = new RekognitionEngine({ region: 'eu-west-1', endpoint: endpoint.url, credentials: creds });
    const opts = { ratePerSecond: 50, maxAttempts: 3, intervalMs: 1000 };
    try {
      const [a, b] = await Promise.all([new RecheckWorker(h.service, engine, opts).runOnce(), new RecheckWorker(h.service, engine, opts).runOnce()]);
      expect([...a, ...b].filter((o) => o.eventId === p.event.eventId)).toHaveLength(1);
    } finally {
      await engine.close();
    }
  });

  it('never sends the endpoint more requests per second than the configured rate', async () => {
    // The limiter waits on this pacer: a wait moves its clock on at once, so the test counts
    // requests per window of the limiter's time instead of measuring real time.
    const pacer = { now: () => pacedNow, sleep: async (ms: number) => void (pacedNow += ms) };
    const jpeg = (await makeJpeg({ seed: 8 })).toString('base64');
    const punches = Array.from({ length: 12 }, () => h.punch('acme', 'door-1', { photo: jpeg }));
    await h.ingest('acme', punches.map((p) => ({ id: p.event.eventId, tenant: 'acme', device: 'door-1', envelope: p.envelope })));
    const engine = new RekognitionEngine({ region: 'eu-west-1', endpoint: endpoint.url, credentials: creds });
    arrivals.length = 0;
    try {
      const outcomes = await new RecheckWorker(h.service, engine, { ratePerSecond: 4, maxAttempts: 10, intervalMs: 1000, pacer }).runOnce();
      expect(outcomes.filter((o) => punches.some((p) => p.event.eventId === o.eventId))).toHaveLength(12);
    } finally {
      await engine.close();
    }
    expect(arrivals.length).toBeGreaterThanOrEqual(12);
    expect(arrivals.every((a) => a.target === 'RekognitionService.DetectFaces')).toBe(true);
    const perWindow = arrivals.map((a) => arrivals.filter((b) => b.at >= a.at && b.at < a.at + 1000).length);
    // At most the rate in any one-second window, and the limiter does not hold back below it either.
    expect(Math.max(...perWindow)).toBe(4);
  });
});
