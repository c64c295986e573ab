/**
 * Splits an MJPEG byte stream (JPEGs back to back, as rpicam-vid --codec mjpeg and ffmpeg
 * -f mjpeg write them) into frames. A frame runs from the SOI marker (FF D8) to the first EOI
 * marker (FF D9): JPEG byte-stuffing guarantees FF D9 cannot occur inside entropy-coded data.
 * (Embedded EXIF thumbnails would end a frame early; the camera tools used here write none.)
 * Bytes outside frames are counted as garbage and dropped; a "frame" that grows past maxFrameBytes
 * without an EOI is dropped too, so a babbling process cannot grow memory without bound.
 */
export interface SplitterStats {
  frames: number;
  garbageBytes: number;
  /** Candidate frames dropped: oversized, or not a JPEG once complete. */
  rejected: number;
}

const SOI_SECOND = 0xd8;
const EOI_SECOND = 0xd9;
const MIN_FRAME = 128;

export class MjpegSplitter {
  readonly stats: SplitterStats = { frames: 0, garbageBytes: 0, rejected: 0 };
  private parts: Buffer[] = [];
  private size = 0;
  private inFrame = false;
  /** Last byte seen, so markers split across chunks are found. */
  private prev = -1;

  constructor(
    private readonly onFrame: (jpeg: Buffer) => void,
    private readonly maxFrameBytes = 16 * 1024 * 1024,
  ) {}

  push(chunk: Buffer): void {
    let i = 0;
    while (i < chunk.length) {
      if (!this.inFrame) {
        const start = this.findMarker(chunk, i, SOI_SECOND);
        if (start === -1) {
          this.stats.garbageBytes += chunk.length - i;
          this.prev = chunk[chunk.length - 1]!;
          return;
        }
        // start is the index of D8; FF is at start-1, or was the previous chunk's last byte.
        this.inFrame = true;
        this.parts = [];
        this.size = 0;
        if (start === 0) {
          this.append(Buffer.from([0xff]));
          i = 0;
        } else {
          this.stats.garbageBytes += start - 1 - i;
          i = start - 1;
        }
        this.prev = -1;
        // Skip past the SOI so its D8 cannot pair with a later FF as anything.
        const soiEnd = start + 1;
        this.append(chunk.subarray(i, soiEnd));
        i = soiEnd;
        continue;
      }
      const end = this.findMarker(chunk, i, EOI_SECOND);
      if (end === -1) {
        this.append(chunk.subarray(i));
        this.prev = chunk[chunk.length - 1]!;
        if (this.size > this.maxFrameBytes) this.drop();
        return;
      }
      this.append(chunk.subarray(i, end + 1));
      this.prev = -1;
      i = end + 1;
      this.finish();
    }
  }

  /** Forgets a partial frame (e.g. when the producing process restarts). */
  reset(): void {
    this.inFrame = false;
    this.parts = [];
    this.size = 0;
    this.prev = -1;
  }

  private finish(): void {
    const frame = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.size);
    this.reset();
    // A real JPEG continues SOI with another marker (APPn, DQT, ...); random bytes rarely do.
    if (frame.length < MIN_FRAME || frame[2] !== 0xff) {
      this.stats.rejected++;
      return;
    }
    this.stats.frames++;
    this.onFrame(frame);
  }

  private drop(): void {
    this.stats.rejected++;
    this.stats.garbageBytes += this.size;
    this.reset();
  }

  private append(part: Buffer): void {
    if (part.length === 0) return;
    this.parts.push(part);
    this.size += part.length;
  }

  /** Index of the second byte of an FF xx marker at or after `from`, counting a split FF. */
  private findMarker(chunk: Buffer, from: number, second: number): number {
    if (from === 0 && this.prev === 0xff && chunk[0] === second) return 0;
    let at = chunk.indexOf(0xff, from);
    while (at !== -1 && at + 1 < chunk.length) {
      if (chunk[at + 1] === second) return at + 1;
      at = chunk.indexOf(0xff, at + 1);
    }
    return -1;
  }
}
