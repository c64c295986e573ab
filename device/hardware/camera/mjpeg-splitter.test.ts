import fc from 'fast-check';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { MjpegSplitter } from './mjpeg-splitter.js';

let frames: Buffer[] = [];

beforeAll(async () => {
  // Real JPEGs with noisy content, so entropy-coded data is full of stuffed FF 00 bytes.
  frames = await Promise.all(
    [1, 2, 3].map((seed) =>
      sharp({ create: { width: 160, height: 120, channels: 3, background: { r: 40 * seed, g: 90, b: 200 }, noise: { type: 'gaussian', mean: 128, sigma: 60 } } })
        .jpeg({ quality: 85 })
        .toBuffer(),
    ),
  );
});

function split(chunks: Buffer[]) {
  const out: Buffer[] = [];
  const s = new MjpegSplitter((f) => out.push(f), 1 << 20);
  for (const c of chunks) s.push(c);
  return { out, stats: s.stats };
}

describe('MJPEG splitter', () => {
  it('returns the exact JPEGs from a stream split at any points', () => {
    const stream = Buffer.concat(frames);
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: stream.length - 1 }), { maxLength: 40 }), (cuts) => {
        const points = [0, ...new Set(cuts)].sort((a, b) => a - b).concat(stream.length);
        const chunks = points.slice(1).map((end, i) => stream.subarray(points[i]!, end));
        const { out } = split(chunks);
        expect(out).toHaveLength(3);
        out.forEach((f, i) => expect(f.equals(frames[i]!)).toBe(true));
      }),
      { numRuns: 150 },
    );
  });

  it('finds markers split across chunk boundaries byte by byte', () => {
    const stream = Buffer.concat(frames);
    const { out } = split([...stream].map((b) => Buffer.from([b])));
    expect(out.map((f) => f.length)).toEqual(frames.map((f) => f.length));
  });

  it('drops garbage between frames and counts it', async () => {
    const junk = Buffer.from('rpicam-vid: some log line on stdout\n\x00\xd9\xff', 'latin1');
    const { out, stats } = split([junk, frames[0]!, junk, frames[1]!, junk]);
    expect(out).toHaveLength(2);
    expect(stats.garbageBytes).toBe(junk.length * 3);
    const meta = await sharp(out[1]!).metadata();
    expect([meta.width, meta.height]).toEqual([160, 120]);
  });

  it('drops a frame that never ends instead of growing without bound', () => {
    const head = frames[0]!.subarray(0, 1000);
    const s = new MjpegSplitter(() => undefined, 4096);
    s.push(head);
    for (let i = 0; i < 10; i++) s.push(Buffer.alloc(1000, 0x11));
    expect(s.stats.rejected).toBe(1);
    const out: Buffer[] = [];
    const s2 = new MjpegSplitter((f) => out.push(f), 4096);
    s2.push(Buffer.concat([head, Buffer.alloc(5000, 0x11), frames[2]!.subarray(0, 4000)]));
    expect(out).toHaveLength(0);
  });

  it('rejects tiny FF D8 ... FF D9 runs that are not JPEGs', () => {
    const { out, stats } = split([Buffer.from([0xff, 0xd8, 0x00, 0x01, 0xff, 0xd9]), frames[0]!]);
    expect(out).toHaveLength(1);
    expect(stats.rejected).toBe(1);
  });
});
