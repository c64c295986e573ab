import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import sharp from 'sharp';
import { FaceEngine } from '../device/face/engine.js';

/**
 * The demo's cast, from the group photos @vladmandic/face-api ships (no ../shared, no network):
 * each usable face becomes a person with a reference photo (for enrollment) and a camera frame
 * (640×480, as the terminal's replay camera shows it). The two are cut differently, so a match
 * is a real comparison, not a file compared with itself.
 */
export interface Person {
  label: string;
  reference: Buffer;
  frame: Buffer;
}

const samples = join(dirname(createRequire(import.meta.url).resolve('@vladmandic/face-api/package.json')), 'demo');

async function cut(photo: Buffer, box: { x: number; y: number; width: number; height: number }, pad: number, size: { width: number; height: number }): Promise<Buffer> {
  const meta = await sharp(photo).rotate().metadata();
  const [W, H] = [meta.width!, meta.height!];
  const p = box.width * pad;
  const left = Math.max(0, Math.round(box.x - p));
  const top = Math.max(0, Math.round(box.y - p));
  const width = Math.min(W - left, Math.round(box.width + 2 * p));
  const height = Math.min(H - top, Math.round(box.height + 2 * p));
  return sharp(photo)
    .rotate()
    .extract({ left, top, width, height })
    .resize({ ...size, fit: 'contain', background: { r: 96, g: 96, b: 96 } })
    .jpeg({ quality: 88 })
    .toBuffer();
}

/** `count` people whose camera frame passes the terminal's quality gate (each face of a group photo is another person). */
export async function castFromSamples(count: number): Promise<Person[]> {
  const engine = await FaceEngine.create();
  const people: Person[] = [];
  for (const sample of ['sample3.jpg', 'sample5.jpg', 'sample6.jpg']) {
    const photo = readFileSync(join(samples, sample));
    const seen = await engine.analyze(photo);
    for (const [i, face] of seen.faces.entries()) {
      const frame = await cut(photo, face.box, 0.6, { width: 640, height: 480 });
      const reference = await cut(photo, face.box, 0.35, { width: 360, height: 360 });
      const [f, r] = [await engine.analyze(frame), await engine.analyze(reference)];
      if (f.reasons.length === 0 && r.template && !r.reasons.includes('several-faces')) people.push({ label: `${sample.replace('.jpg', '')} face ${i + 1}`, reference, frame });
      if (people.length === count) return people;
    }
  }
  throw new Error(`the sample photos do not hold ${count} usable faces`);
}

/** A camera frame with nobody in it (what the clock's camera sees between people). */
export function emptyFrame(): Promise<Buffer> {
  return sharp({ create: { width: 640, height: 480, channels: 3, background: { r: 120, g: 124, b: 128 } } }).jpeg().toBuffer();
}

/**
 * A 640×480 camera frame with one face, cut around the only face in the single-person demo
 * photo (sample2.jpg): what the benchmarks and the cross-tier test put before a terminal.
 */
export async function oneFaceFrame(engine: FaceEngine): Promise<Buffer> {
  const source = readFileSync(join(samples, 'sample2.jpg'));
  const seen = await engine.analyze(source);
  const found = seen.dominant!.box;
  const w = Math.min(Math.round(found.width * 3), seen.width, Math.floor((seen.height * 4) / 3));
  const h = Math.round((w * 3) / 4);
  const clamp = (v: number, max: number) => Math.max(0, Math.min(max, Math.round(v)));
  const left = clamp(found.x + found.width / 2 - w / 2, seen.width - w);
  const top = clamp(found.y + found.height / 2 - h / 2, seen.height - h);
  return sharp(source).rotate().extract({ left, top, width: w, height: h }).resize(640, 480).jpeg({ quality: 85 }).toBuffer();
}
