/* global process, performance, Buffer, setTimeout, setInterval, setImmediate */
// Stand-in for rpicam-vid / libcamera-vid / rpicam-still in tests and the camera bench.
// Usage (through the wrappers in bin-*/): MODE [rpicam options...]
//   stream   real JPEG frames from $CF_FAKE_FRAMES (or ./frames) at --framerate (CF_FAKE_FPS=0: as fast as the pipe takes)
//   crash    a few frames, then half a frame, then exit 1
//   hang     two frames, then nothing, ignoring SIGTERM (only SIGKILL ends it)
//   garbage  deterministic pseudo-random bytes, never a JPEG
//   still    one JPEG on stdout, exit 0
//   nocamera rpicam-vid's "no cameras available" error, exit 255
// Each frame carries its write time in a JPEG COM segment ("cf-t=<epoch ms>") for latency measurements.
import { appendFileSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const [mode, ...args] = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};
if (process.env.CF_FAKE_PIDS) appendFileSync(process.env.CF_FAKE_PIDS, `${process.pid}\n`);
if (process.env.CF_FAKE_ARGS) appendFileSync(process.env.CF_FAKE_ARGS, JSON.stringify({ argv0: process.env.CF_FAKE_NAME, args }) + '\n');

const width = opt('--width', '640');
const height = opt('--height', '480');
const fps = process.env.CF_FAKE_FPS !== undefined ? Number(process.env.CF_FAKE_FPS) : Number(opt('--framerate', '30'));
const root = process.env.CF_FAKE_FRAMES ?? join(dirname(fileURLToPath(import.meta.url)), 'frames');
const area = (d) => d.split('x').map(Number).reduce((x, y) => x * y, 1);
const jpegsIn = (dir) => (existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.jpg')).sort().map((f) => readFileSync(join(dir, f))) : []);
// The asked size if there is a folder for it, else the folder itself, else the largest size there is (stills).
const bySize = readdirSync(root).filter((d) => /^\d+x\d+$/.test(d)).sort((a, b) => area(b) - area(a));
const dir = [`${width}x${height}`, '.', ...bySize].map((d) => join(root, d)).find((d) => jpegsIn(d).length > 0) ?? root;
const frames = jpegsIn(dir);
if (frames.length === 0 && mode !== 'garbage' && mode !== 'nocamera') {
  process.stderr.write(`stand-in: no frames in ${dir}\n`);
  process.exit(2);
}
const clockOrigin = performance.timeOrigin; // high-resolution epoch, comparable across processes
const stamped = (jpeg) => {
  const text = Buffer.from(`cf-t=${(clockOrigin + performance.now()).toFixed(3)}`, 'latin1');
  const com = Buffer.alloc(4);
  com[0] = 0xff;
  com[1] = 0xfe;
  com.writeUInt16BE(text.length + 2, 2);
  return Buffer.concat([jpeg.subarray(0, 2), com, text, jpeg.subarray(2)]);
};
const write = (buf) => new Promise((resolve) => (process.stdout.write(buf) ? resolve() : process.stdout.once('drain', resolve)));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
process.stdout.on('error', () => process.exit(0)); // reader went away (EPIPE)

async function stream(limit = Infinity) {
  const period = fps > 0 ? 1000 / fps : 0;
  let next = performance.now();
  for (let i = 0; i < limit; i++) {
    await write(stamped(frames[i % frames.length]));
    if (period > 0) {
      next += period;
      const wait = next - performance.now();
      if (wait > 0) await sleep(wait);
      else next = performance.now();
    } else if (i % 8 === 0) await new Promise(setImmediate);
  }
}

process.on('SIGTERM', () => {
  if (mode !== 'hang') process.exit(0);
});

switch (mode) {
  case 'stream':
    await stream();
    break;
  case 'crash': {
    await stream(Number(process.env.CF_FAKE_CRASH_AFTER ?? 3));
    const f = frames[0];
    await write(f.subarray(0, f.length >> 1));
    process.stderr.write('stand-in: simulated crash\n');
    process.exit(1);
    break;
  }
  case 'hang':
    await stream(2);
    setInterval(() => {}, 1 << 30);
    break;
  case 'garbage': {
    let seed = 12345;
    const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 0xff;
    for (;;) {
      const chunk = Buffer.alloc(4096);
      for (let i = 0; i < chunk.length; i++) chunk[i] = rand();
      await write(chunk);
      await sleep(5);
    }
  }
  case 'nocamera':
    // What rpicam-vid prints on a Pi with the ribbon cable out.
    process.stderr.write('[0:00:00.1] [INFO] Camera manager started\nERROR: *** no cameras available ***\n');
    process.exit(255);
    break;
  case 'still': {
    // rpicam-still -o - writes to stdout; node-libcamera passes --output FILE.
    const target = opt('--output', opt('-o', '-'));
    if (target === '-') await write(frames[frames.length - 1]);
    else writeFileSync(target, frames[frames.length - 1]);
    process.exit(0);
    break;
  }
  default:
    process.stderr.write(`stand-in: unknown mode ${mode}\n`);
    process.exit(2);
}
