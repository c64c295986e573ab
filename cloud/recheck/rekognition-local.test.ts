// `node dist/cli/main.js face serve` (docs/PROTOCOL.md, Face worker), on faces cropped from
// @vladmandic/face-api demo/sample1.jpg, then the RecheckWorker storing scores and flags.

import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { CompareFacesCommand, DetectFacesCommand, RekognitionClient } from '@aws-sdk/client-rekognition';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../testing/harness.js';
import { LocalFaceEngine } from './local.js';
import { RekognitionEngine } from './rekognition.js';
import { startRekognitionEndpoint, type RekognitionEndpoint } from './rekognition-endpoint.js';
import { RecheckWorker } from './worker.js';

/**
 * The re-check path end to end: the real AWS SDK client → the local Rekognition-compatible
 * endpoint (SigV4 checked) → the project's face worker (`clockface face serve`, a child
 * process) → scores stored on the punch, low similarity flagged for review.
 */
const root = resolve(import.meta.dirname, '../..');
const cli = join(root, 'dist/cli/main.js');
const creds = { accessKeyId: 'AKIDCLOCKFACETEST', secretAccessKey: 'test-secret-not-real' };
const samples = join(dirname(createRequire(import.meta.url).resolve('@vladmandic/face-api/package.json')), 'demo');
let engine: LocalFaceEngine;
let endpoint: RekognitionEndpoint;
let client: RekognitionClient;
let h: Harness;
/** Every signed request the endpoint received: what would leave for Amazon. */
const received: Array<{ target: string; body: Buffer }> = [];
let faceA1: Buffer;
let faceA2: Buffer;
let faceB: Buffer;

async function crop(image: Buffer, box: { left: number; top: number; width: number; height: number }, grow: number): Promise<Buffer> {
  const meta = await sharp(image).metadata();
  const W = meta.width!;
  const H = meta.height!;
  const cx = (box.left + box.width / 2) * W;
  const cy = (box.top + box.height / 2) * H;
  const size = Math.max(box.width * W, box.height * H) * grow;
  const left = Math.max(0, Math.round(cx - size / 2));
  const top = Math.max(0, Math.round(cy - size / 2));
  return sharp(image)
    .extract({ left, top, width: Math.min(W - left, Math.round(size)), height: Math.min(H - top, Math.round(size)) })
    // The detector needs margin around a face; a wall camera's frame has plenty.
    .resize({ width: 320, height: 320, fit: 'inside' })
    .jpeg({ quality: 90 })
    .toBuffer();
}

beforeAll(async () => {
  // The worker runs from the compiled CLI, as in production; build once if this clone has no dist/.
  if (!existsSync(cli)) execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
  engine = new LocalFaceEngine([process.execPath, cli, 'face', 'serve']);
  endpoint = await startRekognitionEndpoint({ engine, region: 'eu-west-1', credentials: { [creds.accessKeyId]: creds.secretAccessKey }, onRequest: (r) => received.push(r) });
  client = new RekognitionClient({ region: 'eu-west-1', endpoint: endpoint.url, credentials: creds, maxAttempts: 1 });
  const group = readFileSync(join(samples, 'sample1.jpg'));
  const { faces } = await engine.detectFaces(group);
  const boxed = faces.filter((f) => f.box).sort((a, b) => b.confidence - a.confidence);
  if (boxed.length < 2) throw new Error('the sample photo should hold at least two faces');
  faceA1 = await crop(group, boxed[0]!.box!, 2.2);
  faceA2 = await sharp(await crop(group, boxed[0]!.box!, 2.6)).modulate({ brightness: 1.1 }).jpeg({ quality: 70 }).toBuffer();
  // Another person: the next face whose crop holds exactly one detectable face.
  for (const other of boxed.slice(1)) {
    const candidate = await crop(group, other.box!, 2.2);
    if ((await engine.detectFaces(candidate)).faces.length === 1) {
      faceB = candidate;
      break;
    }
  }
  if (!faceB!) throw new Error('no second single-face crop in the sample photo');
  h = await startHarness(['acme']);
  await h.addDevice('acme', 'door-1');
}, 240_000);
afterAll(async () => {
  client?.destroy();
  await endpoint?.close();
  await engine?.close();
  await h?.close();
});

describe('Rekognition protocol over the local face engine', () => {
  it('answers DetectFaces and CompareFaces to the real AWS SDK with scores on Rekognition’s 0..100 scale', async () => {
    const detected = await client.send(new DetectFacesCommand({ Image: { Bytes: faceA1 } }));
    expect(detected.FaceDetails!.length).toBeGreaterThanOrEqual(1);
    expect(detected.FaceDetails![0]!.Confidence).toBeGreaterThan(50);
    const same = await client.send(new CompareFacesCommand({ SourceImage: { Bytes: faceA1 }, TargetImage: { Bytes: faceA2 }, SimilarityThreshold: 0 }));
    const other = await client.send(new CompareFacesCommand({ SourceImage: { Bytes: faceA1 }, TargetImage: { Bytes: faceB }, SimilarityThreshold: 0 }));
    const simSame = same.FaceMatches![0]!.Similarity!;
    const simOther = other.FaceMatches?.[0]?.Similarity ?? 0;
    expect(simSame).toBeGreaterThan(simOther);
    expect(endpoint.stats.refused).toBe(0);
  });

  it('re-checks punches through the SDK: scores stored on 0..1, a mismatch flagged for review', async () => {
    const owner = h.tenants.get('acme')!.ownerKey;
    const sdk = new RekognitionEngine({ region: 'eu-west-1', endpoint: endpoint.url, credentials: creds });
    const same = (await sdk.compareFaces(faceA1, faceA2)).similarity!;
    const other = (await sdk.compareFaces(faceA1, faceB)).similarity ?? 0;
    // The tenant's threshold sits between the genuine and the impostor score this engine gives.
    await h.api('PUT', '/v1/tenants/acme/settings', { token: owner, body: { minSimilarity: (same + other) / 2, minFaceExists: 0.5 } });
    const { subject } = (await h.api('POST', '/v1/tenants/acme/subjects', { token: owner, body: { consent: { policyVersion: 'v1' }, referencePhotos: [faceA1.toString('base64')] } })).json;
    const genuine = h.punch('acme', 'door-1', { subject, photo: faceA2.toString('base64') });
    const impostor = h.punch('acme', 'door-1', { subject, photo: faceB.toString('base64') });
    await h.ingest('acme', [genuine, impostor].map((p) => ({ id: p.event.eventId, tenant: 'acme', device: 'door-1', envelope: p.envelope })));
    const worker = new RecheckWorker(h.service, sdk, { ratePerSecond: 20, maxAttempts: 3, intervalMs: 1000 });
    received.length = 0;
    expect((await worker.runOnce()).map((o) => o.state)).toEqual(['done', 'done']);
    // Only image fields (and the operation's own parameters) left for the engine: no name, id or subject data.
    expect(received.map((r) => r.target).sort()).toEqual(['RekognitionService.CompareFaces', 'RekognitionService.CompareFaces', 'RekognitionService.DetectFaces', 'RekognitionService.DetectFaces']);
    const photoIds = h.service.db.prepare('SELECT id FROM photos WHERE tenant = ?').pluck().all('acme') as string[];
    const stored = new Set(photoIds.map((id) => h.service.vault.get('acme', id).toString('base64')));
    const ids = [subject, genuine.event.eventId, impostor.event.eventId, 'acme', 'door-1', ...photoIds];
    for (const r of received) {
      const input = JSON.parse(r.body.toString('utf8')) as Record<string, unknown>;
      const images = r.target.endsWith('DetectFaces') ? ['Image'] : ['SourceImage', 'TargetImage'];
      const params = r.target.endsWith('DetectFaces') ? ['Attributes'] : ['SimilarityThreshold'];
      expect(Object.keys(input).sort()).toEqual([...images, ...params].sort());
      for (const field of images) {
        const image = input[field] as Record<string, unknown>;
        expect(Object.keys(image)).toEqual(['Bytes']);
        expect(stored.has(image.Bytes as string), `${field} is a stored photo, byte for byte`).toBe(true);
      }
      // Outside the image bytes (already shown to be the stored photos) nothing names anyone.
      const rest = r.body.toString('utf8').replace(/"Bytes":"[A-Za-z0-9+/=]*"/g, '"Bytes":""');
      for (const id of ids) expect(rest.includes(id)).toBe(false);
    }
    await sdk.close();
    const punches = (await h.api('GET', `/v1/tenants/acme/punches?subject=${subject}`, { token: owner })).json.punches as Array<Record<string, unknown>>;
    const g = punches.find((p) => p.eventId === genuine.event.eventId)!;
    const i = punches.find((p) => p.eventId === impostor.event.eventId)!;
    expect(g).toMatchObject({ recheckState: 'done', recheckEngine: 'rekognition', reviewState: 'none' });
    expect(g.recheckFaceExists as number).toBeGreaterThan(0.5);
    expect(g.recheckSimilarity as number).toBeLessThanOrEqual(1);
    expect(i).toMatchObject({ recheckState: 'done', reviewState: 'open' });
    expect(i.reviewReasons).toContain('face-mismatch');
  });
});
