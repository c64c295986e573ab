import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleFixture, type Bundled } from '../test-fixtures/bundle.js';
import { FIXTURES, isAlive, makeFrameFolder, waitFor } from './test-helpers.js';

/** A service that ends must not leave its camera program running. */
let bundle: Bundled;
let frames: string;

beforeAll(async () => {
  bundle = await bundleFixture('camera-child');
  frames = await makeFrameFolder(2);
});
afterAll(() => {
  bundle.remove();
  rmSync(frames, { recursive: true, force: true });
});

async function startService(): Promise<{ proc: ReturnType<typeof spawn>; cameraPid: number; exit: Promise<number | null> }> {
  const proc = spawn(process.execPath, [bundle.file], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, PATH: `${join(FIXTURES, 'bin-stream')}:${process.env.PATH}`, CF_FAKE_FRAMES: frames, CLOCKFACE_LOG__LEVEL: 'silent' },
  });
  const exit = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  const cameraPid = await new Promise<number>((resolve, reject) => {
    let out = '';
    proc.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /camera-pid (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    void exit.then(() => reject(new Error('service exited before the camera ran')));
  });
  return { proc, cameraPid, exit };
}

describe('no orphan camera processes', () => {
  it('SIGTERM to the service stops its camera program too', async () => {
    const { proc, cameraPid, exit } = await startService();
    expect(isAlive(cameraPid)).toBe(true);
    proc.kill('SIGTERM');
    expect(await exit).toBe(143);
    await waitFor(() => !isAlive(cameraPid), 'the camera program to end');
  });

  it('a SIGKILLed service leaves no streaming camera program behind (broken pipe ends it)', async () => {
    const { proc, cameraPid, exit } = await startService();
    proc.kill('SIGKILL');
    await exit;
    await waitFor(() => !isAlive(cameraPid), 'the camera program to end');
  });
});
