/**
 * Lossless metadata removal for JPEG by an allow-list: walks the marker segments and keeps
 * only what a decoder needs: frame headers (SOFn), Huffman and arithmetic-coding tables (DHT,
 * DAC), quantisation tables (DQT), restart intervals (DRI), scans (SOS with their entropy-coded
 * data and RSTn markers), DNL and the end of image. Every APPn block (EXIF with GPS and camera
 * serials, XMP, ICC, IPTC, JFIF thumbnails, maker notes) and comment is dropped, as is
 * anything after the end-of-image marker.
 *
 * Any other marker (JPG extensions 0xF0–0xFD, hierarchical DHP/EXP, reserved codes) can carry
 * an arbitrary payload and is dropped too; since dropping a segment whose meaning is unknown
 * might change how the rest decodes, such a photo is marked `reencode` and the caller decodes
 * the stripped stream and encodes it afresh (a stream that does not decode without it is refused).
 *
 * Why not always re-encode: decoding and re-encoding a 40 KB photo costs several milliseconds
 * of CPU per punch and loses quality each time; walking segments costs microseconds and keeps
 * the pixels bit for bit. Photos whose appearance depends on a metadata block (an EXIF
 * orientation other than "upright", an Adobe colour-transform block) also return null.
 */
export class JpegStructureError extends Error {
  override readonly name = 'JpegStructureError';
}

const SOI = 0xd8;
const EOI = 0xd9;
const SOS = 0xda;
const DHT = 0xc4;
const DAC = 0xcc;
const DQT = 0xdb;
const DNL = 0xdc;
const DRI = 0xdd;
const COM = 0xfe;
const TEM = 0x01;
const isRestart = (m: number) => m >= 0xd0 && m <= 0xd7;
const isApp = (m: number) => m >= 0xe0 && m <= 0xef;
/** SOF0..SOF15 except DHT (C4), JPG (C8, reserved for extensions) and DAC (CC). */
const isFrameHeader = (m: number) => m >= 0xc0 && m <= 0xcf && m !== DHT && m !== 0xc8 && m !== DAC;
/** Segments a decoder needs; everything else is either dropped (APPn, COM) or forces a re-encode. */
const isDecodingSegment = (m: number) => isFrameHeader(m) || m === DHT || m === DAC || m === DQT || m === DRI || m === DNL || m === SOS;

export interface StrippedJpeg {
  bytes: Buffer;
  width: number;
  height: number;
  /** A segment outside the allow-list was dropped: decode and re-encode `bytes` before storing. */
  reencode: boolean;
}

/**
 * Returns the JPEG with only its decoding segments, or null when a dropped block would change
 * how the picture looks (the caller then re-encodes the original). Throws JpegStructureError on anything that is not a
 * well-formed JPEG stream.
 */
export function stripJpegMetadata(jpeg: Buffer): StrippedJpeg | null {
  if (jpeg.length < 4 || jpeg[0] !== 0xff || jpeg[1] !== SOI) throw new JpegStructureError('not a JPEG (no start-of-image marker)');
  const kept: Buffer[] = [jpeg.subarray(0, 2)];
  let pos = 2;
  let width = 0;
  let height = 0;
  let sawScan = false;
  let reencode = false;
  for (;;) {
    if (pos >= jpeg.length) throw new JpegStructureError('truncated: no end-of-image marker');
    if (jpeg[pos] !== 0xff) throw new JpegStructureError(`expected a marker at byte ${pos}`);
    while (jpeg[pos] === 0xff && pos < jpeg.length) pos++; // fill bytes
    if (pos >= jpeg.length) throw new JpegStructureError('truncated inside a marker');
    const marker = jpeg[pos]!;
    pos++;
    if (marker === EOI) {
      if (!sawScan || width === 0) throw new JpegStructureError('no image data before end-of-image');
      kept.push(Buffer.from([0xff, EOI])); // bytes after EOI (appended payloads) are dropped
      return { bytes: Buffer.concat(kept), width, height, reencode };
    }
    if (marker === SOI || marker === 0x00 || isRestart(marker) || marker === TEM) {
      throw new JpegStructureError(`unexpected marker 0xFF${marker.toString(16).toUpperCase()} at byte ${pos - 1}`);
    }
    if (pos + 2 > jpeg.length) throw new JpegStructureError('truncated segment length');
    const length = jpeg.readUInt16BE(pos);
    const end = pos + length;
    if (length < 2 || end > jpeg.length) throw new JpegStructureError(`segment 0xFF${marker.toString(16).toUpperCase()} runs past the end`);
    const body = jpeg.subarray(pos + 2, end);
    if (isApp(marker) || marker === COM) {
      if (marker === 0xe1 && exifOrientation(body) > 1) return null;
      if (marker === 0xee && body.subarray(0, 5).toString('latin1') === 'Adobe') return null;
      pos = end;
      continue;
    }
    if (!isDecodingSegment(marker)) {
      // Not on the allow-list: never kept; the caller proves the rest decodes by re-encoding it.
      reencode = true;
      pos = end;
      continue;
    }
    if (isFrameHeader(marker)) {
      if (body.length < 6) throw new JpegStructureError('frame header too short');
      height = body.readUInt16BE(1);
      width = body.readUInt16BE(3);
      if (width === 0 || height === 0) throw new JpegStructureError('frame header without dimensions');
    }
    kept.push(jpeg.subarray(pos - 2, end));
    pos = end;
    if (marker === SOS) {
      if (width === 0) throw new JpegStructureError('scan before frame header');
      sawScan = true;
      // Entropy-coded data runs to the next marker that is neither a stuffed 0xFF00 nor a restart.
      const start = pos;
      while (pos + 1 < jpeg.length && !(jpeg[pos] === 0xff && jpeg[pos + 1] !== 0x00 && !isRestart(jpeg[pos + 1]!))) pos++;
      if (pos + 1 >= jpeg.length) throw new JpegStructureError('truncated: scan data without end-of-image');
      kept.push(jpeg.subarray(start, pos));
    }
  }
}

/** The EXIF orientation tag (1 = upright) of an APP1 body, 1 when absent or unreadable. */
function exifOrientation(app1: Buffer): number {
  if (app1.subarray(0, 6).toString('latin1') !== 'Exif\0\0') return 1;
  const tiff = app1.subarray(6);
  if (tiff.length < 8) return 1;
  const little = tiff.toString('latin1', 0, 2) === 'II';
  const u16 = (o: number) => (o + 2 <= tiff.length ? (little ? tiff.readUInt16LE(o) : tiff.readUInt16BE(o)) : 0);
  const u32 = (o: number) => (o + 4 <= tiff.length ? (little ? tiff.readUInt32LE(o) : tiff.readUInt32BE(o)) : 0);
  const ifd = u32(4);
  const entries = u16(ifd);
  for (let i = 0; i < entries && i < 512; i++) {
    const entry = ifd + 2 + i * 12;
    if (entry + 12 > tiff.length) break;
    if (u16(entry) === 0x0112) return u16(entry + 8) || 1;
  }
  return 1;
}
