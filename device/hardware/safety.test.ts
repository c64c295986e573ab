import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from './cli.js';
import { readRecordFile, SimulatedGpio, type EdgeRecord } from './gpio/sim.js';
import { bundleFixture, type Bundled } from './test-fixtures/bundle.js';

/**
 * Relay safety with real child processes: the child pulses the relay for a minute on the GPIO
 * simulator (record file on disk) and is killed mid-pulse in each way a service can end.
 */
let bundle: Bundled;
let child: string;
let work: string;

beforeAll(async () => {
  bundle = await bundleFixture('relay-child');
  child = bundle.file;
  work = mkdtempSync(join(tmpdir(), 'cf-hw-safety-'));
});

afterAll(() => {
  bundle.remove();
  rmSync(work, { recursive: true, force: true });
});

interface Run {
  pid: number;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
  kill: (signal: NodeJS.Signals) => void;
}

async function startChild(mode: string, record: string, waitFor: string): Promise<Run> {
  const proc = spawn(process.execPath, [child, mode, record], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  proc.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) =>
    proc.once('exit', (code, signal) => resolve({ code, signal, stderr })),
  );
  await new Promise<void>((resolve, reject) => {
    let out = '';
    proc.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes(waitFor)) resolve();
    });
    void exit.then((e) => (out.includes(waitFor) ? undefined : reject(new Error(`child exited early: ${e.code} ${e.stderr}`))));
  });
  return { pid: proc.pid!, exit, kill: (s) => proc.kill(s) };
}

/** Level changes of the relay (repeated "drive safe" writes that change nothing are left out). */
const relayWrites = (file: string, pid?: number): EdgeRecord[] =>
  readRecordFile(file).filter((r) => r.name === 'relay' && r.edge && (pid === undefined || r.pid === pid));

describe('relay safety across process ends', () => {
  it('after a SIGKILL mid-pulse, the next start drives the relay safe before anything else', async () => {
    const record = join(work, 'sigkill.jsonl');
    const a = await startChild('pulse', record, 'pulsing');
    a.kill('SIGKILL');
    expect((await a.exit).signal).toBe('SIGKILL');
    // Nothing can run on SIGKILL: the simulated pin is left energised, as a real one would be.
    expect(relayWrites(record, a.pid).map((r) => r.level)).toEqual([0, 1]);
    const b = await startChild('start', record, 'started');
    await b.exit;
    const first = readRecordFile(record).find((r) => r.pid === b.pid)!;
    expect(first).toMatchObject({ name: 'relay', level: 0, edge: true });
  });

  it('SIGTERM mid-pulse ends the pulse and turns the LED off before the process exits', async () => {
    const record = join(work, 'sigterm.jsonl');
    const a = await startChild('pulse', record, 'pulsing');
    a.kill('SIGTERM');
    expect((await a.exit).code).toBe(143);
    const writes = readRecordFile(record).filter((r) => r.pid === a.pid);
    expect(relayWrites(record, a.pid).map((r) => r.level)).toEqual([0, 1, 0]);
    expect(writes.filter((r) => r.name === 'green-led').map((r) => r.level).pop()).toBe(0);
    const released = relayWrites(record, a.pid)[2]!.t - relayWrites(record, a.pid)[1]!.t;
    expect(released).toBeLessThan(60_000); // the minute-long pulse did not run its course
  });

  it('an uncaught exception mid-pulse drives the relay safe on the way down', async () => {
    const record = join(work, 'throw.jsonl');
    const a = await startChild('throw', record, 'pulsing');
    const { code, stderr } = await a.exit;
    expect(code).toBe(1);
    expect(stderr).toContain('simulated bug');
    expect(relayWrites(record, a.pid).map((r) => r.level)).toEqual([0, 1, 0]);
  });

  it('`clockface hw reset-outputs` drives a relay left energised back to rest', async () => {
    const record = join(work, 'reset.jsonl');
    const left = new SimulatedGpio(record);
    left.output(17, 'relay', 1); // what a crashed process leaves behind
    const config = join(work, 'device.json');
    writeFileSync(config, JSON.stringify({ hardware: { gpio: { driver: 'simulator', recordFile: 'reset.jsonl' }, pins: { relay: 17, wiegandD0: 20, wiegandD1: 21 } } }));
    const out: string[] = [];
    const log = console.log;
    console.log = (...a: unknown[]) => void out.push(a.join(' '));
    try {
      expect(await run(['reset-outputs', '--config', config])).toBe(0);
    } finally {
      console.log = log;
    }
    expect(out.join('\n')).toMatch(/safe state/);
    const after = readRecordFile(record).filter((r) => r.pid === process.pid);
    expect(after.filter((r) => r.name === 'relay' && r.edge).map((r) => r.level)).toEqual([1, 0]);
    expect(after.filter((r) => r.name.startsWith('wiegand')).every((r) => r.level === 1)).toBe(true); // idle high
    expect(after.filter((r) => r.name === 'relay').at(-1)!.level).toBe(0);
  });
});
