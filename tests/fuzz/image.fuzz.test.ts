import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { FaceInputError } from '../../device/face/errors.js';
import { decodeImage, type DecodeLimits } from '../../device/face/image.js';
import { FUZZ_SEED, runs, scaledTimeout } from './seeds.js';

/**
 * The face engine's image decoder against mutated JPEGs (bit flips, overwritten and inserted
 * bytes, cuts, spliced segments, headers claiming huge sizes). Every outcome must be a decoded
 * image of the promised shape or a FaceInputError: never another exception, never a crash, and
 * memory stays bounded (a bomb's header is refused before any pixel is decoded).
 */
const LIMITS: DecodeLimits = { maxPixels: 4_000_000, maxSide: 640 };
const seeds: Buffer[] = [];

beforeAll(async () => {
  const photo = readFileSync(join(process.cwd(), 'node_modules/@vladmandic/face-api/demo/sample2.jpg'));
  const small = sharp(photo).rotate().resize({ width: 96 });
  seeds.push(await small.clone().jpeg({ quality: 70 }).toBuffer());
  seeds.push(await small.clone().jpeg({ quality: 60, progressive: true }).toBuffer());
  seeds.push(await small.clone().jpeg({ quality: 80, chromaSubsampling: '4:4:4' }).withMetadata({ orientation: 6 }).toBuffer());
});

type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'set'; at: number; value: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'delete'; at: number; length: number }
  | { kind: 'cut'; at: number }
  | { kind: 'dims'; width: number; height: number }
  | { kind: 'splice'; from: number; at: number; length: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.constantFrom(0x00, 0xff, 0xd8, 0xd9, 0xda, 0xc0, 0xc4, 0xdb, 0x7f, 0x80) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 24 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 64 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('dims' as const), width: fc.integer({ min: 0, max: 65535 }), height: fc.integer({ min: 0, max: 65535 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('splice' as const), from: fc.nat(), at: fc.nat(), length: fc.integer({ min: 1, max: 200 }) }) },
);

function apply(seed: Buffer, mutations: Mutation[]): Buffer {
  let b = Buffer.from(seed);
  for (const m of mutations) {
    const at = b.length ? m.kind === 'dims' || m.kind === 'splice' ? 0 : (m as { at: number }).at % b.length : 0;
    switch (m.kind) {
      case 'flip':
        if (b.length) b[at] = b[at]! ^ (1 << m.bit);
        break;
      case 'set':
        if (b.length) b[at] = m.value;
        break;
      case 'insert':
        b = Buffer.concat([b.subarray(0, at), Buffer.from(m.bytes), b.subarray(at)]);
        break;
      case 'delete':
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + m.length)]);
        break;
      case 'cut':
        b = b.subarray(0, at);
        break;
      case 'dims': {
        // Rewrite the frame header (SOF0/SOF2) to claim another size: 30000x30000 and friends.
        for (let i = 0; i + 8 < b.length; i++) {
          if (b[i] === 0xff && (b[i + 1] === 0xc0 || b[i + 1] === 0xc2)) {
            b.writeUInt16BE(m.height, i + 5);
            b.writeUInt16BE(m.width, i + 7);
            break;
          }
        }
        break;
      }
      case 'splice': {
        if (!b.length) break;
        const from = m.from % b.length;
        const piece = Buffer.from(b.subarray(from, from + m.length));
        const to = m.at % b.length;
        b = Buffer.concat([b.subarray(0, to), piece, b.subarray(to)]);
        break;
      }
    }
  }
  return b;
}

describe('bad-input campaign: the face engine image decoder', () => {
  it('every mutated JPEG decodes to an image of the promised shape or fails with a FaceInputError', async () => {
    const outcomes = { decoded: 0, refused: new Map<string, number>() };
    const rssBefore = process.memoryUsage().rss;
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 2 }), fc.array(mutation, { minLength: 1, maxLength: 4 }), async (which, mutations) => {
        const bytes = apply(seeds[which]!, mutations);
        try {
          const img = await decodeImage(bytes, LIMITS);
          expect(img.width).toBeGreaterThan(0);
          expect(img.height).toBeGreaterThan(0);
          expect(Math.max(img.width, img.height)).toBeLessThanOrEqual(LIMITS.maxSide);
          expect(img.rgb.length).toBe(img.width * img.height * 3);
          expect(img.originalWidth * img.originalHeight).toBeLessThanOrEqual(LIMITS.maxPixels);
          outcomes.decoded++;
        } catch (err) {
          if (!(err instanceof FaceInputError)) throw err;
          expect(err.message.length).toBeGreaterThan(10);
          outcomes.refused.set(err.code, (outcomes.refused.get(err.code) ?? 0) + 1);
        }
      }),
      { seed: FUZZ_SEED, numRuns: runs(6_000) },
    );
    if (process.env.CLOCKFACE_FUZZ_VERBOSE) console.log(outcomes);
    // Both outcomes happen, and the bombs among the mutants were refused by their header.
    expect(outcomes.decoded).toBeGreaterThan(0);
    expect(outcomes.refused.get('unreadable') ?? 0).toBeGreaterThan(0);
    expect(outcomes.refused.get('too-large') ?? 0).toBeGreaterThan(0);
    // Bounded memory: thousands of decodes (some claiming 65535x65535) leave no large residue.
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(400 * 1024 * 1024);
  }, scaledTimeout(120_000));

  it('refuses the classic shapes with the right reason', async () => {
    const [jpeg] = seeds;
    const bomb = apply(jpeg!, [{ kind: 'dims', width: 30000, height: 30000 }]);
    await expect(decodeImage(bomb, LIMITS)).rejects.toMatchObject({ name: 'FaceInputError', code: 'too-large' });
    await expect(decodeImage(Buffer.alloc(0), LIMITS)).rejects.toMatchObject({ code: 'empty' });
    await expect(decodeImage(Buffer.from('GIF89a not really'), LIMITS)).rejects.toBeInstanceOf(FaceInputError);
    await expect(decodeImage(jpeg!.subarray(0, jpeg!.length >> 1), LIMITS)).rejects.toMatchObject({ code: 'unreadable' });
    await expect(decodeImage(Buffer.from(jpeg!.subarray(0, 2)), LIMITS)).rejects.toBeInstanceOf(FaceInputError);
  });
});
