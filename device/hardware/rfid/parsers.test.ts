import { describe, expect, it } from 'vitest';
import { em4100Frame, Em4100Parser, LineParser, type CardRead } from './parsers.js';
import { RepeatFilter } from './repeat-filter.js';

function collect() {
  const cards: CardRead[] = [];
  const rejects: string[] = [];
  return { cards, rejects, sink: { card: (c: CardRead) => cards.push(c), reject: (r: string) => rejects.push(r) } };
}

describe('EM4100 (RDM6300) parser', () => {
  // A real RDM6300 capture: tag 62E3086CED, checksum 62^E3^08^6C^ED = 08.
  const frame = Buffer.concat([Buffer.from([2]), Buffer.from('62E3086CED08'), Buffer.from([3])]);

  it('reads a frame and computes the 32-bit card number', () => {
    const c = collect();
    new Em4100Parser(c.sink).push(frame);
    expect(c.cards).toEqual([{ raw: '62E3086CED', format: 'em4100', number: String(0xe3086ced) }]);
    expect(em4100Frame('62E3086CED')).toEqual(frame);
  });

  it('reassembles frames split at every byte boundary', () => {
    for (let cut = 1; cut < frame.length; cut++) {
      const c = collect();
      const p = new Em4100Parser(c.sink);
      p.push(frame.subarray(0, cut));
      p.push(frame.subarray(cut));
      expect(c.cards.map((x) => x.raw)).toEqual(['62E3086CED']);
    }
    const c = collect();
    const p = new Em4100Parser(c.sink);
    for (const byte of Buffer.concat([frame, frame])) p.push(Buffer.from([byte]));
    expect(c.cards).toHaveLength(2);
  });

  it('rejects a bad checksum and keeps reading what follows', () => {
    const bad = Buffer.from(frame);
    bad[12] = 'F'.charCodeAt(0); // checksum 0F instead of 08
    const c = collect();
    new Em4100Parser(c.sink).push(Buffer.concat([bad, em4100Frame('0100ABCDEF')]));
    expect(c.rejects).toHaveLength(1);
    expect(c.rejects[0]).toMatch(/checksum mismatch/);
    expect(c.cards.map((x) => x.raw)).toEqual(['0100ABCDEF']);
  });

  it('skips noise, including noise that contains STX, between frames', () => {
    const noise = Buffer.from([0x00, 0xff, 0x02, 0x41, 0x02, 0x7a, 0x03, 0x0d, 0x0a, 0x02, 0x02]);
    const c = collect();
    const p = new Em4100Parser(c.sink);
    p.push(Buffer.concat([noise, frame, noise.subarray(0, 5)]));
    p.push(Buffer.concat([noise.subarray(5), em4100Frame('0000000001')]));
    expect(c.cards.map((x) => x.raw)).toEqual(['62E3086CED', '0000000001']);
    expect(c.rejects).toEqual([]);
  });
});

describe('line parser', () => {
  it('reads decimal numbers ending in CR, LF or CRLF', () => {
    const c = collect();
    const p = new LineParser(c.sink, 'decimal');
    p.push(Buffer.from('0012345678\r\n00123'));
    p.push(Buffer.from('45\r\n\n42\n'));
    expect(c.cards.map((x) => [x.raw, x.number, x.format])).toEqual([
      ['0012345678', '12345678', 'line-decimal'],
      ['0012345', '12345', 'line-decimal'],
      ['42', '42', 'line-decimal'],
    ]);
  });

  it('reads keypad entries (digits then #) as PINs, apart from card numbers', () => {
    const c = collect();
    const pins: string[] = [];
    const p = new LineParser({ ...c.sink, pin: (d) => pins.push(d) }, 'decimal');
    p.push(Buffer.from('1234#\r\n*98765432#\n1001\n12#\n'));
    expect(pins).toEqual(['1234', '98765432']);
    expect(c.cards.map((x) => x.number)).toEqual(['1001']);
    expect(c.rejects).toEqual(['line is not a decimal card number']); // "12#": too short for a PIN
    const noKeypad = collect();
    new LineParser(noKeypad.sink, 'decimal').push(Buffer.from('1234#\n'));
    expect(noKeypad.rejects).toEqual(['keypad entry on a reader without a keypad']);
  });

  it('reads hex numbers and rejects lines that are not card numbers', () => {
    const c = collect();
    const p = new LineParser(c.sink, 'hex');
    p.push(Buffer.from('abcdef01\r\nhello world\r\n0x1F\n' + 'A'.repeat(100) + '\n62e3086ced\r\n'));
    expect(c.cards.map((x) => [x.raw, x.number])).toEqual([
      ['ABCDEF01', String(0xabcdef01)],
      ['1F', '31'],
      ['62E3086CED', String(0xe3086ced)], // same number as the RDM6300 frame for this tag
    ]);
    expect(c.rejects).toEqual(['line is not a hex card number', 'line longer than 64 characters']);
  });
});

describe('repeat filter', () => {
  it('folds a card held on the reader into one read until it has been away for the window', () => {
    let t = 0;
    const f = new RepeatFilter(1000, () => t);
    const read = (n: string): CardRead => ({ raw: n, format: 'em4100', number: n });
    const seen: boolean[] = [];
    for (const [at, n] of [[0, '1'], [100, '1'], [900, '1'], [1800, '1'], [3000, '1'], [3100, '2'], [3200, '1']] as const) {
      t = at;
      seen.push(f.accept(read(n)));
    }
    expect(seen).toEqual([true, false, false, false, true, true, true]);
  });
});
