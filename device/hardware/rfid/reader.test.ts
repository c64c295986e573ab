import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, closeSync, existsSync, mkdtempSync, openSync, realpathSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ReaderConfig } from '../config.js';
import { HardwareError } from '../errors.js';
import { em4100Frame, type CardRead } from './parsers.js';
import { SerialCardReader, SimulatedCardReader } from './reader.js';
import { bundleFixture } from '../test-fixtures/bundle.js';
import { requireTool } from '../../../tests/support/tools.js';

/**
 * A real pseudo-terminal pair made by socat: the reader opens one end as its serial port, the
 * test writes what a card reader would send into the other end.
 */
let dir: string;
let socat: ChildProcess | undefined;
let hostFd: number | undefined;
const readers: Array<SerialCardReader> = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'cf-hw-pty-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(async () => {
  await Promise.all(readers.splice(0).map((r) => r.stop()));
  await stopSocat();
});

const portPath = () => join(dir, 'reader');
const hostPath = () => join(dir, 'host');

async function startSocat(): Promise<void> {
  requireTool('socat');
  socat = spawn('socat', [`pty,raw,echo=0,link=${portPath()}`, `pty,raw,echo=0,link=${hostPath()}`], { stdio: 'ignore' });
  await until(() => existsSync(portPath()) && existsSync(hostPath()), 'socat pty links');
  hostFd = openSync(hostPath(), 'r+');
}

async function stopSocat(): Promise<void> {
  if (hostFd !== undefined) closeSync(hostFd);
  hostFd = undefined;
  const s = socat;
  socat = undefined;
  if (!s || s.exitCode !== null) return;
  const gone = new Promise((r) => s.once('exit', r));
  s.kill('SIGTERM');
  await gone;
}

function send(bytes: Buffer | string): void {
  writeSync(hostFd!, typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes);
}

async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function reader(cfg: Record<string, unknown> = {}) {
  const r = new SerialCardReader({ ...ReaderConfig.parse({ driver: 'serial', path: portPath(), reconnectMinMs: 50, reconnectMaxMs: 200, ...cfg }), path: portPath() });
  readers.push(r);
  const cards: CardRead[] = [];
  const rejects: string[] = [];
  r.on('card', (c) => cards.push(c));
  r.on('reject', (x) => rejects.push(x.reason));
  return { r, cards, rejects };
}

describe('serial card reader on a socat pseudo-terminal', () => {
  it('reads RDM6300 frames; a card held on the reader is one read', async () => {
    await startSocat();
    const { r, cards } = reader();
    await r.start();
    expect(r.connected).toBe(true);
    const frame = em4100Frame('0100ABCDEF');
    send(Buffer.concat([frame, frame, frame]));
    send(em4100Frame('0200000001'));
    await until(() => cards.length >= 2, 'two cards');
    expect(cards.map((c) => [c.raw, c.number])).toEqual([
      ['0100ABCDEF', String(0x00abcdef)],
      ['0200000001', '1'],
    ]);
  });

  it('copes with split frames, noise and bad checksums', async () => {
    await startSocat();
    const { r, cards, rejects } = reader({ repeatWindowMs: 0 });
    await r.start();
    const frame = em4100Frame('62E3086CED');
    send('\x00\xff noise \x02zz\r\n');
    send(frame.subarray(0, 5));
    await new Promise((res) => setTimeout(res, 50));
    send(frame.subarray(5));
    const bad = Buffer.from(em4100Frame('0000000042'));
    bad[11] = 0x41; // corrupt the checksum
    send(bad);
    send(em4100Frame('0000000042'));
    await until(() => cards.length >= 2, 'two cards');
    expect(cards.map((c) => c.raw)).toEqual(['62E3086CED', '0000000042']);
    expect(rejects).toHaveLength(1);
    expect(rejects[0]).toMatch(/checksum/);
  });

  it('reads line-based decimal readers', async () => {
    await startSocat();
    const { r, cards, rejects } = reader({ protocol: 'line', lineFormat: 'decimal' });
    await r.start();
    send('0004718592\r\n');
    send('garbage!\r\n00047');
    send('18593\n');
    await until(() => cards.length >= 2, 'two cards');
    expect(cards.map((c) => c.number)).toEqual(['4718592', '4718593']);
    expect(rejects).toEqual(['line is not a decimal card number']);
  });

  it('survives the port vanishing (unplug) and reconnects when it is back (replug)', async () => {
    await startSocat();
    const { r, cards } = reader();
    let connects = 0;
    const drops: string[] = [];
    r.on('connected', () => connects++);
    r.on('disconnected', (d) => drops.push(d.reason));
    await r.start();
    await stopSocat(); // unplug: the pty and its link disappear
    await until(() => drops.length === 1, 'the disconnect');
    expect(r.connected).toBe(false);
    await startSocat(); // replug at the same path
    await until(() => r.connected, 'the reconnect');
    send(em4100Frame('0A0B0C0D0E'));
    await until(() => cards.length === 1, 'a card after replug');
    expect(connects).toBe(2);
  });

  it('names the fix when the configured port does not exist, and connects once it appears', async () => {
    const { r, cards } = reader();
    const errors: HardwareError[] = [];
    r.on('error', (e) => errors.push(e));
    await r.start();
    expect(r.connected).toBe(false);
    expect(errors).toHaveLength(1);
    expect(errors[0]!.code).toBe('ENOENT');
    expect(errors[0]!.message).toContain(portPath());
    expect(errors[0]!.fix).toMatch(/serial\/by-id/);
    await startSocat();
    await until(() => r.connected, 'connect after the port appears');
    send(em4100Frame('0000000007'));
    await until(() => cards.length === 1, 'a card');
    expect(errors).toHaveLength(1); // retries did not repeat the same error
  });
});

describe('serial card reader permissions', () => {
  it('names the group to join when the service user may not open the port', async () => {
    await startSocat();
    // A pty belongs to its creator with mode 620: root's is closed to "nobody", as a
    // root:dialout 660 serial port is to a user outside dialout. Not root here: close our own.
    const asRoot = process.getuid?.() === 0;
    if (!asRoot) chmodSync(realpathSync(portPath()), 0o000);
    const child = await bundleFixture('reader-permission-child');
    try {
      const stdout = await new Promise<string>((resolve, reject) =>
        execFile(process.execPath, [child.file, portPath(), ...(asRoot ? ['65534'] : [])], { timeout: 20_000 }, (err, out) =>
          err ? reject(err) : resolve(out),
        ),
      );
      const report = JSON.parse(stdout.trim().split('\n')[0]!) as { code?: string; message?: string; fix?: string };
      expect(report.code).toBe('EACCES');
      expect(report.message).toBe(`reader: permission denied on ${portPath()}`);
      expect(report.fix).toMatch(/to group dialout \(sudo usermod -aG dialout \S+\)/);
      if (asRoot) expect(report.fix).toContain('nobody');
    } finally {
      child.remove();
    }
  });
});

describe('simulated card reader', () => {
  it('runs presented cards through the real EM4100 parser and repeat filter', async () => {
    const sim = new SimulatedCardReader(ReaderConfig.parse({ driver: 'simulator' }));
    const cards: CardRead[] = [];
    const rejects: string[] = [];
    let repeats = 0;
    sim.on('card', (c) => cards.push(c));
    sim.on('repeat', () => repeats++);
    sim.on('reject', (x) => rejects.push(x.reason));
    await sim.start();
    sim.present('0100ABCDEF');
    sim.present('0100ABCDEF');
    sim.present('0100ABCDEF'); // still held: one presentation, one reported repeat
    sim.feed(Buffer.from('\x020100ABCDEF00\x03', 'latin1'));
    await sim.stop();
    expect(cards).toEqual([{ raw: '0100ABCDEF', format: 'em4100', number: String(0xabcdef) }]);
    expect(repeats).toBe(1);
    expect(rejects).toHaveLength(1);
    expect(() => sim.present('XYZ')).toThrow(/hex/);
  });
});

describe('simulated reader fed over a unix socket', () => {
  it('takes what another process writes: card numbers and keypad PINs', async () => {
    const feed = join(dir, 'reader.sock');
    const reader = new SimulatedCardReader(ReaderConfig.parse({ driver: 'simulator', protocol: 'line', repeatWindowMs: 0, simulatedFeed: feed }));
    const cards: string[] = [];
    const pins: string[] = [];
    reader.on('card', (c) => cards.push(c.number));
    reader.on('pin', (p) => pins.push(p.pin));
    await reader.start();
    const socket = connect(feed);
    await new Promise<void>((r) => socket.once('connect', () => r()));
    socket.write('1001\r\n12');
    socket.write('34#\r\n');
    for (let i = 0; i < 200 && pins.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    socket.destroy();
    reader.present('00000003EA'); // the same feed path, driven in-process
    await reader.stop();
    expect(cards).toEqual(['1001', '1002']);
    expect(pins).toEqual(['1234']);
    expect(existsSync(feed)).toBe(false);
  });
});
