import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from './cli.js';

const here = dirname(fileURLToPath(import.meta.url));
let out: string;

beforeAll(() => {
  out = mkdtempSync(join(tmpdir(), 'cf-hw-cli-'));
});
afterAll(() => rmSync(out, { recursive: true, force: true }));

async function capture(argv: string[]): Promise<{ code: number; text: string }> {
  const lines: string[] = [];
  const log = console.log;
  const err = console.error;
  console.log = console.error = (...a: unknown[]) => void lines.push(a.join(' '));
  try {
    return { code: await run(argv), text: lines.join('\n') };
  } finally {
    console.log = log;
    console.error = err;
  }
}

describe('clockface hw test', () => {
  it('walks every part of the simulator config and passes, saving a real frame', async () => {
    const { code, text } = await capture(['test', '--config', join(here, 'examples', 'simulator.json'), '--out', out, '--pulse-ms', '200']);
    expect(text).not.toMatch(/FAIL/);
    for (const part of ['gpio', 'green LED', 'red LED', 'buzzer', 'door relay', 'door contact', 'exit button', 'tamper', 'wiegand', 'card reader', 'camera']) {
      expect(text).toMatch(new RegExp(`PASS  ${part}`));
    }
    expect(text).toMatch(/door relay +GPIO 17: one \d+ ms pulse recorded/);
    expect(text).toMatch(/all 11 checks passed/);
    expect(code).toBe(0);
    const frame = join(out, 'hw-test-frame.jpg');
    expect(existsSync(frame)).toBe(true);
    expect(await sharp(readFileSync(frame)).metadata()).toMatchObject({ format: 'jpeg', width: 640, height: 480 });
  });

  it('fails a missing serial reader and a missing replay folder with the fix to try, as JSON', async () => {
    const config = join(out, 'broken.json');
    writeFileSync(
      config,
      JSON.stringify({ hardware: { reader: { driver: 'serial', path: join(out, 'no-such-tty') }, camera: { driver: 'replay', replayPath: 'missing-folder' } } }),
    );
    const { code, text } = await capture(['test', '--config', config, '--json', '--card-timeout', '1']);
    expect(code).toBe(1);
    const report = JSON.parse(text) as { ok: boolean; results: Array<{ part: string; ok: boolean; detail: string; fix?: string }> };
    expect(report.ok).toBe(false);
    const reader = report.results.find((r) => r.part === 'card reader')!;
    expect(reader).toMatchObject({ ok: false });
    expect(reader.detail).toMatch(/does not exist/);
    expect(reader.fix).toMatch(/serial\/by-id/);
    const camera = report.results.find((r) => r.part === 'camera')!;
    expect(camera.ok).toBe(false);
    expect(camera.fix).toMatch(/replayPath/);
  });

  it('still checks the camera when the GPIO cannot be opened (onoff without sysfs GPIO here)', async () => {
    const config = join(out, 'no-gpio.json');
    writeFileSync(
      config,
      JSON.stringify({ hardware: { gpio: { driver: 'onoff' }, pins: { relay: 17 }, camera: { driver: 'replay', replayPath: join(here, 'test-fixtures', 'frames') } } }),
    );
    const { code, text } = await capture(['test', '--config', config, '--out', out]);
    expect(code).toBe(1);
    expect(text).toMatch(/FAIL {2}gpio +gpio: .*\n {6}fix: .+/);
    expect(text).toMatch(/PASS {2}camera/);
    expect(text).toMatch(/1 of 2 checks FAILED/);
  });

  it('explains usage errors and bad config files plainly', async () => {
    expect((await capture(['test'])).text).toMatch(/--config FILE is required/);
    expect((await capture(['bogus', '--config', 'x'])).code).toBe(2);
    await expect(run(['test', '--config', join(out, 'absent.json')])).rejects.toThrow(/does not exist/);
  });
});
