import { mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CameraConfig } from '../config.js';
import { HardwareError } from '../errors.js';
import { createCamera } from './index.js';
import { loadFrames } from './replay-camera.js';
import { makeFrameFolder, waitFor } from './test-helpers.js';

let root: string;
let folder: string;

beforeAll(async () => {
  root = await makeFrameFolder(3);
  folder = join(root, '640x480');
  const mjpeg = Buffer.concat(readdirSync(folder).sort().map((f) => readFileSync(join(folder, f))));
  writeFileSync(join(root, 'clip.mjpeg'), mjpeg);
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('replay camera', () => {
  it('loops a folder of JPEGs in name order, byte for byte', async () => {
    const cam = createCamera(CameraConfig.parse({ driver: 'replay', replayPath: folder, fps: 50 }))!;
    const files = readdirSync(folder).sort().map((f) => readFileSync(join(folder, f)));
    const got: Buffer[] = [];
    cam.on('frame', (f) => got.push(f.jpeg));
    await cam.start();
    await waitFor(() => got.length >= 5, 'five frames');
    await cam.stop();
    expect(got.slice(0, 5).map((g) => files.findIndex((f) => f.equals(g)))).toEqual([0, 1, 2, 0, 1]);
    expect((await cam.captureStill()).equals(cam.latestFrame()!.jpeg)).toBe(true);
  });

  it('reads its folder again when it changes: a new person steps in front of the camera', async () => {
    const live = join(root, 'live');
    mkdirSync(live);
    const [first, second] = readdirSync(folder).sort().map((f) => readFileSync(join(folder, f)));
    writeFileSync(join(live, 'a.jpg'), first!);
    const cam = createCamera(CameraConfig.parse({ driver: 'replay', replayPath: live, fps: 50 }))!;
    await cam.start();
    await waitFor(() => cam.latestFrame()?.jpeg.equals(first!) === true, 'the first frame');
    writeFileSync(join(live, 'b.tmp'), second!);
    renameSync(join(live, 'b.tmp'), join(live, 'b.jpg'));
    rmSync(join(live, 'a.jpg'));
    await waitFor(() => cam.latestFrame()?.jpeg.equals(second!) === true, 'the swapped-in frame');
    await cam.stop();
  });

  it('replays an MJPEG file, with a relative path resolved against the config folder', async () => {
    const cam = createCamera(CameraConfig.parse({ driver: 'replay', replayPath: 'clip.mjpeg', fps: 50 }), root)!;
    await cam.start();
    const seen: number[] = [];
    for await (const f of cam.frames()) {
      seen.push(f.jpeg.length);
      if (seen.length === 3) break;
    }
    await cam.stop();
    expect(seen).toHaveLength(3);
  });

  it('says clearly when the replay source is missing or holds no JPEGs', () => {
    expect(() => loadFrames(join(root, 'nope'))).toThrow(HardwareError);
    const empty = mkdtempSync(join(tmpdir(), 'cf-hw-empty-'));
    try {
      expect(() => loadFrames(empty)).toThrow(/holds no JPEG frames/);
    } finally {
      rmSync(empty, { recursive: true });
    }
    expect(() => CameraConfig.parse({ driver: 'replay' })).toThrow(/replayPath is required/);
  });
});
