import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { stripJpegMetadata, JpegStructureError } from './jpeg-metadata.js';
import { makeJpeg } from './testing/fixtures.js';
import { startHarness } from './testing/harness.js';
import { PhotoError, stripMetadata } from './vault.js';

/** Inserts a segment right after SOI. */
function withSegment(jpeg: Buffer, marker: number, body: Buffer): Buffer {
  const len = Buffer.alloc(2);
  len.writeUInt16BE(body.length + 2);
  return Buffer.concat([jpeg.subarray(0, 2), Buffer.from([0xff, marker]), len, body, jpeg.subarray(2)]);
}

/**
 * Every marker of a JPEG stream, walked independently of the code under test: segments by
 * their length, scans by skipping entropy-coded data (stuffed 0xFF00 and RSTn) to the next marker.
 */
function markersOf(jpeg: Buffer): number[] {
  const out: number[] = [];
  let pos = 2;
  while (pos + 1 < jpeg.length) {
    expect(jpeg[pos]).toBe(0xff);
    const m = jpeg[pos + 1]!;
    out.push(m);
    if (m === 0xd9) return out;
    pos += 2 + jpeg.readUInt16BE(pos + 2);
    if (m === 0xda) while (pos + 1 < jpeg.length && !(jpeg[pos] === 0xff && jpeg[pos + 1] !== 0 && !(jpeg[pos + 1]! >= 0xd0 && jpeg[pos + 1]! <= 0xd7))) pos++;
  }
  throw new Error('no end-of-image marker');
}
/** SOFn (not C8), DHT, DAC, DQT, DRI, DNL, SOS, EOI: what a decoder needs, nothing else. */
const DECODING = new Set([0xc0, 0xc1, 0xc2, 0xc3, 0xc5, 0xc6, 0xc7, 0xc9, 0xca, 0xcb, 0xcd, 0xce, 0xcf, 0xc4, 0xcc, 0xdb, 0xdd, 0xdc, 0xda, 0xd9]);
const onlyDecodingMarkers = (jpeg: Buffer) => markersOf(jpeg).filter((m) => !DECODING.has(m));

const ICC = Buffer.concat([Buffer.from('ICC_PROFILE\0\x01\x01', 'latin1'), Buffer.from('icc-device-serial-SN4711-calibrated-by-Jane')]);
const IPTC = Buffer.concat([Buffer.from('Photoshop 3.0\x008BIM\x04\x04\0\0\0\0\0\x20', 'latin1'), Buffer.from('\x1c\x02\x50\0\x0cJane Example\x1c\x02\x78\0\x04GPS!', 'latin1')]);
/** Adobe APP14: version 100, flags 0, transform 1 (YCbCr), as Photoshop writes it. */
const ADOBE = Buffer.from([0x41, 0x64, 0x6f, 0x62, 0x65, 0x00, 0x64, 0x00, 0x00, 0x00, 0x00, 0x01]);
const F0 = Buffer.from('JPG0 extension carrying a payload: Jane Example 51.5N');

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

  it('drops APP2 (ICC), APP13 (IPTC) and comments by the allow-list, pixels bit for bit', async () => {
    const base = await makeJpeg({ seed: 21, width: 200, height: 150, detailWidth: 50 });
    for (const [name, marker, body] of [['icc', 0xe2, ICC], ['iptc', 0xed, IPTC], ['comment', 0xfe, Buffer.from('Jane Example badge 4711')]] as const) {
      const dirty = withSegment(base, marker, body);
      const stripped = stripJpegMetadata(dirty);
      expect(stripped, name).not.toBeNull();
      expect(stripped!.reencode, name).toBe(false);
      const clean = await stripMetadata(dirty);
      expect(clean.equals(base), name).toBe(true);
      expect(clean.includes(body.subarray(14)), name).toBe(false);
      expect(onlyDecodingMarkers(clean), name).toEqual([]);
    }
  });

  it('re-encodes a photo with an Adobe colour-transform block, which then carries no APP14', async () => {
    const base = await makeJpeg({ seed: 22, width: 200, height: 150, detailWidth: 50 });
    const dirty = withSegment(base, 0xee, ADOBE);
    expect(stripJpegMetadata(dirty)).toBeNull();
    const clean = await stripMetadata(dirty);
    expect(markersOf(dirty)).toContain(0xee);
    expect(onlyDecodingMarkers(clean)).toEqual([]);
    expect(clean.includes(Buffer.from('Adobe'))).toBe(false);
    expect(await sharp(clean).metadata()).toMatchObject({ format: 'jpeg', width: 200, height: 150 });
  });

  it('never passes a segment outside the allow-list (a 0xF0 extension with a payload): dropped, and the rest re-encoded', async () => {
    const base = await makeJpeg({ seed: 23, width: 200, height: 150, detailWidth: 50 });
    const dirty = withSegment(base, 0xf0, F0);
    const stripped = stripJpegMetadata(dirty);
    expect(stripped!.reencode).toBe(true);
    expect(stripped!.bytes.includes(F0)).toBe(false);
    const clean = await stripMetadata(dirty);
    expect(clean.includes(Buffer.from('Jane Example'))).toBe(false);
    expect(onlyDecodingMarkers(clean)).toEqual([]);
    expect(await sharp(clean).metadata()).toMatchObject({ format: 'jpeg', width: 200, height: 150 });
    // A reserved marker (0xFF02) is treated the same way.
    expect(stripJpegMetadata(withSegment(base, 0x02, F0))!.reencode).toBe(true);
  });

  it('stores (encrypted) only decoding segments whatever the photo carried, with the pixels unchanged where removal is lossless', async () => {
    const h = await startHarness(['acme']);
    try {
      await h.addDevice('acme', 'door-1');
      const base = await makeJpeg({ seed: 24, width: 240, height: 180, detailWidth: 60, exif: true });
      const plain = await makeJpeg({ seed: 24, width: 240, height: 180, detailWidth: 60 });
      const cases = [
        { name: 'exif+icc+iptc+comment', photo: withSegment(withSegment(withSegment(base, 0xe2, ICC), 0xed, IPTC), 0xfe, Buffer.from('Jane')), lossless: true },
        { name: 'adobe', photo: withSegment(base, 0xee, ADOBE), lossless: false },
        { name: 'jpg0 extension', photo: withSegment(base, 0xf0, F0), lossless: false },
      ];
      for (const c of cases) {
        const p = h.punch('acme', 'door-1', { photo: c.photo.toString('base64') });
        const r = await h.ingest('acme', [{ id: p.event.eventId, tenant: 'acme', device: 'door-1', envelope: p.envelope }]);
        expect(r.json.results[0].status, c.name).toBe('stored');
        const photoId = h.service.db.prepare('SELECT photo_id FROM punches WHERE event_id = ?').pluck().get(p.event.eventId) as string;
        const stored = h.service.vault.get('acme', photoId);
        expect(onlyDecodingMarkers(stored), c.name).toEqual([]);
        for (const s of ['Jane', 'GPS', 'Exif', 'ICC_PROFILE', 'Photoshop', 'Adobe']) expect(stored.includes(Buffer.from(s)), `${c.name}: ${s}`).toBe(false);
        if (c.lossless) expect((await pixels(stored)).equals(await pixels(plain)), c.name).toBe(true);
        else expect(await sharp(stored).metadata(), c.name).toMatchObject({ width: 240, height: 180 });
      }
    } finally {
      await h.close();
    }
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
