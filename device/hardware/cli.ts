import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../../common/config.js';
import { createLogger } from '../../common/log.js';
import { HwToolConfig, type HardwareConfig } from './config.js';
import { HardwareError } from './errors.js';
import { SimulatedGpio, pulses } from './gpio/sim.js';
import { createCamera, type Camera } from './camera/index.js';
import { createHardware, resetOutputs, type Hardware } from './index.js';
import { createCardReader, SimulatedCardReader, type CardReader } from './rfid/reader.js';
import type { CardRead } from './rfid/parsers.js';
import { parityOk, wiegandForCard } from './wiegand/encoder.js';

/**
 * `clockface hw`: on-site checks for facilities staff.
 *   clockface hw test --config FILE [--out DIR] [--card-timeout S] [--pulse-ms MS] [--json]
 *   clockface hw reset-outputs --config FILE   (systemd ExecStopPost: relay and outputs to safe state)
 */
const USAGE = `Usage:
  clockface hw test --config FILE [--out DIR] [--card-timeout SECONDS] [--pulse-ms MS] [--json]
      Walks through each configured part (LEDs, buzzer, relay, door inputs, card reader, camera,
      Wiegand) and prints PASS/FAIL with the fix to try. The grabbed frame is saved in --out (default .).
  clockface hw reset-outputs --config FILE
      Drives the door relay, LEDs, buzzer and Wiegand lines to their safe levels and exits.
The config file is the terminal's config; the "hardware" section is read.`;

export interface CheckResult {
  part: string;
  ok: boolean;
  detail: string;
  fix?: string;
}

export async function run(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h') {
    console.log(USAGE);
    return command === undefined ? 2 : 0;
  }
  let values;
  try {
    ({ values } = parseArgs({
      args: rest,
      options: {
        config: { type: 'string' },
        out: { type: 'string' },
        'card-timeout': { type: 'string' },
        'pulse-ms': { type: 'string' },
        json: { type: 'boolean' },
      },
      strict: true,
    }));
  } catch (err) {
    console.error(`clockface hw: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (command !== 'test' && command !== 'reset-outputs') {
    console.error(`clockface hw: unknown command "${command}"\n\n${USAGE}`);
    return 2;
  }
  if (!values.config) {
    console.error(`clockface hw ${command}: --config FILE is required\n\n${USAGE}`);
    return 2;
  }
  const { config, baseDir } = loadConfig(HwToolConfig, { file: values.config });
  const hw = config.hardware as HardwareConfig;
  if (command === 'reset-outputs') {
    resetOutputs(hw, { baseDir });
    console.log('outputs driven to their safe state');
    return 0;
  }
  const results = await runChecks(hw, {
    baseDir,
    outDir: resolve(values.out ?? '.'),
    cardTimeoutMs: numberOption(values['card-timeout'], 20) * 1000,
    pulseMs: numberOption(values['pulse-ms'], 1000),
    say: values.json ? () => undefined : (line) => console.log(line),
  });
  if (values.json) console.log(JSON.stringify({ ok: results.every((r) => r.ok), results }, null, 2));
  else {
    const failed = results.filter((r) => !r.ok).length;
    console.log(failed === 0 ? `\nall ${results.length} checks passed` : `\n${failed} of ${results.length} checks FAILED`);
  }
  return results.every((r) => r.ok) ? 0 : 1;
}

function numberOption(value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`expected a positive number, got "${value}"`);
  return n;
}

interface CheckOptions {
  baseDir: string;
  outDir: string;
  cardTimeoutMs: number;
  pulseMs: number;
  say: (line: string) => void;
}

/** Runs every check for the configured parts; never throws (a failure is a result). */
export async function runChecks(config: HardwareConfig, opts: CheckOptions): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  const record = (r: CheckResult): void => {
    results.push(r);
    const hint = r.fix ? `\n      ${r.ok ? 'if not' : 'fix'}: ${r.fix}` : '';
    opts.say(`${r.ok ? 'PASS' : 'FAIL'}  ${r.part.padEnd(12)} ${r.detail}${hint}`);
  };
  const guarded = async (part: string, check: () => Promise<void> | void): Promise<void> => {
    try {
      await check();
    } catch (err) {
      record(failure(part, err));
    }
  };
  // The checks print what failed and why; the log only adds what they cannot (errors).
  const log = createLogger({ name: 'hw-test', level: 'error' });
  let hw: Hardware | undefined;
  try {
    hw = createHardware(config, { baseDir: opts.baseDir, log });
    record({ part: 'gpio', ok: true, detail: `${hw.gpio.kind} driver; outputs driven to their safe state` });
  } catch (err) {
    record(failure('gpio', err));
  }
  if (hw) {
    const parts = hw;
    try {
      await guarded('leds', () => checkLeds(parts, record));
      await guarded('door relay', () => checkRelay(parts, opts.pulseMs, record));
      await guarded('inputs', () => checkInputs(parts, record));
      await guarded('wiegand', () => checkWiegand(parts, record));
      await guarded('card reader', () => checkReader(parts.reader, config, opts.cardTimeoutMs, opts.say, record));
      await guarded('camera', () => checkCamera(parts.camera, config, opts.outDir, record));
    } finally {
      await hw.close();
    }
    return results;
  }
  // Without GPIO the reader and camera can still be checked on their own.
  const reader = createCardReader(config.reader, log);
  const camera = createCamera(config.camera, opts.baseDir, log);
  await guarded('card reader', () => checkReader(reader, config, opts.cardTimeoutMs, opts.say, record));
  await guarded('camera', () => checkCamera(camera, config, opts.outDir, record));
  return results;
}

/** Adds one check result (and prints it). */
type Report = (r: CheckResult) => void;

function failure(part: string, err: unknown): CheckResult {
  if (err instanceof HardwareError) return { part, ok: false, detail: err.message, fix: err.fix };
  return { part, ok: false, detail: (err as Error).message ?? String(err), fix: 'see the message; check wiring and the hardware section of the config' };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** With the simulator the record proves what happened; on real pins staff confirm by eye and ear. */
function edgesOn(hw: Hardware, pin: number | undefined, since: number): number {
  if (!(hw.gpio instanceof SimulatedGpio) || pin === undefined) return -1;
  return hw.gpio.records.filter((r) => r.pin === pin && r.edge && r.t >= since).length;
}

/**
 * Waits for a pattern to finish: on real pins for its nominal length (staff watch it), on the
 * simulator until the record shows `want` edges (a busy machine runs timers late), at most 5 s.
 */
async function settle(count: () => number, want: number, nominalMs: number): Promise<number> {
  await sleep(nominalMs);
  const deadline = performance.now() + 5000;
  while (count() !== -1 && count() < want && performance.now() < deadline) await sleep(20);
  return count();
}

async function checkLeds(hw: Hardware, record: Report): Promise<void> {
  const { greenLed, redLed, buzzer } = hw.config.pins;
  for (const [color, pin] of [['green', greenLed], ['red', redLed]] as const) {
    if (pin === undefined) continue;
    const since = Date.now() - 1;
    hw.outputs.led(color, 'blink-twice');
    const edges = await settle(() => edgesOn(hw, pin, since), 4, 600);
    if (edges === -1) record({ part: `${color} LED`, ok: true, detail: `GPIO ${pin} blinked twice (look: did it?)`, fix: 'if it stayed dark: check the LED polarity, its resistor, and hardware.gpio.ledsActiveLow' });
    else record(edges >= 4 ? { part: `${color} LED`, ok: true, detail: `GPIO ${pin}: ${edges} edges recorded (two blinks)` } : { part: `${color} LED`, ok: false, detail: `only ${edges} edges recorded`, fix: 'check hardware.pins' });
  }
  if (buzzer !== undefined) {
    const since = Date.now() - 1;
    hw.outputs.buzz('granted');
    const edges = await settle(() => edgesOn(hw, buzzer, since), 2, 300);
    record(edges === -1 || edges >= 2 ? { part: 'buzzer', ok: true, detail: `GPIO ${buzzer} beeped once${edges === -1 ? ' (listen: did it?)' : ''}`, fix: edges === -1 ? 'if silent: check hardware.gpio.buzzerActiveLow and that it is an active buzzer' : undefined } : { part: 'buzzer', ok: false, detail: `only ${edges} edges recorded`, fix: 'check hardware.pins.buzzer' });
  }
}

async function checkRelay(hw: Hardware, pulseMs: number, record: Report): Promise<void> {
  const pin = hw.config.pins.relay;
  if (pin === undefined) return;
  const since = Date.now() - 1;
  const used = hw.outputs.pulseRelay(pulseMs);
  await sleep(used + 200);
  if (hw.outputs.relayOpen) {
    hw.outputs.safe();
    return record({ part: 'door relay', ok: false, detail: 'the pulse did not end', fix: 'report this: the relay timer did not fire' });
  }
  if (hw.gpio instanceof SimulatedGpio) {
    const restLevel = hw.gpio.level(pin);
    const p = pulses(hw.gpio.records.filter((r) => r.t >= since), pin, restLevel === 1 ? 0 : 1);
    const ok = p.length === 1 && p[0]!.ms >= used - 2; // timers may fire a millisecond early
    return record(ok ? { part: 'door relay', ok, detail: `GPIO ${pin}: one ${Math.round(p[0]!.ms)} ms pulse recorded, back at rest` } : { part: 'door relay', ok, detail: `recorded ${p.length} pulses`, fix: 'check hardware.pins.relay' });
  }
  record({ part: 'door relay', ok: true, detail: `GPIO ${pin} pulsed ${used} ms (listen for the click; the door should unlock and lock again)`, fix: 'if no click: check relay power, hardware.relay.activeLow and the wiring to the relay input' });
}

function checkInputs(hw: Hardware, record: Report): void {
  const { doorContact, requestToExit, tamper } = hw.config.pins;
  if (doorContact !== undefined) record({ part: 'door contact', ok: true, detail: `GPIO ${doorContact} reads door ${hw.inputs.isDoorOpen ? 'OPEN' : 'closed'} (open and close the door and run again to see it change)`, fix: hw.inputs.isDoorOpen ? 'if the door is actually closed: check the contact wiring and hardware.inputs.doorOpenLevel' : undefined });
  if (requestToExit !== undefined) record({ part: 'exit button', ok: true, detail: `GPIO ${requestToExit} configured` });
  if (tamper !== undefined) {
    const active = hw.inputs.isTampered;
    record(active ? { part: 'tamper', ok: false, detail: `GPIO ${tamper} reports the case OPEN`, fix: 'close the case, or check the tamper switch wiring and hardware.inputs.tamperActiveLevel' } : { part: 'tamper', ok: true, detail: `GPIO ${tamper}: case closed` });
  }
}

function checkWiegand(hw: Hardware, record: Report): void {
  if (!hw.wiegand) return;
  try {
    const bits = hw.wiegand.sendCard(1);
    const expect = wiegandForCard(1, hw.config.wiegand.format, hw.config.wiegand.facilityCode);
    const ok = parityOk(bits) && bits.join('') === expect.join('');
    record({ part: 'wiegand', ok, detail: `sent a ${bits.length}-bit frame for card 1 (the panel's log should show it)`, fix: ok ? undefined : 'report this: encoder mismatch' });
  } catch (err) {
    record(failure('wiegand', err));
  }
}

async function checkReader(reader: CardReader | undefined, config: HardwareConfig, timeoutMs: number, say: (l: string) => void, record: Report): Promise<void> {
  if (!reader) return;
  const seen: { error?: HardwareError } = {};
  reader.on('error', (e) => (seen.error ??= e));
  const card = new Promise<CardRead | undefined>((resolve) => {
    const timer = setTimeout(() => resolve(undefined), timeoutMs);
    reader.once('card', (c) => {
      clearTimeout(timer);
      resolve(c);
    });
  });
  await reader.start();
  if (seen.error) {
    await reader.stop();
    return record(failure('card reader', seen.error));
  }
  if (reader instanceof SimulatedCardReader) reader.present(config.reader.simulatedCards[0] ?? '0100ABCDEF');
  else say(`      hold a card on the reader (waiting ${Math.round(timeoutMs / 1000)} s) ...`);
  const read = await card;
  await reader.stop();
  const late = seen.error as HardwareError | undefined; // set by the listener while we waited
  if (!read) return record({ part: 'card reader', ok: false, detail: `no card read in ${Math.round(timeoutMs / 1000)} s${late ? `: ${late.message}` : ''}`, fix: late?.fix ?? `check hardware.reader.protocol (${config.reader.protocol}) and baudRate (${config.reader.baudRate}) match the reader, and its power` });
  // Only the format and length: the number itself is personal data.
  record({ part: 'card reader', ok: true, detail: `read a ${read.format} card (${read.raw.length} digits)` });
}

async function checkCamera(camera: Camera | undefined, config: HardwareConfig, outDir: string, record: Report): Promise<void> {
  if (!camera) return;
  let firstError: HardwareError | undefined;
  camera.on('error', (e) => (firstError ??= e));
  try {
    await camera.start();
  } catch (err) {
    return record(failure('camera', err));
  }
  const deadline = performance.now() + config.camera.stallTimeoutMs + 5000;
  while (!camera.latestFrame() && !firstError && performance.now() < deadline) await sleep(50);
  await sleep(1000); // let fps settle
  const frame = camera.latestFrame();
  const stats = camera.stats();
  await camera.stop();
  if (!frame) return record(failure('camera', firstError ?? new HardwareError('camera', `camera: no frame within ${config.camera.stallTimeoutMs + 5000} ms (${stats.restarts} restarts)`, 'check the camera cable and run rpicam-hello; see the service log for the camera program\'s errors')));
  mkdirSync(outDir, { recursive: true });
  const file = join(outDir, 'hw-test-frame.jpg');
  writeFileSync(file, frame.jpeg);
  let size = '';
  try {
    const sharp = (await import('sharp')).default;
    const meta = await sharp(frame.jpeg).metadata();
    size = `${meta.width}x${meta.height} `;
  } catch (err) {
    return record({ part: 'camera', ok: false, detail: `the frame does not decode as a JPEG: ${(err as Error).message}`, fix: 'the camera program writes something other than MJPEG: check its version and options' });
  }
  record({ part: 'camera', ok: true, detail: `${size}frame from ${stats.source} at ${stats.fps} fps saved to ${file} (delete it after looking: it may show a person)` });
}
