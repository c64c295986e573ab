import { MjpegSplitter } from '../device/hardware/camera/mjpeg-splitter.js';
import { CameraConfig } from '../device/hardware/config.js';
import { createCamera } from '../device/hardware/camera/index.js';
import { FIXTURES, makeFrameFolder } from '../device/hardware/camera/test-helpers.js';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { percentile, round } from './measure.js';

/**
 * Camera pipeline: the stand-in rpicam-vid streams real JPEGs (a face-api demo photo at
 * 640x480 and 1280x720), each stamped with its write time in a JPEG comment; the camera splits
 * the MJPEG stream and hands frames to a handler. Reported per size:
 *  - paced30: the stand-in at 30 fps: sustained fps and write-to-handler latency (pipe + split);
 *  - unpaced: the stand-in as fast as the pipe takes: the most frames per second we can take;
 *  - splitter: CPU time of the splitter alone per frame, fed 64 KB chunks.
 * Target: >= 30 fps sustained with < 5 ms added latency per frame.
 */
export async function run(): Promise<Record<string, unknown>> {
  const frames = await makeFrameFolder(4);
  const savedPath = process.env.PATH;
  process.env.PATH = `${join(FIXTURES, 'bin-stream')}:${savedPath}`;
  process.env.CF_FAKE_FRAMES = frames;
  const out: Record<string, unknown> = { target: { fps: 30, addedLatencyMs: 5 } };
  try {
    for (const [width, height] of [[640, 480], [1280, 720]] as const) {
      const dir = join(frames, `${width}x${height}`);
      const jpegs = readdirSync(dir).map((f) => readFileSync(join(dir, f)));
      out[`${width}x${height}`] = {
        frameBytes: Math.round(jpegs.reduce((a, b) => a + b.length, 0) / jpegs.length),
        paced30: await stream(width, height, 30, 4000),
        unpaced: await stream(width, height, 0, 2500),
        splitter: splitterCost(jpegs),
      };
    }
  } finally {
    process.env.PATH = savedPath;
    delete process.env.CF_FAKE_FPS;
    delete process.env.CF_FAKE_FRAMES;
    rmSync(frames, { recursive: true, force: true });
  }
  return out;
}

async function stream(width: number, height: number, fps: number, ms: number) {
  process.env.CF_FAKE_FPS = String(fps);
  const cfg = CameraConfig.parse({ driver: 'rpicam', width, height, fps: fps || 30 });
  const cam = createCamera(cfg)!;
  const latencies: number[] = [];
  let first = 0;
  let last = 0;
  let count = 0;
  const warmup = 300;
  let started = 0;
  cam.on('frame', (f) => {
    const now = performance.timeOrigin + performance.now();
    if (now - started < warmup) return; // process start-up is not steady state
    const sent = writeTime(f.jpeg);
    if (sent !== undefined) latencies.push(now - sent);
    if (count++ === 0) first = f.receivedAt;
    last = f.receivedAt;
  });
  started = performance.timeOrigin + performance.now();
  await cam.start();
  await new Promise((r) => setTimeout(r, ms + warmup));
  const stats = cam.stats();
  await cam.stop();
  latencies.sort((a, b) => a - b);
  return {
    sourceFps: fps || 'max',
    fps: count > 1 ? round(((count - 1) * 1000) / (last - first), 1) : 0,
    frames: count,
    restarts: stats.restarts,
    latencyMs: { p50: round(percentile(latencies, 50)), p95: round(percentile(latencies, 95)), max: round(latencies.at(-1) ?? NaN) },
  };
}

/** The stand-in's write time from the JPEG comment segment it inserts after SOI. */
function writeTime(jpeg: Buffer): number | undefined {
  if (jpeg[2] !== 0xff || jpeg[3] !== 0xfe) return undefined;
  const len = jpeg.readUInt16BE(4);
  const m = /^cf-t=([0-9.]+)$/.exec(jpeg.subarray(6, 4 + len).toString('latin1'));
  return m ? Number(m[1]) : undefined;
}

function splitterCost(jpegs: Buffer[]) {
  const stream = Buffer.concat(jpegs);
  const chunks: Buffer[] = [];
  for (let i = 0; i < stream.length; i += 65536) chunks.push(stream.subarray(i, i + 65536));
  let frames = 0;
  const s = new MjpegSplitter(() => frames++);
  for (let i = 0; i < 20; i++) for (const c of chunks) s.push(c);
  const rounds = 200;
  const t0 = performance.now();
  for (let i = 0; i < rounds; i++) for (const c of chunks) s.push(c);
  const ms = performance.now() - t0;
  return { msPerFrame: round(ms / (rounds * jpegs.length), 4), framesPerSecond: Math.round((rounds * jpegs.length * 1000) / ms) };
}
