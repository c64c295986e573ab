/**
 * Byte-stream parsers for serial card readers. They are push parsers: feed any chunking of
 * the stream (split frames, several frames per chunk, noise in between) and get whole reads.
 */
export interface CardRead {
  /** What the reader sent, normalised: uppercase hex for EM4100 and hex lines, digits for decimal lines. */
  raw: string;
  format: 'em4100' | 'line-hex' | 'line-decimal';
  /**
   * The canonical card number (protocol's canonicalCardNumber): decimal, no leading zeros, the
   * card's 32-bit id. EM4100 frames and 10-digit hex lines drop the leading version byte, so the
   * same badge gives the same number on an RDM6300 and on a "keyboard" reader.
   */
  number: string;
}

export interface ParserSink {
  card(read: CardRead): void;
  /** Digits keyed on a reader's keypad, ended with '#' (never logged). */
  pin?(digits: string): void;
  /** A frame that looked like a card but failed its check; the reason is safe to log. */
  reject(reason: string): void;
}

export interface CardParser {
  push(chunk: Buffer): void;
  reset(): void;
}

const STX = 0x02;
const ETX = 0x03;
const EM_FRAME = 14; // STX + 10 hex data + 2 hex checksum + ETX
const HEX = /^[0-9A-F]+$/;

/** RDM6300-style 125 kHz EM4100 readers: STX, 10 hex digits, 2 hex checksum digits (XOR of the 5 bytes), ETX. */
export class Em4100Parser implements CardParser {
  private buf: Buffer = Buffer.alloc(0);

  constructor(private readonly sink: ParserSink) {}

  push(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    for (;;) {
      const start = this.buf.indexOf(STX);
      if (start < 0) {
        this.buf = Buffer.alloc(0); // all noise
        return;
      }
      if (this.buf.length - start < EM_FRAME) {
        this.buf = this.buf.subarray(start); // wait for the rest
        return;
      }
      const frame = this.buf.subarray(start, start + EM_FRAME);
      const body = frame.subarray(1, 13).toString('latin1').toUpperCase();
      if (frame[13] !== ETX || !HEX.test(body)) {
        // Not a frame after all (noise that contained STX): resync on the next byte.
        this.buf = this.buf.subarray(start + 1);
        continue;
      }
      this.buf = this.buf.subarray(start + EM_FRAME);
      const data = Buffer.from(body.slice(0, 10), 'hex');
      const expected = parseInt(body.slice(10), 16);
      const actual = data.reduce((x, b) => x ^ b, 0);
      if (actual !== expected) {
        this.sink.reject(`EM4100 checksum mismatch (frame says ${hex2(expected)}, data gives ${hex2(actual)})`);
        continue;
      }
      const raw = body.slice(0, 10);
      this.sink.card({ raw, format: 'em4100', number: BigInt('0x' + raw.slice(2)).toString() });
    }
  }

  reset(): void {
    this.buf = Buffer.alloc(0);
  }
}

/** Builds a valid RDM6300 frame for a 10-hex-digit tag (simulator and tests). */
export function em4100Frame(raw: string): Buffer {
  const body = raw.toUpperCase().padStart(10, '0');
  if (body.length !== 10 || !HEX.test(body)) throw new RangeError('em4100Frame: tag must be up to 10 hex digits');
  const sum = Buffer.from(body, 'hex').reduce((x, b) => x ^ b, 0);
  return Buffer.concat([Buffer.from([STX]), Buffer.from(body + hex2(sum), 'latin1'), Buffer.from([ETX])]);
}

const MAX_LINE = 64;

/**
 * "Keyboard-style" serial/USB readers: one card number per line, ending in CR, LF or CRLF.
 * Readers with a keypad send an entry as its digits ended by '#' (e.g. "1234#"): that is a PIN.
 */
export class LineParser implements CardParser {
  private line = '';
  private overflow = false;

  constructor(
    private readonly sink: ParserSink,
    private readonly numberFormat: 'hex' | 'decimal',
  ) {}

  push(chunk: Buffer): void {
    for (const byte of chunk) {
      if (byte === 0x0d || byte === 0x0a) {
        this.finish();
        continue;
      }
      if (this.line.length >= MAX_LINE) {
        this.overflow = true; // runaway noise: drop this line when it ends
        continue;
      }
      this.line += String.fromCharCode(byte);
    }
  }

  reset(): void {
    this.line = '';
    this.overflow = false;
  }

  private finish(): void {
    const text = this.line.trim();
    const overflow = this.overflow;
    this.reset();
    if (text.length === 0) return; // the LF of a CRLF, or an empty line
    if (overflow) return this.sink.reject(`line longer than ${MAX_LINE} characters`);
    const keyed = /^\*?([0-9]{4,12})#$/.exec(text);
    if (keyed) return this.sink.pin ? this.sink.pin(keyed[1]!) : this.sink.reject('keypad entry on a reader without a keypad');
    if (this.numberFormat === 'decimal') {
      if (!/^[0-9]{1,20}$/.test(text)) return this.sink.reject('line is not a decimal card number');
      const number = BigInt(text).toString();
      return this.sink.card({ raw: text, format: 'line-decimal', number });
    }
    const raw = text.toUpperCase().replace(/^0X/, '');
    if (!/^[0-9A-F]{1,16}$/.test(raw)) return this.sink.reject('line is not a hex card number');
    // 10 hex digits is an EM4100 id with its version byte in front (as RDM6300 frames carry it).
    const id = raw.length === 10 ? raw.slice(2) : raw;
    this.sink.card({ raw, format: 'line-hex', number: BigInt('0x' + id).toString() });
  }
}

function hex2(n: number): string {
  return n.toString(16).toUpperCase().padStart(2, '0');
}
