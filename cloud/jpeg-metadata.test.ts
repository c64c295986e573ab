import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { stripJpegMetadata, JpegStructureError } from './jpeg-metadata.js';
import { makeJpeg } from './testing/fixtures.js';
import { PhotoError, stripMetadata } from './vault.js';

/** Inserts a segment right after SOI. */
function withSegment(jpeg: Buffer, marker: number, body: Buffer): Buffer {
  const len = Buffer.alloc(2);
  len.writeUInt16BE(body.length + 2);
  return Buffer.concat([jpeg.subarray(0, 2), Buffer.from([0xff, marker]), len, body, jpeg.subarray(2)]);
}

const pixels = async (jpeg: Buffer) => (await sharp(jpeg).raw().toBuffer({ resolveWithObject: true })).data;

describe('JPEG metadata removal', () => {
  it('drops EXIF (GPS, names), XMP, comments and trailing bytes and keeps the pixels bit for bit', async () => {
    const base = await makeJpeg({ exif: true, seed: 3, width: 320, height: 240, detailWidth: 40 });
    let dirty = withSegment(base, 0xfe, Buffer.from('badge 4711 Jane Example'));
    dirty = withSegment(dirty, 0xe1, Buffer.from('http://ns.adobe.com/xap/1.0/\0<x:xmpmeta>GPSLatitude 51.5</x:xmpmeta>'));
    dirty = Buffer.concat([dirty, Buffer.from('appended secret payload')]);
    const clean = await stripMetadata(dirty);
    for (const s of ['Jane Example', 'GPS', 'xmpmeta', 'badge 4711', 'appended', 'Exif']) expect(clean.includes(Buffer.from(s))).toBe(false);
    const meta = await sharp(clean).metadata();
    expect(meta).toMatchObject({ format: 'jpeg', width: 320, height: 240 });
    expect(meta.exif).toBeUndefined();
    expect((await pixels(clean)).equals(await pixels(base))).toBe(true);
    expect(clean.length).toBeLessThan(dirty.length);
  });

  it('keeps every scan of a progressive JPEG', async () => {
    const src = await makeJpeg({ seed: 9, width: 200, height: 150, detailWidth: 50 });
    const progressive = await sharp(src).jpeg({ progressive: true, quality: 80 }).withExif({ IFD0: { Artist: 'Jane Example' } }).toBuffer();
    const clean = await stripMetadata(progressive);
    expect(clean.includes(Buffer.from('Jane Example'))).toBe(false);
    expect((await pixels(clean)).equals(await pixels(progressive))).toBe(true);
  });

  it('re-encodes when EXIF orientation matters, so the stored photo is upright and still metadata-free', async () => {
    const src = await makeJpeg({ seed: 4, width: 160, height: 120 });
    const rotated = await sharp(src).withExif({ IFD0: { Artist: 'Jane Example' } }).withMetadata({ orientation: 6 }).toBuffer();
    expect(stripJpegMetadata(rotated)).toBeNull();
    const clean = await stripMetadata(rotated);
    const meta = await sharp(clean).metadata();
    expect(meta).toMatchObject({ width: 120, height: 160 });
    expect(meta.exif).toBeUndefined();
  });

  it('refuses what is not a well-formed JPEG with a clear error', async () => {
    const good = await makeJpeg({ seed: 5 });
    const cases: [string, Buffer][] = [
      ['empty', Buffer.alloc(0)],
      ['text', Buffer.from('hello, not a photo')],
      ['truncated', good.subarray(0, good.length >> 1)],
      ['no image data', Buffer.from([0xff, 0xd8, 0xff, 0xd9])],
      ['segment past the end', Buffer.from([0xff, 0xd8, 0xff, 0xdb, 0xff, 0xff, 0x00])],
    ];
    for (const [name, bytes] of cases) {
      const err = await stripMetadata(bytes).then(() => null, (e: unknown) => e);
      expect(err, name).toBeInstanceOf(PhotoError);
    }
    expect(() => stripJpegMetadata(good.subarray(0, 40))).toThrow(JpegStructureError);
  });

  it('turns another image format into a metadata-free JPEG', async () => {
    const png = await sharp(await makeJpeg({ seed: 5 })).png().withExif({ IFD0: { Artist: 'Jane Example' } }).toBuffer();
    const clean = await stripMetadata(png);
    expect((await sharp(clean).metadata()).format).toBe('jpeg');
    expect(clean.includes(Buffer.from('Jane Example'))).toBe(false);
  });

  it('refuses a pixel bomb by its frame header, without decoding', async () => {
    const good = await makeJpeg({ seed: 6 });
    const bomb = Buffer.from(good);
    const sof = bomb.indexOf(Buffer.from([0xff, 0xc0]));
    bomb.writeUInt16BE(30000, sof + 5);
    bomb.writeUInt16BE(30000, sof + 7);
    await expect(stripMetadata(bomb)).rejects.toThrow(/too many pixels/);
  });
});
