import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { readFileSync } from 'node:fs';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { FaceConfig, FaceEngine } from './engine.js';
import { detectFacesFitted } from './detector.js';
import { decodeImage } from './image.js';
import { estimatePose } from './quality.js';
import type { Detection } from './models.js';
import { WasmTerminalFaceEngine } from './terminal-engine.js';
import { TemplateIndex } from './matcher.js';
import { ModelMismatchError } from './errors.js';
import { fromWireTemplate, toWireTemplate } from './template.js';
import { summarize, tarAtFar } from './evaluate.js';

/** Photos that ship with @vladmandic/face-api: group photos, cropped per face at test time. */
const demoDir = join(dirname(createRequire(import.meta.url).resolve('@vladmandic/face-api/package.json')), 'demo');
const sample = (n: number) => readFileSync(join(demoDir, `sample${n}.jpg`));

let engine: FaceEngine;
const crops: Buffer[] = [];

async function cropFaces(jpeg: Buffer): Promise<Buffer[]> {
  const a = await engine.analyze(jpeg);
  const out: Buffer[] = [];
  for (const f of a.faces) {
    const pad = f.box.width * 0.6;
    const left = Math.max(0, Math.round(f.box.x - pad));
    const top = Math.max(0, Math.round(f.box.y - pad));
    const width = Math.min(a.width - left, Math.round(f.box.width + 2 * pad));
    const height = Math.min(a.height - top, Math.round(f.box.height + 2 * pad));
    out.push(await sharp(jpeg).rotate().extract({ left, top, width, height }).resize({ width: 320, height: 320, fit: 'inside' }).jpeg().toBuffer());
  }
  return out;
}

/** Face `i` (by size) of demo photo `n`, cut with room around it like a camera frame. */
async function cropFace(n: number, i: number): Promise<Buffer> {
  return (await cropFaces(sample(n)))[i]!;
}

beforeAll(async () => {
  engine = await FaceEngine.create();
  // Single-face fixtures: every face of the demo photos that passes the quality gate on its own.
  for (const n of [2, 3, 5, 6]) {
    for (const crop of await cropFaces(sample(n))) if ((await engine.analyze(crop)).reasons.length === 0) crops.push(crop);
  }
}, 60_000);

describe('face engine on real photos', () => {
  it('loads models from disk and reports backend and model', () => {
    expect(['wasm', 'tensorflow']).toContain(engine.backend);
    expect(engine.modelId).toBe('faceapi-resnet128-v1');
  });

  it('the terminal adapter reports backend and model ids for the device status', async () => {
    const terminal = await WasmTerminalFaceEngine.create();
    expect(terminal.versions).toEqual({ faceBackend: engine.backend, faceEmbedding: 'faceapi-resnet128-v1', faceDetector: 'faceapi-tinyyolo416-v1' });
    // The protocol's Status record bounds keys to 32 and values to 64 characters.
    for (const [k, v] of Object.entries(terminal.versions)) expect(k.length <= 32 && v.length <= 64).toBe(true);
  });

  it("the frame-shaped detector finds what face-api's square detector finds, at the same places", async () => {
    const { tf, faceapi } = engine.models;
    for (const n of [1, 2, 3, 4, 5, 6]) {
      const img = await decodeImage(sample(n));
      const tensor = tf.tensor3d(new Uint8Array(img.rgb.buffer, img.rgb.byteOffset, img.rgb.length), [img.height, img.width, 3], 'int32');
      try {
        const square = await faceapi.detectAllFaces(tensor, new faceapi.TinyFaceDetectorOptions({ inputSize: 416, scoreThreshold: 0.4 }));
        const fitted = await detectFacesFitted(tf, faceapi, tensor, img.width, img.height, 416, 0.4);
        expect(fitted).toHaveLength(square.length);
        const key = (d: Detection) => Math.round(d.box.x) * 10000 + Math.round(d.box.y);
        const a = [...square].sort((p, q) => key(p) - key(q));
        const b = [...fitted].sort((p, q) => key(p) - key(q));
        for (const [i, d] of a.entries()) {
          // The same box within a few pixels. Scores agree exactly away from the cut edge; near it
          // the network's receptive field sees less padding, which moves a score a little.
          for (const k of ['x', 'y', 'width', 'height'] as const) expect(Math.abs(b[i]!.box[k] - d.box[k])).toBeLessThan(3);
          expect(Math.abs(b[i]!.score - d.score)).toBeLessThan(0.06);
          if (d.box.y + d.box.height < img.height / 2) expect(b[i]!.score).toBeCloseTo(d.score, 6);
        }
      } finally {
        tensor.dispose();
      }
    }
  });

  it('finds several faces in a group photo and says so', async () => {
    const a = await engine.analyze(sample(1));
    expect(a.faces.length).toBeGreaterThanOrEqual(2);
    expect(a.reasons).toContain('several-faces');
    expect(crops.length).toBeGreaterThanOrEqual(8);
  });

  it('gives one usable face per crop, matching itself (resized) and not the others', async () => {
    const [first, second] = [await engine.analyze(crops[0]!), await engine.analyze(crops[1]!)];
    expect(first.faces).toHaveLength(1);
    expect(first.template!.vector).toHaveLength(128);
    const smaller = await sharp(crops[0]!).resize({ width: 240 }).jpeg({ quality: 80 }).toBuffer();
    const again = await engine.analyze(smaller);
    expect(engine.similarity(first.template!, again.template!)).toBeGreaterThan(engine.thresholds.verify);
    expect(engine.similarity(first.template!, second.template!)).toBeLessThan(engine.thresholds.verify);
  });

  it.each([
    ['blank', () => sharp({ create: { width: 320, height: 240, channels: 3, background: '#808080' } }).jpeg().toBuffer()],
    ['noise', () => sharp(Buffer.from(Array.from({ length: 320 * 240 * 3 }, (_, i) => (i * 7919) % 251)), { raw: { width: 320, height: 240, channels: 3 } }).jpeg().toBuffer()],
    ['gradient', () => sharp(Buffer.from(Array.from({ length: 320 * 240 * 3 }, (_, i) => Math.floor(i / 960) % 256)), { raw: { width: 320, height: 240, channels: 3 } }).jpeg().toBuffer()],
  ])('a %s image has no face', async (_n, make) => {
    const a = await engine.analyze(await make());
    expect(a.reasons).toEqual(['no-face']);
    expect(a.template).toBeNull();
  });

  it('a dark or blurred face is found and refused with a reason the person can act on', async () => {
    const face = await cropFace(6, 0);
    const d = await engine.analyze(await sharp(face).linear(0.35, 0).jpeg().toBuffer());
    const b = await engine.analyze(await sharp(face).blur(3).jpeg().toBuffer());
    expect(d.faces).toHaveLength(1);
    expect(d.reasons).toEqual(['too-dark']);
    expect(b.faces).toHaveLength(1);
    expect(b.reasons).toEqual(['blurred']);
  });

  it('a face too far from the camera (a real face downscaled) is too small', async () => {
    const face = await cropFace(6, 0);
    expect((await engine.analyze(face)).reasons).toEqual([]);
    const far = await engine.analyze(await sharp(face).resize({ width: 160 }).jpeg().toBuffer());
    expect(far.faces).toHaveLength(1);
    expect(far.reasons).toEqual(['face-too-small']);
    expect(far.quality!.metrics.interPupilPx).toBeLessThan(engine.config.quality.minInterPupilPx);
  });

  it('a rolled head (a real face crop rotated 30°) is turned away', async () => {
    const rolled = await engine.analyze(await sharp(await cropFace(6, 0)).rotate(-30, { background: '#606060' }).jpeg().toBuffer());
    expect(rolled.faces).toHaveLength(1);
    expect(rolled.reasons).toEqual(['turned-away']);
    expect(Math.abs(rolled.quality!.metrics.rollDeg)).toBeGreaterThan(engine.config.quality.maxRollDeg);
  });

  it('a head turned sideways in a real photo is turned away on yaw alone', async () => {
    // sample5.jpg: its third-largest face looks well to one side, head upright.
    const a = await engine.analyze(await cropFace(5, 2));
    const m = a.quality!.metrics;
    expect(Math.abs(m.yawDeg)).toBeGreaterThan(engine.config.quality.maxYawDeg);
    expect(Math.abs(m.rollDeg)).toBeLessThan(engine.config.quality.maxRollDeg);
    expect(Math.abs(m.pitchDeg)).toBeLessThan(engine.config.quality.maxPitchDeg);
    expect(a.reasons).toEqual(['turned-away']);
  });

  it('pose geometry: turning the landmarks in the image plane moves roll by that angle and leaves yaw and pitch (pitch along the face’s own vertical)', async () => {
    const marks = (await engine.analyze(await cropFace(6, 0))).landmarks!;
    const base = estimatePose(marks);
    for (const degrees of [-25, 10, 40]) {
      const t = (degrees * Math.PI) / 180;
      const turned = marks.map((p) => ({ x: p.x * Math.cos(t) - p.y * Math.sin(t), y: p.x * Math.sin(t) + p.y * Math.cos(t) }));
      const pose = estimatePose(turned);
      expect(pose.rollDeg - base.rollDeg).toBeCloseTo(degrees, 6);
      expect(pose.yawDeg).toBeCloseTo(base.yawDeg, 6);
      expect(pose.pitchDeg).toBeCloseTo(base.pitchDeg, 6);
    }
  });

  it('a face in too much light is too bright', async () => {
    const a = await engine.analyze(await sharp(await cropFace(6, 2)).linear(1.2, 90).jpeg().toBuffer());
    expect(a.faces).toHaveLength(1);
    expect(a.reasons).toEqual(['too-bright']);
  });

  it('a face cut by the frame edge is partly out of frame', async () => {
    const face = await cropFace(6, 0);
    const { width, height } = await sharp(face).metadata();
    const cut = Math.round(width! * 0.36);
    const a = await engine.analyze(await sharp(face).extract({ left: cut, top: 0, width: width! - cut, height: height! }).jpeg().toBuffer());
    expect(a.faces).toHaveLength(1);
    expect(a.dominant!.box.x).toBeLessThan(0);
    expect(a.reasons).toEqual(['out-of-frame']);
  });

  it('quality thresholds from config change the verdict', async () => {
    const face = await cropFace(6, 0);
    const rolled = await sharp(face).rotate(-30, { background: '#606060' }).jpeg().toBuffer();
    const strict = await FaceEngine.create({ quality: { minInterPupilPx: 60 } });
    const lenient = await FaceEngine.create({ quality: { maxRollDeg: 45 } });
    expect((await strict.analyze(face)).reasons).toEqual(['face-too-small']);
    expect((await lenient.analyze(rolled)).reasons).toEqual([]);
    expect((await engine.analyze(face)).reasons).toEqual([]);
  });

  it('refuses corrupt, truncated, empty, non-image and decompression-bomb inputs with a clear error', async () => {
    const jpeg = crops[0]!;
    const bomb = Buffer.from(jpeg);
    // Rewrite the SOF0/SOF2 header to claim 30000 x 30000 pixels.
    for (let i = 0; i < bomb.length - 8; i++) {
      if (bomb[i] === 0xff && (bomb[i + 1] === 0xc0 || bomb[i + 1] === 0xc2)) {
        bomb.writeUInt16BE(30000, i + 5);
        bomb.writeUInt16BE(30000, i + 7);
        break;
      }
    }
    await expect(engine.analyze(Buffer.alloc(0))).rejects.toThrow(/empty/);
    await expect(engine.analyze(Buffer.from('hello, not an image'))).rejects.toThrow(/not a readable image/);
    await expect(engine.analyze(jpeg.subarray(0, 200))).rejects.toThrow(/corrupt|truncated|readable/);
    await expect(engine.analyze(bomb)).rejects.toThrow(/exceeds the limit/);
  });

  it('fuses a burst: uses the usable frames and says why others were dropped; a still replay shows no liveness', async () => {
    const blank = await sharp({ create: { width: 200, height: 200, channels: 3, background: '#000' } }).jpeg().toBuffer();
    const burst = await engine.analyzeBurst([crops[0]!, blank, crops[0]!, Buffer.from('junk')]);
    expect(burst.used).toBe(2);
    expect(burst.dropped).toEqual([
      { index: 1, reasons: ['no-face'] },
      { index: 3, reasons: ['image-unreadable'] },
    ]);
    expect(burst.template).not.toBeNull();
    expect(burst.liveness).toBe(0);
  });

  it('keeps burst indices when an earlier frame would not decode: dropped, best frame and the punch photo are the burst’s', async () => {
    const junk = Buffer.from('junk');
    const blank = await sharp({ create: { width: 200, height: 200, channels: 3, background: '#000' } }).jpeg().toBuffer();
    const one = await FaceEngine.create({ burstUse: 1 });
    const burst = [junk, blank, crops[0]!, crops[0]!];
    const b = await one.analyzeBurst(burst);
    expect(b.frames).toHaveLength(4);
    expect(b.frames[0]).toBeNull();
    expect(b.used).toBe(1);
    // Equal frames score equally; the first of them is the best, and it is burst frame 2.
    expect(b.bestIndex).toBe(2);
    expect(b.dropped).toEqual([
      { index: 0, reasons: ['image-unreadable'] },
      { index: 1, reasons: ['no-face'] },
      { index: 3, reasons: ['not-among-best'] },
    ]);

    const terminal = await WasmTerminalFaceEngine.create();
    const first = await terminal.analyze([junk, crops[1]!]);
    expect(first.bestFrame).toBe(crops[1]);
    expect(first.burst).toEqual({ frames: 2, used: 1, dropped: [{ index: 0, reasons: ['image-unreadable'] }] });
    // The burst grows: earlier results are reused at their burst index, not shifted by the junk frame.
    const grown = await terminal.analyze([junk, crops[1]!, crops[0]!], first);
    expect(grown.frameResults![1]).toBe(first.frameResults![1]);
    expect(grown.burst).toEqual({ frames: 3, used: 2, dropped: [{ index: 0, reasons: ['image-unreadable'] }] });
    const fresh = await one.analyze(crops[0]!, { onlyIfUsable: true });
    expect((grown.frameResults![2] as typeof fresh).template!.vector).toEqual(fresh.template!.vector);
  });
});

describe('template index', () => {
  const model = 'm1';
  /** Deterministic pseudo-random unit-scale vectors (xorshift), like real descriptors far apart. */
  const vec = (seed: number) => {
    let x = (seed * 2654435761) >>> 0 || 1;
    return Float32Array.from({ length: 128 }, () => {
      x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
      return ((x % 2000) / 1000 - 1) * 0.09;
    });
  };

  it('verifies 1:1 against all of a subject’s templates and identifies 1:N with top-k', () => {
    const idx = new TemplateIndex(model, 128, 2);
    for (let s = 0; s < 50; s++) idx.set(`s-${s}`, [{ model, vector: vec(s) }, { model, vector: vec(s).map((v) => v + 0.002) }]);
    expect(idx.size).toBe(100);
    expect(idx.verify('s-7', { model, vector: vec(7) })).toBeCloseTo(1, 2);
    expect(idx.verify('nobody', { model, vector: vec(7) })).toBeNull();
    const r = idx.identify({ model, vector: vec(7) }, { k: 3, threshold: 0.5 });
    expect(r.outcome).toBe('match');
    expect(r.best!.subject).toBe('s-7');
    expect(r.candidates).toHaveLength(3);
    idx.remove('s-7');
    expect(idx.identify({ model, vector: vec(7) }, { threshold: 0.99 }).outcome).toBe('no-match');
  });

  it('refuses when the best two subjects are too close (margin rule)', () => {
    const idx = new TemplateIndex(model, 128);
    idx.set('twin-a', [{ model, vector: vec(1) }]);
    idx.set('twin-b', [{ model, vector: vec(1).map((v) => v + 0.001) }]);
    expect(idx.identify({ model, vector: vec(1) }, { threshold: 0.5, margin: 0.05 }).outcome).toBe('ambiguous');
  });

  it('treats another model’s template as an error, not a low score', () => {
    const idx = new TemplateIndex(model, 128);
    expect(() => idx.set('s', [{ model: 'other', vector: vec(1) }])).toThrow(ModelMismatchError);
    expect(() => idx.verify('s', { model: 'other', vector: vec(1) })).toThrow(/re-enroll/);
  });

  it('the engine refuses to compare templates of different models with ModelMismatchError', () => {
    const mine = { model: engine.modelId, vector: vec(1) };
    const other = { model: 'human-faceres-v1', vector: vec(1) };
    expect(() => engine.similarity(mine, other)).toThrow(ModelMismatchError);
    expect(() => engine.similarity(other, mine)).toThrow(/re-enroll/);
    expect(engine.similarity(mine, mine)).toBeGreaterThan(0.99);
  });

  it('round trips templates through the protocol wire form', () => {
    const t = { model, vector: vec(3) };
    expect(fromWireTemplate(toWireTemplate(t))).toEqual(t);
  });
});

describe('face config', () => {
  it('refuses face.thresholds with the way out: the terminal decides with policy.thresholds', () => {
    const r = FaceConfig.safeParse({ thresholds: { verify: 0.5 } });
    expect(r.success).toBe(false);
    expect(r.error!.issues[0]!.message).toMatch(/policy\.thresholds/);
    expect(FaceConfig.parse({}).quality.minInterPupilPx).toBe(28);
  });
});

describe('evaluation arithmetic', () => {
  it('computes TAR at FAR, EER and best accuracy', () => {
    const genuine = [0.9, 0.8, 0.7, 0.3];
    const impostor = [0.1, 0.2, 0.35, 0.05];
    expect(tarAtFar(genuine, impostor, 0)).toBe(0.75);
    const s = summarize(genuine, impostor, 0.5, 8, 0);
    expect(s.far).toBe(0);
    expect(s.frr).toBe(0.25);
    expect(s.bestThresholdAccuracy).toBe(0.875);
  });
});
