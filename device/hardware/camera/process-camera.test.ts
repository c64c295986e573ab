import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CameraConfig } from '../config.js';
import { HardwareError } from '../errors.js';
import type { Camera } from './camera.js';
import { createCamera } from './index.js';
import type { ProcessCamera } from './process-camera.js';
import { FIXTURES, isAlive, makeFrameFolder, waitFor } from './test-helpers.js';

let frames: string;
let work: string;
const originalPath = process.env.PATH!;
const cameras: Camera[] = [];

beforeAll(async () => {
  frames = await makeFrameFolder();
  work = mkdtempSync(join(tmpdir(), 'cf-hw-cam-'));
  process.env.CF_FAKE_FRAMES = frames;
});

afterEach(async () => {
  await Promise.all(cameras.splice(0).map((c) => c.stop()));
  process.env.PATH = originalPath;
  delete process.env.CF_FAKE_CRASH_AFTER;
});

afterAll(() => {
  // No camera program may outlive its Camera.
  for (const pid of pidsStarted()) expect(isAlive(pid), `stand-in ${pid} still running`).toBe(false);
  rmSync(frames, { recursive: true, force: true });
  rmSync(work, { recursive: true, force: true });
  delete process.env.CF_FAKE_FRAMES;
  delete process.env.CF_FAKE_PIDS;
  delete process.env.CF_FAKE_ARGS;
});

function pidsStarted(): number[] {
  const file = join(work, 'pids');
  return existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).map(Number) : [];
}

function calls(argv0: string): Array<{ argv0: string; args: string[] }> {
  return readFileSync(join(work, 'args'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { argv0: string; args: string[] }).filter((a) => a.argv0 === argv0);
}

function camera(bin: string, cfg: Record<string, unknown> = {}): ProcessCamera {
  process.env.PATH = `${join(FIXTURES, bin)}:${originalPath}`;
  process.env.CF_FAKE_PIDS = join(work, 'pids');
  process.env.CF_FAKE_ARGS = join(work, 'args');
  const cam = createCamera(CameraConfig.parse({ driver: 'rpicam', restartMinMs: 50, restartMaxMs: 400, ...cfg })) as ProcessCamera;
  cameras.push(cam);
  return cam;
}

describe('rpicam camera with a stand-in rpicam-vid', () => {
  it.each([
    [640, 480],
    [1280, 720],
  ])('streams real %ix%i JPEG frames and stops the process cleanly', async (width, height) => {
    const cam = camera('bin-stream', { width, height, fps: 30 });
    await cam.start();
    const got = [];
    for await (const f of cam.frames()) {
      got.push(f);
      if (got.length === 5) break;
    }
    for (const f of got) {
      const meta = await sharp(f.jpeg).metadata();
      expect([meta.format, meta.width, meta.height]).toEqual(['jpeg', width, height]);
    }
    expect(got.map((f) => f.seq)).toEqual([...got.map((f) => f.seq)].sort((a, b) => a - b));
    expect(cam.latestFrame()!.seq).toBeGreaterThanOrEqual(5);
    const stats = cam.stats();
    expect(stats.source).toBe('rpicam-vid');
    expect(stats.fps).toBeGreaterThan(0);
    const args = readFileSync(join(work, 'args'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { args: string[] }).pop()!.args;
    expect(args).toEqual(expect.arrayContaining(['--codec', 'mjpeg', '--width', String(width), '--height', String(height), '-o', '-']));
    const pid = cam.pid!;
    await cam.stop();
    expect(isAlive(pid)).toBe(false);
    expect(cam.stats().running).toBe(false);
  });

  it('gives a slow consumer only the newest frame instead of a backlog', async () => {
    const cam = camera('bin-stream', { fps: 60 });
    await cam.start();
    const seqs: number[] = [];
    for await (const f of cam.frames()) {
      seqs.push(f.seq);
      expect(f.seq).toBe(cam.latestFrame()!.seq); // never behind the newest
      if (seqs.length === 4) break;
      await new Promise((r) => setTimeout(r, 150));
    }
    const gaps = seqs.slice(1).map((s, i) => s - seqs[i]!);
    expect(Math.max(...gaps)).toBeGreaterThan(1);
  });

  it('restarts a camera process that crashes, with back-off, and keeps delivering whole frames', async () => {
    process.env.CF_FAKE_CRASH_AFTER = '3';
    const cam = camera('bin-crash');
    const reasons: string[] = [];
    const waits: number[] = [];
    cam.on('restart', (r) => {
      reasons.push(r.reason);
      waits.push(r.inMs);
    });
    const delivered: Buffer[] = [];
    cam.on('frame', (f) => delivered.push(f.jpeg));
    await cam.start();
    await waitFor(() => cam.stats().restarts >= 3 && delivered.length >= 9, 'three crashes and nine frames');
    expect(reasons[0]).toMatch(/rpicam-vid exited \(code 1\)/);
    expect(waits.slice(0, 3)).toEqual([50, 50, 50]); // frames arrived in between, so back-off resets
    // The half frame written before each crash never comes out as a frame.
    for (const jpeg of delivered) expect((await sharp(jpeg).metadata()).height).toBe(480);
  });

  it('kills and restarts a camera that hangs, and stop() kills one that ignores SIGTERM', async () => {
    const cam = camera('bin-hang', { stallTimeoutMs: 300 });
    const restarts: string[] = [];
    cam.on('restart', (r) => restarts.push(r.reason));
    await cam.start();
    const firstPid = cam.pid!;
    await waitFor(() => restarts.includes('stalled'), 'a stall restart');
    await waitFor(() => !isAlive(firstPid), 'the hung process to be killed');
    expect(cam.stats().stalls).toBeGreaterThanOrEqual(1);
    await waitFor(() => cam.pid !== undefined && cam.pid !== firstPid, 'a new process');
    const secondPid = cam.pid!;
    await cam.stop(); // the stand-in ignores SIGTERM in hang mode: stop must escalate
    expect(isAlive(secondPid)).toBe(false);
  });

  it('delivers no frames from a process that writes garbage, and treats it as stalled', async () => {
    const cam = camera('bin-garbage', { stallTimeoutMs: 300 });
    const restarts: string[] = [];
    cam.on('restart', (r) => restarts.push(r.reason));
    await cam.start();
    await waitFor(() => restarts.includes('stalled'), 'a stall restart');
    expect(cam.latestFrame()).toBeUndefined();
    expect(cam.stats().garbageBytes).toBeGreaterThan(4096);
  });

  it('falls back to libcamera-vid when rpicam-vid is not installed', async () => {
    const cam = camera('bin-libcamera');
    process.env.PATH = `${join(FIXTURES, 'bin-libcamera')}:${originalPath}`;
    await cam.start();
    await waitFor(() => cam.latestFrame() !== undefined, 'a frame');
    expect(cam.stats().source).toBe('libcamera-vid');
    expect(cam.stats().restarts).toBe(0);
  });

  it('reads a USB webcam through ffmpeg (V4L2 in, MJPEG out on stdout)', async () => {
    process.env.PATH = `${join(FIXTURES, 'bin-ffmpeg')}:${originalPath}`;
    process.env.CF_FAKE_PIDS = join(work, 'pids');
    process.env.CF_FAKE_ARGS = join(work, 'args');
    const cam = createCamera(CameraConfig.parse({ driver: 'v4l2', device: '/dev/video2' }))!;
    cameras.push(cam);
    await cam.start();
    await waitFor(() => cam.latestFrame() !== undefined, 'a frame');
    expect((await sharp(cam.latestFrame()!.jpeg).metadata()).format).toBe('jpeg');
    expect(cam.stats().source).toBe('ffmpeg');
    const args = readFileSync(join(work, 'args'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { argv0: string; args: string[] }).filter((a) => a.argv0 === 'ffmpeg').pop()!.args;
    expect(args.join(' ')).toContain('-f v4l2 -framerate 30 -video_size 640x480 -i /dev/video2');
    expect(args.slice(-3)).toEqual(['-f', 'mjpeg', 'pipe:1']);
  });

  it('reports a missing camera program with the fix to try', async () => {
    const cam = camera('bin-stream');
    process.env.PATH = join(work, 'empty-path');
    const errors: HardwareError[] = [];
    cam.on('error', (e) => errors.push(e));
    await cam.start();
    await waitFor(() => errors.length > 0, 'an error');
    expect(errors[0]).toBeInstanceOf(HardwareError);
    expect(errors[0]!.message).toMatch(/none of rpicam-vid, libcamera-vid is installed/);
    expect(errors[0]!.fix).toMatch(/rpicam-apps/);
  });

  it('turns "no cameras available" into the fix to try, and keeps retrying with growing back-off', async () => {
    const cam = camera('bin-nocamera');
    const errors: HardwareError[] = [];
    const waits: number[] = [];
    cam.on('error', (e) => errors.push(e));
    cam.on('restart', (r) => waits.push(r.inMs));
    await cam.start();
    await waitFor(() => waits.length >= 3, 'three restarts');
    expect(errors[0]!.message).toMatch(/found no camera/);
    expect(errors[0]!.fix).toMatch(/ribbon cable/);
    expect(waits.slice(0, 3)).toEqual([50, 100, 200]);
    expect(errors).toHaveLength(1); // reported once, not once per retry
  });

  it('takes a still with rpicam-still and resumes the stream', async () => {
    const cam = camera('bin-stream');
    await cam.start();
    await waitFor(() => cam.latestFrame() !== undefined, 'a frame');
    const iterator = cam.frames();
    await iterator.next();
    const still = await cam.captureStill();
    expect((await sharp(still).metadata()).format).toBe('jpeg');
    const after = cam.latestFrame()!.seq;
    await waitFor(() => cam.latestFrame()!.seq > after, 'frames after the still');
    // A frame loop running across the still keeps going: it was paused, not ended.
    const next = await iterator.next();
    expect(next.done).toBe(false);
    expect(next.value!.seq).toBeGreaterThan(after);
    await iterator.return!(undefined);
    // Under vitest NODE_ENV=test, node-libcamera only prints its command: the direct path took it.
    const stillArgs = calls('rpicam-still');
    expect(stillArgs[0]!.args).toEqual(expect.arrayContaining(['--width', '2304', '--height', '1296', '-o', '-']));
  });

  describe('stills through node-libcamera', () => {
    const env = process.env.NODE_ENV;
    afterEach(() => {
      process.env.NODE_ENV = env;
    });

    it('runs libcamera-still into a private temp file, reads it back and deletes it', async () => {
      process.env.NODE_ENV = 'production'; // node-libcamera dry-runs under NODE_ENV=test
      const cam = camera('bin-libcamera', { stillWidth: 4056, stillHeight: 3040 });
      const still = await cam.captureStill();
      expect((await sharp(still).metadata()).format).toBe('jpeg');
      const args = calls('libcamera-still').pop()!.args;
      expect(args).toEqual(expect.arrayContaining(['--width', '4056', '--height', '3040', '--nopreview', '--encoding', 'jpg']));
      const file = args[args.indexOf('--output') + 1]!;
      expect(file).toMatch(/cf-still-.*still\.jpg$/);
      expect(existsSync(file)).toBe(false);
    });

    it('falls back to rpicam-still when libcamera-still is not installed under that name', async () => {
      process.env.NODE_ENV = 'production';
      const cam = camera('bin-stream');
      const before = calls('rpicam-still').length;
      const still = await cam.captureStill();
      expect(still.subarray(0, 2)).toEqual(Buffer.from([0xff, 0xd8]));
      expect(calls('rpicam-still').length).toBe(before + 1);
    });
  });
});
